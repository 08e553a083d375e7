//! One login session and its state machine:
//! pending → scanned → finished (confirmed, denied, expired or widget gone).
//! The transition to finished happens once, under a lock, so of two racing
//! calls exactly one wins. A confirm passes through confirming while its
//! record is written and its payload is on the way; it is confirmed once the
//! widget's socket took the payload, or widget gone if it never does.

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
            State::Confirming | State::Finished(_) => Err(RelayError::AlreadyFinished),
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
    /// `Confirmed` only starts the confirm: the session is confirming until
    /// the widget takes the payload (`delivered`).
    pub fn finish(&self, outcome: Outcome) -> Result<(), RelayError> {
        let mut state = self.state();
        match outcome {
            // Expiry ends a session that is still open; a confirm on its way
            // has already won.
            Outcome::Expired => {
                if matches!(*state, State::Confirming | State::Finished(_)) {
                    return Err(RelayError::AlreadyFinished);
                }
            }
            // Losing the widget ends a session whatever its state, a confirm
            // on its way included, unless it already ended.
            Outcome::WidgetGone => {
                if matches!(*state, State::Finished(_)) {
                    return Err(RelayError::AlreadyFinished);
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

    /// The widget's socket took the payload: the confirm is complete.
    pub fn delivered(&self) {
        let mut state = self.state();
        if *state == State::Confirming {
            *state = State::Finished(Outcome::Confirmed);
        }
    }

    /// Hands the sealed payload to the widget and waits until its socket took
    /// it, for at most `wait`. The caller must have won `finish(Confirmed)`.
    pub async fn deliver(&self, sealed: String, wait: Duration) -> Result<(), RelayError> {
        let (delivered, taken) = oneshot::channel();
        let event = Event::Payload { sealed, delivered };
        let handed = match self.post(event) {
            Ok(()) => matches!(tokio::time::timeout(wait, taken).await, Ok(Ok(()))),
            Err(_) => false,
        };
        if !handed {
            // Nothing reached the widget, so the session did not end confirmed.
            self.abandon();
            return Err(RelayError::WidgetGone);
        }
        Ok(())
    }

    /// Ends a confirm whose payload will not be delivered.
    pub fn abandon(&self) {
        let mut state = self.state();
        if *state == State::Confirming {
            *state = State::Finished(Outcome::WidgetGone);
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
