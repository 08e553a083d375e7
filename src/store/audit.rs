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
            let mut head = match meta.get(HEAD)? {
                Some(v) => ChainPoint::from_bytes(v.value()).unwrap_or_else(ChainPoint::genesis),
                None => ChainPoint::genesis(),
            };
            let mut row = Vec::new();
            for _ in 0..count {
                let seq = head.seq + 1;
                let body = make(seq, &head.hash);
                let hash: [u8; 32] = Sha256::digest(&body).into();
                row.clear();
                row.extend_from_slice(&hash);
                row.extend_from_slice(&body);
                audit.insert(seq, row.as_slice())?;
                head = ChainPoint { seq, hash };
            }
            meta.insert(HEAD, head.to_bytes().as_slice())?;
            head
        };
        txn.commit()?;
        Ok(head)
    }

    /// Runs `walk` over one consistent snapshot: the checkpoint, the head, and
    /// every record after the checkpoint, in order. Writes that land while it
    /// runs are not seen, so a walk never mistakes them for a break.
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
        let mut rows = audit.range(checkpoint.seq + 1..)?.map(|row| {
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
    /// moving the checkpoint past them. Returns how many were removed.
    pub fn prune_audit(
        &self,
        limit: usize,
        expired: impl Fn(&[u8]) -> bool,
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
            }
            doomed.len()
        };
        txn.commit()?;
        Ok(removed)
    }
}
