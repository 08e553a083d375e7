//! The phone side of a login, as a library: read the code, fetch what the
//! user must see, check the widget's key against the code, then seal and
//! confirm, or deny. The `keyri phone` simulator is built on it.

pub mod device;
pub mod qr_image;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::protocol::messages::{ConfirmRequest, ErrorBody, SessionView, StatusResponse};
use crate::protocol::qr::QrLogin;
use crate::protocol::{PublicKey, SessionId, b64, hpke, payload_info};

/// An HTTP client that trusts the platform's roots.
pub fn http_client() -> reqwest::Client {
    crate::tls::install_crypto_provider();
    reqwest::Client::new()
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server refused ({status}): {error}: {message}")]
    Server { status: u16, error: String, message: String },
    #[error("the key the server returned does not match the code: refusing to seal")]
    KeyMismatch,
    #[error("the server answered for another session: refusing to seal")]
    SessionMismatch,
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    #[error("cannot seal the payload: {0}")]
    Seal(#[from] hpke::HpkeError),
}

impl PhoneError {
    /// The protocol's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A session the phone has fetched and whose key matches the scanned code.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub session_id: SessionId,
    /// What the user must see before confirming.
    pub view: SessionView,
    public_key: PublicKey,
}

/// Talks to one keyri server as one tenant's app.
#[derive(Clone)]
pub struct PhoneClient {
    http: reqwest::Client,
    server: String,
    app_key: String,
}

impl PhoneClient {
    pub fn new(server: &str, app_key: &str) -> Self {
        Self::with_http(server, app_key, http_client())
    }

    /// A client over a `reqwest::Client` the app configured itself, for
    /// example with its own trusted roots or certificate pinning.
    pub fn with_http(server: &str, app_key: &str, http: reqwest::Client) -> Self {
        Self { http, server: server.trim_end_matches('/').to_owned(), app_key: app_key.to_owned() }
    }

    fn url(&self, session: &SessionId, action: &str) -> String {
        format!("{}/v1/sessions/{session}{action}", self.server)
    }

    /// Fetches the session and checks that its key is the one in the code.
    pub async fn fetch(&self, qr: &QrLogin) -> Result<PendingLogin, PhoneError> {
        let response = self
            .http
            .get(self.url(&qr.session_id, ""))
            .header("x-app-key", &self.app_key)
            .send()
            .await?;
        let view: SessionView = answer(response).await?;

        if view.session_id != qr.session_id.as_str() {
            return Err(PhoneError::SessionMismatch);
        }
        let public_key = PublicKey::from_b64(&view.public_key)
            .ok_or_else(|| PhoneError::BadResponse("publicKey is not a P-256 point".into()))?;
        // The code came from the widget itself; a relay that swapped the key
        // cannot make its fingerprint match.
        if public_key.fingerprint() != qr.fingerprint {
            return Err(PhoneError::KeyMismatch);
        }
        Ok(PendingLogin { session_id: qr.session_id.clone(), view, public_key })
    }

    /// Seals `payload` to the widget's key and confirms the login.
    pub async fn confirm(&self, login: &PendingLogin, payload: &[u8]) -> Result<(), PhoneError> {
        let info = payload_info(&login.session_id);
        let sealed = hpke::seal(login.public_key.as_bytes(), &info, payload)?;
        self.confirm_sealed(&login.session_id, &b64::encode(sealed)).await
    }

    /// Confirms with an already sealed payload (base64url).
    pub async fn confirm_sealed(
        &self,
        session: &SessionId,
        sealed: &str,
    ) -> Result<(), PhoneError> {
        let body = ConfirmRequest { sealed: sealed.to_owned() };
        let response = self
            .http
            .post(self.url(session, "/confirm"))
            .header("x-app-key", &self.app_key)
            .json(&body)
            .send()
            .await?;
        let status: StatusResponse = answer(response).await?;
        expect_status(&status, "confirmed")
    }

    /// Declines the login.
    pub async fn deny(&self, session: &SessionId) -> Result<(), PhoneError> {
        let response = self
            .http
            .post(self.url(session, "/deny"))
            .header("x-app-key", &self.app_key)
            .send()
            .await?;
        let status: StatusResponse = answer(response).await?;
        expect_status(&status, "denied")
    }
}

fn expect_status(status: &StatusResponse, wanted: &str) -> Result<(), PhoneError> {
    match status.status == wanted {
        true => Ok(()),
        false => Err(PhoneError::BadResponse(format!("status {:?}", status.status))),
    }
}

async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, PhoneError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status == StatusCode::OK {
        return serde_json::from_slice(&bytes).map_err(|e| PhoneError::BadResponse(e.to_string()));
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(PhoneError::Server {
            status: status.as_u16(),
            error: body.error,
            message: body.message,
        }),
        Err(_) => Err(PhoneError::BadResponse(format!("HTTP {status}"))),
    }
}
