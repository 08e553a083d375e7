//! Dashboard pages for tenants and their keys: the list, one tenant with its
//! settings, secrets, app key and recent activity, and every change to them.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::admin_pages::CsrfForm;
use super::admin_session::{
    PageError, audited, blocking, check_form, page, see_other, signed_in, signed_in_quietly,
};
use super::client::client_ip;
use super::error::ApiError;
use super::form::Form;
use crate::admin::SignedIn;
use crate::admin::audit_query::{self, AuditFilter};
use crate::admin::manage::{self, By, Issued};
use crate::audit::Record;
use crate::cli::format_time;
use crate::protocol::now_ms;
use crate::tenants::{Tenant, TenantSettings};

/// Default grace for a rotated secret, in hours.
const DEFAULT_GRACE_HOURS: u64 = 24;
/// Recent records shown on a tenant's page.
const RECENT_ACTIVITY: usize = 20;

pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub origins: String,
    pub open_sessions: usize,
}

pub struct SecretRow {
    pub id: String,
    pub label: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
}

pub struct RecordRow {
    pub seq: u64,
    pub at: String,
    pub tenant: String,
    /// The tenant's name now, when it still exists.
    pub tenant_name: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub details: String,
}

impl RecordRow {
    pub fn of(record: &Record) -> Self {
        Self {
            seq: record.seq,
            at: format_time(record.at),
            tenant: record.tenant.clone().unwrap_or_default(),
            tenant_name: String::new(),
            actor: record.actor.label(),
            action: record.action.clone(),
            outcome: record.outcome.clone(),
            details: record.details.to_string(),
        }
    }

    /// Adds the tenant's current name from `names` (id → name).
    pub fn named(mut self, names: &std::collections::HashMap<String, String>) -> Self {
        self.tenant_name = names.get(&self.tenant).cloned().unwrap_or_default();
        self
    }
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage<'a> {
    admin: &'a str,
    csrf: &'a str,
    tenants: Vec<TenantRow>,
}

#[derive(Template)]
#[template(path = "admin/tenant.html")]
struct TenantPage<'a> {
    admin: &'a str,
    csrf: &'a str,
    t: &'a Tenant,
    origins: String,
    scan_url: String,
    secrets: Vec<SecretRow>,
    previous_keys: Vec<(String, String)>,
    open_sessions: usize,
    activity: Vec<RecordRow>,
    grace_hours: u64,
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage<'a> {
    admin: &'a str,
    csrf: &'a str,
    tenant_id: &'a str,
    tenant_name: &'a str,
    app_key: &'a str,
    secret: &'a str,
    secret_id: &'a str,
    note: &'a str,
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    origins: String,
    #[serde(default)]
    allow_native: Option<String>,
    #[serde(default)]
    scan_url: String,
    #[serde(default)]
    session_lifetime_secs: Option<u32>,
    #[serde(default)]
    max_sealed_bytes: Option<u32>,
}

impl SettingsForm {
    fn settings(self, base: TenantSettings) -> TenantSettings {
        TenantSettings {
            name: self.name,
            origins: self.origins.split_whitespace().map(str::to_owned).collect(),
            allow_native: self.allow_native.is_some(),
            scan_url: Some(self.scan_url).filter(|u| !u.trim().is_empty()),
            session_lifetime_secs: self.session_lifetime_secs.unwrap_or(base.session_lifetime_secs),
            max_sealed_bytes: self.max_sealed_bytes.unwrap_or(base.max_sealed_bytes),
        }
    }
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    grace_hours: Option<u64>,
}

#[derive(Deserialize)]
pub struct OverlapForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    overlap_hours: Option<u64>,
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

fn by(req: &HttpRequest, admin: &SignedIn) -> By {
    By { admin: admin.admin.clone(), ip: client_ip(req) }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let admin = signed_in(&req, &state)?;

    let tenants = state.directory.list().map_err(ApiError::from)?;

    let rows = tenants
        .iter()
        .map(|t| TenantRow {
            id: t.id.clone(),
            name: t.name.clone(),
            enabled: t.enabled,
            origins: t.origins.join(", "),
            open_sessions: state.registry.open_count_for(&t.id),
        })
        .collect();
    let body = TenantsPage { admin: &admin.admin, csrf: &admin.csrf, tenants: rows };
    Ok(page(body.render().map_err(ApiError::internal)?))
}

pub async fn create(
    req: HttpRequest,
    form: Form<SettingsForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let settings = form.into_inner().settings(TenantSettings::defaults(&state.config));
    let (directory, who) = (state.directory.clone(), by(&req, &admin));
    let issued = audited(&state, move || manage::create_tenant(&directory, settings, &who)).await?;
    tracing::info!(tenant = %issued.tenant.id, admin = %admin.admin, "tenant created");

    secret_page(&admin, &issued, "Tenant created. This is its first API secret.")
}

pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = signed_in(&req, &state)?;

    let tenant = state.directory.find(&path).map_err(ApiError::from)?;
    let filter = AuditFilter { tenant: tenant.id.clone(), ..AuditFilter::default() };
    let (recent, _) = state
        .directory
        .with_store(|s| audit_query::page(s, &filter, None, RECENT_ACTIVITY))
        .map_err(ApiError::from)?;

    let now = now_ms();
    let secrets = tenant
        .secrets
        .iter()
        .map(|s| SecretRow {
            id: s.id.clone(),
            label: s.label.clone(),
            created: format_time(s.created_at),
            last_used: s.last_used_at.map(format_time).unwrap_or_else(|| "never".into()),
            expires: s.expires_at.map(format_time).unwrap_or_default(),
        })
        .collect();
    let previous_keys = tenant
        .previous_app_keys
        .iter()
        .filter(|k| k.expires_at > now)
        .map(|k| (k.app_key.clone(), format_time(k.expires_at)))
        .collect();
    let body = TenantPage {
        admin: &admin.admin,
        csrf: &admin.csrf,
        origins: tenant.origins.join("\n"),
        scan_url: tenant.scan_url.clone().unwrap_or_default(),
        secrets,
        previous_keys,
        open_sessions: state.registry.open_count_for(&tenant.id),
        activity: recent.iter().map(RecordRow::of).collect(),
        grace_hours: DEFAULT_GRACE_HOURS,
        t: &tenant,
    };
    Ok(page(body.render().map_err(ApiError::internal)?))
}

/// `GET /admin/tenants/{id}/live`: open sessions now, for the page to poll.
pub async fn live(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    signed_in_quietly(&req, &state)?;

    let tenant = state.directory.find(&path).map_err(ApiError::from)?;

    let body = json!({ "openSessions": state.registry.open_count_for(&tenant.id) });
    Ok(super::admin_session::secure_headers(HttpResponse::Ok()).json(body))
}

pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<SettingsForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let current = state.directory.find(&path).map_err(ApiError::from)?;
    let settings = form.into_inner().settings(TenantSettings::of(&current));
    let (directory, who, id) = (state.directory.clone(), by(&req, &admin), current.id.clone());
    let tenant =
        audited(&state, move || manage::update_tenant(&directory, &id, settings, &who)).await?;

    Ok(see_other(&format!("/admin/tenants/{}", tenant.id)))
}

pub async fn disable(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    set_enabled(req, path.into_inner(), &form.csrf, state, false).await
}

pub async fn enable(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    set_enabled(req, path.into_inner(), &form.csrf, state, true).await
}

async fn set_enabled(
    req: HttpRequest,
    id: String,
    csrf: &str,
    state: web::Data<AppState>,
    enabled: bool,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, csrf)?;

    let (directory, registry, who) =
        (state.directory.clone(), state.registry.clone(), by(&req, &admin));
    let tenant =
        audited(&state, move || manage::set_enabled(&directory, &registry, &id, enabled, &who))
            .await?;
    tracing::info!(tenant = %tenant.id, enabled, admin = %admin.admin, "tenant switched");

    Ok(see_other(&format!("/admin/tenants/{}", tenant.id)))
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<DeleteForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let (directory, registry, who) =
        (state.directory.clone(), state.registry.clone(), by(&req, &admin));
    let (id, confirm) = (path.into_inner(), form.into_inner().confirm);
    let event =
        blocking(move || manage::delete_tenant(&directory, &registry, &id, &confirm, &who)).await?;
    state.audit.record(event).await.map_err(ApiError::internal)?;

    Ok(see_other("/admin/tenants"))
}

pub async fn create_secret(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<SecretForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let (directory, who, id) = (state.directory.clone(), by(&req, &admin), path.into_inner());
    let label = form.into_inner().label;
    let issued =
        audited(&state, move || manage::create_secret(&directory, &id, &label, &who)).await?;

    secret_page(&admin, &issued, "New API secret. Older secrets keep working.")
}

pub async fn rotate_secret(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<SecretForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let form = form.into_inner();
    let grace_secs = form.grace_hours.unwrap_or(DEFAULT_GRACE_HOURS).saturating_mul(3600);
    let (directory, who, id) = (state.directory.clone(), by(&req, &admin), path.into_inner());
    let issued = audited(&state, move || {
        manage::rotate_secret(&directory, &id, &form.label, grace_secs, &who)
    })
    .await?;

    let note = "Secret rotated. Older secrets keep working until the end of the grace period.";
    secret_page(&admin, &issued, note)
}

pub async fn revoke_secret(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let (id, secret_id) = path.into_inner();
    let (directory, who) = (state.directory.clone(), by(&req, &admin));
    let tenant =
        audited(&state, move || manage::revoke_secret(&directory, &id, &secret_id, &who)).await?;

    Ok(see_other(&format!("/admin/tenants/{}", tenant.id)))
}

pub async fn rotate_app_key(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<OverlapForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let overlap_secs = form.overlap_hours.unwrap_or(DEFAULT_GRACE_HOURS).saturating_mul(3600);
    let (directory, who, id) = (state.directory.clone(), by(&req, &admin), path.into_inner());
    let tenant =
        audited(&state, move || manage::rotate_app_key(&directory, &id, overlap_secs, &who))
            .await?;

    Ok(see_other(&format!("/admin/tenants/{}", tenant.id)))
}

/// The page that shows a new secret, once.
fn secret_page(admin: &SignedIn, issued: &Issued, note: &str) -> Result<HttpResponse, PageError> {
    let body = SecretPage {
        admin: &admin.admin,
        csrf: &admin.csrf,
        tenant_id: &issued.tenant.id,
        tenant_name: &issued.tenant.name,
        app_key: &issued.tenant.app_key,
        secret: issued.secret.expose(),
        secret_id: &issued.secret_id,
        note,
    };
    Ok(page(body.render().map_err(ApiError::internal)?))
}
