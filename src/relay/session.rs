//! One login session and its state machine:
//! pending → scanned → finished (confirmed, denied, expired or widget gone).
//! The transition to finished happens once, under a lock, so of two racing
//! calls exactly one wins.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

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
    Finished(Outcome),
}

/// Messages from the phone side to the widget socket's task.
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
    events: mpsc::Sender<Event>,
}

impl Session {
    pub fn new(
        tenant_id: String,
        public_key: PublicKey,
        lifetime_ms: i64,
        widget: WidgetMeta,
        events: mpsc::Sender<Event>,
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
            events,
        }
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
            State::Finished(_) => Err(RelayError::AlreadyFinished),
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
        // A full queue means the widget is not reading; the scan notice is
        // only informative, so it is not worth waiting for.
        let _ = self.events.try_send(Event::Scanned);
        Ok(false)
    }

    /// Finishes the session with `outcome` if nothing finished it before.
    pub fn finish(&self, outcome: Outcome) -> Result<(), RelayError> {
        let mut state = self.state();
        match outcome {
            // Expiry and disconnection end a session whatever its state,
            // unless it already ended.
            Outcome::Expired | Outcome::WidgetGone => {
                if matches!(*state, State::Finished(_)) {
                    return Err(RelayError::AlreadyFinished);
                }
            }
            Outcome::Confirmed | Outcome::Denied => self.check_open(*state)?,
        }
        *state = State::Finished(outcome);
        Ok(())
    }

    /// Hands the sealed payload to the widget and waits until its socket took
    /// it, for at most `wait`. The caller must have won `finish(Confirmed)`.
    pub async fn deliver(&self, sealed: String, wait: Duration) -> Result<(), RelayError> {
        let (delivered, taken) = oneshot::channel();
        let event = Event::Payload { sealed, delivered };
        let handed = match self.events.send(event).await {
            Ok(()) => matches!(tokio::time::timeout(wait, taken).await, Ok(Ok(()))),
            Err(_) => false,
        };
        if !handed {
            // Nothing reached the widget, so the session did not end confirmed.
            *self.state() = State::Finished(Outcome::WidgetGone);
            return Err(RelayError::WidgetGone);
        }
        Ok(())
    }

    /// Tells the widget the user declined. The caller must have won
    /// `finish(Denied)`.
    pub async fn notify_denied(&self) {
        // If the widget has gone there is no one left to tell.
        let _ = self.events.send(Event::Denied).await;
    }

    /// Tells the widget the server refused the login. The caller must have
    /// won `finish(Denied)`.
    pub async fn notify_refused(&self, message: String) {
        let _ = self.events.send(Event::Refused(message)).await;
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
