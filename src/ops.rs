//! Operator commands, run the same way whether the command line opened the
//! database itself or reached the running server over its admin socket, so
//! the output is identical either way.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::admin::{AdminAuth, AdminName, Hasher, Password, accounts, tokens};
use crate::audit::{self, Actor, AuditLog, Event, Record, action};
use crate::config::Config;
use crate::directory::Directory;
use crate::protocol::b64;
use crate::relay::Registry;
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
    #[serde(rename_all = "camelCase")]
    TenantRevokeSecret {
        tenant: String,
        secret_id: String,
    },
    AdminCreate {
        name: String,
        password: Redacted,
    },
    AdminResetPassword {
        name: String,
        password: Redacted,
    },
    AdminTokenCreate {
        name: String,
    },
    AdminTokenList,
    AdminTokenRevoke {
        id: String,
    },
    #[serde(rename_all = "camelCase")]
    TenantRotateAppKey {
        tenant: String,
        overlap_secs: u64,
    },
    TenantDisable {
        tenant: String,
    },
    TenantEnable {
        tenant: String,
    },
}

/// A password on its way to the server: never shown by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Command {
    /// Whether the command changes something and so must be audited.
    pub fn records(&self) -> bool {
        matches!(
            self,
            Self::TenantCreate { .. }
                | Self::TenantRotateSecret { .. }
                | Self::TenantRevokeSecret { .. }
                | Self::AdminCreate { .. }
                | Self::AdminResetPassword { .. }
                | Self::AdminTokenCreate { .. }
                | Self::AdminTokenRevoke { .. }
                | Self::TenantRotateAppKey { .. }
                | Self::TenantDisable { .. }
                | Self::TenantEnable { .. }
        )
    }
}

/// Most records one export page holds.
pub const MAX_EXPORT_PAGE: usize = 1000;

/// What only a running server has: its dashboard sign-ins and live sessions.
pub struct Live {
    pub admin: std::sync::Arc<AdminAuth>,
    pub registry: std::sync::Arc<Registry>,
}

/// Runs a command; the error is one line meant for the operator. `live` is
/// there when the command came through the admin socket: a password reset
/// then also ends that admin's sign-ins, and disabling a tenant closes its
/// widget sockets.
pub fn execute(
    directory: &Directory,
    audit: &AuditLog,
    config: &Config,
    live: Option<&Live>,
    command: Command,
) -> Result<Value, String> {
    let admin = live.map(|l| l.admin.as_ref());
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
            out["secretId"] = json!(tenant.secrets.last().map(|s| &s.id));
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
            let secret_id = tenant.secrets.last().map(|s| s.id.clone());
            record(
                Event::new(Some(&tenant.id), Actor::Operator, action::SECRET_ROTATE)
                    .detail("secretId", secret_id.clone())
                    .detail("graceSecs", grace_secs),
            )?;
            let mut out = tenant_json(&tenant);
            out["apiSecret"] = json!(secret.expose());
            out["secretId"] = json!(secret_id);
            out["previousValidUntil"] =
                json!(tenant.secrets.iter().filter_map(|s| s.expires_at).max());
            Ok(out)
        }
        Command::AuditVerify => {
            let report = directory.with_store(audit::verify_chain).map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        Command::AuditExport { from, limit, tenant, since_ms } => {
            // A tenant by name, app key or id; a deleted one only by its id.
            let tenant = match tenant {
                Some(key) => match directory.find(&key) {
                    Ok(found) => Some(found.id),
                    Err(_) if key.starts_with("tn_") => Some(key),
                    Err(e) => return Err(format!("{e} (a deleted tenant goes by its tn_ id)")),
                },
                None => None,
            };
            let page = directory
                .with_store(|s| s.audit_page(from, limit.clamp(1, MAX_EXPORT_PAGE)))
                .map_err(|e| e.to_string())?;
            let next = page.last().map(|r| r.seq + 1);
            let mut records = Vec::new();
            // An unreadable record is named, not exported, and does not stop
            // the rest: an export is how a damaged log gets examined.
            let mut unreadable = Vec::new();
            for row in page {
                let Ok(record) = serde_json::from_slice::<Record>(&row.body) else {
                    unreadable.push(row.seq);
                    continue;
                };
                let wanted = tenant.as_ref().is_none_or(|t| record.tenant.as_ref() == Some(t))
                    && since_ms.is_none_or(|since| record.at >= since);
                if wanted {
                    let mut line = serde_json::to_value(&record).map_err(|e| e.to_string())?;
                    line["hash"] = json!(b64::encode(row.hash));
                    records.push(line);
                }
            }
            Ok(json!({ "records": records, "next": next, "unreadable": unreadable }))
        }
        Command::TenantRevokeSecret { tenant, secret_id } => {
            let (tenant, revoked) = directory
                .update(&tenant, |t| t.revoke_secret(&secret_id))
                .map_err(|e| e.to_string())?;
            revoked.map_err(|e| e.to_string())?;
            tracing::info!(tenant = %tenant.id, secret = %secret_id, "api secret revoked");
            record(
                Event::new(Some(&tenant.id), Actor::Operator, action::SECRET_REVOKE)
                    .detail("secretId", secret_id.clone()),
            )?;
            let mut out = tenant_json(&tenant);
            out["revokedSecretId"] = json!(secret_id);
            Ok(out)
        }
        Command::AdminCreate { name, password } => {
            let name = AdminName::parse(&name).map_err(|e| e.to_string())?;
            let password = Password::new(password.0).map_err(|e| e.to_string())?;
            let hasher = hasher(config)?;
            accounts::create(directory, &hasher, &name, &password, false)
                .map_err(|e| e.to_string())?;
            if let Some(admin) = admin {
                admin.setup.cancel();
            }
            tracing::info!(admin = %name.as_str(), "admin created");
            record(
                Event::new(None, Actor::Operator, action::ADMIN_CREATE)
                    .detail("name", name.as_str()),
            )?;
            Ok(json!({ "name": name.as_str(), "created": true }))
        }
        Command::AdminResetPassword { name, password } => {
            let name = AdminName::parse(&name).map_err(|e| e.to_string())?;
            let password = Password::new(password.0).map_err(|e| e.to_string())?;
            let hasher = hasher(config)?;
            accounts::reset_password(directory, &hasher, &name, &password)
                .map_err(|e| e.to_string())?;
            if let Some(admin) = admin {
                admin.sessions.remove_admin(name.as_str());
            }
            tracing::info!(admin = %name.as_str(), "admin password reset");
            record(
                Event::new(None, Actor::Operator, action::ADMIN_RESET_PASSWORD)
                    .detail("name", name.as_str()),
            )?;
            Ok(json!({ "name": name.as_str(), "passwordReset": true }))
        }
        Command::AdminTokenCreate { name } => {
            let name = AdminName::parse(&name).map_err(|e| e.to_string())?;
            let exists =
                directory.with_store(|s| s.admin(name.as_str())).map_err(|e| e.to_string())?;
            if exists.is_none() {
                return Err(format!("no admin named {:?}", name.as_str()));
            }
            let (token, made) = tokens::issue(directory, &name).map_err(|e| e.to_string())?;
            record(
                Event::new(None, Actor::Operator, action::ADMIN_TOKEN_CREATE)
                    .detail("name", name.as_str())
                    .detail("tokenId", made.id.clone()),
            )?;
            Ok(json!({ "name": name.as_str(), "id": made.id, "token": token }))
        }
        Command::AdminTokenList => {
            let all = tokens::list(directory).map_err(|e| e.to_string())?;
            let rows =
                all.iter().map(|t| json!({"id": t.id, "name": t.name, "createdAt": t.created_at}));
            Ok(Value::Array(rows.collect()))
        }
        Command::AdminTokenRevoke { id } => {
            if !tokens::revoke(directory, &id).map_err(|e| e.to_string())? {
                return Err(format!("no admin token {id:?}"));
            }
            record(
                Event::new(None, Actor::Operator, action::ADMIN_TOKEN_REVOKE)
                    .detail("tokenId", id.clone()),
            )?;
            Ok(json!({ "id": id, "revoked": true }))
        }
        Command::TenantRotateAppKey { tenant, overlap_secs } => {
            if overlap_secs > MAX_GRACE_SECS {
                return Err(format!("overlap is longer than {MAX_GRACE_SECS} seconds"));
            }
            let overlap_ms = i64::try_from(overlap_secs * 1000).unwrap_or(i64::MAX);
            let (tenant, app_key) = directory
                .update(&tenant, |t| t.rotate_app_key(overlap_ms))
                .map_err(|e| e.to_string())?;
            tracing::info!(tenant = %tenant.id, overlap_secs, "app key rotated");
            record(
                Event::new(Some(&tenant.id), Actor::Operator, action::APP_KEY_ROTATE)
                    .detail("appKey", app_key)
                    .detail("overlapSecs", overlap_secs),
            )?;
            let mut out = tenant_json(&tenant);
            out["previousValidUntil"] =
                json!(tenant.previous_app_keys.iter().map(|k| k.expires_at).max());
            Ok(out)
        }
        Command::TenantDisable { tenant } => {
            let tenant = switch(directory, live, &tenant, false)?;
            record(Event::new(Some(&tenant.id), Actor::Operator, action::TENANT_DISABLE))?;
            Ok(tenant_json(&tenant))
        }
        Command::TenantEnable { tenant } => {
            let tenant = switch(directory, live, &tenant, true)?;
            record(Event::new(Some(&tenant.id), Actor::Operator, action::TENANT_ENABLE))?;
            Ok(tenant_json(&tenant))
        }
        Command::Backup { path } => {
            let rows = directory.with_store(|s| s.backup_to(&path)).map_err(|e| e.to_string())?;
            tracing::info!(rows, "backup written");
            Ok(json!({ "path": path, "rows": rows }))
        }
    }
}

/// Enables or disables a tenant; disabling on a running server also closes
/// its widget sockets.
fn switch(
    directory: &Directory,
    live: Option<&Live>,
    tenant: &str,
    enabled: bool,
) -> Result<Tenant, String> {
    let (tenant, ()) =
        directory.update(tenant, |t| t.enabled = enabled).map_err(|e| e.to_string())?;
    if let (false, Some(live)) = (enabled, live) {
        live.registry.close_tenant(&tenant.id);
    }
    tracing::info!(tenant = %tenant.id, enabled, "tenant switched");
    Ok(tenant)
}

fn hasher(config: &Config) -> Result<Hasher, String> {
    let admin = &config.admin;
    Hasher::new(admin.password_hash_memory_kib, admin.password_hash_passes)
        .map_err(|e| e.to_string())
}

/// The public view of a tenant: its secrets by id and label, never a hash.
pub fn tenant_json(tenant: &Tenant) -> Value {
    let secrets: Vec<Value> = tenant
        .secrets
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "label": s.label, "createdAt": s.created_at,
                "lastUsedAt": s.last_used_at, "expiresAt": s.expires_at,
            })
        })
        .collect();
    json!({
        "id": tenant.id,
        "name": tenant.name,
        "appKey": tenant.app_key,
        "origins": tenant.origins,
        "allowNative": tenant.allow_native,
        "scanUrl": tenant.scan_url,
        "riskPolicy": tenant.risk_policy,
        "sessionLifetimeSecs": tenant.session_lifetime_secs,
        "maxSealedBytes": tenant.max_sealed_bytes,
        "enabled": tenant.enabled,
        "createdAt": tenant.created_at,
        "secrets": secrets,
        "previousAppKeys": tenant.previous_app_keys,
    })
}

/// Parses `90s`, `15m`, `24h`, `7d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        // Zero needs no unit; any other bare number is refused, since `--grace 24`
        // meant as hours would end a secret within seconds.
        None if text.bytes().all(|b| b == b'0') && !text.is_empty() => (text, "s"),
        None if !text.is_empty() => {
            return Err(format!(
                "duration {text:?} needs a unit: {text}s, {text}m, {text}h or {text}d"
            ));
        }
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
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("0"), Ok(0));
        let bare = parse_duration("24").expect_err("a bare number is refused");
        assert!(bare.contains("24h"), "{bare}");
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
