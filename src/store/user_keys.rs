//! Device keys in the store.

use redb::{ReadableDatabase, ReadableTable};

use super::tables::{USER_INDEX, USER_KEYS, user_key, user_prefix};
use super::{Store, StoreError};
use crate::auth::UserKey;
use crate::auth::keys::MAX_KEYS_PER_USER;

/// Why a key could not be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddKeyError {
    #[error("this public key is already registered")]
    AlreadyRegistered,
    #[error("the user already has {MAX_KEYS_PER_USER} keys")]
    TooManyKeys,
}

impl Store {
    pub fn user_key(&self, tenant: &str, key_id: &str) -> Result<Option<UserKey>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(USER_KEYS)?;
        let found = table.get(user_key(tenant, key_id).as_str())?;
        Ok(found.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// A user's keys, revoked ones included, oldest first.
    pub fn user_keys(&self, tenant: &str, username: &str) -> Result<Vec<UserKey>, StoreError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(USER_INDEX)?;
        let keys = txn.open_table(USER_KEYS)?;
        let prefix = user_prefix(tenant, username);
        let mut found = Vec::new();
        for row in index.range(prefix.as_str()..)? {
            let (entry, _) = row?;
            let Some(key_id) = entry.value().strip_prefix(prefix.as_str()) else { break };
            if let Some(record) = keys.get(user_key(tenant, key_id).as_str())? {
                found.push(serde_json::from_slice::<UserKey>(record.value())?);
            }
        }
        found.sort_by_key(|k| k.created_at);
        Ok(found)
    }

    /// Adds a key, refusing one already registered to anyone in the tenant.
    pub fn add_user_key(
        &self,
        tenant: &str,
        key: &UserKey,
    ) -> Result<Result<(), AddKeyError>, StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut keys = txn.open_table(USER_KEYS)?;
            let mut index = txn.open_table(USER_INDEX)?;
            let id = user_key(tenant, &key.key_id);
            if keys.get(id.as_str())?.is_some() {
                return Ok(Err(AddKeyError::AlreadyRegistered));
            }
            let prefix = user_prefix(tenant, &key.username);
            let mut count = 0;
            for row in index.range(prefix.as_str()..)? {
                if !row?.0.value().starts_with(prefix.as_str()) {
                    break;
                }
                count += 1;
            }
            if count >= MAX_KEYS_PER_USER {
                return Ok(Err(AddKeyError::TooManyKeys));
            }
            let json = serde_json::to_vec(key)?;
            keys.insert(id.as_str(), json.as_slice())?;
            let entry = format!("{prefix}{}", key.key_id);
            index.insert(entry.as_str(), [].as_slice())?;
        }
        txn.commit()?;
        Ok(Ok(()))
    }

    /// Reads a key record and changes it in one write transaction, so that
    /// concurrent changes (a revocation, a last use) never undo each other.
    /// Returns the record as written, or `None` if there is no such key.
    pub fn change_user_key(
        &self,
        tenant: &str,
        key_id: &str,
        change: impl FnOnce(&mut UserKey),
    ) -> Result<Option<UserKey>, StoreError> {
        let txn = self.db.begin_write()?;
        let changed = {
            let mut keys = txn.open_table(USER_KEYS)?;
            let id = user_key(tenant, key_id);
            let current: Option<UserKey> =
                keys.get(id.as_str())?.map(|v| serde_json::from_slice(v.value())).transpose()?;
            match current {
                None => None,
                Some(mut key) => {
                    change(&mut key);
                    let json = serde_json::to_vec(&key)?;
                    keys.insert(id.as_str(), json.as_slice())?;
                    Some(key)
                }
            }
        };
        txn.commit()?;
        Ok(changed)
    }
}
