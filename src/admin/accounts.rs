//! Admin accounts: a validated name and an argon2id password hash.

use serde::{Deserialize, Serialize};

use super::{AdminError, Hasher, Password};
use crate::directory::Directory;
use crate::protocol::now_ms;

/// Longest admin name.
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminAccount {
    pub name: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub created_at: i64,
    pub password_changed_at: i64,
}

/// A valid admin name: letters, digits and `._-@`, at most 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminName(String);

impl AdminName {
    pub fn parse(text: &str) -> Result<Self, AdminError> {
        let text = text.trim();
        let ok = (1..=MAX_NAME).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        match ok {
            true => Ok(Self(text.to_owned())),
            false => Err(AdminError::BadName),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether any admin exists yet.
pub fn any(directory: &Directory) -> Result<bool, AdminError> {
    Ok(!directory.with_store(|s| s.admins())?.is_empty())
}

/// Creates an admin. With `first_only`, only while there is none yet (the
/// setup link). Slow: hashes the password.
pub fn create(
    directory: &Directory,
    hasher: &Hasher,
    name: &AdminName,
    password: &Password,
    first_only: bool,
) -> Result<AdminAccount, AdminError> {
    let now = now_ms();
    let account = AdminAccount {
        name: name.as_str().to_owned(),
        password_hash: hasher.hash(password)?,
        created_at: now,
        password_changed_at: now,
    };
    if first_only {
        return match directory.with_store(|s| s.put_first_admin(&account))? {
            true => Ok(account),
            false => Err(AdminError::SetupLinkInvalid),
        };
    }
    if directory.with_store(|s| s.admin(name.as_str()))?.is_some() {
        return Err(AdminError::NameTaken(name.as_str().to_owned()));
    }
    directory.with_store(|s| s.put_admin(&account))?;
    Ok(account)
}

/// Sets a new password for an existing admin. Slow: hashes the password.
pub fn reset_password(
    directory: &Directory,
    hasher: &Hasher,
    name: &AdminName,
    password: &Password,
) -> Result<(), AdminError> {
    let mut account = directory
        .with_store(|s| s.admin(name.as_str()))?
        .ok_or_else(|| AdminError::NoSuchAdmin(name.as_str().to_owned()))?;
    account.password_hash = hasher.hash(password)?;
    account.password_changed_at = now_ms();
    directory.with_store(|s| s.put_admin(&account))?;
    Ok(())
}

/// The outcome of a sign-in check.
pub struct Checked {
    pub valid: bool,
    /// Whether the name is an admin's, for the audit record only: the answer to
    /// the client is the same either way.
    pub known: bool,
}

/// Checks a sign-in. Unknown names cost the same as wrong passwords and get
/// the same answer. Slow: verifies a hash.
pub fn check(
    directory: &Directory,
    hasher: &Hasher,
    name: &str,
    password: &Password,
) -> Result<Checked, AdminError> {
    let account = match AdminName::parse(name) {
        Ok(name) => directory.with_store(|s| s.admin(name.as_str()))?,
        Err(_) => None,
    };
    let valid = hasher.verify(password, account.as_ref().map(|a| a.password_hash.as_str()));
    Ok(Checked { valid, known: account.is_some() })
}
