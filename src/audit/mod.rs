//! The audit trail: every security-relevant event, durable before the call
//! that caused it answers, chained by hashes so that an edit or a removal
//! shows, and written in groups so that durability costs logins little.

mod chain;
pub mod writer;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use chain::{Break, Verification, verify_chain};
pub use writer::{AuditError, AuditLog};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An operator on the server's machine (command line or admin socket).
    Operator,
    /// A tenant's backend, by the id of the API secret it used.
    ApiSecret { id: String },
    /// A phone signing with a device key.
    DeviceKey { id: String },
    /// An unauthenticated client, by address.
    Anonymous { ip: String },
    /// The server itself, such as a session running out of time.
    System,
    /// A signed-in administrator, in the dashboard or through the admin API.
    Admin { name: String },
}

impl Actor {
    /// A short text for lists and filters, such as `admin:alice`.
    pub fn label(&self) -> String {
        match self {
            Self::Operator => "operator".into(),
            Self::ApiSecret { id } => format!("api_secret:{id}"),
            Self::DeviceKey { id } => format!("device_key:{id}"),
            Self::Anonymous { ip } => format!("anonymous:{ip}"),
            Self::System => "system".into(),
            Self::Admin { name } => format!("admin:{name}"),
        }
    }
}

/// What a caller hands to the log.
#[derive(Debug, Clone)]
pub struct Event {
    pub tenant: Option<String>,
    pub actor: Actor,
    pub action: &'static str,
    /// `success`, or the refusal's error code.
    pub outcome: String,
    /// Small structured facts; never a payload, a secret or a full token.
    pub details: Value,
}

impl Event {
    pub fn new(tenant: Option<&str>, actor: Actor, action: &'static str) -> Self {
        Self {
            tenant: tenant.map(str::to_owned),
            actor,
            action,
            outcome: "success".into(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = outcome.to_owned();
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// A record as stored and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub seq: u64,
    pub at: i64,
    pub tenant: Option<String>,
    pub actor: Actor,
    pub action: String,
    pub outcome: String,
    pub details: Value,
    /// base64url SHA-256 of the previous record's body.
    pub prev: String,
}

/// Actions, named `<object>.<verb>`.
pub mod action {
    pub const SESSION_CONFIRM: &str = "session.confirm";
    pub const SESSION_DENY: &str = "session.deny";
    pub const SESSION_EXPIRE: &str = "session.expire";
    pub const SESSION_REFUSE: &str = "session.refuse";
    pub const LOGIN_VERIFY: &str = "login.verify";
    pub const KEY_REGISTER: &str = "user_key.register";
    pub const KEY_REVOKE: &str = "user_key.revoke";
    pub const TENANT_CREATE: &str = "tenant.create";
    pub const SECRET_ROTATE: &str = "secret.rotate";
    pub const SECRET_CREATE: &str = "secret.create";
    pub const SECRET_REVOKE: &str = "secret.revoke";
    pub const APP_KEY_ROTATE: &str = "app_key.rotate";
    pub const TENANT_UPDATE: &str = "tenant.update";
    pub const TENANT_DISABLE: &str = "tenant.disable";
    pub const TENANT_ENABLE: &str = "tenant.enable";
    pub const TENANT_DELETE: &str = "tenant.delete";
    pub const ADMIN_SETUP: &str = "admin.setup";
    pub const ADMIN_CREATE: &str = "admin.create";
    pub const ADMIN_RESET_PASSWORD: &str = "admin.reset_password";
    pub const ADMIN_SIGN_IN: &str = "admin.sign_in";
    pub const ADMIN_SIGN_OUT: &str = "admin.sign_out";
    pub const ADMIN_TOKEN_CREATE: &str = "admin_token.create";
    pub const ADMIN_TOKEN_REVOKE: &str = "admin_token.revoke";
    pub const AUDIT_EXPORT: &str = "audit.export";
    pub const AUDIT_PRUNE: &str = "audit.prune";

    /// Every action, for the audit page's filter.
    pub const ALL: [&str; 25] = [
        SESSION_CONFIRM,
        SESSION_DENY,
        SESSION_EXPIRE,
        SESSION_REFUSE,
        LOGIN_VERIFY,
        KEY_REGISTER,
        KEY_REVOKE,
        TENANT_CREATE,
        TENANT_UPDATE,
        TENANT_DISABLE,
        TENANT_ENABLE,
        TENANT_DELETE,
        SECRET_CREATE,
        SECRET_ROTATE,
        SECRET_REVOKE,
        APP_KEY_ROTATE,
        ADMIN_SETUP,
        ADMIN_CREATE,
        ADMIN_RESET_PASSWORD,
        ADMIN_SIGN_IN,
        ADMIN_SIGN_OUT,
        ADMIN_TOKEN_CREATE,
        ADMIN_TOKEN_REVOKE,
        AUDIT_EXPORT,
        AUDIT_PRUNE,
    ];
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn the_filter_offers_every_action_once() {
        let source = include_str!("mod.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|rest| rest.split_once(": &str = \""))
            .map(|(_, value)| value.trim_end_matches("\";"))
            .collect();
        assert_eq!(declared.len(), action::ALL.len(), "{declared:?}");
        for name in declared {
            assert_eq!(action::ALL.iter().filter(|a| **a == name).count(), 1, "{name}");
        }
    }
}
