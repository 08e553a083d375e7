//! `POST /demo/verify`: the demo's stand-in for a tenant's backend. The demo
//! page posts the signed request it opened; this verifies it for the demo
//! tenant exactly as `/v1/verify` would, minus the HTTP hop with a secret.

use actix_web::{HttpResponse, web};

use super::AppState;
use super::backend::{verified_response, verify_request};
use super::body::read_body;
use super::error::ApiError;
use crate::auth::{SignedRequest, VerifyError};

pub async fn verify(
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = state
        .directory
        .list()
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|t| t.demo && t.enabled)
        .ok_or(ApiError::NotFound)?;

    let body = read_body(body, 16 * 1024).await?;
    let request: SignedRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Verify(VerifyError::Malformed(e.to_string())))?;

    let verified = verify_request(&state, std::sync::Arc::new(tenant), request).await?;
    Ok(verified_response(&verified))
}
