//! Sessions recently confirmed, kept for the server-side verification of the
//! signed request that went through them. Each may be verified once, within
//! `VERIFY_WINDOW_MS` of its confirmation. Kept in memory: after a restart
//! verification fails closed (`session_unknown`), never open.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::protocol::SessionId;

/// How long after confirmation a session can be verified.
pub const VERIFY_WINDOW_MS: i64 = 5 * 60 * 1000;

struct Entry {
    tenant_id: String,
    origin: Option<String>,
    confirmed_at: i64,
    verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeError {
    /// Unknown, of another tenant, never confirmed, or confirmed too long ago.
    Unknown,
    OriginMismatch,
    Replayed,
}

#[derive(Default)]
pub struct ConfirmedLog {
    entries: Mutex<HashMap<SessionId, Entry>>,
}

impl ConfirmedLog {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, id: &SessionId, tenant_id: &str, origin: Option<&str>, now: i64) {
        let entry = Entry {
            tenant_id: tenant_id.to_owned(),
            origin: origin.map(str::to_owned),
            confirmed_at: now,
            verified: false,
        };
        self.map().insert(id.clone(), entry);
    }

    /// Forgets a session, for one whose payload could not be delivered.
    pub fn forget(&self, id: &SessionId) {
        self.map().remove(id);
    }

    /// Marks the session verified if it may be; `origin` is what the signed
    /// request claims ("" for a native client). Atomic: of two concurrent
    /// calls for one session, one succeeds.
    pub fn consume(
        &self,
        id: &SessionId,
        tenant_id: &str,
        origin: &str,
        now: i64,
    ) -> Result<(), ConsumeError> {
        let mut map = self.map();
        let entry = map
            .get_mut(id)
            .filter(|e| e.tenant_id == tenant_id && now - e.confirmed_at <= VERIFY_WINDOW_MS)
            .ok_or(ConsumeError::Unknown)?;
        if entry.origin.as_deref().unwrap_or("") != origin {
            return Err(ConsumeError::OriginMismatch);
        }
        if entry.verified {
            return Err(ConsumeError::Replayed);
        }
        entry.verified = true;
        Ok(())
    }

    /// Forgets sessions past the verification window.
    pub fn sweep(&self, now: i64) {
        self.map().retain(|_, e| now - e.confirmed_at <= VERIFY_WINDOW_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_verifies_once_for_its_tenant_and_origin_within_the_window() {
        let log = ConfirmedLog::default();
        let id = SessionId::generate();
        log.record(&id, "tn_a", Some("https://a.example"), 1_000);

        assert_eq!(
            log.consume(&id, "tn_b", "https://a.example", 1_000),
            Err(ConsumeError::Unknown)
        );
        let other = "https://b.example";
        assert_eq!(log.consume(&id, "tn_a", other, 1_000), Err(ConsumeError::OriginMismatch));
        assert_eq!(log.consume(&id, "tn_a", "https://a.example", 2_000), Ok(()));
        let again = log.consume(&id, "tn_a", "https://a.example", 2_000);
        assert_eq!(again, Err(ConsumeError::Replayed));
    }

    #[test]
    fn sessions_expire_from_the_window() {
        let log = ConfirmedLog::default();
        let id = SessionId::generate();
        log.record(&id, "tn_a", None, 0);
        let late = VERIFY_WINDOW_MS + 1;
        assert_eq!(log.consume(&id, "tn_a", "", late), Err(ConsumeError::Unknown));
        log.sweep(late);
        assert!(log.map().is_empty());
    }
}
