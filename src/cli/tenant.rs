//! `keyri tenant …`: runs on the database file when no server holds it, and
//! through the running server's admin socket when one does.

use clap::Subcommand;
use serde_json::Value;

use super::execute;
use crate::config::Config;
use crate::ops::{self, Command};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its app key and API secret (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// An allowed widget origin, such as https://app.example.com (repeatable).
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// Allow widgets without an Origin header (TV and desktop apps).
        #[arg(long)]
        allow_native: bool,
        /// Where codes point, such as https://app.example.com/keyri or myapp://keyri.
        #[arg(long)]
        scan_url: Option<String>,
        /// What a risk signal does: show, warn (the default) or refuse, as
        /// signal=action, e.g. different_country=refuse (repeatable).
        #[arg(long = "risk", value_parser = crate::risk::parse_rule)]
        risk: Vec<(String, crate::risk::Action)>,
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Issue a new API secret; the old one keeps working for the grace period.
    RotateSecret {
        /// Tenant id, app key or name.
        tenant: String,
        /// How long the old secret keeps working: 90s, 15m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        grace: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new app key; the old one keeps working for the overlap, since
    /// apps in the field embed it.
    RotateAppKey {
        /// Tenant id, app key or name.
        tenant: String,
        /// How long the old app key keeps working: 90s, 15m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        overlap: String,
        #[arg(long)]
        json: bool,
    },
    /// Refuse the tenant's keys and close its open widget sockets at once.
    Disable {
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Accept the tenant's keys again.
    Enable {
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an API secret at once; the next call that uses it gets 401.
    RevokeSecret {
        /// Tenant id, app key or name.
        tenant: String,
        /// The secret's id (sec_…), as the dashboard and the admin API list it.
        secret_id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, command: TenantCommand) -> Result<(), String> {
    let (command, json) = match command {
        TenantCommand::Create { name, origins, allow_native, scan_url, risk, json } => {
            if origins.is_empty() && !allow_native {
                eprintln!(
                    "warning: with no --origin and no --allow-native, no widget can connect \
                     for this tenant yet"
                );
            }
            let risk_policy = risk.into_iter().collect();
            (Command::TenantCreate { name, origins, allow_native, scan_url, risk_policy }, json)
        }
        TenantCommand::List { json } => (Command::TenantList, json),
        TenantCommand::RotateAppKey { tenant, overlap, json } => {
            let overlap_secs = ops::parse_duration(&overlap)?;
            (Command::TenantRotateAppKey { tenant, overlap_secs }, json)
        }
        TenantCommand::Disable { tenant, json } => (Command::TenantDisable { tenant }, json),
        TenantCommand::Enable { tenant, json } => (Command::TenantEnable { tenant }, json),
        TenantCommand::RevokeSecret { tenant, secret_id, json } => {
            (Command::TenantRevokeSecret { tenant, secret_id }, json)
        }
        TenantCommand::RotateSecret { tenant, grace, json } => {
            let grace_secs = ops::parse_duration(&grace)?;
            (Command::TenantRotateSecret { tenant, grace_secs }, json)
        }
    };
    let value = execute(config, command)?;
    print(&value, json);
    Ok(())
}

fn print(value: &Value, json: bool) {
    if json {
        say!("{value}");
        return;
    }
    let rows = match value {
        Value::Array(rows) => rows.clone(),
        one => vec![one.clone()],
    };
    if rows.is_empty() {
        say!("no tenants");
    }
    for row in rows {
        say!("{}  {}", row["id"].as_str().unwrap_or(""), row["name"].as_str().unwrap_or(""));
        say!("  app key:  {}", row["appKey"].as_str().unwrap_or(""));
        let now = crate::protocol::now_ms();
        for old in row["previousAppKeys"].as_array().into_iter().flatten() {
            let Some(until) = old["expiresAt"].as_i64().filter(|until| *until > now) else {
                continue;
            };
            let key = old["appKey"].as_str().unwrap_or("");
            say!("  previous app key: {key} (accepted until {})", super::format_time(until));
        }
        let origins: Vec<&str> = row["origins"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        say!("  origins:  {}", origins.join(", "));
        for secret in row["secrets"].as_array().into_iter().flatten() {
            let until = secret["expiresAt"].as_i64().map(super::format_time);
            let label = secret["label"].as_str().filter(|l| !l.is_empty());
            say!(
                "  secret:   {}{}{}",
                secret["id"].as_str().unwrap_or(""),
                label.map(|l| format!(" {l}")).unwrap_or_default(),
                until.map(|t| format!(" (until {t})")).unwrap_or_default()
            );
        }
        if let Some(secret) = row["apiSecret"].as_str() {
            say!("  API secret (shown only now, store it safely): {secret}");
            say!("  secret id: {}", row["secretId"].as_str().unwrap_or(""));
        }
        if let Some(id) = row["revokedSecretId"].as_str() {
            say!("  revoked secret: {id}");
        }
        if let Some(until) = row["previousValidUntil"].as_i64() {
            let what = if row["apiSecret"].is_string() { "secret" } else { "app key" };
            say!("  previous {what} valid until: {}", super::format_time(until));
        }
        if row["enabled"] == Value::Bool(false) {
            say!("  disabled");
        }
    }
}
