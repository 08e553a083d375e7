//! Walking the hash chain to find the first place it was changed.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Record, action};
use crate::protocol::b64;
use crate::store::{ChainPoint, Store, StoreError, StoredRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    pub seq: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Where checking started: the retention checkpoint, or 0.
    pub from_seq: u64,
    pub head_seq: u64,
    /// base64url hash of the newest record, worth noting down elsewhere.
    pub head_hash: String,
    pub first_break: Option<Break>,
}

/// Checks every record from the checkpoint to the head, in one snapshot, and
/// that no record lies outside them: retention removes what is at or below the
/// checkpoint, and nothing is written past the head.
pub fn verify_chain(store: &Store) -> Result<Verification, StoreError> {
    // redb panics on some damaged pages rather than returning an error.
    let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.audit_snapshot(|checkpoint, head, rows| walk(checkpoint, head, rows))
    }));
    walked.unwrap_or_else(|_| Err(store.damaged()))?
}

fn walk(
    checkpoint: ChainPoint,
    head: ChainPoint,
    rows: &mut dyn Iterator<Item = Result<StoredRecord, StoreError>>,
) -> Result<Verification, StoreError> {
    let mut prev = checkpoint;
    let mut records = 0;
    let mut first_break = None;
    // The checkpoint named by retention's newest record, which is always kept.
    let mut vouched = None;

    for row in rows {
        let row = row?;
        let fail = |reason: &str| Break { seq: row.seq, reason: reason.to_owned() };
        let broken = if row.seq <= checkpoint.seq {
            Some(fail(
                "record at or below the retention checkpoint: the checkpoint was moved \
                 or the record put back",
            ))
        } else if row.seq > head.seq {
            Some(fail("record past the head: the head was moved back or lost, or the record added"))
        } else if row.seq != prev.seq + 1 {
            Some(Break { seq: prev.seq + 1, reason: "record missing".into() })
        } else if <[u8; 32]>::from(Sha256::digest(&row.body)) != row.hash {
            Some(fail("record changed: its hash does not match its contents"))
        } else {
            match serde_json::from_slice::<Record>(&row.body) {
                Err(_) => Some(fail("record unreadable")),
                Ok(r) if r.seq != row.seq => Some(fail("record moved")),
                Ok(r) if r.prev != b64::encode(prev.hash) => {
                    Some(fail("chain broken: the previous record was changed, or this one"))
                }
                Ok(r) => {
                    if r.action == action::AUDIT_PRUNE {
                        vouched = r.details["checkpoint"].as_u64();
                    }
                    None
                }
            }
        };
        if let Some(found) = broken {
            first_break = Some(found);
            break;
        }
        records += 1;
        prev = ChainPoint { seq: row.seq, hash: row.hash };
    }
    if first_break.is_none() && checkpoint.seq > 0 && vouched != Some(checkpoint.seq) {
        let reason = "records before the retention checkpoint were removed outside keyri: no \
                      retention record names that checkpoint";
        first_break = Some(Break { seq: checkpoint.seq, reason: reason.into() });
    } else if first_break.is_none() && prev.seq == head.seq && prev != head {
        let reason = "record changed: the newest record does not match the head".into();
        first_break = Some(Break { seq: head.seq, reason });
    } else if first_break.is_none() && prev != head {
        let seq = prev.seq + 1;
        first_break = Some(Break { seq, reason: "records missing before the head".into() });
    }

    Ok(Verification {
        ok: first_break.is_none(),
        records,
        from_seq: checkpoint.seq,
        head_seq: head.seq,
        head_hash: b64::encode(head.hash),
        first_break,
    })
}
