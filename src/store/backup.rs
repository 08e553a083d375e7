//! A consistent copy of the whole database, made from one read snapshot, so
//! it can be taken while the server runs and writes.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::tables::{ADMIN_TOKENS, ADMINS, APP_KEYS, AUDIT, META, TENANTS, USER_INDEX, USER_KEYS};
use super::{Store, StoreError};

fn copy<K, V>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
    for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
{
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    let mut rows = 0;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
        rows += 1;
    }
    Ok(rows)
}

impl Store {
    /// Writes a copy of every table to a new database file at `path`, which
    /// must not exist yet. Returns how many rows were copied.
    pub fn backup_to(&self, path: &Path) -> Result<u64, StoreError> {
        if path.exists() {
            return Err(StoreError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
            });
        }
        // The copy holds everything the database does: only its owner may
        // read it, from the moment it exists.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        let snapshot = self.db.begin_read()?;
        let target = Database::create(path).map_err(|e| StoreError::Db(e.into()))?;
        let txn = target.begin_write()?;
        let rows = copy(&snapshot, &txn, TENANTS)?
            + copy(&snapshot, &txn, APP_KEYS)?
            + copy(&snapshot, &txn, USER_KEYS)?
            + copy(&snapshot, &txn, USER_INDEX)?
            + copy(&snapshot, &txn, AUDIT)?
            + copy(&snapshot, &txn, META)?
            + copy(&snapshot, &txn, ADMINS)?
            + copy(&snapshot, &txn, ADMIN_TOKENS)?;
        txn.commit()?;
        Ok(rows)
    }
}
