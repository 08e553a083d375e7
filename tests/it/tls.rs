//! Built-in TLS: https with the configured certificate, and a renewed
//! certificate taken up on SIGHUP without a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::support::TestApp;

/// A certificate authority and a `localhost` certificate it signed.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn new_pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &ca).expect("cert");
    Pki { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

fn write(dir: &Path, pki: &Pki) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pki.cert_pem).expect("cert written");
    std::fs::write(&key, &pki.key_pem).expect("key written");
    (cert.display().to_string(), key.display().to_string())
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    keyri::tls::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

async fn status(client: &reqwest::Client, url: &str) -> Result<u16, reqwest::Error> {
    Ok(client.get(url).send().await?.status().as_u16())
}

#[tokio::test]
async fn the_server_speaks_https_with_its_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = new_pki();
    let (cert, key) = write(dir.path(), &pki);
    let app = TestApp::start_with(|c| {
        c.tls.cert_file = cert;
        c.tls.key_file = key;
    })
    .await;
    assert!(app.url.starts_with("https://127.0.0.1:"), "{}", app.url);
    let url = app.url.replace("127.0.0.1", "localhost");

    let client = client_trusting(&pki.ca_pem);
    assert_eq!(status(&client, &format!("{url}/healthz")).await.expect("https"), 200);
    let phone = keyri::phone::PhoneClient::with_http(&url, &app.app_key, client);
    let unknown = keyri::protocol::SessionId::generate();
    let err = phone.deny(&unknown).await.expect_err("no such session");
    assert_eq!(err.code(), Some("not_found"), "{err}");

    let stranger = client_trusting(&new_pki().ca_pem);
    assert!(status(&stranger, &format!("{url}/healthz")).await.is_err());
    let plain = format!("{}/healthz", app.url.replacen("https", "http", 1));
    assert!(keyri::phone::http_client().get(plain).send().await.is_err(), "no plain http");
    app.stop().await;
}

#[test]
fn an_unreadable_certificate_stops_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("written");
    std::fs::write(dir.path().join("key.pem"), new_pki().key_pem).expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .arg("serve")
        .env("KEYRI_STORAGE_DATA_DIR", dir.path().join("data"))
        .env("KEYRI_SERVER_BIND", "127.0.0.1:0")
        .env("KEYRI_TLS_CERT_FILE", dir.path().join("cert.pem"))
        .env("KEYRI_TLS_KEY_FILE", dir.path().join("key.pem"))
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read the certificate"), "{stderr}");
}

#[tokio::test]
async fn sighup_takes_up_a_renewed_certificate_and_keeps_the_old_one_if_the_new_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (new_pki(), new_pki());
    let (cert, key) = write(dir.path(), &first);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .arg("serve")
        .env("KEYRI_STORAGE_DATA_DIR", dir.path().join("data"))
        .env("KEYRI_SERVER_BIND", format!("127.0.0.1:{port}"))
        .env("KEYRI_TLS_CERT_FILE", &cert)
        .env("KEYRI_TLS_KEY_FILE", &key)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut child = crate::support::KillOnDrop(child);
    let mut out = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("line");
    assert!(line.contains("https://127.0.0.1"), "{line}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));

    let url = format!("https://localhost:{port}/healthz");
    let (trusts_first, trusts_second) =
        (client_trusting(&first.ca_pem), client_trusting(&second.ca_pem));
    assert_eq!(status(&trusts_first, &url).await.expect("first certificate"), 200);
    assert!(status(&trusts_second, &url).await.is_err());

    let hangup = |pid: u32| {
        let sent = Command::new("kill").args(["-HUP", &pid.to_string()]).status();
        assert!(sent.expect("kill runs").success());
    };
    std::fs::write(&cert, "garbage").expect("broken file");
    hangup(child.0.id());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&trusts_first, &url).await.expect("kept the old one"), 200);

    write(dir.path(), &second);
    hangup(child.0.id());
    let mut switched = false;
    for _ in 0..50 {
        if status(&trusts_second, &url).await.is_ok() {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the renewed certificate was not taken up");
    // A fresh client, so no resumed TLS session skips the certificate check.
    let fresh = client_trusting(&first.ca_pem);
    assert!(status(&fresh, &url).await.is_err(), "the old certificate is still served");

    drop(child);
}
