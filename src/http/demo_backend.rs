//! `POST /demo/verify`: the demo's stand-in for a tenant's backend. The demo
//! page posts the signed request it opened; this verifies it for the demo
//! tenant exactly as `/v1/verify` would, minus the HTTP hop with a secret.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::backend::{verified_response, verify_body};
use super::body::read_body;
use super::error::ApiError;
use crate::audit::Actor;

pub async fn verify(
    req: HttpRequest,
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
    let ip = state.defences.client_ip(&req);
    let actor = Actor::Anonymous { ip: ip.to_string() };

    let body = read_body(body, 16 * 1024, &state).await?;
    let verified = verify_body(&state, std::sync::Arc::new(tenant), actor, Some(ip), &body).await?;

    Ok(verified_response(&verified))
}
