//! Every table in the database, in one place.

use redb::TableDefinition;

/// Tenant id → tenant record as JSON.
pub const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
/// App key → tenant id.
pub const APP_KEYS: TableDefinition<&str, &str> = TableDefinition::new("app_keys");
/// Hash of an API secret → tenant id.
pub const SECRETS: TableDefinition<&str, &str> = TableDefinition::new("api_secrets");
