//! All live sessions, by id. A finished session stays as a tombstone until its
//! expiry so that late calls get `already_finished` or `widget_gone` rather
//! than `not_found`; the sweeper then removes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::session::{Outcome, Session};
use crate::protocol::{SessionId, now_ms};

/// Tenant closures that may queue before a slow widget task misses some; a
/// task that lags closes its socket to be safe.
const CLOSURE_QUEUE: usize = 64;

pub struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Ids of tenants whose widget sockets must close now (tenant disabled).
    closures: broadcast::Sender<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Self { sessions: Mutex::default(), closures: broadcast::channel(CLOSURE_QUEUE).0 }
    }
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

    /// Unfinished, unexpired sessions of one tenant.
    pub fn open_count_for(&self, tenant_id: &str) -> usize {
        let now = now_ms();
        let map = self.map();
        let open = map.values().filter(|s| s.outcome().is_none() && !s.is_expired(now));
        open.filter(|s| s.tenant_id == tenant_id).count()
    }

    /// Ends every session of a tenant and tells its widget sockets to close.
    pub fn close_tenant(&self, tenant_id: &str) {
        for session in self.map().values().filter(|s| s.tenant_id == tenant_id) {
            let _ = session.finish(Outcome::WidgetGone);
        }
        // No receiver just means no widget socket is open.
        let _ = self.closures.send(tenant_id.to_owned());
    }

    /// Tenant closures, for a widget socket's task to watch.
    pub fn closures(&self) -> broadcast::Receiver<String> {
        self.closures.subscribe()
    }
}
