//! Tenant and key changes made by an admin, from the dashboard or the admin
//! API. Each change returns the audit event that describes it, naming the
//! admin and their address; the caller records it before answering.

use std::net::IpAddr;

use serde_json::json;

use crate::audit::{Actor, Event, action};
use crate::directory::Directory;
use crate::ops::MAX_GRACE_SECS;
use crate::relay::Registry;
use crate::store::StoreError;
use crate::tenants::{NewSecret, NewTenant, Tenant, TenantError, TenantSettings, check_label};

/// Who made a change, for the audit log.
#[derive(Debug, Clone)]
pub struct By {
    pub admin: String,
    pub ip: IpAddr,
}

impl By {
    fn event(&self, tenant: &Tenant, action: &'static str) -> Event {
        Event::new(Some(&tenant.id), Actor::Admin { name: self.admin.clone() }, action)
            .detail("ip", self.ip.to_string())
    }
}

/// A secret that was just made, with the id it is listed under.
pub struct Issued {
    pub tenant: Tenant,
    pub secret: NewSecret,
    pub secret_id: String,
}

pub fn create_tenant(
    directory: &Directory,
    settings: TenantSettings,
    by: &By,
) -> Result<(Issued, Event), StoreError> {
    if !(1..=600).contains(&settings.session_lifetime_secs) {
        return Err(TenantError::BadLifetime.into());
    }
    if !(256..=1_048_576).contains(&settings.max_sealed_bytes) {
        return Err(TenantError::BadPayloadLimit.into());
    }
    let new = NewTenant {
        name: settings.name,
        origins: settings.origins,
        allow_native: settings.allow_native,
        scan_url: settings.scan_url.filter(|u| !u.trim().is_empty()),
        session_lifetime_secs: settings.session_lifetime_secs,
        max_sealed_bytes: settings.max_sealed_bytes,
        demo: false,
        risk_policy: Default::default(),
    };
    let (tenant, secret) = directory.create(new)?;
    let event = by
        .event(&tenant, action::TENANT_CREATE)
        .detail("name", tenant.name.clone())
        .detail("origins", tenant.origins.clone());
    let secret_id = tenant.secrets.first().map(|s| s.id.clone()).unwrap_or_default();
    Ok((Issued { tenant, secret, secret_id }, event))
}

pub fn update_tenant(
    directory: &Directory,
    id: &str,
    settings: TenantSettings,
    by: &By,
) -> Result<(Tenant, Event), StoreError> {
    let (tenant, applied) = directory.update(id, |t| settings.apply(t))?;
    applied?;
    let event = by
        .event(&tenant, action::TENANT_UPDATE)
        .detail("name", tenant.name.clone())
        .detail("origins", tenant.origins.clone())
        .detail("allowNative", tenant.allow_native)
        .detail("scanUrl", json!(tenant.scan_url))
        .detail("sessionLifetimeSecs", tenant.session_lifetime_secs)
        .detail("maxSealedBytes", tenant.max_sealed_bytes);
    Ok((tenant, event))
}

/// Enables or disables a tenant. Disabling closes its widget sockets and
/// ends its sessions at once.
pub fn set_enabled(
    directory: &Directory,
    registry: &Registry,
    id: &str,
    enabled: bool,
    by: &By,
) -> Result<(Tenant, Event), StoreError> {
    let (tenant, ()) = directory.update(id, |t| t.enabled = enabled)?;
    if !enabled {
        registry.close_tenant(&tenant.id);
    }
    let verb = if enabled { action::TENANT_ENABLE } else { action::TENANT_DISABLE };
    Ok((tenant.clone(), by.event(&tenant, verb)))
}

/// Deletes a tenant; `confirm` must be its exact name.
pub fn delete_tenant(
    directory: &Directory,
    registry: &Registry,
    id: &str,
    confirm: &str,
    by: &By,
) -> Result<Event, StoreError> {
    let tenant = directory.find(id)?;
    if confirm != tenant.name {
        return Err(TenantError::ConfirmMismatch.into());
    }
    let tenant = directory.delete(&tenant.id)?;
    registry.close_tenant(&tenant.id);
    Ok(by.event(&tenant, action::TENANT_DELETE).detail("name", tenant.name.clone()))
}

/// Adds a current secret with a label.
pub fn create_secret(
    directory: &Directory,
    id: &str,
    label: &str,
    by: &By,
) -> Result<(Issued, Event), StoreError> {
    let label = check_label(label)?;
    let (tenant, (secret, secret_id)) = directory.update(id, |t| t.add_secret(label))?;
    let event = by.event(&tenant, action::SECRET_CREATE).detail("secretId", secret_id.clone());
    Ok((Issued { tenant, secret, secret_id }, event))
}

/// Issues a new secret; older ones keep working for `grace_secs`.
pub fn rotate_secret(
    directory: &Directory,
    id: &str,
    label: &str,
    grace_secs: u64,
    by: &By,
) -> Result<(Issued, Event), StoreError> {
    let label = check_label(label)?;
    if grace_secs > MAX_GRACE_SECS {
        return Err(TenantError::GraceTooLong.into());
    }
    let grace_ms = i64::try_from(grace_secs * 1000).unwrap_or(i64::MAX);
    let (tenant, secret) = directory.update(id, |t| {
        let secret = t.rotate_secret(grace_ms);
        if let Some(record) = t.secrets.last_mut() {
            record.label = label;
        }
        secret
    })?;
    let secret_id = tenant.secrets.last().map(|s| s.id.clone()).unwrap_or_default();
    let event = by
        .event(&tenant, action::SECRET_ROTATE)
        .detail("secretId", secret_id.clone())
        .detail("graceSecs", grace_secs);
    Ok((Issued { tenant, secret, secret_id }, event))
}

/// Removes a secret at once.
pub fn revoke_secret(
    directory: &Directory,
    id: &str,
    secret_id: &str,
    by: &By,
) -> Result<(Tenant, Event), StoreError> {
    let (tenant, revoked) = directory.update(id, |t| t.revoke_secret(secret_id))?;
    revoked?;
    let event = by.event(&tenant, action::SECRET_REVOKE).detail("secretId", secret_id);
    Ok((tenant, event))
}

/// Issues a new app key; the old one keeps working for `overlap_secs`.
pub fn rotate_app_key(
    directory: &Directory,
    id: &str,
    overlap_secs: u64,
    by: &By,
) -> Result<(Tenant, Event), StoreError> {
    if overlap_secs > MAX_GRACE_SECS {
        return Err(TenantError::GraceTooLong.into());
    }
    let overlap_ms = i64::try_from(overlap_secs * 1000).unwrap_or(i64::MAX);
    let (tenant, app_key) = directory.update(id, |t| t.rotate_app_key(overlap_ms))?;
    let event = by
        .event(&tenant, action::APP_KEY_ROTATE)
        .detail("appKey", app_key)
        .detail("overlapSecs", overlap_secs);
    Ok((tenant, event))
}
