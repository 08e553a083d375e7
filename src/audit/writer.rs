//! Group commit: one writer thread, a bounded queue in front of it. The writer
//! takes a record, waits the commit delay for more, and commits what came (up
//! to a full batch) in one transaction; each caller is released once its
//! record is durable. A full queue makes callers wait; nothing is dropped.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Event, Record};
use crate::config::AuditConfig;
use crate::directory::Directory;
use crate::protocol::{b64, now_ms};

/// Records that may wait for the writer before callers are slowed down.
const QUEUE: usize = 8192;
/// Most records in one transaction, so one commit stays short.
const MAX_BATCH: usize = 1024;
/// How often retention runs while the server is up.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);
/// Most records retention removes per transaction.
const PRUNE_BATCH: usize = 10_000;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("the audit log is closed")]
    Closed,
    #[error("the audit record could not be written: {0}")]
    Write(String),
}

struct Pending {
    event: Event,
    at: i64,
    done: oneshot::Sender<Result<u64, AuditError>>,
}

enum Message {
    Record(Pending),
    Close,
}

// TODO: commit a change and its audit record in one transaction; today a crash
// between the two can leave a change whose call never answered unrecorded.
/// A handle to the log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: Option<mpsc::Sender<Message>>,
}

/// Owns the writer thread; dropping it does not stop the thread, `close` does.
pub struct Writer {
    queue: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Starts the writer with the retention and commit delay of `config`.
    pub fn start(directory: Arc<Directory>, config: &AuditConfig) -> (Self, Writer) {
        let (queue, inbox) = mpsc::channel(QUEUE);
        let retention_days = config.retention_days;
        let delay = Duration::from_micros(config.commit_delay_us.into());
        let thread = std::thread::Builder::new()
            .name("keyri-audit".into())
            .spawn(move || run(directory, inbox, retention_days, delay))
            .expect("the audit writer thread starts");
        (Self { queue: Some(queue.clone()) }, Writer { queue, thread: Some(thread) })
    }

    /// A log that records nothing, for runs that measure its cost.
    pub fn disabled() -> Self {
        Self { queue: None }
    }

    /// Records an event; returns its sequence number once it is on disk.
    pub async fn record(&self, event: Event) -> Result<u64, AuditError> {
        let Some(queue) = &self.queue else { return Ok(0) };
        let (done, durable) = oneshot::channel();
        let pending = Pending { event, at: now_ms(), done };
        queue.send(Message::Record(pending)).await.map_err(|_| AuditError::Closed)?;
        durable.await.map_err(|_| AuditError::Closed)?
    }

    /// `record` for callers on a blocking thread.
    pub fn record_blocking(&self, event: Event) -> Result<u64, AuditError> {
        let Some(queue) = &self.queue else { return Ok(0) };
        let (done, durable) = oneshot::channel();
        let pending = Pending { event, at: now_ms(), done };
        queue.blocking_send(Message::Record(pending)).map_err(|_| AuditError::Closed)?;
        durable.blocking_recv().map_err(|_| AuditError::Closed)?
    }

    /// Whether records are taken: the log is off, or its writer is running.
    pub fn is_open(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| !q.is_closed())
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| QUEUE - q.capacity())
    }
}

impl Writer {
    /// Writes what is queued, then stops the thread and waits for it.
    pub async fn close(mut self) {
        let _ = self.queue.send(Message::Close).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// `close` for callers outside an async runtime.
    pub fn close_blocking(mut self) {
        let _ = self.queue.blocking_send(Message::Close);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    directory: Arc<Directory>,
    mut inbox: mpsc::Receiver<Message>,
    retention_days: u32,
    delay: Duration,
) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build();
    let Ok(runtime) = runtime else {
        tracing::error!("the audit writer cannot start");
        return;
    };
    runtime.block_on(async move {
        prune(&directory, retention_days);
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        retention.tick().await;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                message = inbox.recv() => message,
                _ = retention.tick() => {
                    prune(&directory, retention_days);
                    continue;
                }
            };
            let mut closing = match first {
                Some(Message::Record(pending)) => {
                    batch.push(pending);
                    false
                }
                Some(Message::Close) | None => true,
            };
            // Whatever arrives within the delay joins this commit, as does
            // everything that queued up while the last one ran. The thread
            // is the writer's own, so it sleeps: the runtime's timers are
            // too coarse for a fraction of a millisecond.
            if !delay.is_zero() && !closing {
                std::thread::sleep(delay);
            }
            while batch.len() < MAX_BATCH && !closing {
                match inbox.try_recv() {
                    Ok(Message::Record(pending)) => batch.push(pending),
                    Ok(Message::Close) => closing = true,
                    Err(_) => break,
                }
            }
            commit(&directory, &mut batch);
            if closing {
                inbox.close();
                while let Ok(message) = inbox.try_recv() {
                    if let Message::Record(pending) = message {
                        batch.push(pending);
                    }
                }
                commit(&directory, &mut batch);
                return;
            }
        }
    });
}

// TODO: make a commit cheaper; each costs about 250-300 us of CPU (some nine
// page writes and an fdatasync) however few records it holds, which keeps a
// login at a steady 1,000/s above 250 us of server CPU.
fn commit(directory: &Directory, batch: &mut Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    let written = directory.with_store(|store| {
        let mut items = batch.iter();
        store.append_audit(batch.len(), |seq, prev| {
            let pending = items.next().expect("one body per queued record");
            body(seq, prev, pending)
        })
    });
    match written {
        Ok(head) => {
            let first = head.seq + 1 - batch.len() as u64;
            for (i, pending) in batch.drain(..).enumerate() {
                let _ = pending.done.send(Ok(first + i as u64));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, records = batch.len(), "audit commit failed");
            for pending in batch.drain(..) {
                let _ = pending.done.send(Err(AuditError::Write(e.to_string())));
            }
        }
    }
}

fn body(seq: u64, prev: &[u8; 32], pending: &Pending) -> Vec<u8> {
    let event = &pending.event;
    let record = Record {
        seq,
        at: pending.at,
        tenant: event.tenant.clone(),
        actor: event.actor.clone(),
        action: event.action.to_owned(),
        outcome: event.outcome.clone(),
        details: event.details.clone(),
        prev: b64::encode(prev),
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

fn prune(directory: &Directory, retention_days: u32) {
    if retention_days == 0 {
        return;
    }
    let cutoff = now_ms() - i64::from(retention_days) * 86_400_000;
    let expired =
        |body: &[u8]| serde_json::from_slice::<Record>(body).is_ok_and(|record| record.at < cutoff);
    // Retention's own record, in the transaction that removes: the chain then
    // vouches for its checkpoint, and records cut away outside keyri show.
    let pruned = |seq: u64, prev: &[u8; 32], removed: usize, checkpoint: u64| {
        let record = Record {
            seq,
            at: now_ms(),
            tenant: None,
            actor: super::Actor::System,
            action: super::action::AUDIT_PRUNE.to_owned(),
            outcome: "success".to_owned(),
            details: serde_json::json!({
                "removed": removed,
                "checkpoint": checkpoint,
                "olderThanDays": retention_days,
            }),
            prev: b64::encode(prev),
        };
        serde_json::to_vec(&record).unwrap_or_default()
    };
    loop {
        match directory.with_store(|store| store.prune_audit(PRUNE_BATCH, expired, pruned)) {
            Ok(removed) if removed == PRUNE_BATCH => continue,
            Ok(removed) => {
                if removed > 0 {
                    tracing::info!(removed, "old audit records removed");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit retention failed");
                return;
            }
        }
    }
}
