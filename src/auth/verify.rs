//! Verification of a signed login request, for the tenant's backend. Every
//! check of the contract, each failing with its own code; the session is
//! used up only when all of them pass.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::keys::UserKey;
use super::request::{LoginData, REQUEST_TYPE, SignedRequest};
use crate::protocol::{PublicKey, SessionId, b64};
use crate::relay::{ConfirmedLog, ConsumeError};

/// How far a request's timestamp may be from the server's clock.
pub const CLOCK_SKEW_MS: i64 = 120_000;
/// Longest `data` text accepted.
pub const MAX_DATA_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub username: String,
    pub key_id: String,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request is malformed: {0}")]
    Malformed(String),
    #[error("no such key is registered to this user")]
    UnknownKey,
    #[error("the key was revoked")]
    RevokedKey,
    #[error("{0}")]
    BadSignature(&'static str),
    #[error("the session is unknown, not confirmed, or confirmed too long ago")]
    SessionUnknown,
    #[error("this session was already verified")]
    Replayed,
    #[error("the request was signed for another origin")]
    OriginMismatch,
    #[error("the request's timestamp is too far from the server's clock")]
    Stale,
}

impl VerifyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "bad_request",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::BadSignature(_) => "bad_signature",
            Self::SessionUnknown => "session_unknown",
            Self::Replayed => "replayed",
            Self::OriginMismatch => "origin_mismatch",
            Self::Stale => "stale",
        }
    }
}

/// The request's shape, before any key is looked up.
pub fn check_shape(request: &SignedRequest) -> Result<(), VerifyError> {
    if request.kind != REQUEST_TYPE {
        return Err(VerifyError::Malformed(format!("type must be {REQUEST_TYPE:?}")));
    }
    if request.data.len() > MAX_DATA_BYTES {
        return Err(VerifyError::Malformed(format!("data is over {MAX_DATA_BYTES} bytes")));
    }
    Ok(())
}

/// Checks the key's state and the signature, then returns the signed data.
///
/// Signatures are 64 raw bytes r‖s. Both low-S and high-S forms verify:
/// WebCrypto and CryptoKit produce either, and replay protection rests on the
/// session being used once, not on the signature bytes being unique.
pub fn check_signature(request: &SignedRequest, key: &UserKey) -> Result<LoginData, VerifyError> {
    if key.revoked_at.is_some() {
        return Err(VerifyError::RevokedKey);
    }
    let bytes = b64::decode(&request.signature)
        .map_err(|_| VerifyError::BadSignature("signature is not base64url without padding"))?;
    if bytes.len() != 64 {
        return Err(VerifyError::BadSignature(
            "signature must be 64 raw bytes r||s (IEEE P1363), not DER",
        ));
    }
    let signature = Signature::from_slice(&bytes)
        .map_err(|_| VerifyError::BadSignature("signature r or s is out of range"))?;
    let point = PublicKey::from_b64(&key.public_key).ok_or(VerifyError::UnknownKey)?;
    VerifyingKey::from(*point.key())
        .verify(request.data.as_bytes(), &signature)
        .map_err(|_| VerifyError::BadSignature("the signature does not verify"))?;

    let data: LoginData = serde_json::from_str(&request.data)
        .map_err(|e| VerifyError::Malformed(format!("data is not the login JSON: {e}")))?;
    if data.username != key.username {
        return Err(VerifyError::UnknownKey);
    }
    Ok(data)
}

/// Checks the time, then uses up the session if its tenant and origin match.
pub fn check_session(
    data: &LoginData,
    tenant_id: &str,
    confirmed: &ConfirmedLog,
    now: i64,
) -> Result<SessionId, VerifyError> {
    if now.abs_diff(data.timestamp) > CLOCK_SKEW_MS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let session = SessionId::parse(&data.session_id).ok_or(VerifyError::SessionUnknown)?;
    confirmed.consume(&session, tenant_id, &data.origin, now).map_err(|e| match e {
        ConsumeError::Unknown => VerifyError::SessionUnknown,
        ConsumeError::OriginMismatch => VerifyError::OriginMismatch,
        ConsumeError::Replayed => VerifyError::Replayed,
    })?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Username;
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;

    fn registered(signing: &SigningKey, username: &str) -> UserKey {
        let point = crate::protocol::hpke::uncompressed(&signing.verifying_key().into());
        let key = PublicKey::from_bytes(&point).expect("point");
        UserKey::new(&Username::parse(username).expect("name"), &key, "test", 0)
    }

    fn request(signing: &SigningKey, username: &str) -> SignedRequest {
        let session = SessionId::generate();
        SignedRequest::sign(signing, username, &session, Some("https://a.example"), 0)
    }

    #[test]
    fn a_good_signature_yields_the_signed_data() {
        let signing = SigningKey::generate();
        let request = request(&signing, "alice");
        let data = check_signature(&request, &registered(&signing, "alice")).expect("valid");
        assert_eq!(data.username, "alice");
        assert_eq!(data.origin, "https://a.example");
        assert_eq!(b64::decode(&data.nonce).expect("nonce").len(), 16);
    }

    #[test]
    fn high_s_signatures_verify_too() {
        let signing = SigningKey::generate();
        let mut request = request(&signing, "alice");
        let sig =
            Signature::from_slice(&b64::decode(&request.signature).expect("b64")).expect("sig");
        let (r, s) = sig.split_scalars();
        let flipped = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).expect("sig");
        assert_ne!(flipped, sig);
        request.signature = b64::encode(flipped.to_bytes());
        assert!(check_signature(&request, &registered(&signing, "alice")).is_ok());
    }

    #[test]
    fn der_signatures_are_refused_with_a_message_naming_the_raw_form() {
        let signing = SigningKey::generate();
        let mut request = request(&signing, "alice");
        let sig =
            Signature::from_slice(&b64::decode(&request.signature).expect("b64")).expect("sig");
        request.signature = b64::encode(sig.to_der().as_bytes());
        let err = check_signature(&request, &registered(&signing, "alice")).expect_err("DER");
        assert_eq!(err.code(), "bad_signature");
        assert!(err.to_string().contains("r||s"), "{err}");
    }

    #[test]
    fn another_users_key_or_a_revoked_key_or_tampered_data_is_refused() {
        let signing = SigningKey::generate();
        let request = request(&signing, "alice");
        let bob = registered(&signing, "bob");
        assert_eq!(check_signature(&request, &bob), Err(VerifyError::UnknownKey));

        let mut revoked = registered(&signing, "alice");
        revoked.revoked_at = Some(1);
        assert_eq!(check_signature(&request, &revoked), Err(VerifyError::RevokedKey));

        let mut tampered = request.clone();
        tampered.data = tampered.data.replace("alice", "alicf");
        let err = check_signature(&tampered, &registered(&signing, "alice")).expect_err("bad");
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn timestamps_beyond_the_skew_are_stale_either_way() {
        let log = ConfirmedLog::default();
        let signing = SigningKey::generate();
        let data: LoginData = serde_json::from_str(&request(&signing, "a").data).expect("data");
        let now = CLOCK_SKEW_MS + 1;
        assert_eq!(check_session(&data, "tn", &log, now), Err(VerifyError::Stale));
        assert_eq!(check_session(&data, "tn", &log, -CLOCK_SKEW_MS - 1), Err(VerifyError::Stale));
        assert_eq!(
            check_session(&data, "tn", &log, CLOCK_SKEW_MS),
            Err(VerifyError::SessionUnknown)
        );
    }
}
