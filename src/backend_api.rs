//! A Rust client for the calls a tenant's backend makes with its API secret:
//! registering and revoking device keys, and verifying signed login requests.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// What a backend call answered: the HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error` code of a refusal.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.body.clone())
    }
}

#[derive(Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    server: String,
    secret: String,
}

/// Escapes a username for use as one path segment.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

impl BackendClient {
    pub fn new(server: &str, api_secret: &str) -> Self {
        Self {
            http: crate::phone::http_client(),
            server: server.trim_end_matches('/').to_owned(),
            secret: api_secret.to_owned(),
        }
    }

    fn keys_url(&self, username: &str) -> String {
        format!("{}/v1/users/{}/keys", self.server, segment(username))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let response = request.bearer_auth(&self.secret).send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    pub async fn register_key(
        &self,
        username: &str,
        public_key: &str,
        label: &str,
    ) -> Result<Answer, reqwest::Error> {
        let body = json!({ "publicKey": public_key, "label": label });
        self.send(self.http.post(self.keys_url(username)).json(&body)).await
    }

    pub async fn list_keys(&self, username: &str) -> Result<Answer, reqwest::Error> {
        self.send(self.http.get(self.keys_url(username))).await
    }

    pub async fn revoke_key(&self, username: &str, key_id: &str) -> Result<Answer, reqwest::Error> {
        let url = format!("{}/{}", self.keys_url(username), segment(key_id));
        self.send(self.http.delete(url)).await
    }

    /// Verifies a signed login request, given as the JSON text the widget
    /// handed to the page.
    pub async fn verify(&self, request_json: &str) -> Result<Answer, reqwest::Error> {
        let request = self
            .http
            .post(format!("{}/v1/verify", self.server))
            .header("content-type", "application/json")
            .body(request_json.to_owned());
        self.send(request).await
    }
}
