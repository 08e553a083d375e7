//! The audit table: an append-only hash chain. Each row holds the SHA-256 of
//! its body followed by the body, whose JSON names the previous row's hash.
//! Retention removes old rows and records the last removed row as the
//! checkpoint the chain is verified from.

use redb::{ReadableDatabase, ReadableTable};
use sha2::{Digest, Sha256};

use super::tables::{AUDIT, META};
use super::{Store, StoreError};

const HEAD: &str = "audit.head";
const CHECKPOINT: &str = "audit.checkpoint";

/// A position in the chain: a sequence number and the hash of that record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl ChainPoint {
    /// Where every chain starts: sequence 0 and a fixed hash.
    pub fn genesis() -> Self {
        Self { seq: 0, hash: Sha256::digest(b"keyri/v1/audit-genesis").into() }
    }

    fn to_bytes(self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(&self.hash);
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let hash = bytes.get(8..40)?.try_into().ok()?;
        Some(Self { seq, hash })
    }
}

/// One stored row, as read back.
pub struct StoredRecord {
    pub seq: u64,
    pub hash: [u8; 32],
    pub body: Vec<u8>,
}

/// A row as stored: the hash, then the body. A row too short to hold a hash
/// comes back with a zero hash and no body, which verification reports.
fn stored(seq: u64, value: &[u8]) -> StoredRecord {
    match value.get(..32).and_then(|h| <[u8; 32]>::try_from(h).ok()) {
        Some(hash) => StoredRecord { seq, hash, body: value[32..].to_vec() },
        None => StoredRecord { seq, hash: [0; 32], body: Vec::new() },
    }
}

type AuditTable<'t> = redb::Table<'t, u64, &'static [u8]>;
type MetaTable<'t> = redb::Table<'t, &'static str, &'static [u8]>;

/// Appends `count` bodies after the stored head, inside the caller's
/// transaction, and moves the head.
fn append_rows(
    audit: &mut AuditTable,
    meta: &mut MetaTable,
    count: usize,
    make: &mut dyn FnMut(u64, &[u8; 32]) -> Vec<u8>,
) -> Result<ChainPoint, StoreError> {
    let mut head = match meta.get(HEAD)? {
        Some(v) => ChainPoint::from_bytes(v.value()).unwrap_or_else(ChainPoint::genesis),
        None => ChainPoint::genesis(),
    };
    let mut row = Vec::new();
    for _ in 0..count {
        let seq = head.seq.checked_add(1).ok_or_else(|| StoreError::AuditInconsistent {
            head: format!("sequence {}", head.seq),
            newest: "beyond the last sequence number".into(),
        })?;
        let body = make(seq, &head.hash);
        let hash: [u8; 32] = Sha256::digest(&body).into();
        row.clear();
        row.extend_from_slice(&hash);
        row.extend_from_slice(&body);
        // A row already there means the head was moved back or lost:
        // nothing of this batch is written rather than a record replaced.
        if audit.insert(seq, row.as_slice())?.is_some() {
            return Err(StoreError::AuditOverwrite(seq));
        }
        head = ChainPoint { seq, hash };
    }
    meta.insert(HEAD, head.to_bytes().as_slice())?;
    Ok(head)
}

impl Store {
    fn meta_point(&self, name: &str) -> Result<Option<ChainPoint>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let value = meta.get(name)?;
        Ok(value.and_then(|v| ChainPoint::from_bytes(v.value())))
    }

    /// The newest record's position, or the genesis.
    pub fn audit_head(&self) -> Result<ChainPoint, StoreError> {
        Ok(self.meta_point(HEAD)?.unwrap_or_else(ChainPoint::genesis))
    }

    /// The position verification starts from: the last record removed by
    /// retention, or the genesis.
    pub fn audit_checkpoint(&self) -> Result<ChainPoint, StoreError> {
        Ok(self.meta_point(CHECKPOINT)?.unwrap_or_else(ChainPoint::genesis))
    }

    /// Checks that the stored head is the newest record (or, with no records
    /// left, the retention checkpoint), as every append leaves it. Anything
    /// else means the file was edited; the server then refuses to start and
    /// the shell to change anything, rather than act and fail to record it.
    pub fn check_audit_head(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let point = |name: &str| -> Result<Option<ChainPoint>, StoreError> {
            Ok(meta.get(name)?.and_then(|v| ChainPoint::from_bytes(v.value())))
        };
        let (head, checkpoint) = (point(HEAD)?, point(CHECKPOINT)?);
        let audit = txn.open_table(AUDIT)?;
        let newest = audit.last()?.map(|(seq, value)| stored(seq.value(), value.value()));
        let newest = newest.map(|row| ChainPoint { seq: row.seq, hash: row.hash });
        let expected = newest.or(checkpoint);
        if head == expected {
            return Ok(());
        }
        let name =
            |p: Option<ChainPoint>| p.map_or("none".into(), |p| format!("sequence {}", p.seq));
        Err(StoreError::AuditInconsistent { head: name(head), newest: name(expected) })
    }

    /// Appends bodies made by `make(seq, prev_hash)` in one durable
    /// transaction and returns the new head.
    pub fn append_audit(
        &self,
        count: usize,
        mut make: impl FnMut(u64, &[u8; 32]) -> Vec<u8>,
    ) -> Result<ChainPoint, StoreError> {
        let txn = self.db.begin_write()?;
        let head = {
            let mut audit = txn.open_table(AUDIT)?;
            let mut meta = txn.open_table(META)?;
            append_rows(&mut audit, &mut meta, count, &mut make)?
        };
        txn.commit()?;
        Ok(head)
    }

    /// Runs `walk` over one consistent snapshot: the checkpoint, the head, and
    /// every stored record, in order, including any that lie at or below the
    /// checkpoint or past the head. Writes that land while it runs are not
    /// seen, so a walk never mistakes them for a break.
    pub fn audit_snapshot<T>(
        &self,
        walk: impl FnOnce(
            ChainPoint,
            ChainPoint,
            &mut dyn Iterator<Item = Result<StoredRecord, StoreError>>,
        ) -> T,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read()?;
        let (checkpoint, head) = {
            let meta = txn.open_table(META)?;
            let point = |name: &str| -> Result<ChainPoint, StoreError> {
                let value = meta.get(name)?;
                Ok(value
                    .and_then(|v| ChainPoint::from_bytes(v.value()))
                    .unwrap_or_else(ChainPoint::genesis))
            };
            (point(CHECKPOINT)?, point(HEAD)?)
        };
        let audit = txn.open_table(AUDIT)?;
        let mut rows = audit.iter()?.map(|row| {
            let (seq, value) = row?;
            Ok(stored(seq.value(), value.value()))
        });
        Ok(walk(checkpoint, head, &mut rows))
    }

    /// Up to `limit` records with a sequence number of at least `from`.
    pub fn audit_page(&self, from: u64, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let audit = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in audit.range(from..)?.take(limit) {
            let (seq, value) = row?;
            out.push(stored(seq.value(), value.value()));
        }
        Ok(out)
    }

    /// Up to `limit` record bodies with a sequence number below `before`,
    /// newest first.
    pub fn audit_newest(
        &self,
        before: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let audit = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in audit.range(..before)?.rev().take(limit) {
            let (seq, value) = row?;
            let body = value.value().get(32..).unwrap_or_default().to_vec();
            out.push((seq.value(), body));
        }
        Ok(out)
    }

    /// Removes up to `limit` of the oldest records for which `expired` holds,
    /// moves the checkpoint past them, and, in the same transaction, appends
    /// the record of that made by `make(seq, prev_hash, removed, checkpoint)`,
    /// so that the chain itself vouches for its checkpoint. Returns how many
    /// were removed.
    pub fn prune_audit(
        &self,
        limit: usize,
        expired: impl Fn(&[u8]) -> bool,
        make: impl Fn(u64, &[u8; 32], usize, u64) -> Vec<u8>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut audit = txn.open_table(AUDIT)?;
            let mut meta = txn.open_table(META)?;
            let mut last = None;
            let mut doomed = Vec::new();
            for row in audit.iter()?.take(limit) {
                let (seq, value) = row?;
                let value = value.value();
                if value.len() < 32 || !expired(&value[32..]) {
                    break;
                }
                let hash = value[..32].try_into().unwrap_or([0; 32]);
                last = Some(ChainPoint { seq: seq.value(), hash });
                doomed.push(seq.value());
            }
            for seq in &doomed {
                audit.remove(*seq)?;
            }
            if let Some(point) = last {
                meta.insert(CHECKPOINT, point.to_bytes().as_slice())?;
                let removed = doomed.len();
                append_rows(&mut audit, &mut meta, 1, &mut |seq, prev| {
                    make(seq, prev, removed, point.seq)
                })?;
            }
            doomed.len()
        };
        txn.commit()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, Record, verify_chain};
    use crate::protocol::b64;
    use serde_json::json;

    /// A store holding five chained records.
    fn five() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("k.redb")).expect("opens");
        append(&store, 5).expect("appended");
        (dir, store)
    }

    fn append(store: &Store, count: usize) -> Result<ChainPoint, StoreError> {
        store.append_audit(count, |seq, prev| body(seq, prev, "session.expire", json!({})))
    }

    fn body(seq: u64, prev: &[u8; 32], action: &str, details: serde_json::Value) -> Vec<u8> {
        let record = Record {
            seq,
            at: 1_000,
            tenant: None,
            actor: Actor::System,
            action: action.into(),
            outcome: "success".into(),
            details,
            prev: b64::encode(prev),
        };
        serde_json::to_vec(&record).expect("json")
    }

    /// Retention of everything, as the audit writer does it.
    fn prune_all(store: &Store) -> usize {
        let pruned = |seq, prev: &[u8; 32], removed, checkpoint| {
            body(seq, prev, "audit.prune", json!({"removed": removed, "checkpoint": checkpoint}))
        };
        store.prune_audit(100, |_| true, pruned).expect("pruned")
    }

    /// Edits the file the way someone with write access to it could.
    fn tamper(store: &Store, edit: impl FnOnce(&mut AuditTable, &mut MetaTable)) {
        let txn = store.db.begin_write().expect("txn");
        {
            let mut audit = txn.open_table(AUDIT).expect("audit");
            let mut meta = txn.open_table(META).expect("meta");
            edit(&mut audit, &mut meta);
        }
        txn.commit().expect("commit");
    }

    fn row(audit: &AuditTable, seq: u64) -> Vec<u8> {
        audit.get(seq).expect("read").expect("row").value().to_vec()
    }

    /// Where the chain stands at stored record `seq`.
    fn point_of(audit: &AuditTable, seq: u64) -> ChainPoint {
        ChainPoint { seq, hash: row(audit, seq)[..32].try_into().expect("hash") }
    }

    fn first_break(store: &Store) -> (u64, String) {
        let report = verify_chain(store).expect("walks");
        assert!(!report.ok, "{report:?}");
        let found = report.first_break.expect("a break");
        (found.seq, found.reason)
    }

    fn rows(store: &Store) -> Vec<u64> {
        store.audit_page(0, 100).expect("page").iter().map(|r| r.seq).collect()
    }

    #[test]
    fn the_head_check_passes_a_log_keyri_wrote_and_fails_an_edited_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = Store::open(&dir.path().join("e.redb")).expect("opens");
        empty.check_audit_head().expect("an empty log");
        let (_dir, store) = five();
        store.check_audit_head().expect("five records");
        assert_eq!(prune_all(&store), 5);
        store.check_audit_head().expect("everything pruned: the head is retention's record");

        type Edit = fn(&mut AuditTable, &mut MetaTable);
        let edits: [(&str, Edit); 3] = [
            ("head lost", |_, meta| {
                meta.remove(HEAD).expect("removed");
            }),
            ("record past the head", |audit, _| {
                let copy = row(audit, 3);
                audit.insert(6, copy.as_slice()).expect("added");
            }),
            ("newest record removed", |audit, _| {
                audit.remove(5).expect("removed");
            }),
        ];
        for (what, edit) in edits {
            let (_dir, store) = five();
            tamper(&store, edit);
            let err = store.check_audit_head().expect_err(what);
            assert!(matches!(err, StoreError::AuditInconsistent { .. }), "{what}: {err}");
            assert!(err.to_string().contains("latest backup"), "{err}");
        }
    }

    #[test]
    fn a_healthy_log_verifies() {
        let (_dir, store) = five();
        let report = verify_chain(&store).expect("walks");
        assert!(report.ok && report.records == 5 && report.head_seq == 5, "{report:?}");
    }

    #[test]
    fn a_lost_head_is_a_break_and_no_record_is_written_over() {
        let (_dir, store) = five();
        let before = {
            let txn = store.db.begin_read().expect("txn");
            let audit = txn.open_table(AUDIT).expect("audit");
            audit.get(1).expect("read").expect("row").value().to_vec()
        };
        tamper(&store, |_, meta| {
            meta.remove(HEAD).expect("removed");
        });
        let (seq, reason) = first_break(&store);
        assert_eq!(seq, 1);
        assert!(reason.contains("past the head"), "{reason}");

        let refused = append(&store, 1).expect_err("refused");
        assert!(matches!(refused, StoreError::AuditOverwrite(1)), "{refused}");
        assert!(refused.to_string().contains("keyri audit verify"));
        let txn = store.db.begin_read().expect("txn");
        let audit = txn.open_table(AUDIT).expect("audit");
        let after = audit.get(1).expect("read").expect("row");
        assert_eq!(after.value(), before.as_slice());
        assert_eq!(rows(&store), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_head_at_the_last_sequence_number_is_refused_not_wrapped() {
        let (_dir, store) = five();
        tamper(&store, |_, meta| {
            let point = ChainPoint { seq: u64::MAX, hash: [7; 32] };
            meta.insert(HEAD, point.to_bytes().as_slice()).expect("moved");
        });
        let refused = append(&store, 1).expect_err("refused");
        assert!(matches!(refused, StoreError::AuditInconsistent { .. }), "{refused}");
        assert_eq!(rows(&store), vec![1, 2, 3, 4, 5], "nothing written, nothing wrapped to 0");
    }

    #[test]
    fn a_head_moved_back_is_a_break_at_the_first_record_past_it() {
        let (_dir, store) = five();
        tamper(&store, |audit, meta| {
            let point = point_of(audit, 3);
            meta.insert(HEAD, point.to_bytes().as_slice()).expect("moved");
        });
        assert_eq!(first_break(&store).0, 4);
    }

    #[test]
    fn the_newest_record_rewritten_with_its_hash_is_a_break_at_it() {
        let (_dir, store) = five();
        tamper(&store, |audit, _| {
            let old = row(audit, 5);
            let body = String::from_utf8_lossy(&old[32..]).replace("expire", "confirm");
            let mut new: Vec<u8> = Sha256::digest(body.as_bytes()).to_vec();
            new.extend_from_slice(body.as_bytes());
            audit.insert(5, new.as_slice()).expect("rewritten");
        });
        let (seq, reason) = first_break(&store);
        assert_eq!(seq, 5);
        assert!(reason.contains("does not match the head"), "{reason}");
    }

    #[test]
    fn a_record_added_past_the_head_is_a_break() {
        let (_dir, store) = five();
        tamper(&store, |audit, _| {
            let copy = row(audit, 3);
            audit.insert(6, copy.as_slice()).expect("added");
        });
        let (seq, reason) = first_break(&store);
        assert_eq!(seq, 6);
        assert!(reason.contains("past the head"), "{reason}");
    }

    #[test]
    fn a_checkpoint_moved_over_kept_records_is_a_break() {
        let (_dir, store) = five();
        tamper(&store, |audit, meta| {
            let point = point_of(audit, 2);
            meta.insert(CHECKPOINT, point.to_bytes().as_slice()).expect("moved");
        });
        let (seq, reason) = first_break(&store);
        assert_eq!(seq, 1);
        assert!(reason.contains("checkpoint"), "{reason}");
    }

    #[test]
    fn records_pruned_behind_the_checkpoint_still_verify() {
        let (_dir, store) = five();
        assert_eq!(prune_all(&store), 5);
        append(&store, 2).expect("appended after pruning");
        let report = verify_chain(&store).expect("walks");
        assert!(report.ok, "{report:?}");
        assert_eq!((report.from_seq, report.records, report.head_seq), (5, 3, 8));
        // Retention's record is pruned in turn and replaced by the next one.
        assert_eq!(prune_all(&store), 3);
        let report = verify_chain(&store).expect("walks");
        assert!(report.ok && report.from_seq == 8 && report.head_seq == 9, "{report:?}");
    }

    #[test]
    fn records_cut_away_with_the_checkpoint_moved_as_retention_would_are_a_break() {
        let (_dir, store) = five();
        tamper(&store, |audit, meta| {
            let point = point_of(audit, 2);
            audit.remove(1).expect("removed");
            audit.remove(2).expect("removed");
            meta.insert(CHECKPOINT, point.to_bytes().as_slice()).expect("moved");
        });
        let (seq, reason) = first_break(&store);
        assert_eq!(seq, 2);
        assert!(reason.contains("removed outside keyri"), "{reason}");
    }
}
