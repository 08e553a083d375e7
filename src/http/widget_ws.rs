//! `GET /v1/widget/ws`: the widget's socket. The app key and origin are
//! checked before the upgrade; then the widget says hello with its public key,
//! gets a session, and hears what happens to it until the session ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::AppState;
use super::client::header_str;
use super::defences::{Limit, limit_key};
use super::error::ApiError;
use crate::audit::action::SESSION_EXPIRE;
use crate::audit::{self, Actor};
use crate::limits::CapReached;
use crate::protocol::PublicKey;
use crate::protocol::messages::{WidgetIn, WidgetOut};
use crate::relay::{Closing, Event, NotOpened, Outcome, Session, WidgetMeta};
use crate::tenants::Tenant;

/// How long past its expiry a session that a phone ended may wait for its
/// last word: longer than a confirm may take to record and deliver.
const LAST_WORD_GRACE: Duration = Duration::from_secs(15);
/// How long one write to a widget's socket may wait: a client that stops
/// reading loses its socket (and a payload being written) rather than hold
/// its session, its slots and the phone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds after which a client at its socket cap may try again.
const SOCKET_RETRY_SECS: u64 = 5;
/// Longest User-Agent kept for display to the phone.
const MAX_USER_AGENT: usize = 512;

#[derive(Deserialize)]
pub struct WsQuery {
    #[serde(rename = "appKey")]
    app_key: Option<String>,
}

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ip = state.defences.client_ip(&req);
    state.defences.check_ip(Limit::SocketOpen, ip)?;
    let app_key = query
        .app_key
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("the appKey query parameter is required".into()))?;
    let tenant = state
        .directory
        .by_app_key(app_key)
        .ok_or_else(|| ApiError::Forbidden("unknown or disabled app key".into()))?;
    state.defences.check_tenant(Limit::SocketOpen, &tenant.id)?;
    let origin = match req.headers().get("origin") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Forbidden("the Origin header is not valid text".into()))?,
        ),
    };
    check_origin(&tenant, origin)?;
    let slot = state.defences.sockets.acquire(limit_key(ip)).map_err(|cap| match cap {
        CapReached::PerAddress => ApiError::RateLimited(SOCKET_RETRY_SECS),
        CapReached::Total => ApiError::Busy,
    })?;

    let meta = WidgetMeta {
        origin: origin.map(str::to_owned),
        ip,
        user_agent: header_str(&req, "user-agent")
            .unwrap_or("")
            .chars()
            .take(MAX_USER_AGENT)
            .collect(),
        place: state.geo.as_ref().and_then(|geo| geo.place(ip)),
    };
    let (response, mut socket, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    let frame_limit = state.config.limits.widget_frame_bytes;
    let mut stream = stream
        .max_frame_size(frame_limit)
        .aggregate_continuations()
        .max_continuation_size(frame_limit);

    let state = state.into_inner();
    // The widget's facts are boxed: they only pass through this task's state
    // on their way into the session.
    let meta = Box::new(meta);
    actix_web::rt::spawn(async move {
        let outcome = run(state, tenant, meta, &mut socket, &mut stream).await;
        // Reading ends before the close goes out, as actix-http then finishes
        // the connection at once rather than at its next timeout.
        drop(stream);
        let _ = tokio::time::timeout(WRITE_TIMEOUT, socket.close(Some(outcome))).await;
        drop(slot);
    });
    Ok(response)
}

fn check_origin(tenant: &Tenant, origin: Option<&str>) -> Result<(), ApiError> {
    let refusal = match origin {
        Some(origin) if tenant.allows_origin(origin) => return Ok(()),
        None if tenant.allow_native => return Ok(()),
        Some(_) => "this origin is not allowed for the app key",
        None => "native clients are not allowed for the app key",
    };
    // Operators need to see why a widget cannot connect; origins are public.
    let shown = origin.unwrap_or("-");
    tracing::info!(tenant = %tenant.id, origin = shown, "widget refused: {refusal}");
    Err(ApiError::Forbidden(refusal.into()))
}

fn close(code: CloseCode, reason: &str) -> CloseReason {
    CloseReason { code, description: Some(reason.into()) }
}

async fn send(socket: &mut actix_ws::Session, message: &WidgetOut) -> bool {
    let text = serde_json::to_string(message).unwrap_or_default();
    written(socket.text(text)).await
}

/// Waits for one write to the socket, at most `WRITE_TIMEOUT`; whether it
/// went out. Boxed, like every write here: its state is then held only while
/// it runs, not by every waiting widget.
fn written<'a, E: 'a>(
    write: impl Future<Output = Result<(), E>> + 'a,
) -> Pin<Box<dyn Future<Output = bool> + 'a>> {
    Box::pin(async move { matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(()))) })
}

/// Sends an error frame; returns the close reason to end the socket with.
async fn fail(socket: &mut actix_ws::Session, error: &str, message: &str) -> CloseReason {
    let frame = WidgetOut::Error { error: error.into(), message: message.into() };
    send(socket, &frame).await;
    close(CloseCode::Policy, error)
}

/// Answers a frame the protocol layer refused, such as one over the size
/// limit, with an error frame before closing.
async fn frame_error(socket: &mut actix_ws::Session, error: ProtocolError) -> CloseReason {
    match error {
        ProtocolError::Overflow => {
            fail(socket, "too_large", "a frame is larger than the server accepts").await
        }
        _ => close(CloseCode::Protocol, "protocol error"),
    }
}

/// Waits for the hello frame and returns the widget's public key.
async fn hello(
    socket: &mut actix_ws::Session,
    stream: &mut AggregatedMessageStream,
    deadline: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<PublicKey, CloseReason> {
    // One deadline for the whole wait: pings do not buy more time.
    let deadline = Instant::now() + deadline;
    let first = loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, stream.recv()) => next,
            _ = shutdown.changed() => return Err(close(CloseCode::Away, "server stopping")),
        };
        match next {
            Err(_) => {
                return Err(fail(socket, "hello_timeout", "no hello within the time allowed").await);
            }
            Ok(Some(Err(e))) => return Err(frame_error(socket, e).await),
            Ok(None) => return Err(close(CloseCode::Normal, "closed")),
            Ok(Some(Ok(AggregatedMessage::Ping(bytes)))) => {
                if !written(socket.pong(&bytes)).await {
                    return Err(close(CloseCode::Away, "gone"));
                }
            }
            Ok(Some(Ok(AggregatedMessage::Pong(_)))) => {}
            Ok(Some(Ok(AggregatedMessage::Close(_)))) => {
                return Err(close(CloseCode::Normal, "closed"));
            }
            Ok(Some(Ok(other))) => break other,
        }
    };

    let AggregatedMessage::Text(text) = first else {
        return Err(fail(socket, "bad_request", "frames must be JSON text").await);
    };
    let Ok(WidgetIn::Hello { public_key }) = serde_json::from_str::<WidgetIn>(&text) else {
        let message = "expected {\"type\":\"hello\",\"publicKey\":\"…\"}";
        return Err(fail(socket, "bad_request", message).await);
    };
    match PublicKey::from_b64(&public_key) {
        Some(key) => Ok(key),
        None => {
            let message = "publicKey is not a base64url uncompressed P-256 point";
            Err(fail(socket, "bad_request", message).await)
        }
    }
}

/// Records a session that ran out of time after a phone had looked at it.
async fn audit_expiry(state: &AppState, tenant: &Tenant, session: &Session) {
    let event = audit::Event::new(Some(&tenant.id), Actor::System, SESSION_EXPIRE)
        .detail("session", session.id.to_string());
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "expiry not audited");
    }
}

/// Unboxes the widget's facts into its session, freeing the box.
#[allow(clippy::boxed_local)] // the box keeps the socket task's state small
fn new_session(
    tenant: &Tenant,
    public_key: PublicKey,
    lifetime_ms: i64,
    meta: Box<WidgetMeta>,
) -> Session {
    Session::new(tenant.id.clone(), public_key, lifetime_ms, *meta)
}

/// The whole life of one widget socket; returns how to close it.
async fn run(
    state: Arc<AppState>,
    tenant: Arc<Tenant>,
    meta: Box<WidgetMeta>,
    socket: &mut actix_ws::Session,
    stream: &mut AggregatedMessageStream,
) -> CloseReason {
    let limits = &state.config.sessions;
    let deadline = Duration::from_secs(limits.hello_timeout_secs);
    // Boxed so that its state is freed once the hello is in, rather than
    // kept for the whole life of the socket.
    let hello = Box::pin(hello(socket, stream, deadline, state.shutdown.clone()));
    let public_key = match hello.await {
        Ok(key) => key,
        Err(reason) => return reason,
    };

    let lifetime_ms = i64::from(tenant.session_lifetime_secs) * 1000;
    let session = new_session(&tenant, public_key, lifetime_ms, meta);
    let per_tenant = state.config.limits.pending_sessions_per_tenant;
    let (session, _guard) = match state.registry.open(session, per_tenant) {
        Ok(opened) => opened,
        Err(NotOpened::TooManySessions) => {
            let message = "this app has too many logins waiting; try again shortly";
            return Box::pin(fail(socket, "too_many_sessions", message)).await;
        }
        Err(NotOpened::Stopping) => return close(CloseCode::Away, "server stopping"),
    };
    // A tenant disabled before the session opened closed no session of this
    // widget's; from now on disabling it tells this session.
    if state.directory.by_app_key(&tenant.app_key).is_none() {
        let message = "this app key was disabled";
        return Box::pin(fail(socket, "tenant_disabled", message)).await;
    }
    tracing::debug!(tenant = %tenant.id, session = %session.id, "session opened");

    let greeting = WidgetOut::Session {
        session_id: session.id.to_string(),
        expires_at: session.expires_at,
        scan_url: tenant.scan_url_or(&state.public_url),
    };
    let greeted = send(socket, &greeting).await;
    drop(greeting);
    if !greeted {
        return close(CloseCode::Away, "gone");
    }

    // Every waiting widget keeps this function's state, so the steps below
    // that await something other than the next event (writes, error frames,
    // the expiry's audit record) are boxed: their state is then allocated
    // only while they run.
    let ping_every = Duration::from_secs(limits.ping_interval_secs);
    let mut last_heard = Instant::now();
    // One timer serves both the pings and the expiry.
    let expires_at = Instant::now() + Duration::from_millis(lifetime_ms as u64);
    let mut expiry_armed = true;
    // A session that a phone ended just before its expiry gets this long
    // for its last word to arrive; then the socket closes regardless.
    let mut last_word_by: Option<Instant> = None;
    let mut next_ping = Instant::now() + ping_every;
    let timer = sleep_until(next_ping.min(expires_at));
    tokio::pin!(timer);

    loop {
        tokio::select! {
            message = stream.recv() => match message {
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if !written(socket.pong(&bytes)).await {
                        return close(CloseCode::Away, "gone");
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(AggregatedMessage::Close(_))) | None => {
                    return close(CloseCode::Normal, "closed");
                }
                Some(Err(e)) => return Box::pin(frame_error(socket, e)).await,
                Some(Ok(_)) => {
                    let message = "only one hello is allowed";
                    return Box::pin(fail(socket, "bad_request", message)).await;
                }
            },
            event = session.next_event() => match event {
                Event::Scanned => {
                    if !send(socket, &WidgetOut::Scanned).await {
                        return close(CloseCode::Away, "gone");
                    }
                }
                Event::Payload { sealed, delivered } => {
                    if !session.claim_payload() {
                        // Given up on meanwhile: the tenant was disabled, or
                        // the phone's wait ran out. Nothing is written.
                        drop(delivered);
                        if state.directory.by_app_key(&tenant.app_key).is_none() {
                            let message = "this app key was disabled";
                            return Box::pin(fail(socket, "tenant_disabled", message)).await;
                        }
                        return close(CloseCode::Away, "gone");
                    }
                    let frame = WidgetOut::Payload { sealed };
                    let sent = send(socket, &frame).await;
                    session.delivered(sent);
                    if !sent {
                        return close(CloseCode::Away, "gone");
                    }
                    let _ = delivered.send(());
                    return close(CloseCode::Normal, "confirmed");
                }
                Event::Denied => {
                    send(socket, &WidgetOut::Denied).await;
                    return close(CloseCode::Normal, "denied");
                }
                Event::Refused(message) => {
                    return Box::pin(fail(socket, "risk_refused", &message)).await;
                }
                Event::Closed(Closing::TenantDisabled) => {
                    let message = "this app key was disabled";
                    return Box::pin(fail(socket, "tenant_disabled", message)).await;
                }
                Event::Closed(Closing::Stopping) => {
                    return close(CloseCode::Away, "server stopping");
                }
                Event::Closed(Closing::Unrecorded) => {
                    let message = "the server could not record this login; try again";
                    return Box::pin(fail(socket, "internal", message)).await;
                }
            },
            () = &mut timer => {
                let now = Instant::now();
                // A confirm or deny that won the race delivers its own event.
                if expiry_armed && now >= expires_at {
                    expiry_armed = false;
                    if session.finish(Outcome::Expired).is_ok() {
                        send(socket, &WidgetOut::Expired).await;
                        if session.was_scanned() {
                            Box::pin(audit_expiry(&state, &tenant, &session)).await;
                        }
                        return close(CloseCode::Normal, "expired");
                    }
                    last_word_by = Some(now + LAST_WORD_GRACE);
                }
                if last_word_by.is_some_and(|by| now >= by) {
                    return close(CloseCode::Away, "gone");
                }
                if now >= next_ping {
                    if last_heard.elapsed() > ping_every * 2 {
                        return close(CloseCode::Away, "no answer to pings");
                    }
                    if !written(socket.ping(b"")).await {
                        return close(CloseCode::Away, "gone");
                    }
                    next_ping = now + ping_every;
                }
                let wake = match (expiry_armed, last_word_by) {
                    (true, _) => next_ping.min(expires_at),
                    (false, Some(by)) => next_ping.min(by),
                    (false, None) => next_ping,
                };
                timer.as_mut().reset(wake);
            }
        }
    }
}
