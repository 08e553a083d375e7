//! One login session and its state machine:
//! pending → scanned → finished (confirmed, denied, expired or widget gone).
//! The transition to finished happens once, under a lock, so of two racing
//! calls exactly one wins. A confirm passes through confirming while its
//! record is written and its payload waits for the widget, and delivering
//! once the widget's task has claimed the payload and writes it; it ends
//! confirmed when the write succeeded, widget gone otherwise. Only a claimed
//! payload is ever written, so a confirm given up on is never delivered.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::protocol::{PublicKey, SessionId, now_ms};

/// What the server knows about the widget, shown to the phone.
#[derive(Debug, Clone)]
pub struct WidgetMeta {
    pub origin: Option<String>,
    pub ip: std::net::IpAddr,
    pub user_agent: String,
    pub place: Option<crate::geo::Place>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Denied,
    Expired,
    WidgetGone,
}

impl Outcome {
    pub const ALL: [Outcome; 4] =
        [Outcome::Confirmed, Outcome::Denied, Outcome::Expired, Outcome::WidgetGone];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Scanned,
    /// A confirm won; its payload is not yet with the widget.
    Confirming,
    /// The widget's task claimed the payload and is writing it.
    Delivering,
    Finished(Outcome),
}

/// What the phone side tells the widget socket's task.
#[derive(Debug)]
pub enum Event {
    Scanned,
    /// The sealed payload; `delivered` is answered once the socket took it.
    Payload {
        sealed: String,
        delivered: oneshot::Sender<()>,
    },
    Denied,
    /// The server refused the login for a risk signal; the text says why.
    Refused(String),
    /// The server ended the session for a reason of its own.
    Closed(Closing),
}

/// Why the server itself ends a waiting session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// Its tenant was disabled or deleted.
    TenantDisabled,
    /// The server is stopping.
    Stopping,
    /// A confirm could not be recorded in the audit log, so its payload was
    /// not delivered.
    Unrecorded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("no such session")]
    NotFound,
    #[error("the session was already confirmed or denied")]
    AlreadyFinished,
    #[error("the widget disconnected; nothing was delivered")]
    WidgetGone,
}

pub struct Session {
    pub id: SessionId,
    pub tenant_id: String,
    pub public_key: PublicKey,
    pub created_at: i64,
    pub expires_at: i64,
    pub widget: WidgetMeta,
    state: Mutex<State>,
    /// Whether a phone ever looked, which outlives the state's own answer.
    scanned: AtomicBool,
    /// Events for the widget's task, and the bell that wakes it. A session
    /// produces at most a scan notice and one last word, so a slot each is
    /// enough, and lighter than a channel for every waiting widget.
    mailbox: Mutex<Mailbox>,
    bell: Notify,
}

#[derive(Debug, Default)]
struct Mailbox {
    scanned: bool,
    last: Option<Event>,
    /// The widget's task stopped listening; nothing posted will be read.
    closed: bool,
}

impl Session {
    pub fn new(
        tenant_id: String,
        public_key: PublicKey,
        lifetime_ms: i64,
        widget: WidgetMeta,
    ) -> Self {
        let created_at = now_ms();
        Self {
            id: SessionId::generate(),
            tenant_id,
            public_key,
            created_at,
            expires_at: created_at + lifetime_ms,
            widget,
            state: Mutex::new(State::Pending),
            scanned: AtomicBool::new(false),
            mailbox: Mutex::default(),
            bell: Notify::new(),
        }
    }

    fn mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Leaves an event for the widget's task; the event comes back if the
    /// task has stopped listening.
    fn post(&self, event: Event) -> Result<(), Event> {
        {
            let mut mailbox = self.mailbox();
            if mailbox.closed {
                return Err(event);
            }
            match event {
                Event::Scanned => mailbox.scanned = true,
                // The first last word stands: a payload on its way is not
                // replaced by a later closing, nor the other way round.
                last if mailbox.last.is_some() => return Err(last),
                last => mailbox.last = Some(last),
            }
        }
        self.bell.notify_one();
        Ok(())
    }

    /// The next event for the widget, waiting until there is one. The scan
    /// notice comes before the last word if both are waiting.
    pub async fn next_event(&self) -> Event {
        loop {
            {
                let mut mailbox = self.mailbox();
                if std::mem::take(&mut mailbox.scanned) {
                    return Event::Scanned;
                }
                if let Some(last) = mailbox.last.take() {
                    return last;
                }
            }
            // A ring between the look above and this wait is kept as a
            // permit, so it is not missed.
            self.bell.notified().await;
        }
    }

    /// The widget's task stopped listening: whatever waits is dropped (a
    /// phone waiting on delivery then hears that), later posts fail.
    pub fn close_mailbox(&self) {
        let mut mailbox = self.mailbox();
        mailbox.closed = true;
        mailbox.scanned = false;
        mailbox.last = None;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock guards a plain enum; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// The error a phone gets for a session it may no longer act on.
    fn check_open(&self, state: State) -> Result<(), RelayError> {
        if self.is_expired(now_ms()) {
            return Err(RelayError::NotFound);
        }
        match state {
            State::Pending | State::Scanned => Ok(()),
            State::Finished(Outcome::WidgetGone) => Err(RelayError::WidgetGone),
            State::Finished(Outcome::Expired) => Err(RelayError::NotFound),
            State::Confirming | State::Delivering | State::Finished(_) => {
                Err(RelayError::AlreadyFinished)
            }
        }
    }

    /// A phone looked at the session: the first look tells the widget.
    /// Returns whether it was already scanned before.
    pub fn mark_scanned(&self) -> Result<bool, RelayError> {
        let mut state = self.state();
        self.check_open(*state)?;
        if *state == State::Scanned {
            return Ok(true);
        }
        *state = State::Scanned;
        self.scanned.store(true, Ordering::Relaxed);
        // The scan notice is only informative: a widget that stopped
        // listening does not need it.
        let _ = self.post(Event::Scanned);
        Ok(false)
    }

    /// Finishes the session with `outcome` if nothing finished it before.
    /// `Confirmed` only starts the confirm: see the module's text.
    pub fn finish(&self, outcome: Outcome) -> Result<(), RelayError> {
        let mut state = self.state();
        match outcome {
            // Expiry ends a session that is still open; a confirm on its way
            // has already won.
            Outcome::Expired => {
                if !matches!(*state, State::Pending | State::Scanned) {
                    return Err(RelayError::AlreadyFinished);
                }
            }
            // Losing the widget ends a session, a confirm whose payload is
            // not yet claimed included; a payload being written decides for
            // itself.
            Outcome::WidgetGone => {
                if matches!(*state, State::Delivering | State::Finished(_)) {
                    return Err(RelayError::AlreadyFinished);
                }
                if *state == State::Confirming {
                    self.take_back_payload();
                }
            }
            Outcome::Confirmed | Outcome::Denied => self.check_open(*state)?,
        }
        *state = match outcome {
            Outcome::Confirmed => State::Confirming,
            other => State::Finished(other),
        };
        Ok(())
    }

    /// Whether the session still waits for a phone: neither ended nor on its
    /// way to an end.
    pub fn is_waiting(&self) -> bool {
        matches!(*self.state(), State::Pending | State::Scanned)
    }

    /// Whether a confirm is on its way: it must stay findable (for a tenant
    /// disable) even past the session's expiry.
    pub fn is_in_flight(&self) -> bool {
        matches!(*self.state(), State::Confirming | State::Delivering)
    }

    /// The server stops: a waiting session is told so, and a confirm whose
    /// payload is not yet claimed is given up (its phone hears `widget_gone`
    /// and the record says so); a deny or refusal on its way keeps its word.
    pub fn close_for_stop(&self) {
        let mut state = self.state();
        match *state {
            State::Pending | State::Scanned => {}
            State::Confirming => {
                self.take_back_payload();
                *state = State::Finished(Outcome::WidgetGone);
            }
            State::Delivering | State::Finished(_) => return,
        }
        let _ = self.post(Event::Closed(Closing::Stopping));
    }

    /// The widget's task claims the payload it took from the mailbox before
    /// writing it; false means the confirm was given up on meanwhile and the
    /// payload must not be written.
    pub fn claim_payload(&self) -> bool {
        let mut state = self.state();
        if *state != State::Confirming {
            return false;
        }
        *state = State::Delivering;
        true
    }

    /// The widget's task wrote the claimed payload (`written`) or could not.
    pub fn delivered(&self, written: bool) {
        let mut state = self.state();
        if *state == State::Delivering {
            let outcome = if written { Outcome::Confirmed } else { Outcome::WidgetGone };
            *state = State::Finished(outcome);
        }
    }

    /// Hands the sealed payload to the widget and waits until its socket took
    /// it. The widget has `wait` to claim it; one that claimed it in time has
    /// its own deadline for the write. The caller must have won
    /// `finish(Confirmed)`.
    pub async fn deliver(&self, sealed: String, wait: Duration) -> Result<(), RelayError> {
        let (delivered, mut taken) = oneshot::channel();
        let written = match self.post(Event::Payload { sealed, delivered }) {
            Ok(()) => match tokio::time::timeout(wait, &mut taken).await {
                Ok(answer) => answer.is_ok(),
                Err(_) => !self.abandon() && taken.await.is_ok(),
            },
            Err(_) => false,
        };
        if !written {
            // Nothing reached the widget, so the session did not end confirmed.
            self.abandon();
            return Err(RelayError::WidgetGone);
        }
        Ok(())
    }

    /// Gives up a confirm whose payload the widget has not claimed: it ends
    /// as widget gone and the payload is taken back. Returns false only when
    /// the widget is writing the payload, which then decides.
    pub fn abandon(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Delivering => false,
            State::Confirming => {
                self.take_back_payload();
                *state = State::Finished(Outcome::WidgetGone);
                true
            }
            _ => true,
        }
    }

    /// Removes a payload still waiting in the mailbox; the phone waiting on
    /// it then hears it was not delivered.
    fn take_back_payload(&self) {
        let mut mailbox = self.mailbox();
        if matches!(mailbox.last, Some(Event::Payload { .. })) {
            mailbox.last = None;
        }
    }

    /// Tells the widget the user declined. The caller must have won
    /// `finish(Denied)`.
    pub fn notify_denied(&self) {
        // If the widget has gone there is no one left to tell.
        let _ = self.post(Event::Denied);
    }

    /// Tells the widget the server refused the login. The caller must have
    /// won `finish(Denied)`.
    pub fn notify_refused(&self, message: String) {
        let _ = self.post(Event::Refused(message));
    }

    /// Tells the widget the server ended the session, for `why`.
    pub fn notify_closed(&self, why: Closing) {
        let _ = self.post(Event::Closed(why));
    }

    pub fn outcome(&self) -> Option<Outcome> {
        match *self.state() {
            State::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Whether a phone fetched the session at any point, even if it ended.
    pub fn was_scanned(&self) -> bool {
        self.scanned.load(Ordering::Relaxed)
    }
}

/// A session of `tenant` for unit tests, with a fixed key and a local widget.
#[cfg(test)]
pub(crate) fn for_tests(tenant: &str, lifetime_ms: i64) -> Session {
    let secret = p256::SecretKey::from_slice(&[3; 32]).expect("key");
    let point = crate::protocol::hpke::uncompressed(&secret.public_key());
    let key = PublicKey::from_bytes(&point).expect("point");
    let widget = WidgetMeta {
        origin: None,
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        user_agent: String::new(),
        place: None,
    };
    Session::new(tenant.into(), key, lifetime_ms, widget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        for_tests("tn_test", 60_000)
    }

    /// The next event if one is waiting now.
    async fn waiting(session: &Session) -> Option<Event> {
        tokio::time::timeout(Duration::from_millis(20), session.next_event()).await.ok()
    }

    #[tokio::test]
    async fn a_payload_not_claimed_in_time_is_taken_back_and_never_written() {
        let session = session();
        session.finish(Outcome::Confirmed).expect("wins");
        let wait = Duration::from_millis(30);
        assert_eq!(session.deliver("sealed".into(), wait).await, Err(RelayError::WidgetGone));
        assert_eq!(session.outcome(), Some(Outcome::WidgetGone));
        assert!(waiting(&session).await.is_none(), "the payload was taken back");
        assert!(!session.claim_payload());
    }

    #[tokio::test]
    async fn a_payload_taken_but_given_up_before_its_claim_is_not_written() {
        let session = std::sync::Arc::new(session());
        session.finish(Outcome::Confirmed).expect("wins");
        let phone = session.clone();
        let delivery =
            tokio::spawn(async move { phone.deliver("sealed".into(), PHONE_WAIT).await });
        let Event::Payload { delivered, .. } = session.next_event().await else {
            panic!("expected the payload")
        };
        // The tenant is disabled between the take and the claim.
        session.finish(Outcome::WidgetGone).expect("ends");
        assert!(!session.claim_payload());
        drop(delivered);
        assert_eq!(delivery.await.expect("task"), Err(RelayError::WidgetGone));
    }

    #[tokio::test]
    async fn a_claimed_payload_decides_by_its_write() {
        for written in [true, false] {
            let session = std::sync::Arc::new(session());
            session.finish(Outcome::Confirmed).expect("wins");
            let phone = session.clone();
            let delivery =
                tokio::spawn(async move { phone.deliver("s".into(), Duration::ZERO).await });
            let Event::Payload { delivered, .. } = session.next_event().await else {
                panic!("expected the payload")
            };
            assert!(session.claim_payload());
            // Claimed: the phone's deadline and a lost widget no longer end it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(session.finish(Outcome::WidgetGone).is_err());
            session.delivered(written);
            match written {
                true => delivered.send(()).expect("the phone waits"),
                false => drop(delivered),
            }
            let expected = if written { Ok(()) } else { Err(RelayError::WidgetGone) };
            assert_eq!(delivery.await.expect("task"), expected);
            let outcome = if written { Outcome::Confirmed } else { Outcome::WidgetGone };
            assert_eq!(session.outcome(), Some(outcome));
        }
    }

    #[tokio::test]
    async fn a_confirming_session_refuses_other_ends_and_waits_no_more() {
        let session = session();
        assert!(session.is_waiting());
        session.finish(Outcome::Confirmed).expect("wins");
        assert!(!session.is_waiting());
        assert_eq!(session.finish(Outcome::Denied), Err(RelayError::AlreadyFinished));
        assert_eq!(session.finish(Outcome::Expired), Err(RelayError::AlreadyFinished));
        assert_eq!(session.mark_scanned(), Err(RelayError::AlreadyFinished));
        assert_eq!(session.outcome(), None, "not over until the payload is written");
    }

    const PHONE_WAIT: Duration = Duration::from_secs(5);
}
