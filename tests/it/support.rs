//! `TestApp`: a server on port 0 with its own data dir, and helpers that play
//! the widget and the phone over real sockets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use keyri::config::Config;
use keyri::phone::PhoneClient;
use keyri::protocol::hpke;
use keyri::protocol::messages::WidgetOut;
use keyri::protocol::qr::QrLogin;
use keyri::protocol::{KeyId, SessionId, b64, payload_info};
use keyri::server::{self, Running};
use keyri::tenants::NewTenant;
use p256::SecretKey;
use p256::elliptic_curve::Generate;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen at once.
pub const PROMPT: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub running: Running,
    pub url: String,
    pub app_key: String,
    /// The demo tenant's API secret.
    pub api_secret: String,
    pub config: Config,
    pub dir: tempfile::TempDir,
    /// The first-run admin setup link the server printed.
    pub setup_link: Option<String>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh data dir after `adjust` has changed its config.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        config.server.shutdown_timeout_secs = 1;
        // Sign-in tests hash many passwords; OWASP-strength hashing is tested
        // on its own in the unit tests.
        config.admin.allow_weak_password_hashing_for_tests = true;
        config.admin.password_hash_memory_kib = 1024;
        config.admin.password_hash_passes = 1;
        adjust(&mut config);
        Self::start_in(config, dir).await
    }

    pub async fn start_in(config: Config, dir: tempfile::TempDir) -> Self {
        keyri::tls::install_crypto_provider();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let running = server::start(config.clone(), listener).await.expect("server starts");
        let url = running.public_url.clone();
        let app_key = running.demo_app_key.clone().expect("demo tenant");
        let api_secret = running.demo_secret.as_ref().map(|s| s.expose().to_owned());
        let api_secret = api_secret.unwrap_or_default();
        let setup_link = running.setup_link.clone();
        Self { running, url, app_key, api_secret, config, dir, setup_link }
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self.dir
    }

    pub fn phone(&self) -> PhoneClient {
        PhoneClient::new(&self.url, &self.app_key)
    }

    pub fn phone_for(&self, app_key: &str) -> PhoneClient {
        PhoneClient::new(&self.url, app_key)
    }

    /// Creates another tenant and returns its app key.
    pub fn add_tenant(&self, name: &str, origins: &[&str], allow_native: bool) -> String {
        self.add_tenant_with_secret(name, origins, allow_native).0
    }

    /// Creates another tenant and returns its app key and API secret.
    pub fn add_tenant_with_secret(
        &self,
        name: &str,
        origins: &[&str],
        allow_native: bool,
    ) -> (String, String) {
        let new = NewTenant {
            name: name.into(),
            origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_native,
            session_lifetime_secs: 60,
            max_sealed_bytes: 32 * 1024,
            ..NewTenant::default()
        };
        let (tenant, secret) = self.running.directory.create(new).expect("tenant created");
        (tenant.app_key, secret.expose().to_owned())
    }

    pub fn ws_url(&self, app_key: &str) -> String {
        format!("{}/v1/widget/ws?appKey={app_key}", self.url.replacen("http", "ws", 1))
    }

    /// Opens a widget socket with the given Origin header (or none).
    pub async fn connect(
        &self,
        app_key: &str,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        let mut request = self.ws_url(app_key).into_client_request().expect("request");
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().expect("header"));
        }
        request.headers_mut().insert(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36".parse().expect("ua"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(ws)
    }

    /// A demo-tenant widget that has said hello and holds its session.
    pub async fn widget(&self) -> Widget {
        let ws = self.connect(&self.app_key, Some(&self.url)).await.expect("socket opens");
        Widget::hello(ws).await
    }

    pub fn backend(&self) -> keyri::backend_api::BackendClient {
        keyri::backend_api::BackendClient::new(&self.url, &self.api_secret)
    }

    pub fn http(&self) -> reqwest::Client {
        keyri::phone::http_client()
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A child process killed when dropped, so a failing test leaves no server
/// running behind it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A widget as the browser runs it: a key pair and a socket.
pub struct Widget {
    pub ws: Ws,
    pub secret: SecretKey,
    pub session_id: SessionId,
    pub expires_at: i64,
    pub scan_url: String,
}

impl Widget {
    pub async fn hello(mut ws: Ws) -> Self {
        let secret = SecretKey::generate();
        let public = hpke::uncompressed(&secret.public_key());
        let hello = format!(r#"{{"type":"hello","publicKey":"{}"}}"#, b64::encode(&public));
        ws.send(Message::text(hello)).await.expect("hello sent");
        let mut widget = Self {
            ws,
            secret,
            session_id: SessionId::generate(),
            expires_at: 0,
            scan_url: String::new(),
        };
        match widget.next().await {
            WidgetOut::Session { session_id, expires_at, scan_url } => {
                widget.session_id = SessionId::parse(&session_id).expect("valid session id");
                widget.expires_at = expires_at;
                widget.scan_url = scan_url;
            }
            other => panic!("expected a session, got {other:?}"),
        }
        widget
    }

    pub fn fingerprint(&self) -> KeyId {
        KeyId::of(&hpke::uncompressed(&self.secret.public_key()))
    }

    /// The QR text this widget would draw.
    pub fn qr(&self) -> QrLogin {
        QrLogin {
            scan_url: self.scan_url.clone(),
            session_id: self.session_id.clone(),
            fingerprint: self.fingerprint(),
        }
    }

    /// The next protocol frame, skipping pings.
    pub async fn next(&mut self) -> WidgetOut {
        match next_frame(&mut self.ws).await {
            Frame::Json(out) => out,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    pub async fn expect_closed(&mut self) {
        match next_frame(&mut self.ws).await {
            Frame::Closed => {}
            other => panic!("expected the socket to close, got {other:?}"),
        }
    }

    pub fn open(&self, sealed: &str) -> Vec<u8> {
        let sealed = b64::decode(sealed).expect("base64url");
        hpke::open(&self.secret, &payload_info(&self.session_id), &sealed).expect("opens")
    }
}

#[derive(Debug)]
pub enum Frame {
    Json(WidgetOut),
    Closed,
}

/// Reads the next text frame or the end of the socket, within `PROMPT`.
pub async fn next_frame(ws: &mut Ws) -> Frame {
    loop {
        let message = tokio::time::timeout(PROMPT, ws.next()).await.expect("in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Frame::Json(serde_json::from_str(&text).expect("protocol frame"));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Frame::Closed,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Seals `payload` for a widget the way a phone does.
pub fn seal_for(widget: &Widget, payload: &[u8]) -> String {
    let public = hpke::uncompressed(&widget.secret.public_key());
    let sealed = hpke::seal(&public, &payload_info(&widget.session_id), payload).expect("seals");
    b64::encode(sealed)
}

/// Holds the database's write lock for `ms`, as a slow commit would, by
/// writing one audit record slowly. The flag turns true just before the
/// record is handed to the database.
pub fn hold_database(
    app: &TestApp,
    ms: u64,
) -> (tokio::task::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let released = std::sync::Arc::new(AtomicBool::new(false));
    let (directory, flag) = (app.running.directory.clone(), released.clone());
    let task = tokio::task::spawn_blocking(move || {
        directory
            .with_store(|s| {
                s.append_audit(1, |seq, prev| {
                    std::thread::sleep(Duration::from_millis(ms));
                    flag.store(true, Ordering::SeqCst);
                    serde_json::json!({"seq": seq, "at": keyri::protocol::now_ms(),
                        "tenant": null, "actor": {"kind": "system"}, "action": "test.hold",
                        "outcome": "success", "details": {}, "prev": b64::encode(prev)})
                    .to_string()
                    .into_bytes()
                })
            })
            .expect("held");
    });
    (task, released)
}
