//! The one place where failures become HTTP answers. Clients get a stable
//! code and a sentence; internal details are logged here and never sent.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::auth::VerifyError;
use crate::protocol::messages::ErrorBody;
use crate::relay::RelayError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    /// A refused verification: answered as `{"valid":false,…}`.
    #[error("{0}")]
    Verify(VerifyError),
    #[error("no such session")]
    NotFound,
    #[error("no such key for this user")]
    NoSuchKey,
    #[error("no such route")]
    NoSuchRoute,
    /// Something named in the path does not exist; the text says what.
    #[error("{0}")]
    Missing(&'static str),
    #[error("the session was already confirmed or denied")]
    AlreadyFinished,
    #[error("the widget disconnected; nothing was delivered")]
    WidgetGone,
    #[error("the request is larger than the {0}-byte limit")]
    TooLarge(usize),
    #[error("too many requests; try again in {0} s")]
    RateLimited(u64),
    #[error("the server is at capacity; try again shortly")]
    Busy,
    #[error("the request body did not arrive in time")]
    Timeout,
    #[error("{0}")]
    RiskRefused(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(code, _) => code,
            Self::Verify(e) => e.code(),
            Self::NotFound | Self::NoSuchKey | Self::NoSuchRoute | Self::Missing(_) => "not_found",
            Self::AlreadyFinished => "already_finished",
            Self::WidgetGone => "widget_gone",
            Self::TooLarge(_) => "too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::Busy => "busy",
            Self::Timeout => "timeout",
            Self::RiskRefused(_) => "risk_refused",
            Self::Internal(_) => "internal",
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::NotFound => Self::NotFound,
            RelayError::AlreadyFinished => Self::AlreadyFinished,
            RelayError::WidgetGone => Self::WidgetGone,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::Verify(VerifyError::Malformed(_)) => StatusCode::BAD_REQUEST,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::NoSuchKey | Self::NoSuchRoute | Self::Missing(_) => {
                StatusCode::NOT_FOUND
            }
            Self::AlreadyFinished => StatusCode::CONFLICT,
            Self::WidgetGone => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::RiskRefused(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "request failed");
        }
        let body = ErrorBody { error: self.code().into(), message: self.to_string() };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::RateLimited(secs) => {
                response.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::Verify(_) => {
                let body = serde_json::json!({
                    "valid": false, "error": body.error, "message": body.message,
                });
                return response.json(body);
            }
            _ => {}
        }
        response.json(body)
    }
}
