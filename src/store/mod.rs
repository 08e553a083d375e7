//! Persistent state in one redb file. Every write commits with redb's default
//! immediate durability, so a call that changed something answers only after
//! the change is on disk, and a crash leaves a file that opens.

mod admins;
mod audit;
mod backup;
mod tables;
mod user_keys;

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::tenants::{Tenant, TenantError};
pub use audit::{ChainPoint, StoredRecord};
use tables::{ADMIN_TOKENS, ADMINS, APP_KEYS, AUDIT, META, TENANTS, USER_INDEX, USER_KEYS};
pub use user_keys::AddKeyError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is in use by another process (is `keyri serve` running?)")]
    Locked,
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(
        "audit record {0} is already stored but lies past the log's head; nothing was \
         written (run `keyri audit verify`)"
    )]
    AuditOverwrite(u64),
    #[error(
        "the audit log's head ({head}) does not match its newest record ({newest}): the file \
         was changed outside keyri, and nothing will be recorded or changed until it is \
         fixed; run `keyri audit verify`, then put the latest backup in place"
    )]
    AuditInconsistent { head: String, newest: String },
    #[error(
        "the database {0} is damaged and cannot be read; stop the server and put the latest \
         backup in its place"
    )]
    Damaged(String),
    #[error("the database is closed because the server is stopping")]
    Closed,
    #[error("cannot create {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.into()) }
        }
    )*};
}
from_redb!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

pub struct Store {
    db: Database,
    path: std::path::PathBuf,
}

impl Store {
    /// Opens (or creates) the database file. Fails with `Locked` while
    /// another process holds it, and with `Damaged` when the file's pages
    /// cannot be read.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // redb panics on some damaged pages rather than returning an error.
        let opened = std::panic::catch_unwind(|| Self::open_unguarded(path));
        opened.unwrap_or_else(|_| Err(StoreError::Damaged(path.display().to_string())))
    }

    /// The error for a file whose pages cannot be read.
    pub fn damaged(&self) -> StoreError {
        StoreError::Damaged(self.path.display().to_string())
    }

    fn open_unguarded(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => {
                StoreError::Damaged(path.display().to_string())
            }
            other => StoreError::Db(other.into()),
        })?;
        // Secret hashes, device keys and the audit log: for the owner only,
        // even in a data dir that others may list.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;

        let txn = db.begin_write()?;
        txn.open_table(TENANTS)?;
        txn.open_table(APP_KEYS)?;
        txn.open_table(USER_KEYS)?;
        txn.open_table(USER_INDEX)?;
        txn.open_table(AUDIT)?;
        txn.open_table(META)?;
        txn.open_table(ADMINS)?;
        txn.open_table(ADMIN_TOKENS)?;
        txn.commit()?;
        Ok(Self { db, path: path.to_owned() })
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TENANTS)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (_, value) = row?;
            all.push(serde_json::from_slice(value.value())?);
        }
        all.sort_by_key(|t: &Tenant| t.created_at);
        Ok(all)
    }

    pub fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TENANTS)?;
        let found = table.get(id)?;
        Ok(found.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// Adds a new tenant; names are unique, ignoring case.
    pub fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let taken =
            self.tenants()?.iter().any(|t| t.name.to_lowercase() == tenant.name.to_lowercase());
        if taken {
            return Err(TenantError::NameTaken(tenant.name.clone()).into());
        }
        self.put_tenant(tenant)
    }

    /// Writes a tenant and its indexes in one transaction.
    pub fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut tenants = txn.open_table(TENANTS)?;
            let mut app_keys = txn.open_table(APP_KEYS)?;

            let previous: Option<Tenant> = tenants
                .get(tenant.id.as_str())?
                .map(|v| serde_json::from_slice(v.value()))
                .transpose()?;
            if let Some(old) = previous {
                app_keys.remove(old.app_key.as_str())?;
            }

            let json = serde_json::to_vec(tenant)?;
            tenants.insert(tenant.id.as_str(), json.as_slice())?;
            app_keys.insert(tenant.app_key.as_str(), tenant.id.as_str())?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Store {
    /// Removes a tenant, its app key index and its device keys.
    pub fn delete_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut tenants = txn.open_table(TENANTS)?;
            let mut app_keys = txn.open_table(APP_KEYS)?;
            tenants.remove(tenant.id.as_str())?;
            app_keys.remove(tenant.app_key.as_str())?;
            let prefix = format!("{}\0", tenant.id);
            for table in [USER_KEYS, USER_INDEX] {
                let mut rows = txn.open_table(table)?;
                let keys: Vec<String> = rows
                    .range(prefix.as_str()..)?
                    .map_while(|row| row.ok().map(|(k, _)| k.value().to_owned()))
                    .take_while(|k| k.starts_with(&prefix))
                    .collect();
                for key in keys {
                    rows.remove(key.as_str())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Creates a directory readable only by its owner (the data dir holds the
/// database and the admin socket).
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;

    let io = |source| StoreError::Io { path: dir.display().to_string(), source };
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::NewTenant;

    fn tenant(name: &str) -> Tenant {
        let new = NewTenant {
            name: name.into(),
            origins: vec!["https://a.example".into()],
            session_lifetime_secs: 60,
            max_sealed_bytes: 1024,
            ..NewTenant::default()
        };
        new.build().expect("valid").0
    }

    #[test]
    fn tenants_survive_reopening_and_updates_replace_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/keyri.redb");
        let mut acme = tenant("Acme");
        {
            let store = Store::open(&path).expect("opens");
            store.insert_tenant(&acme).expect("inserted");
        }
        let store = Store::open(&path).expect("reopens");
        assert_eq!(store.tenants().expect("lists"), vec![acme.clone()]);

        acme.rotate_secret(0);
        store.put_tenant(&acme).expect("updated");
        assert_eq!(store.tenant(&acme.id).expect("reads"), Some(acme.clone()));
        assert_eq!(store.tenants().expect("lists").len(), 1);
    }

    #[test]
    fn names_are_unique_ignoring_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("k.redb")).expect("opens");
        store.insert_tenant(&tenant("Acme")).expect("first");
        let err = store.insert_tenant(&tenant("ACME")).expect_err("refused");
        assert!(matches!(err, StoreError::Tenant(TenantError::NameTaken(_))));
        assert_eq!(store.tenants().expect("lists").len(), 1);
    }

    #[test]
    fn a_second_open_of_the_same_file_reports_locked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.redb");
        let _held = Store::open(&path).expect("opens");
        assert!(matches!(Store::open(&path), Err(StoreError::Locked)));
    }
}
