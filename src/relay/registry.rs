//! All live sessions, by id. A finished session stays as a tombstone until its
//! expiry so that late calls get `already_finished` or `widget_gone` rather
//! than `not_found`; the sweeper then removes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::session::{Outcome, Session};
use crate::protocol::{SessionId, now_ms};

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
}

/// Held by the widget socket's task; when it is dropped the widget is gone
/// and the session ends, if nothing else ended it first.
pub struct WidgetGuard {
    session: Arc<Session>,
}

impl Drop for WidgetGuard {
    fn drop(&mut self) {
        // Already finished is the normal case after a payload or expiry.
        let _ = self.session.finish(Outcome::WidgetGone);
    }
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new session for the widget that holds the returned guard.
    pub fn open(&self, session: Session) -> (Arc<Session>, WidgetGuard) {
        let session = Arc::new(session);
        self.map().insert(session.id.clone(), session.clone());
        (session.clone(), WidgetGuard { session })
    }

    /// A session that has not passed its expiry.
    pub fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        let session = self.map().get(id).cloned()?;
        (!session.is_expired(now_ms())).then_some(session)
    }

    /// Removes every session past its expiry; returns how many are left.
    pub fn sweep(&self) -> usize {
        let now = now_ms();
        let mut map = self.map();
        map.retain(|_, s| !s.is_expired(now));
        map.len()
    }

    /// Sessions not yet finished.
    pub fn open_count(&self) -> usize {
        self.map().values().filter(|s| s.outcome().is_none()).count()
    }
}
