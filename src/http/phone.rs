//! The phone's calls: look at a session, confirm it with a sealed payload,
//! or deny it. Every call names its tenant with `X-App-Key`; a session of
//! another tenant is indistinguishable from one that does not exist.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::body::{parse_json, read_body_reporting};
use super::client::{browser_and_os, header_str};
use super::defences::Limit;
use super::error::ApiError;
use crate::audit::{Actor, Event, action};
use crate::geo::Place;
use crate::protocol::messages::{
    ConfirmRequest, MobileInfo, SessionStatus, SessionView, StatusResponse, WidgetInfo,
};
use crate::protocol::{SessionId, b64, hpke};
use crate::relay::{Closing, Outcome, Session};
use crate::risk::{self, Assessment, Sides};
use crate::tenants::Tenant;

/// How long a confirm waits for the widget's socket to take the payload.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Room in a confirm body beyond the base64 of the largest payload.
const BODY_OVERHEAD: usize = 1024;

pub async fn view(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, ip) = calling_tenant(&req, &state)?;

    let session = find_session(&state, &tenant, &path)?;
    let mobile = Mobile::of(&state, ip);
    let assessment = assess(&state, &tenant, &session, &mobile);
    if let Some(signal) = assessment.refused {
        return Err(refuse(state, tenant, session, ip, signal).await);
    }
    let seen_before = session.mark_scanned()?;

    let status = if seen_before { SessionStatus::Scanned } else { SessionStatus::Pending };
    Ok(no_store(HttpResponse::Ok()).json(session_view(&session, &mobile, assessment, status)))
}

pub async fn confirm(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, ip) = calling_tenant(&req, &state)?;

    let limit = tenant.max_sealed_bytes as usize;
    let body =
        read_body_reporting(body, limit.div_ceil(3) * 4 + BODY_OVERHEAD, limit, &state).await?;
    let request: ConfirmRequest = parse_json(&body)?;
    let sealed = b64::decode(&request.sealed)
        .map_err(|_| ApiError::BadRequest("sealed is not base64url without padding".into()))?;
    if sealed.len() > limit {
        return Err(ApiError::TooLarge(limit));
    }
    hpke::check_sealed_shape(&sealed).map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let session = find_session(&state, &tenant, &path)?;
    // An app that confirms without looking first meets the same policy.
    let assessment = assess(&state, &tenant, &session, &Mobile::of(&state, ip));
    if let Some(signal) = assessment.refused {
        return Err(refuse(state, tenant, session, ip, signal).await);
    }
    session.finish(Outcome::Confirmed)?;
    // Known to verification before the widget can hand the payload to its
    // page, so a backend that verifies at once finds the session.
    let origin = session.widget.origin.as_deref();
    state.confirmed.record(&session.id, &tenant.id, origin, crate::protocol::now_ms());
    to_the_end(deliver(state, tenant, session, ip, request.sealed)).await?;
    Ok(status("confirmed"))
}

/// Runs what follows a session's end in a task of its own, so that a phone
/// whose connection drops meanwhile cannot leave the widget unanswered or
/// the record unwritten.
async fn to_the_end<T: 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + 'static,
) -> Result<T, ApiError> {
    actix_web::rt::spawn(work).await.map_err(ApiError::internal)?
}

/// Records a confirm, then hands its payload to the widget.
async fn deliver(
    state: web::Data<AppState>,
    tenant: Arc<Tenant>,
    session: Arc<Session>,
    ip: IpAddr,
    sealed: String,
) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    // The record is durable before the payload leaves: no login reaches a
    // browser unrecorded, whenever the server may crash.
    if let Err(e) = audit(&state, &tenant, &session, ip, action::SESSION_CONFIRM).await {
        state.confirmed.forget(&session.id);
        session.abandon();
        session.notify_closed(Closing::Unrecorded);
        return Err(e);
    }
    if let Err(gone) = session.deliver(sealed, DELIVERY_TIMEOUT).await {
        state.confirmed.forget(&session.id);
        let undelivered =
            audit_event(&tenant, &session, ip, action::SESSION_CONFIRM).outcome("widget_gone");
        if let Err(e) = state.audit.record(undelivered).await {
            tracing::error!(error = %e, "undelivered confirm not audited");
        }
        return Err(gone.into());
    }
    state.defences.metrics.relayed(started.elapsed());
    tracing::info!(tenant = %tenant.id, session = %session.id, "session confirmed");
    Ok(())
}

pub async fn deny(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, ip) = calling_tenant(&req, &state)?;

    let session = find_session(&state, &tenant, &path)?;
    session.finish(Outcome::Denied)?;
    to_the_end(async move {
        let recorded = audit(&state, &tenant, &session, ip, action::SESSION_DENY).await;
        // Declining lets no one in, so the widget hears it even if the
        // record failed; the phone then gets the error.
        session.notify_denied();
        recorded?;
        tracing::info!(tenant = %tenant.id, session = %session.id, "session denied");
        Ok(())
    })
    .await?;
    Ok(status("denied"))
}

/// Records what the phone did; the phone is anonymous, known by address.
async fn audit(
    state: &AppState,
    tenant: &Tenant,
    session: &Session,
    ip: IpAddr,
    action: &'static str,
) -> Result<(), ApiError> {
    let event = audit_event(tenant, session, ip, action);
    state.audit.record(event).await.map_err(ApiError::internal)?;
    Ok(())
}

fn audit_event(tenant: &Tenant, session: &Session, ip: IpAddr, action: &'static str) -> Event {
    let actor = Actor::Anonymous { ip: ip.to_string() };
    Event::new(Some(&tenant.id), actor, action)
        .detail("session", session.id.to_string())
        .detail("origin", session.widget.origin.clone())
}

fn status(status: &str) -> HttpResponse {
    no_store(HttpResponse::Ok()).json(StatusResponse { status: status.into() })
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header(("cache-control", "no-store"));
    builder
}

/// The tenant named by `X-App-Key` and the caller's address, after both
/// passed their rate limits.
fn calling_tenant(req: &HttpRequest, state: &AppState) -> Result<(Arc<Tenant>, IpAddr), ApiError> {
    let ip = state.defences.client_ip(req);
    state.defences.check_ip(Limit::SessionCall, ip)?;
    let app_key = header_str(req, "x-app-key")
        .ok_or_else(|| ApiError::BadRequest("the X-App-Key header is required".into()))?;
    let tenant = state
        .directory
        .by_app_key(app_key)
        .ok_or_else(|| ApiError::Forbidden("unknown or disabled app key".into()))?;
    state.defences.check_tenant(Limit::SessionCall, &tenant.id)?;
    Ok((tenant, ip))
}

fn find_session(state: &AppState, tenant: &Tenant, id: &str) -> Result<Arc<Session>, ApiError> {
    SessionId::parse(id)
        .and_then(|id| state.registry.get(&id))
        .filter(|s| s.tenant_id == tenant.id)
        .ok_or(ApiError::NotFound)
}

/// Weighs the risk signals between this phone and the session's widget.
fn assess(state: &AppState, tenant: &Tenant, session: &Session, mobile: &Mobile) -> Assessment {
    let widget = &session.widget;
    let sides = Sides {
        widget_ip: widget.ip,
        widget_origin: widget.origin.as_deref(),
        widget_place: widget.place.as_ref(),
        mobile_ip: mobile.ip,
        mobile_place: mobile.place.as_ref(),
        located: state.geo.is_some(),
    };
    risk::assess(&sides, &tenant.risk_policy)
}

/// Ends a session that a risk signal refuses, tells the widget, and records
/// it; the phone gets the refusal as its answer.
async fn refuse(
    state: web::Data<AppState>,
    tenant: Arc<Tenant>,
    session: Arc<Session>,
    ip: IpAddr,
    signal: String,
) -> ApiError {
    // A session that already ended answers as such, not with a new refusal.
    if let Err(ended) = session.finish(Outcome::Denied) {
        return ended.into();
    }
    let refused = to_the_end(async move {
        let message = risk::refusal_message(&signal);
        let actor = Actor::Anonymous { ip: ip.to_string() };
        let event = Event::new(Some(&tenant.id), actor, action::SESSION_REFUSE)
            .outcome(&signal)
            .detail("session", session.id.to_string());
        let recorded = state.audit.record(event).await;
        // A refusal lets no one in, so the widget hears it whatever the
        // record.
        session.notify_refused(message.clone());
        recorded.map_err(ApiError::internal)?;
        tracing::info!(tenant = %tenant.id, session = %session.id, signal, "session refused");
        Ok(message)
    });
    match refused.await {
        Ok(message) => ApiError::RiskRefused(message),
        Err(e) => e,
    }
}

/// The phone as the server sees it.
struct Mobile {
    ip: IpAddr,
    place: Option<Place>,
}

impl Mobile {
    fn of(state: &AppState, ip: IpAddr) -> Self {
        Self { ip, place: state.geo.as_ref().and_then(|geo| geo.place(ip)) }
    }
}

fn session_view(
    session: &Session,
    mobile: &Mobile,
    assessment: Assessment,
    status: SessionStatus,
) -> SessionView {
    let widget = &session.widget;
    let (browser, os) = browser_and_os(&widget.user_agent);

    SessionView {
        session_id: session.id.to_string(),
        status,
        public_key: session.public_key.to_b64(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        widget: WidgetInfo {
            origin: widget.origin.clone(),
            ip: widget.ip.to_string(),
            user_agent: widget.user_agent.clone(),
            browser,
            os,
            location: widget.place.as_ref().map(|p| p.location.clone()),
        },
        mobile: MobileInfo {
            ip: mobile.ip.to_string(),
            location: mobile.place.as_ref().map(|p| p.location.clone()),
        },
        risk: assessment.warnings,
        notices: assessment.notices,
        distance_km: assessment.distance_km,
    }
}
