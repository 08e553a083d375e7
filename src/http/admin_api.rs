//! `/v1/admin/…`: the admin JSON API for automation, authenticated by an
//! admin token (`Authorization: Bearer kat_…`). It makes the same changes as
//! the dashboard, through the same functions, and audits them the same way.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin_audit::AuditQuery;
use super::admin_session::{audited, blocking};
use super::body::{parse_json, read_body};
use super::client::{client_ip, header_str};
use super::defences::limit_key;
use super::error::ApiError;
use crate::admin::audit_query;
use crate::admin::manage::{self, By, Issued};
use crate::admin::tokens;
use crate::audit::{Actor, Event, action};
use crate::ops::tenant_json;
use crate::protocol::now_ms;
use crate::tenants::{Tenant, TenantSettings};

/// Largest request body of the admin API.
const MAX_BODY: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/tenants", web::get().to(list))
        .route("/v1/admin/tenants", web::post().to(create))
        .route("/v1/admin/tenants/{id}", web::get().to(show))
        .route("/v1/admin/tenants/{id}", web::patch().to(update))
        .route("/v1/admin/tenants/{id}/disable", web::post().to(disable))
        .route("/v1/admin/tenants/{id}/enable", web::post().to(enable))
        .route("/v1/admin/tenants/{id}/secrets", web::post().to(create_secret))
        .route("/v1/admin/tenants/{id}/secrets/rotate", web::post().to(rotate_secret))
        .route("/v1/admin/tenants/{id}/secrets/{secret}", web::delete().to(revoke_secret))
        .route("/v1/admin/tenants/{id}/app-key/rotate", web::post().to(rotate_app_key))
        .route("/v1/admin/audit", web::get().to(audit));
}

/// The admin an API token acts as. A right token always works: tokens are
/// too long to guess. Wrong ones are recorded (the token itself is not), up to
/// a few per address, IPv6 by /64, in a window; past that they are refused
/// unrecorded, so that no one can fill the log with them.
async fn caller(req: &HttpRequest, state: &AppState) -> Result<By, ApiError> {
    let token = header_str(req, "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| {
            ApiError::Unauthorized("an admin token is required as a Bearer token".into())
        })?;
    let ip = client_ip(req);
    let directory = state.directory.clone();
    let found = blocking(move || tokens::find(&directory, &token)).await?;
    if let Some(record) = found {
        return Ok(By { admin: record.name, ip });
    }
    let key = limit_key(ip).to_string();
    if let Err(wait) = state.admin.token_failures.attempt(&key, &key, now_ms()) {
        tracing::info!(%ip, "wrong admin tokens throttled");
        return Err(ApiError::RateLimited(wait));
    }
    let event = Event::new(None, Actor::Anonymous { ip: ip.to_string() }, action::ADMIN_SIGN_IN)
        .outcome("bad_token")
        .detail("method", "token");
    state.audit.record(event).await.map_err(ApiError::internal)?;
    tracing::info!(%ip, "unknown admin token");
    Err(ApiError::Unauthorized("the admin token is unknown".into()))
}

/// A tenant with its secrets' metadata (never their hashes).
fn tenant_view(tenant: &Tenant) -> Value {
    tenant_json(tenant)
}

fn issued_view(issued: &Issued) -> Value {
    let mut out = tenant_view(&issued.tenant);
    out["apiSecret"] = json!(issued.secret.expose());
    out["secretId"] = json!(issued.secret_id);
    out
}

fn ok(status: actix_web::http::StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status).insert_header(("cache-control", "no-store")).json(body)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    name: Option<String>,
    origins: Option<Vec<String>>,
    allow_native: Option<bool>,
    scan_url: Option<String>,
    session_lifetime_secs: Option<u32>,
    max_sealed_bytes: Option<u32>,
}

impl SettingsBody {
    fn over(self, base: TenantSettings) -> TenantSettings {
        TenantSettings {
            name: self.name.unwrap_or(base.name),
            origins: self.origins.unwrap_or(base.origins),
            allow_native: self.allow_native.unwrap_or(base.allow_native),
            scan_url: self.scan_url.or(base.scan_url),
            session_lifetime_secs: self.session_lifetime_secs.unwrap_or(base.session_lifetime_secs),
            max_sealed_bytes: self.max_sealed_bytes.unwrap_or(base.max_sealed_bytes),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecretBody {
    #[serde(default)]
    label: String,
    grace_secs: Option<u64>,
}

/// A new secret beside the current ones: no grace period to choose.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSecretBody {
    #[serde(default)]
    label: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OverlapBody {
    overlap_secs: Option<u64>,
}

/// Reads an optional JSON body: empty means all defaults.
async fn optional_json<T: Default + serde::de::DeserializeOwned>(
    body: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    let bytes = read_body(body, MAX_BODY, state).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&bytes)
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller(&req, &state).await?;

    let tenants = state.directory.list()?;

    let body: Vec<Value> = tenants.iter().map(tenant_view).collect();
    Ok(ok(actix_web::http::StatusCode::OK, json!(body)))
}

async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &state).await?;

    let tenant = state.directory.find(&path)?;

    Ok(ok(actix_web::http::StatusCode::OK, tenant_view(&tenant)))
}

async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let defaults = TenantSettings::defaults(&state.config);
    let settings = optional_json::<SettingsBody>(body, &state).await?.over(defaults);
    let directory = state.directory.clone();
    let issued = audited(&state, move || manage::create_tenant(&directory, settings, &by)).await?;

    Ok(ok(actix_web::http::StatusCode::CREATED, issued_view(&issued)))
}

async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let current = state.directory.find(&path)?;
    let settings =
        optional_json::<SettingsBody>(body, &state).await?.over(TenantSettings::of(&current));
    let directory = state.directory.clone();
    let tenant =
        audited(&state, move || manage::update_tenant(&directory, &current.id, settings, &by))
            .await?;

    Ok(ok(actix_web::http::StatusCode::OK, tenant_view(&tenant)))
}

async fn disable(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    switch(req, path.into_inner(), state, false).await
}

async fn enable(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    switch(req, path.into_inner(), state, true).await
}

async fn switch(
    req: HttpRequest,
    id: String,
    state: web::Data<AppState>,
    enabled: bool,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let (directory, registry) = (state.directory.clone(), state.registry.clone());
    let tenant =
        audited(&state, move || manage::set_enabled(&directory, &registry, &id, enabled, &by))
            .await?;

    Ok(ok(actix_web::http::StatusCode::OK, tenant_view(&tenant)))
}

async fn create_secret(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let input: NewSecretBody = optional_json(body, &state).await?;
    let (directory, id) = (state.directory.clone(), path.into_inner());
    let issued =
        audited(&state, move || manage::create_secret(&directory, &id, &input.label, &by)).await?;

    Ok(ok(actix_web::http::StatusCode::CREATED, issued_view(&issued)))
}

async fn rotate_secret(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let input: SecretBody = optional_json(body, &state).await?;
    let grace = input.grace_secs.unwrap_or(24 * 3600);
    let (directory, id) = (state.directory.clone(), path.into_inner());
    let issued =
        audited(&state, move || manage::rotate_secret(&directory, &id, &input.label, grace, &by))
            .await?;

    Ok(ok(actix_web::http::StatusCode::CREATED, issued_view(&issued)))
}

async fn revoke_secret(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let (id, secret) = path.into_inner();
    let directory = state.directory.clone();
    let tenant =
        audited(&state, move || manage::revoke_secret(&directory, &id, &secret, &by)).await?;

    Ok(ok(actix_web::http::StatusCode::OK, tenant_view(&tenant)))
}

async fn rotate_app_key(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let by = caller(&req, &state).await?;

    let input: OverlapBody = optional_json(body, &state).await?;
    let overlap = input.overlap_secs.unwrap_or(24 * 3600);
    let (directory, id) = (state.directory.clone(), path.into_inner());
    let tenant =
        audited(&state, move || manage::rotate_app_key(&directory, &id, overlap, &by)).await?;

    Ok(ok(actix_web::http::StatusCode::OK, tenant_view(&tenant)))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn audit(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    limit: web::Query<Limit>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &state).await?;

    let filter = query.filter()?;
    let limit = limit.limit.unwrap_or(100);
    let (records, next) =
        state.directory.with_store(|s| audit_query::page(s, &filter, query.before, limit))?;

    Ok(ok(actix_web::http::StatusCode::OK, json!({ "records": records, "before": next })))
}
