//! Calls from a tenant's backend, authenticated by an API secret: device key
//! registration and the verification of signed login requests.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::body::{parse_json, read_body};
use super::client::header_str;
use super::defences::Limit;
use super::error::ApiError;
use crate::audit::{Actor, Event, action};
use crate::auth::keys::valid_label;
use crate::auth::verify::{check_session, check_shape, check_signature};
use crate::auth::{SignedRequest, UserKey, Username, Verified, VerifyError};
use crate::protocol::{PublicKey, now_ms};
use crate::store::AddKeyError;
use crate::tenants::Tenant;

/// Largest body of a key registration or a verification.
const MAX_BACKEND_BODY: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewKey {
    public_key: String,
    #[serde(default)]
    label: String,
}

pub async fn add_key(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, actor) = backend_tenant(&req, &state)?;

    let username = username(&path)?;
    let new: NewKey = parse_json(&read_body(body, MAX_BACKEND_BODY, &state).await?)?;
    let key = PublicKey::from_b64(&new.public_key).ok_or_else(|| {
        ApiError::BadRequest("publicKey is not a base64url uncompressed P-256 point".into())
    })?;
    if !valid_label(&new.label) {
        return Err(ApiError::BadRequest(
            "label must be at most 100 characters without control characters".into(),
        ));
    }

    let record = UserKey::new(&username, &key, &new.label, now_ms());
    let stored = record.clone();
    let tenant_id = tenant.id.clone();
    let directory = state.directory.clone();
    let added = web::block(move || directory.with_store(|s| s.add_user_key(&tenant_id, &stored)))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if let Err(refused) = added {
        let code = match refused {
            AddKeyError::AlreadyRegistered => "already_registered",
            AddKeyError::TooManyKeys => "too_many_keys",
        };
        return Err(ApiError::Conflict(code, refused.to_string()));
    }
    let event = Event::new(Some(&tenant.id), actor, action::KEY_REGISTER)
        .detail("username", record.username.clone())
        .detail("keyId", record.key_id.clone());
    state.audit.record(event).await.map_err(ApiError::internal)?;
    tracing::info!(tenant = %tenant.id, key = %record.key_id, "device key registered");

    let body = json!({
        "keyId": record.key_id, "username": record.username, "createdAt": record.created_at,
    });
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(body))
}

pub async fn list_keys(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, _) = backend_tenant(&req, &state)?;

    let username = username(&path)?;
    let keys = state
        .directory
        .with_store(|s| s.user_keys(&tenant.id, username.as_str()))
        .map_err(ApiError::internal)?;

    let body = json!({ "username": username.as_str(), "keys": keys });
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
}

pub async fn revoke_key(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, actor) = backend_tenant(&req, &state)?;

    let (username, key_id) = path.into_inner();
    let username = self::username(&username)?;
    let directory = state.directory.clone();
    let tenant_id = tenant.id.clone();
    let (revoked, changed) = web::block(move || {
        directory.with_store(|s| {
            let mut changed = false;
            let key = s.change_user_key(&tenant_id, &key_id, |key| {
                if key.username == username.as_str() && key.revoked_at.is_none() {
                    key.revoked_at = Some(now_ms());
                    changed = true;
                }
            })?;
            Ok(key.filter(|k| k.username == username.as_str()).map(|k| (k, changed)))
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?
    .ok_or(ApiError::NoSuchKey)?;
    if changed {
        let event = Event::new(Some(&tenant.id), actor, action::KEY_REVOKE)
            .detail("username", revoked.username.clone())
            .detail("keyId", revoked.key_id.clone());
        state.audit.record(event).await.map_err(ApiError::internal)?;
        tracing::info!(tenant = %tenant.id, key = %revoked.key_id, "device key revoked");
    }

    let body = json!({
        "keyId": revoked.key_id, "username": revoked.username, "revokedAt": revoked.revoked_at,
    });
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body))
}

pub async fn verify(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ip = state.defences.client_ip(&req);
    state.defences.check_ip(Limit::Verify, ip)?;
    let (tenant, actor) = backend_tenant(&req, &state)?;
    state.defences.check_tenant(Limit::Verify, &tenant.id)?;

    let body = read_body(body, MAX_BACKEND_BODY, &state).await?;
    // The caller holds the tenant's secret: it is the tenant's own backend,
    // passing on what its users' pages sent. Counting refusals against its
    // address would let any user lock the tenant out, so only the per-address
    // and per-tenant rates apply.
    let verified = verify_body(&state, tenant, actor, None, &body).await?;

    Ok(verified_response(&verified))
}

pub fn verified_response(verified: &Verified) -> HttpResponse {
    let body = json!({
        "valid": true,
        "username": verified.username,
        "keyId": verified.key_id,
        "sessionId": verified.session_id,
    });
    HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(body)
}

/// Verifies a request body for one tenant and audits the outcome, success or
/// refusal, before answering.
pub async fn verify_body(
    state: &AppState,
    tenant: Arc<Tenant>,
    actor: Actor,
    failures_from: Option<IpAddr>,
    body: &[u8],
) -> Result<Verified, ApiError> {
    // An anonymous client that keeps failing is slowed down; successes never
    // help it.
    if let Some(ip) = failures_from {
        state.defences.check_verify_failures(ip)?;
    }

    let request: Result<SignedRequest, _> = serde_json::from_slice(body)
        .map_err(|e| VerifyError::Malformed(format!("not a signed login request: {e}")));
    let outcome = match request {
        Ok(request) => verify_request(state, &tenant, request).await,
        Err(e) => Err(Some(e)),
    };

    let mut event = Event::new(Some(&tenant.id), actor, action::LOGIN_VERIFY);
    match &outcome {
        Ok(done) => {
            event = event
                .detail("session", done.session_id.clone())
                .detail("keyId", done.key_id.clone())
                .detail("username", done.username.clone());
        }
        Err(Some(refused)) => event = event.outcome(refused.code()),
        Err(None) => {}
    }
    if !matches!(outcome, Err(None)) {
        state.audit.record(event).await.map_err(ApiError::internal)?;
    }
    match outcome {
        Ok(verified) => Ok(verified),
        Err(Some(refused)) => {
            if let Some(ip) = failures_from {
                state.defences.verify_failed(ip);
            }
            tracing::info!(tenant = %tenant.id, code = refused.code(), "verification refused");
            Err(ApiError::Verify(refused))
        }
        Err(None) => Err(ApiError::internal("verification failed")),
    }
}

/// Every check of a signed login request. On success the session is used up
/// and the key's last use recorded. `Err(None)` is an internal failure.
async fn verify_request(
    state: &AppState,
    tenant: &Tenant,
    request: SignedRequest,
) -> Result<Verified, Option<VerifyError>> {
    check_shape(&request)?;
    let key = state.directory.with_store(|s| s.user_key(&tenant.id, &request.key_id));
    let mut key = key.map_err(|e| internal(&e))?.ok_or(VerifyError::UnknownKey)?;
    let data = check_signature(&request, &key)?;
    let now = now_ms();
    let session = check_session(&data, &tenant.id, &state.confirmed, now)?;

    // Only the last use changes, in the same transaction that reads the key
    // again: a revocation that landed meanwhile wins and refuses the login.
    let directory = state.directory.clone();
    let (tenant_id, key_id) = (tenant.id.clone(), key.key_id.clone());
    let touched = web::block(move || {
        directory.with_store(|s| {
            s.change_user_key(&tenant_id, &key_id, |k| {
                k.last_used_at = Some(now);
            })
        })
    })
    .await
    .map_err(|e| internal(&e))?
    .map_err(|e| internal(&e))?;
    if touched.as_ref().is_none_or(|k| k.revoked_at.is_some()) {
        return Err(Some(VerifyError::RevokedKey));
    }
    key.last_used_at = Some(now);
    tracing::info!(tenant = %tenant.id, session = %session, key = %key.key_id, "login verified");

    Ok(Verified { username: key.username, key_id: key.key_id, session_id: session.to_string() })
}

fn internal(detail: &dyn std::fmt::Display) -> Option<VerifyError> {
    tracing::error!(%detail, "verification failed");
    None
}

/// The tenant whose API secret is presented as `Authorization: Bearer …`,
/// and the secret as the actor for the audit log.
fn backend_tenant(req: &HttpRequest, state: &AppState) -> Result<(Arc<Tenant>, Actor), ApiError> {
    // The scheme name is case-insensitive (RFC 9110).
    let secret = header_str(req, "authorization")
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret)
        .ok_or_else(|| {
            ApiError::Unauthorized("an API secret is required as a Bearer token".into())
        })?;
    let (tenant, secret_id) =
        state.directory.by_secret(secret.trim(), now_ms()).ok_or_else(|| {
            ApiError::Unauthorized("the API secret is unknown, revoked or expired".into())
        })?;
    let (directory, used, id) = (state.directory.clone(), tenant.clone(), secret_id.clone());
    tokio::task::spawn_blocking(move || directory.touch_secret(&used, &id, now_ms()));
    Ok((tenant, Actor::ApiSecret { id: secret_id }))
}

fn username(text: &str) -> Result<Username, ApiError> {
    Username::parse(text).ok_or_else(|| {
        ApiError::BadRequest(
            "username must be 1 to 256 characters without control characters".into(),
        )
    })
}
