//! `keyri phone …`: a phone in the terminal. It reads a code (its text or a
//! PNG picture of it), shows where the login comes from, asks, and then seals
//! and confirms the payload, or denies.

use std::io::{BufRead, Write};
use std::path::Path;

use clap::{Args, Subcommand};

use super::runtime;
use crate::phone::{PendingLogin, PhoneClient, qr_image};
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
    },
    /// Decline a login.
    Deny {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Args)]
pub struct Target {
    /// The code's text, or the path of a PNG picture of the code.
    code: String,
    /// The tenant's app key, as built into the app.
    #[arg(long)]
    app_key: String,
    /// The keyri server [default: taken from the code's scan URL].
    #[arg(long)]
    server: Option<String>,
}

pub fn run(command: PhoneCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        match command {
            PhoneCommand::Approve {
                target,
                payload,
                payload_file,
                yes,
            } => {
                let payload = match (payload, payload_file) {
                    (Some(text), _) => text.into_bytes(),
                    (None, Some(path)) => std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                    (None, None) => return Err("give --payload or --payload-file".into()),
                };
                let (client, login) = fetch(&target).await?;
                show(&login);
                if !yes && !ask("Approve this login?")? {
                    client
                        .deny(&login.session_id)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("Denied.");
                    return Ok(());
                }
                client
                    .confirm(&login, &payload)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("Approved: the payload was sealed and handed to the browser.");
                Ok(())
            }
            PhoneCommand::Deny { target } => {
                let (client, login) = fetch(&target).await?;
                show(&login);
                client
                    .deny(&login.session_id)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("Denied.");
                Ok(())
            }
        }
    })
}

/// Reads the code and fetches its session, checking the key binding.
async fn fetch(target: &Target) -> Result<(PhoneClient, PendingLogin), String> {
    let text = read_code(&target.code)?;
    let qr = QrLogin::parse(&text).map_err(|e| e.to_string())?;
    let server = match &target.server {
        Some(server) => server.clone(),
        None => PhoneClient::server_from_scan_url(&qr.scan_url).ok_or_else(|| {
            format!(
                "the code's scan URL {} names no server: give --server",
                qr.scan_url
            )
        })?,
    };
    let client = PhoneClient::new(&server, &target.app_key);
    let login = client.fetch(&qr).await.map_err(|e| e.to_string())?;
    Ok((client, login))
}

/// The code's text, read from a PNG when `code` names one.
fn read_code(code: &str) -> Result<String, String> {
    let path = Path::new(code);
    if !code.contains("?") && path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {code}: {e}"))?;
        return qr_image::decode_png(&bytes).map_err(|e| format!("{code}: {e}"));
    }
    Ok(code.to_owned())
}

fn show(login: &PendingLogin) {
    let view = &login.view;
    let widget = &view.widget;
    println!("Login request");
    println!(
        "  from:     {}",
        widget
            .origin
            .as_deref()
            .unwrap_or("a native app (no web origin)")
    );
    println!("  browser:  {} on {}", widget.browser, widget.os);
    println!("  address:  {} (this phone: {})", widget.ip, view.mobile.ip);
    if let Some(location) = &widget.location {
        let place = [&location.city, &location.country].map(|p| p.as_deref().unwrap_or("?"));
        println!("  location: {}, {}", place[0], place[1]);
    }
    for risk in &view.risk {
        println!("  WARNING:  {}", describe_risk(risk));
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

fn ask(question: &str) -> Result<bool, String> {
    print!("{question} [y/N] ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
