//! Operator commands, run the same way whether the command line opened the
//! database itself or reached the running server over its admin socket, so
//! the output is identical either way.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{self, Actor, AuditLog, Event, Record, action};
use crate::config::Config;
use crate::directory::Directory;
use crate::protocol::b64;
use crate::tenants::{NewTenant, Tenant};

/// Longest grace period for a rotated secret: 30 days.
pub const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    #[serde(rename_all = "camelCase")]
    TenantCreate {
        name: String,
        origins: Vec<String>,
        allow_native: bool,
        scan_url: Option<String>,
        #[serde(default)]
        risk_policy: crate::risk::Policy,
    },
    TenantList,
    #[serde(rename_all = "camelCase")]
    TenantRotateSecret {
        tenant: String,
        grace_secs: u64,
    },
    AuditVerify,
    /// One page of records, oldest first, from sequence `from`.
    #[serde(rename_all = "camelCase")]
    AuditExport {
        from: u64,
        limit: usize,
        tenant: Option<String>,
        since_ms: Option<i64>,
    },
    /// A consistent copy of the database to a new file.
    Backup {
        path: std::path::PathBuf,
    },
}

impl Command {
    /// Whether the command changes something and so must be audited.
    pub fn records(&self) -> bool {
        matches!(self, Self::TenantCreate { .. } | Self::TenantRotateSecret { .. })
    }
}

/// Most records one export page holds.
pub const MAX_EXPORT_PAGE: usize = 1000;

/// Runs a command; the error is one line meant for the operator.
pub fn execute(
    directory: &Directory,
    audit: &AuditLog,
    config: &Config,
    command: Command,
) -> Result<Value, String> {
    let record = |event: Event| audit.record_blocking(event).map_err(|e| e.to_string());
    match command {
        Command::TenantCreate { name, origins, allow_native, scan_url, risk_policy } => {
            let new = NewTenant {
                name,
                origins,
                allow_native,
                scan_url,
                session_lifetime_secs: config.sessions.lifetime_secs,
                max_sealed_bytes: config.sessions.max_sealed_bytes,
                demo: false,
                risk_policy,
            };
            let (tenant, secret) = directory.create(new).map_err(|e| e.to_string())?;
            tracing::info!(tenant = %tenant.id, "tenant created");
            record(
                Event::new(Some(&tenant.id), Actor::Operator, action::TENANT_CREATE)
                    .detail("name", tenant.name.clone())
                    .detail("origins", tenant.origins.clone()),
            )?;
            let mut out = tenant_json(&tenant);
            out["apiSecret"] = json!(secret.expose());
            Ok(out)
        }
        Command::TenantList => {
            let tenants = directory.list().map_err(|e| e.to_string())?;
            Ok(Value::Array(tenants.iter().map(tenant_json).collect()))
        }
        Command::TenantRotateSecret { tenant, grace_secs } => {
            if grace_secs > MAX_GRACE_SECS {
                return Err(format!("grace period is longer than {MAX_GRACE_SECS} seconds"));
            }
            let grace_ms = i64::try_from(grace_secs * 1000).unwrap_or(i64::MAX);
            let (tenant, secret) = directory
                .update(&tenant, |t| t.rotate_secret(grace_ms))
                .map_err(|e| e.to_string())?;
            tracing::info!(tenant = %tenant.id, grace_secs, "api secret rotated");
            record(
                Event::new(Some(&tenant.id), Actor::Operator, action::SECRET_ROTATE)
                    .detail("graceSecs", grace_secs),
            )?;
            let mut out = tenant_json(&tenant);
            out["apiSecret"] = json!(secret.expose());
            out["previousValidUntil"] =
                json!(tenant.secrets.iter().filter_map(|s| s.expires_at).max());
            Ok(out)
        }
        Command::AuditVerify => {
            let report = directory.with_store(audit::verify_chain).map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        Command::AuditExport { from, limit, tenant, since_ms } => {
            let page = directory
                .with_store(|s| s.audit_page(from, limit.clamp(1, MAX_EXPORT_PAGE)))
                .map_err(|e| e.to_string())?;
            let next = page.last().map(|r| r.seq + 1);
            let mut records = Vec::new();
            for row in page {
                let record: Record = serde_json::from_slice(&row.body)
                    .map_err(|_| format!("audit record {} is unreadable", row.seq))?;
                let wanted = tenant.as_ref().is_none_or(|t| record.tenant.as_ref() == Some(t))
                    && since_ms.is_none_or(|since| record.at >= since);
                if wanted {
                    let mut line = serde_json::to_value(&record).map_err(|e| e.to_string())?;
                    line["hash"] = json!(b64::encode(row.hash));
                    records.push(line);
                }
            }
            Ok(json!({ "records": records, "next": next }))
        }
        Command::Backup { path } => {
            let rows = directory.with_store(|s| s.backup_to(&path)).map_err(|e| e.to_string())?;
            tracing::info!(rows, "backup written");
            Ok(json!({ "path": path, "rows": rows }))
        }
    }
}

/// The public view of a tenant: no secret hashes.
pub fn tenant_json(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id,
        "name": tenant.name,
        "appKey": tenant.app_key,
        "origins": tenant.origins,
        "allowNative": tenant.allow_native,
        "scanUrl": tenant.scan_url,
        "riskPolicy": tenant.risk_policy,
        "enabled": tenant.enabled,
        "createdAt": tenant.created_at,
    })
}

/// Parses `90s`, `15m`, `24h`, `7d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = digits.parse().map_err(|_| format!("bad duration {text:?}"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("bad duration {text:?}: use s, m, h or d")),
    };
    value.checked_mul(scale).ok_or_else(|| format!("duration {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_garbage() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
