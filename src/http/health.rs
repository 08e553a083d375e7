//! `/healthz` (the process answers), `/readyz` (it can serve logins: the
//! database is open and the audit log takes records) and `/metrics`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::error::ApiError;
use crate::metrics::Gauges;

/// The OpenAPI document of the HTTP API, as shipped in `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state.directory.with_store(|_| Ok(())).is_ok();
    let audit = state.audit.is_open();
    let body = serde_json::json!({ "database": database, "audit": audit });
    match database && audit {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ip = state.defences.client_ip(&req);
    if !state.defences.may_read_metrics(ip) {
        return Err(ApiError::Forbidden("metrics are not served to this address".into()));
    }

    let gauges = Gauges {
        open_sockets: state.defences.sockets.open(),
        live_sessions: state.registry.live(),
        audit_queue: state.audit.queue_depth(),
        outcomes: state.registry.ended(),
    };
    let text = state.defences.metrics.render(&gauges);
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text))
}
