//! All live sessions, by id. A finished session stays as a tombstone until its
//! expiry so that late calls get `already_finished` or `widget_gone` rather
//! than `not_found`; the sweeper then removes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[cfg(test)]
use super::session::Event;
use super::session::{Closing, Outcome, Session};
use crate::protocol::{SessionId, now_ms};

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Sessions with a live widget, per tenant.
    live: Mutex<HashMap<String, usize>>,
    /// Sessions ended, by outcome, in the order of `Outcome::ALL`.
    ended: [AtomicU64; 4],
    /// Set once the server stops; read and written under the sessions lock,
    /// so a session opens either before (and is told) or not at all.
    stopping: AtomicBool,
}

/// Held by the widget socket's task; when it is dropped the widget is gone
/// and the session ends, if nothing else ended it first.
pub struct WidgetGuard {
    session: Arc<Session>,
    registry: Arc<Registry>,
}

impl Drop for WidgetGuard {
    fn drop(&mut self) {
        self.session.close_mailbox();
        // A task stopped in the middle of writing a payload did not write it.
        self.session.delivered(false);
        // Already finished is the normal case after a payload or expiry.
        let _ = self.session.finish(Outcome::WidgetGone);
        if let Some(outcome) = self.session.outcome() {
            let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
            self.registry.ended[index].fetch_add(1, Ordering::Relaxed);
        }
        let mut live = self.registry.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = live.get_mut(&self.session.tenant_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                live.remove(&self.session.tenant_id);
            }
        }
    }
}

/// Why a session could not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotOpened {
    /// The tenant already has as many waiting sessions as it may.
    TooManySessions,
    /// The server is stopping.
    Stopping,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new session for the widget that holds the returned guard,
    /// unless its tenant already has `per_tenant` sessions with live widgets.
    pub fn open(
        self: &Arc<Self>,
        session: Session,
        per_tenant: usize,
    ) -> Result<(Arc<Session>, WidgetGuard), NotOpened> {
        let mut map = self.map();
        if self.stopping.load(Ordering::Relaxed) {
            return Err(NotOpened::Stopping);
        }
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            let count = live.entry(session.tenant_id.clone()).or_insert(0);
            if *count >= per_tenant {
                return Err(NotOpened::TooManySessions);
            }
            *count += 1;
        }
        let session = Arc::new(session);
        map.insert(session.id.clone(), session.clone());
        Ok((session.clone(), WidgetGuard { session, registry: self.clone() }))
    }

    /// Sessions ended so far, by outcome.
    pub fn ended(&self) -> Vec<(Outcome, u64)> {
        Outcome::ALL.iter().zip(&self.ended).map(|(o, n)| (*o, n.load(Ordering::Relaxed))).collect()
    }

    /// Sessions whose widget is still connected, in all.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// Sessions of one tenant whose widget is still connected.
    pub fn live_for(&self, tenant_id: &str) -> usize {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(tenant_id).copied().unwrap_or(0)
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
        // A confirm on its way stays until it ends, even past the expiry.
        map.retain(|_, s| !s.is_expired(now) || s.is_in_flight());
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
    /// A widget that opens a session after this must check its tenant again.
    pub fn close_tenant(&self, tenant_id: &str) {
        for session in self.map().values().filter(|s| s.tenant_id == tenant_id) {
            if session.finish(Outcome::WidgetGone).is_ok() {
                session.notify_closed(Closing::TenantDisabled);
            }
        }
    }

    /// Tells every waiting widget the server is stopping, and opens no more
    /// sessions.
    pub fn close_all(&self) {
        let map = self.map();
        self.stopping.store(true, Ordering::Relaxed);
        for session in map.values() {
            session.close_for_stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(lifetime_ms: i64) -> Session {
        super::super::session::for_tests("tn_a", lifetime_ms)
    }

    /// A confirm still on its way when its session expires stays findable,
    /// so disabling the tenant can still take its payload back.
    #[test]
    fn a_confirm_in_flight_outlives_its_expiry_until_it_ends() {
        let registry = Arc::new(Registry::default());
        let (session, _guard) = registry.open(session(50), 10).expect("opens");
        let (expired, _other) = registry.open(self::session(50), 10).expect("opens");
        session.finish(Outcome::Confirmed).expect("wins");
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert_eq!(registry.sweep(), 1, "only the confirm in flight stays");
        registry.close_tenant("tn_a");
        assert_eq!(session.outcome(), Some(Outcome::WidgetGone));
        assert_eq!(registry.sweep(), 0);
        drop(expired);
    }

    /// At a stop, a waiting session is told, an unclaimed confirm is given
    /// up, and an ended session keeps its own last word.
    #[test]
    fn a_stop_ends_what_waits_and_keeps_what_ended() {
        let registry = Arc::new(Registry::default());
        let (waiting, _a) = registry.open(session(60_000), 10).expect("opens");
        let (confirming, _b) = registry.open(session(60_000), 10).expect("opens");
        let (denied, _c) = registry.open(session(60_000), 10).expect("opens");
        confirming.finish(Outcome::Confirmed).expect("wins");
        denied.finish(Outcome::Denied).expect("wins");
        registry.close_all();
        denied.notify_denied();
        assert_eq!(confirming.outcome(), Some(Outcome::WidgetGone));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
        runtime.expect("runtime").block_on(async {
            assert!(matches!(waiting.next_event().await, Event::Closed(Closing::Stopping)));
            assert!(matches!(denied.next_event().await, Event::Denied));
        });
        assert_eq!(registry.open(session(60_000), 10).err(), Some(NotOpened::Stopping));
    }
}
