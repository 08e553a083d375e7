//! `keyri phone …`: a phone in the terminal. It reads a code (its text or a
//! PNG picture of it), shows where the login comes from, asks, and then seals
//! and confirms the payload, or denies.

use std::io::{BufRead, Write};
use std::path::Path;

use clap::{Args, Subcommand};

use super::runtime;
use p256::ecdsa::SigningKey;

use crate::backend_api::BackendClient;
use crate::phone::device::{self, FileKeyStore, KeyStore};
use crate::phone::{PendingLogin, PhoneClient, PhoneError, qr_image};
use crate::protocol::now_ms;
use crate::protocol::qr::QrLogin;

#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Approve a login: seal the payload for the widget and confirm.
    Approve {
        #[command(flatten)]
        target: Target,
        /// The payload to hand to the browser, such as a session token.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Read the payload from a file instead.
        #[arg(long)]
        payload_file: Option<std::path::PathBuf>,
        /// Do not ask; approve at once.
        #[arg(long)]
        yes: bool,
        /// Send a login request signed with this device's key for
        /// `--username` (server-side authentication) instead of a payload.
        #[arg(long, requires = "username", conflicts_with_all = ["payload", "payload_file"])]
        signed: bool,
        /// The user whose device key signs the request.
        #[arg(long)]
        username: Option<String>,
        #[command(flatten)]
        keys: KeyDir,
    },
    /// Create this device's key for a user and register it with the server,
    /// as the app's backend would, using the tenant's API secret.
    Register {
        #[arg(long)]
        username: String,
        /// The keyri server, such as http://localhost:8080.
        #[arg(long)]
        server: String,
        /// The tenant's API secret; `-` reads it from standard input.
        #[arg(long)]
        api_secret: String,
        /// A name for this device, shown in key lists.
        #[arg(long, default_value = "keyri phone simulator")]
        label: String,
        #[command(flatten)]
        keys: KeyDir,
    },
    /// Decline a login.
    Deny {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Args)]
pub struct KeyDir {
    /// Where the simulator keeps device keys (created owner-only).
    #[arg(long, default_value = "keyri-phone-keys")]
    key_dir: std::path::PathBuf,
}

#[derive(Args)]
pub struct Target {
    /// The code's text, or the path of a PNG picture of the code.
    code: String,
    /// The tenant's app key, as built into the app.
    #[arg(long)]
    app_key: String,
    /// The keyri server this app talks to, such as https://login.example.com.
    /// Never taken from the code: a forged code must not choose where the
    /// app sends its app key and payload.
    #[arg(long)]
    server: String,
}

pub fn run(command: PhoneCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        match command {
            PhoneCommand::Approve {
                target,
                payload,
                payload_file,
                yes,
                signed,
                username,
                keys,
            } => {
                let signer = match (signed, username) {
                    (true, Some(username)) => Some(stored_key(&keys, username)?),
                    _ => None,
                };
                let payload = match (payload, payload_file, &signer) {
                    (_, _, Some(_)) => Vec::new(),
                    (Some(text), _, None) => text.into_bytes(),
                    (None, Some(path), None) => std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                    (None, None, None) => {
                        return Err("give --payload, --payload-file or --signed".into());
                    }
                };
                let (client, login) = fetch(&target).await?;
                let payload = match &signer {
                    Some((key, username)) => {
                        device::signed_payload(key, username, &login, now_ms()).into_bytes()
                    }
                    None => payload,
                };
                show(&login);
                if !yes && !ask("Approve this login?")? {
                    client.deny(&login.session_id).await.map_err(explain)?;
                    say!("Denied.");
                    return Ok(());
                }
                client.confirm(&login, &payload).await.map_err(explain)?;
                say!("Approved: the payload was sealed and handed to the browser.");
                Ok(())
            }
            PhoneCommand::Register { username, server, api_secret, label, keys } => {
                register(&username, &server, &api_secret, &label, &keys).await
            }
            PhoneCommand::Deny { target } => {
                let (client, login) = fetch(&target).await?;
                show(&login);
                client.deny(&login.session_id).await.map_err(explain)?;
                say!("Denied.");
                Ok(())
            }
        }
    })
}

fn stored_key(keys: &KeyDir, username: String) -> Result<(SigningKey, String), String> {
    let store = FileKeyStore::new(&keys.key_dir);
    let key = store.load(&username).map_err(|e| e.to_string())?;
    let key = key.ok_or_else(|| {
        format!("no device key for {username:?} here: run `keyri phone register` first")
    })?;
    Ok((key, username))
}

async fn register(
    username: &str,
    server: &str,
    api_secret: &str,
    label: &str,
    keys: &KeyDir,
) -> Result<(), String> {
    let secret = match api_secret {
        "-" => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
            line.trim().to_owned()
        }
        given => given.to_owned(),
    };
    let store = FileKeyStore::new(&keys.key_dir);
    let key = device::device_key(&store, username).map_err(|e| e.to_string())?;
    let public_key = device::public_key_b64(&key);

    let answer = BackendClient::new(server, &secret)
        .register_key(username, &public_key, label)
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if !answer.is_success() && answer.error() != Some("already_registered") {
        let message = answer.body.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return Err(format!(
            "registration refused ({}): {}: {message}",
            answer.status,
            answer.error().unwrap_or("?")
        ));
    }
    let key_id = crate::protocol::PublicKey::from_b64(&public_key)
        .map(|k| k.fingerprint().to_string())
        .unwrap_or_default();
    say!("Device key {key_id} is registered for {username}.");
    Ok(())
}

/// Reads the code and fetches its session, checking the key binding.
async fn fetch(target: &Target) -> Result<(PhoneClient, PendingLogin), String> {
    let text = read_code(&target.code)?;
    let qr = QrLogin::parse(&text).map_err(|e| e.to_string())?;
    let server = &target.server;
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(format!(
            "--server must start with http:// or https://, such as http://127.0.0.1:8080 \
             (got {server:?})"
        ));
    }
    let client = PhoneClient::new(server, &target.app_key);
    let login = client.fetch(&qr).await.map_err(explain)?;
    Ok((client, login))
}

/// Says what a failed phone call means for the person at the phone.
fn explain(error: PhoneError) -> String {
    let hint = match error.code() {
        Some("not_found") => "the code is unknown or has expired; show a new code and try again",
        Some("already_finished") => "this login was already confirmed or denied",
        Some("widget_gone") => "the page that showed the code has closed or lost its connection",
        Some("forbidden") => "the server does not know this app key, or its tenant is disabled",
        _ => return error.to_string(),
    };
    format!("{hint} ({error})")
}

/// The code's text, read from a PNG when `code` names one.
fn read_code(code: &str) -> Result<String, String> {
    // Code text always has a scheme; anything else is a picture's path.
    if code.contains("://") {
        return Ok(code.to_owned());
    }
    let bytes = std::fs::read(Path::new(code)).map_err(|e| format!("cannot read {code}: {e}"))?;
    qr_image::decode_png(&bytes).map_err(|e| format!("{code}: {e}"))
}

fn show(login: &PendingLogin) {
    let view = &login.view;
    let widget = &view.widget;
    say!("Login request");
    say!("  from:     {}", widget.origin.as_deref().unwrap_or("a native app (no web origin)"));
    say!("  browser:  {} on {}", widget.browser, widget.os);
    say!("  address:  {} (this phone: {})", widget.ip, view.mobile.ip);
    if let Some(location) = &widget.location {
        let place = [&location.city, &location.country].map(|p| p.as_deref().unwrap_or("?"));
        say!("  location: {}, {}", place[0], place[1]);
    }
    if view.risk.is_empty() {
        say!("  risk:     no warnings");
    }
    for risk in &view.risk {
        say!("  WARNING:  {}", describe_risk(risk));
    }
}

fn describe_risk(risk: &str) -> String {
    match risk {
        "different_network" => "the browser is on another network than this phone".into(),
        "different_country" => "the browser is in another country than this phone".into(),
        "native_client" => "the login comes from an app, not a web page".into(),
        other => other.to_owned(),
    }
}

/// Asks yes or no; an answer other than yes declines. With no answer at all
/// (input closed) nothing is sent and the command fails.
fn ask(question: &str) -> Result<bool, String> {
    print!("{question} [y/N] ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    if read == 0 {
        say!();
        return Err("no answer (input closed): nothing was sent; use --yes to approve".into());
    }
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
