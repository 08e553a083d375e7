//! The first-run setup link: when no admin exists, the server prints a link
//! with a random token once to its standard output. Only the token's hash is
//! kept; it works once and expires.

use std::sync::Mutex;

use subtle::ConstantTimeEq;

use super::{random_token, token_hash};

struct Pending {
    hash: String,
    expires_at: i64,
}

#[derive(Default)]
pub struct SetupLink {
    pending: Mutex<Option<Pending>>,
}

impl SetupLink {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a new token valid until `expires_at`; returns it, to be shown once.
    pub fn issue(&self, expires_at: i64) -> String {
        let token = random_token("");
        *self.slot() = Some(Pending { hash: token_hash(&token), expires_at });
        token
    }

    /// Whether `token` is the pending one and still valid.
    pub fn is_valid(&self, token: &str, now: i64) -> bool {
        let slot = self.slot();
        slot.as_ref().is_some_and(|p| {
            let same: bool = p.hash.as_bytes().ct_eq(token_hash(token).as_bytes()).into();
            same && now < p.expires_at
        })
    }

    /// Uses the token up: true once for the pending, valid token.
    pub fn consume(&self, token: &str, now: i64) -> bool {
        let valid = self.is_valid(token, now);
        if valid {
            self.slot().take();
        }
        valid
    }

    /// Forgets the pending token, such as when an admin was made otherwise.
    pub fn cancel(&self) {
        self.slot().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_token_works_once_and_only_before_it_expires() {
        let link = SetupLink::default();
        let token = link.issue(1000);
        assert!(!link.is_valid("other", 0));
        assert!(!link.is_valid(&token, 1000));
        assert!(link.consume(&token, 999));
        assert!(!link.consume(&token, 999), "single use");
    }
}
