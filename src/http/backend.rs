//! Calls from a tenant's backend, authenticated by an API secret: device key
//! registration and the verification of signed login requests.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::body::{parse_json, read_body};
use super::client::header_str;
use super::error::ApiError;
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
    let tenant = backend_tenant(&req, &state)?;

    let username = username(&path)?;
    let new: NewKey = parse_json(&read_body(body, MAX_BACKEND_BODY).await?)?;
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
    match added {
        Ok(()) => {}
        Err(AddKeyError::AlreadyRegistered) => {
            return Err(ApiError::Conflict("already_registered", added_err(&added)));
        }
        Err(AddKeyError::TooManyKeys) => {
            return Err(ApiError::Conflict("too_many_keys", added_err(&added)));
        }
    }
    tracing::info!(tenant = %tenant.id, key = %record.key_id, "device key registered");

    let body = json!({
        "keyId": record.key_id, "username": record.username, "createdAt": record.created_at,
    });
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(body))
}

fn added_err(result: &Result<(), AddKeyError>) -> String {
    result.as_ref().err().map(ToString::to_string).unwrap_or_default()
}

pub async fn list_keys(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = backend_tenant(&req, &state)?;

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
    let tenant = backend_tenant(&req, &state)?;

    let (username, key_id) = path.into_inner();
    let username = self::username(&username)?;
    let directory = state.directory.clone();
    let tenant_id = tenant.id.clone();
    let revoked = web::block(move || {
        directory.with_store(|s| {
            let Some(mut key) = s.user_key(&tenant_id, &key_id)? else { return Ok(None) };
            if key.username != username.as_str() {
                return Ok(None);
            }
            if key.revoked_at.is_none() {
                key.revoked_at = Some(now_ms());
                s.put_user_key(&tenant_id, &key)?;
            }
            Ok(Some(key))
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?
    .ok_or(ApiError::NotFound)?;
    tracing::info!(tenant = %tenant.id, key = %revoked.key_id, "device key revoked");

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
    let tenant = backend_tenant(&req, &state)?;

    let body = read_body(body, MAX_BACKEND_BODY).await?;
    let request: SignedRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Verify(VerifyError::Malformed(e.to_string())))?;

    let verified = verify_request(&state, tenant, request).await?;
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

/// Every check of a signed login request, for one tenant; on success the
/// session is used up and the key's last use recorded.
pub async fn verify_request(
    state: &AppState,
    tenant: Arc<Tenant>,
    request: SignedRequest,
) -> Result<Verified, ApiError> {
    check_shape(&request).map_err(ApiError::Verify)?;
    let mut key = state
        .directory
        .with_store(|s| s.user_key(&tenant.id, &request.key_id))
        .map_err(ApiError::internal)?
        .ok_or(ApiError::Verify(VerifyError::UnknownKey))?;
    let data = check_signature(&request, &key).map_err(ApiError::Verify)?;
    let now = now_ms();
    let session = check_session(&data, &tenant.id, &state.confirmed, now);
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            tracing::info!(tenant = %tenant.id, code = e.code(), "verification refused");
            return Err(ApiError::Verify(e));
        }
    };

    key.last_used_at = Some(now);
    let directory = state.directory.clone();
    let tenant_id = tenant.id.clone();
    let stored = key.clone();
    web::block(move || directory.with_store(|s| s.put_user_key(&tenant_id, &stored)))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    tracing::info!(tenant = %tenant.id, session = %session, key = %key.key_id, "login verified");

    Ok(Verified { username: key.username, key_id: key.key_id, session_id: session.to_string() })
}

/// The tenant whose API secret is presented as `Authorization: Bearer …`.
fn backend_tenant(req: &HttpRequest, state: &AppState) -> Result<Arc<Tenant>, ApiError> {
    let secret =
        header_str(req, "authorization").and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(
            || ApiError::Unauthorized("an API secret is required as a Bearer token".into()),
        )?;
    state.directory.by_secret(secret.trim(), now_ms()).ok_or_else(|| {
        ApiError::Unauthorized("the API secret is unknown, revoked or expired".into())
    })
}

fn username(text: &str) -> Result<Username, ApiError> {
    Username::parse(text).ok_or_else(|| {
        ApiError::BadRequest(
            "username must be 1 to 256 characters without control characters".into(),
        )
    })
}
