//! The wire contract shared by the server and the phone SDK: encodings,
//! identifiers, message shapes and the HPKE suite. Nothing here knows about
//! HTTP frameworks or storage, so both sides speak exactly the same protocol.

pub mod b64;
pub mod hpke;
pub mod ids;
pub mod messages;
pub mod qr;

pub use ids::{AppKey, KeyId, PublicKey, SessionId};

/// Prefix of the HPKE `info` string; the session id follows it.
pub const PAYLOAD_INFO_PREFIX: &str = "keyri/v1/payload:";

/// HPKE `info` for the payload of one session, binding the ciphertext to it.
pub fn payload_info(session: &SessionId) -> Vec<u8> {
    let mut info = PAYLOAD_INFO_PREFIX.as_bytes().to_vec();
    info.extend_from_slice(session.as_str().as_bytes());
    info
}

/// Current time as Unix milliseconds, the protocol's time unit.
pub fn now_ms() -> i64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
