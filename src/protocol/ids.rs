//! Identifiers and keys as validated newtypes: a value of these types has
//! already been checked, so code that receives one need not check again.

use std::fmt;

use sha2::{Digest, Sha256};

use super::b64;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // A machine without a working OS RNG cannot run a security product at all.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Whether `text` is exactly `len` base64url characters that decode cleanly.
fn is_b64url_of_len(text: &str, len: usize) -> bool {
    text.len() == len && b64::decode(text).is_ok()
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh identifier from 16 random bytes.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, b64::encode(random_bytes::<16>())))
            }

            /// Parses an identifier, refusing anything not of the exact form.
            pub fn parse(text: &str) -> Option<Self> {
                let rest = text.strip_prefix($prefix)?;
                is_b64url_of_len(rest, 22).then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

token_id!(
    /// A login session: 16 random bytes, 22 base64url characters.
    SessionId,
    ""
);
token_id!(
    /// A tenant's public identifier, safe to embed in pages and apps.
    AppKey,
    "app_"
);
token_id!(
    /// A tenant's internal identifier.
    TenantId,
    "tn_"
);

/// Fingerprint of a public key: the first 16 bytes of its SHA-256.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(String);

impl KeyId {
    pub fn of(point: &[u8]) -> Self {
        let digest = Sha256::digest(point);
        Self(b64::encode(&digest[..16]))
    }

    pub fn parse(text: &str) -> Option<Self> {
        is_b64url_of_len(text, 22).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid P-256 public key, kept as its 65-byte uncompressed point.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
    key: p256::PublicKey,
}

impl PublicKey {
    /// Accepts only the uncompressed form of a point on the curve.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 65 || bytes[0] != 0x04 {
            return None;
        }
        let key = p256::PublicKey::from_sec1_bytes(bytes).ok()?;
        Some(Self { point: bytes.to_vec(), key })
    }

    pub fn from_b64(text: &str) -> Option<Self> {
        Self::from_bytes(&b64::decode(text).ok()?)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.point
    }

    pub fn to_b64(&self) -> String {
        b64::encode(&self.point)
    }

    pub fn fingerprint(&self) -> KeyId {
        KeyId::of(&self.point)
    }

    pub fn key(&self) -> &p256::PublicKey {
        &self.key
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_have_the_protocol_form() {
        let session = SessionId::generate();
        assert_eq!(session.as_str().len(), 22);
        assert_eq!(SessionId::parse(session.as_str()), Some(session));

        let app = AppKey::generate();
        assert!(app.as_str().starts_with("app_"));
        assert_eq!(app.as_str().len(), 26);
        assert_eq!(AppKey::parse(app.as_str()), Some(app));
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(SessionId::parse("short"), None);
        assert_eq!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAA+"), None);
        assert_eq!(SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(AppKey::parse("AAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(AppKey::parse("app_AAAAAAAAAAAAAAAAAAAA!A"), None);
    }

    #[test]
    fn public_keys_must_be_uncompressed_points_on_the_curve() {
        let secret = <p256::SecretKey as p256::elliptic_curve::Generate>::generate();
        let point = super::super::hpke::uncompressed(&secret.public_key());
        let key = PublicKey::from_bytes(&point).expect("valid point");
        assert_eq!(key.fingerprint().as_str().len(), 22);

        let mut off_curve = point.clone();
        off_curve[64] ^= 1;
        assert!(PublicKey::from_bytes(&off_curve).is_none());
        assert!(PublicKey::from_bytes(&point[..33]).is_none());
        assert!(PublicKey::from_b64("not base64 !").is_none());
    }
}
