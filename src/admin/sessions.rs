//! Dashboard sign-ins, kept server-side in memory. The cookie carries a
//! random 256-bit id; only its SHA-256 is kept, so a memory dump cannot be
//! replayed. A sign-in ends when idle too long, on sign-out, or when the
//! server restarts.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{csrf, random_token, token_hash};

/// Most concurrent sign-ins kept; the oldest idle ones go first beyond this.
const MAX_SESSIONS: usize = 10_000;

/// What a valid cookie stands for.
#[derive(Clone)]
pub struct SignedIn {
    pub admin: String,
    pub csrf: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("admin", &self.admin).field("csrf", &"<redacted>").finish()
    }
}

struct Entry {
    signed_in: SignedIn,
    last_seen: i64,
}

pub struct Sessions {
    by_hash: Mutex<HashMap<String, Entry>>,
    idle_ms: i64,
}

impl Sessions {
    pub fn new(idle_ms: i64) -> Self {
        Self { by_hash: Mutex::default(), idle_ms }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a sign-in; returns the cookie value.
    pub fn create(&self, admin: &str, now: i64) -> String {
        let id = random_token("");
        let signed_in = SignedIn { admin: admin.to_owned(), csrf: csrf::generate() };
        let mut map = self.map();
        map.retain(|_, e| now - e.last_seen < self.idle_ms);
        if map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(token_hash(&id), Entry { signed_in, last_seen: now });
        id
    }

    /// The sign-in behind a cookie, if it has not been idle too long; each
    /// use keeps it alive.
    pub fn get(&self, cookie: &str, now: i64) -> Option<SignedIn> {
        self.lookup(cookie, now, true)
    }

    /// Like `get`, but does not count as activity: for a page's background
    /// polling, which must not keep an unattended sign-in alive.
    pub fn peek(&self, cookie: &str, now: i64) -> Option<SignedIn> {
        self.lookup(cookie, now, false)
    }

    fn lookup(&self, cookie: &str, now: i64, touch: bool) -> Option<SignedIn> {
        let hash = token_hash(cookie);
        let mut map = self.map();
        let entry = map.get_mut(&hash)?;
        if now - entry.last_seen >= self.idle_ms {
            map.remove(&hash);
            return None;
        }
        if touch {
            entry.last_seen = now;
        }
        Some(entry.signed_in.clone())
    }

    /// Ends one sign-in.
    pub fn remove(&self, cookie: &str) {
        self.map().remove(&token_hash(cookie));
    }

    /// Ends every sign-in of an admin, such as after a password reset.
    pub fn remove_admin(&self, admin: &str) {
        self.map().retain(|_, e| e.signed_in.admin != admin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_lasts_while_used_and_ends_when_idle_or_removed() {
        let sessions = Sessions::new(1000);
        let cookie = sessions.create("alice", 0);
        assert_eq!(sessions.get(&cookie, 900).map(|s| s.admin).as_deref(), Some("alice"));
        assert!(sessions.get(&cookie, 1800).is_some(), "use at 900 kept it alive");
        assert!(sessions.get(&cookie, 2800).is_none(), "idle for 1000 ms");

        let cookie = sessions.create("alice", 0);
        assert!(sessions.peek(&cookie, 900).is_some());
        assert!(sessions.peek(&cookie, 1000).is_none(), "peeking is not activity");

        let cookie = sessions.create("alice", 0);
        sessions.remove(&cookie);
        assert!(sessions.get(&cookie, 1).is_none());
        assert!(sessions.get("made-up", 1).is_none());

        let cookie = sessions.create("bob", 0);
        sessions.remove_admin("bob");
        assert!(sessions.get(&cookie, 1).is_none());
    }
}
