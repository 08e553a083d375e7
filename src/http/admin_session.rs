//! What every dashboard request shares: the sign-in cookie, the CSRF and
//! Origin checks on forms, the headers of admin pages, and the HTML error
//! page, which comes from the same mapping as every other error.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;

use super::AppState;
use super::client::header_str;
use super::error::ApiError;
use crate::admin::{SignedIn, csrf};
use crate::protocol::now_ms;
use crate::tenants::normalize_origin;

/// The sign-in cookie: a random id, HttpOnly, SameSite=Strict, path /admin.
pub const SESSION_COOKIE: &str = "keyri_admin";
/// The sign-in form's CSRF cookie, checked against the form's hidden field
/// before anyone is signed in.
pub const LOGIN_CSRF_COOKIE: &str = "keyri_login_csrf";

/// Content-Security-Policy of admin pages: nothing inline, nothing foreign,
/// no framing, forms only back here.
const ADMIN_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The value of a request cookie.
pub fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    let header = header_str(req, "cookie")?;
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A `Set-Cookie` value. `max_age` 0 removes the cookie.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> String {
    cookie_text(&state.public_url, name, value, max_age)
}

/// `Secure` whenever browsers reach the server over https, such as behind a
/// TLS proxy.
fn cookie_text(public_url: &str, name: &str, value: &str, max_age: Option<u64>) -> String {
    let secure = if public_url.starts_with("https://") { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict{secure}{age}")
}

/// The signed-in admin behind the request's cookie.
pub fn signed_in(req: &HttpRequest, state: &AppState) -> Result<SignedIn, ApiError> {
    cookie(req, SESSION_COOKIE)
        .and_then(|id| state.admin.sessions.get(id, now_ms()))
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
}

/// The sign-in behind the cookie, without counting the request as activity.
pub fn signed_in_quietly(req: &HttpRequest, state: &AppState) -> Result<SignedIn, ApiError> {
    cookie(req, SESSION_COOKIE)
        .and_then(|id| state.admin.sessions.peek(id, now_ms()))
        .ok_or_else(|| ApiError::Unauthorized("sign in first".into()))
}

/// Refuses a form post whose Origin header, when present, is not this
/// server: browsers send it on every cross-site POST. This server is its
/// public URL, or the host the request was sent to (a proxy may rewrite it).
pub fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = header_str(req, "origin") else { return Ok(()) };
    let origin = origin.to_ascii_lowercase();
    let host = req.connection_info().host().to_ascii_lowercase();
    let same_host = origin.split_once("://").is_some_and(|(_, authority)| authority == host);
    let public = normalize_origin(&state.public_url).is_ok_and(|public| public == origin);
    match same_host || public {
        true => Ok(()),
        false => Err(ApiError::Forbidden("cross-site form posts are refused".into())),
    }
}

/// A form post by a signed-in admin, with the right CSRF token.
pub fn check_form(
    req: &HttpRequest,
    state: &AppState,
    presented: &str,
) -> Result<SignedIn, ApiError> {
    check_origin(req, state)?;
    let admin = signed_in(req, state)?;
    if !csrf::matches(&admin.csrf, presented) {
        tracing::info!(admin = %admin.admin, "form refused: bad csrf token");
        return Err(ApiError::Forbidden("the form's CSRF token is missing or wrong".into()));
    }
    Ok(admin)
}

/// Headers every admin answer carries: a strict CSP, no framing, and no
/// caching, since pages show secrets and audit records.
pub fn secure_headers(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header(("content-security-policy", ADMIN_CSP))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("x-content-type-options", "nosniff"))
        // Not `no-referrer`: with it, browsers send `Origin: null` on form
        // posts, and the Origin check needs the real one. Nothing leaves the
        // site either way.
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// An admin page.
pub fn page(body: String) -> HttpResponse {
    secure_headers(HttpResponse::Ok()).content_type("text/html; charset=utf-8").body(body)
}

/// A redirect after a form post.
pub fn see_other(location: &str) -> HttpResponse {
    secure_headers(HttpResponse::SeeOther()).insert_header((header::LOCATION, location)).finish()
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

/// An error on an admin page: the status and sentence of `ApiError`, shown
/// as HTML. Not signed in becomes a redirect to the sign-in page.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PageError(#[from] pub ApiError);

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unauthorized(_) = self.0 {
            return see_other("/admin/login");
        }
        if let ApiError::Internal(detail) = &self.0 {
            tracing::error!(%detail, "admin page failed");
        }
        let message = self.0.to_string();
        let body = ErrorPage { status: self.status_code().as_u16(), message: &message }
            .render()
            .unwrap_or_else(|_| message.clone());
        let mut builder = secure_headers(HttpResponse::build(self.status_code()));
        if let ApiError::RateLimited(secs) = self.0 {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        builder.content_type("text/html; charset=utf-8").body(body)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        use crate::tenants::TenantError;
        match e {
            StoreError::Tenant(TenantError::NotFound(_)) => ApiError::Missing("no such tenant"),
            StoreError::Tenant(TenantError::NoSuchSecret(_)) => {
                ApiError::Missing("no such secret for this tenant")
            }
            StoreError::Tenant(TenantError::NameTaken(_)) => {
                ApiError::Conflict("name_taken", e.to_string())
            }
            StoreError::Tenant(other) => ApiError::BadRequest(other.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::admin::AdminError> for ApiError {
    fn from(e: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError;
        match e {
            AdminError::BadName | AdminError::WeakPassword | AdminError::SetupLinkInvalid => {
                ApiError::BadRequest(e.to_string())
            }
            AdminError::NameTaken(_) => ApiError::Conflict("name_taken", e.to_string()),
            AdminError::NoSuchAdmin(_) => ApiError::NotFound,
            AdminError::Store(store) => store.into(),
            AdminError::Hashing(_) => ApiError::internal(e),
        }
    }
}

/// Runs blocking work (password hashing, database writes) off the async
/// workers.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    actix_web::web::block(work).await.map_err(ApiError::internal)?.map_err(Into::into)
}

/// Runs an admin change on the blocking pool, then records its audit event;
/// the caller answers only once the record is durable.
pub async fn audited<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    state: &super::AppState,
    change: impl FnOnce() -> Result<(T, crate::audit::Event), E> + Send + 'static,
) -> Result<T, ApiError> {
    let (done, event) = blocking(change).await?;
    state.audit.record(event).await.map_err(ApiError::internal)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::cookie_text;

    #[test]
    fn cookies_are_secure_exactly_when_served_over_https() {
        let https = cookie_text("https://login.example.com", "keyri_admin", "x", None);
        assert_eq!(https, "keyri_admin=x; Path=/admin; HttpOnly; SameSite=Strict; Secure");
        let http = cookie_text("http://127.0.0.1:8080", "keyri_admin", "", Some(0));
        assert_eq!(http, "keyri_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
    }
}
