//! Every table in the database, in one place.

use redb::TableDefinition;

/// Tenant id → tenant record as JSON.
pub const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
/// App key → tenant id.
pub const APP_KEYS: TableDefinition<&str, &str> = TableDefinition::new("app_keys");
/// `tenant id \0 key id` → device key record as JSON.
pub const USER_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_keys");
/// `tenant id \0 username \0 key id` → nothing: a user's keys in order.
pub const USER_INDEX: TableDefinition<&str, &[u8]> = TableDefinition::new("user_key_index");

/// The key of a device key record. Ids and usernames hold no control
/// characters, so NUL separates them unambiguously.
pub fn user_key(tenant: &str, key_id: &str) -> String {
    format!("{tenant}\0{key_id}")
}

/// The prefix under which a user's keys are indexed.
pub fn user_prefix(tenant: &str, username: &str) -> String {
    format!("{tenant}\0{username}\0")
}
/// Audit sequence number → 32-byte SHA-256 of the body, then the body JSON.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Small named values: the audit head and checkpoint.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Admin name → admin account as JSON (argon2id hash, never a password).
pub const ADMINS: TableDefinition<&str, &[u8]> = TableDefinition::new("admins");
/// base64url SHA-256 of an admin API token → token record as JSON.
pub const ADMIN_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("admin_tokens");
