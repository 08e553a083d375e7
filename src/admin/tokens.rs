//! Admin API tokens, for automation: shown once when created, stored as a
//! SHA-256 hash, presented as `Authorization: Bearer kat_…`.

use serde::{Deserialize, Serialize};

use super::{AdminError, AdminName, random_token, token_hash};
use crate::directory::Directory;
use crate::protocol::ids::random_bytes;
use crate::protocol::{b64, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminToken {
    /// How the token is listed and revoked; not the token.
    #[serde(default)]
    pub id: String,
    /// The admin the token acts as, in the audit log.
    pub name: String,
    pub hash: String,
    pub created_at: i64,
}

/// Creates a token that acts as `name`; returns the token, shown only once.
pub fn create(directory: &Directory, name: &AdminName) -> Result<String, AdminError> {
    Ok(issue(directory, name)?.0)
}

/// Creates a token; returns it (shown only once) and its record.
pub fn issue(directory: &Directory, name: &AdminName) -> Result<(String, AdminToken), AdminError> {
    let token = random_token("kat_");
    let id = format!("tok_{}", b64::encode(random_bytes::<9>()));
    let record = AdminToken {
        id,
        name: name.as_str().to_owned(),
        hash: token_hash(&token),
        created_at: now_ms(),
    };
    directory.with_store(|s| s.put_admin_token(&record))?;
    Ok((token, record))
}

/// Every token, oldest first.
pub fn list(directory: &Directory) -> Result<Vec<AdminToken>, AdminError> {
    let mut all = directory.with_store(|s| s.admin_tokens())?;
    all.sort_by_key(|t| t.created_at);
    Ok(all)
}

/// Removes a token by id; true when it existed.
pub fn revoke(directory: &Directory, id: &str) -> Result<bool, AdminError> {
    let found = list(directory)?.into_iter().find(|t| t.id == id);
    match found {
        Some(token) => Ok(directory.with_store(|s| s.remove_admin_token(&token.hash))?),
        None => Ok(false),
    }
}

/// The token record behind a presented token.
pub fn find(directory: &Directory, presented: &str) -> Result<Option<AdminToken>, AdminError> {
    // Keyed by SHA-256: lookup timing only concerns hashes of chosen values.
    Ok(directory.with_store(|s| s.admin_token(&token_hash(presented)))?)
}
