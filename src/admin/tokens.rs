//! Admin API tokens, for automation: shown once when created, stored as a
//! SHA-256 hash, presented as `Authorization: Bearer kat_…`.

use serde::{Deserialize, Serialize};

use super::{AdminError, AdminName, random_token, token_hash};
use crate::directory::Directory;
use crate::protocol::now_ms;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminToken {
    /// The admin the token acts as, in the audit log.
    pub name: String,
    pub hash: String,
    pub created_at: i64,
}

/// Creates a token that acts as `name`; returns the token, shown only once.
pub fn create(directory: &Directory, name: &AdminName) -> Result<String, AdminError> {
    let token = random_token("kat_");
    let record = AdminToken {
        name: name.as_str().to_owned(),
        hash: token_hash(&token),
        created_at: now_ms(),
    };
    directory.with_store(|s| s.put_admin_token(&record))?;
    Ok(token)
}

/// The token record behind a presented token.
pub fn find(directory: &Directory, presented: &str) -> Result<Option<AdminToken>, AdminError> {
    // Keyed by SHA-256: lookup timing only concerns hashes of chosen values.
    Ok(directory.with_store(|s| s.admin_token(&token_hash(presented)))?)
}
