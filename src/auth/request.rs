//! The signed login request a phone seals as its payload:
//! `{"type":"keyri.auth.v1","keyId","data","signature"}`, where `data` is the
//! JSON text that was signed and `signature` is ECDSA P-256 / SHA-256 over
//! its UTF-8 bytes, 64 raw bytes r‖s.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde::{Deserialize, Serialize};

use crate::protocol::ids::random_bytes;
use crate::protocol::{KeyId, SessionId, b64};

/// The request's `type`.
pub const REQUEST_TYPE: &str = "keyri.auth.v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub key_id: String,
    /// The signed JSON text, kept as text so its exact bytes are verified.
    pub data: String,
    pub signature: String,
}

/// What the phone signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginData {
    pub username: String,
    pub session_id: String,
    /// The widget's origin, or empty for a native client without one.
    pub origin: String,
    pub timestamp: i64,
    pub nonce: String,
}

impl SignedRequest {
    /// Signs a login for `session_id` from `origin` with a device key.
    pub fn sign(
        key: &SigningKey,
        username: &str,
        session_id: &SessionId,
        origin: Option<&str>,
        timestamp: i64,
    ) -> Self {
        let data = LoginData {
            username: username.to_owned(),
            session_id: session_id.to_string(),
            origin: origin.unwrap_or("").to_owned(),
            timestamp,
            nonce: b64::encode(random_bytes::<16>()),
        };
        let data = serde_json::to_string(&data).unwrap_or_default();
        let signature: Signature = key.sign(data.as_bytes());
        let point = crate::protocol::hpke::uncompressed(&key.verifying_key().into());
        Self {
            kind: REQUEST_TYPE.to_owned(),
            key_id: KeyId::of(&point).to_string(),
            data,
            signature: b64::encode(signature.to_bytes()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
