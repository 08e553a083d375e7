//! Admin passwords: argon2id, hashed and verified on a blocking thread by the
//! caller. An unknown account is verified against a dummy hash so that it
//! costs the same time as a wrong password.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AdminError;

/// Shortest password accepted; length beats composition rules.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted, to bound hashing work.
pub const MAX_CHARS: usize = 1024;

/// A password as typed; redacted in `Debug`.
pub struct Password(String);

impl Password {
    /// Checks the length rules.
    pub fn new(text: String) -> Result<Self, AdminError> {
        match (MIN_CHARS..=MAX_CHARS).contains(&text.chars().count()) {
            true => Ok(Self(text)),
            false => Err(AdminError::WeakPassword),
        }
    }

    /// A password as presented at sign-in: not checked for length, so that
    /// the answer does not tell which rule an old password broke.
    pub fn presented(text: String) -> Self {
        Self(text.chars().take(MAX_CHARS).collect())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Hashes and verifies with fixed argon2id parameters.
pub struct Hasher {
    params: Params,
    /// Verified when the account does not exist, so timing reveals nothing;
    /// made on first use, so commands that only hash do not pay for it.
    dummy: std::sync::OnceLock<String>,
}

impl Hasher {
    /// Argon2id with `memory_kib` and `passes`, one lane.
    pub fn new(memory_kib: u32, passes: u32) -> Result<Self, AdminError> {
        let params = Params::new(memory_kib, passes, 1, None)
            .map_err(|e| AdminError::Hashing(e.to_string()))?;
        Ok(Self { params, dummy: std::sync::OnceLock::new() })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of a password with a fresh random salt. Slow: call it
    /// on a blocking thread.
    pub fn hash(&self, password: &Password) -> Result<String, AdminError> {
        let hash = self.argon2().hash_password(password.bytes());
        hash.map(|h| h.to_string()).map_err(|e| AdminError::Hashing(e.to_string()))
    }

    /// Makes the dummy hash now, so the first unknown name at sign-in does
    /// not take longer than a later one.
    pub fn warm(&self) {
        let _ = self.verify(&Password::presented(String::new()), None);
    }

    /// Whether `password` matches `stored`; with no stored hash, does the same
    /// work against the dummy and answers false. Slow: call it on a blocking
    /// thread.
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        let dummy = || {
            let filler = Password::presented("keyri dummy password".into());
            self.hash(&filler).unwrap_or_default()
        };
        let target = stored.unwrap_or_else(|| self.dummy.get_or_init(dummy));
        let matches = self.argon2().verify_password(password.bytes(), target).is_ok();
        matches && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let hasher = Hasher::new(1024, 1).expect("params");
        let password = Password::new("correct horse battery".into()).expect("long enough");
        let one = hasher.hash(&password).expect("hashes");
        let two = hasher.hash(&password).expect("hashes");
        assert!(one.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{one}");
        assert_ne!(one, two, "each hash has its own salt");
        assert!(hasher.verify(&password, Some(&one)));
        assert!(!hasher.verify(&Password::presented("wrong".into()), Some(&one)));
        assert!(!hasher.verify(&password, None));
    }

    #[test]
    fn short_passwords_are_refused_and_never_printed() {
        assert!(Password::new("short".into()).is_err());
        let password = Password::presented("hunter2hunter2".into());
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
