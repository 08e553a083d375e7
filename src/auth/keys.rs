//! Device keys: one P-256 public key per user and device, registered by the
//! tenant's backend, revocable one by one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::{KeyId, PublicKey};

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 256;
/// Longest device label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Most keys a user may hold, revoked ones included, so one user cannot
/// fill the database.
pub const MAX_KEYS_PER_USER: usize = 100;

/// A username as the tenant's backend gave it: case is kept, control
/// characters are refused.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Option<Self> {
        let count = text.chars().count();
        let ok = (1..=MAX_USERNAME_CHARS).contains(&count) && !text.chars().any(char::is_control);
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a device label: at most `MAX_LABEL_CHARS`, no control characters.
pub fn valid_label(label: &str) -> bool {
    label.chars().count() <= MAX_LABEL_CHARS && !label.chars().any(char::is_control)
}

/// A registered device key as stored and as listed to the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserKey {
    pub key_id: String,
    pub username: String,
    pub public_key: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl UserKey {
    pub fn new(username: &Username, key: &PublicKey, label: &str, now: i64) -> Self {
        Self {
            key_id: key.fingerprint().to_string(),
            username: username.to_string(),
            public_key: key.to_b64(),
            label: label.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        }
    }

    pub fn id(&self) -> Option<KeyId> {
        KeyId::parse(&self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_case_and_refuse_control_characters_and_extremes() {
        assert_eq!(
            Username::parse("Alice@Example.com").expect("valid").as_str(),
            "Alice@Example.com"
        );
        assert!(Username::parse("名前").is_some());
        assert!(Username::parse("").is_none());
        assert!(Username::parse("a\nb").is_none());
        assert!(Username::parse("a\u{0}b").is_none());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS)).is_some());
        assert!(Username::parse(&"x".repeat(MAX_USERNAME_CHARS + 1)).is_none());
    }

    #[test]
    fn labels_are_short_plain_text() {
        assert!(valid_label("Pixel 9"));
        assert!(valid_label(""));
        assert!(!valid_label("tab\there"));
        assert!(!valid_label(&"x".repeat(MAX_LABEL_CHARS + 1)));
    }
}
