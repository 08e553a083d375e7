//! Admin accounts and admin API tokens. Accounts hold an argon2id hash and
//! tokens a SHA-256 hash: neither a password nor a token is ever stored.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::tables::{ADMIN_TOKENS, ADMINS};
use super::{Store, StoreError};
use crate::admin::{AdminAccount, AdminToken};

impl Store {
    pub fn admins(&self) -> Result<Vec<AdminAccount>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ADMINS)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (_, value) = row?;
            all.push(serde_json::from_slice(value.value())?);
        }
        Ok(all)
    }

    pub fn admin(&self, name: &str) -> Result<Option<AdminAccount>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ADMINS)?;
        let found = table.get(name)?;
        Ok(found.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// Creates or replaces an account.
    pub fn put_admin(&self, account: &AdminAccount) -> Result<(), StoreError> {
        let json = serde_json::to_vec(account)?;
        let txn = self.db.begin_write()?;
        txn.open_table(ADMINS)?.insert(account.name.as_str(), json.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Creates an account only if no account exists yet: the first-run
    /// setup link must not work twice, even when two requests race.
    pub fn put_first_admin(&self, account: &AdminAccount) -> Result<bool, StoreError> {
        let json = serde_json::to_vec(account)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ADMINS)?;
            if !table.is_empty()? {
                return Ok(false);
            }
            table.insert(account.name.as_str(), json.as_slice())?;
        }
        txn.commit()?;
        Ok(true)
    }

    pub fn admin_token(&self, hash: &str) -> Result<Option<AdminToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ADMIN_TOKENS)?;
        let found = table.get(hash)?;
        Ok(found.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    pub fn put_admin_token(&self, token: &AdminToken) -> Result<(), StoreError> {
        let json = serde_json::to_vec(token)?;
        let txn = self.db.begin_write()?;
        txn.open_table(ADMIN_TOKENS)?.insert(token.hash.as_str(), json.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ADMIN_TOKENS)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (_, value) = row?;
            all.push(serde_json::from_slice(value.value())?);
        }
        Ok(all)
    }

    pub fn remove_admin_token(&self, hash: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = txn.open_table(ADMIN_TOKENS)?.remove(hash)?.is_some();
        txn.commit()?;
        Ok(removed)
    }
}
