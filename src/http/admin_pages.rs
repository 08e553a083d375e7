//! The dashboard's way in and out: first-run setup through the printed
//! link, sign-in with throttling, and sign-out.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AppState;
use super::admin_session::{
    LOGIN_CSRF_COOKIE, PageError, SESSION_COOKIE, blocking, check_form, check_origin, cookie, page,
    secure_headers, see_other, set_cookie, signed_in,
};
use super::client::client_ip;
use super::defences::limit_key;
use super::error::ApiError;
use super::form::Form;
use crate::admin::{AdminName, Password, accounts, csrf};
use crate::audit::{Actor, Event, action};
use crate::protocol::now_ms;

const SIGN_IN: &str = action::ADMIN_SIGN_IN;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: &'a str,
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    error: &'a str,
}

/// The setup form again with what was wrong, so the link need not be opened
/// anew; the link stays valid.
fn setup_again(token: &str, error: &str) -> Result<HttpResponse, PageError> {
    let body = SetupPage { token, error }.render().map_err(ApiError::internal)?;
    let mut page = page(body);
    *page.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    Ok(page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    signed_in(&req, &state)?;
    Ok(see_other("/admin/tenants"))
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if signed_in(&req, &state).is_ok() {
        return Ok(see_other("/admin/tenants"));
    }
    Ok(login_page(&state, "", actix_web::http::StatusCode::OK)?)
}

/// The sign-in page with a fresh CSRF token in its cookie and form.
fn login_page(
    state: &AppState,
    error: &str,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, ApiError> {
    let token = csrf::generate();
    let body = LoginPage { csrf: &token, error }.render().map_err(ApiError::internal)?;
    Ok(secure_headers(HttpResponse::build(status))
        .insert_header((header::SET_COOKIE, set_cookie(state, LOGIN_CSRF_COOKIE, &token, None)))
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub async fn login(
    req: HttpRequest,
    form: Form<LoginForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    check_origin(&req, &state)?;
    let expected = cookie(&req, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !csrf::matches(expected, &form.csrf) {
        return Err(ApiError::Forbidden("the form's CSRF token is missing or wrong".into()).into());
    }

    let ip = client_ip(&req).to_string();
    // Failures from one IPv6 /64 count together, as the other limits do.
    let address = limit_key(client_ip(&req)).to_string();
    let now = now_ms();
    if let Err(wait) = state.admin.throttle.attempt(&form.name, &address, now) {
        tracing::info!(%ip, "sign-in throttled");
        let text = format!(
            "Too many failed sign-ins for this name or from this address. Try again in {}.",
            if wait < 120 { format!("{wait} s") } else { format!("{} min", wait.div_ceil(60)) }
        );
        let status = actix_web::http::StatusCode::TOO_MANY_REQUESTS;
        let mut page = login_page(&state, &text, status)?;
        let retry = header::HeaderValue::from(wait);
        page.headers_mut().insert(header::RETRY_AFTER, retry);
        return Ok(page);
    }

    let form = form.into_inner();
    let admin = authenticate(&state, form.name, form.password, &ip).await?;

    match admin {
        Some(name) => {
            state.admin.throttle.succeeded(name.as_str(), &address, now);
            Ok(start_session(&state, name.as_str()))
        }
        None => {
            let status = actix_web::http::StatusCode::UNAUTHORIZED;
            Ok(login_page(&state, "Wrong name or password.", status)?)
        }
    }
}

/// Checks a name and password off the async workers and audits the outcome.
/// Unknown names and wrong passwords take the same path and the same time.
async fn authenticate(
    state: &AppState,
    name: String,
    password: String,
    ip: &str,
) -> Result<Option<AdminName>, ApiError> {
    let (auth, directory, typed) = (state.admin.clone(), state.directory.clone(), name.clone());
    let password = Password::presented(password);
    let checked =
        blocking(move || accounts::check(&directory, &auth.hasher, &typed, &password)).await?;

    let admin = checked.valid.then(|| AdminName::parse(&name).ok()).flatten();
    let failed = Event::new(None, Actor::Anonymous { ip: ip.into() }, SIGN_IN)
        .outcome("bad_credentials")
        .detail("nameKnown", checked.known);
    let event = match &admin {
        Some(admin) => {
            Event::new(None, Actor::Admin { name: admin.as_str().into() }, SIGN_IN).detail("ip", ip)
        }
        // An admin's name is worth recording. Anything else may be a password
        // typed into the wrong field, so it is not kept, not even hashed.
        None if checked.known => match AdminName::parse(&name) {
            Ok(admin) => failed.detail("name", admin.as_str()),
            Err(_) => failed,
        },
        None => failed,
    };
    state.audit.record(event).await.map_err(ApiError::internal)?;
    match &admin {
        Some(admin) => tracing::info!(admin = %admin.as_str(), "admin signed in"),
        None => tracing::info!(%ip, "admin sign-in failed"),
    }
    Ok(admin)
}

/// Signs `admin` in: a fresh session id in the cookie, the login CSRF
/// cookie removed.
fn start_session(state: &AppState, admin: &str) -> HttpResponse {
    let id = state.admin.sessions.create(admin, now_ms());
    let mut response = see_other("/admin/tenants");
    let headers = response.headers_mut();
    for value in [
        set_cookie(state, SESSION_COOKIE, &id, None),
        set_cookie(state, LOGIN_CSRF_COOKIE, "", Some(0)),
    ] {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

pub async fn logout(
    req: HttpRequest,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    if let Some(id) = cookie(&req, SESSION_COOKIE) {
        state.admin.sessions.remove(id);
    }
    let ip = client_ip(&req).to_string();
    let event =
        Event::new(None, Actor::Admin { name: admin.admin.clone() }, action::ADMIN_SIGN_OUT)
            .detail("ip", ip);
    state.audit.record(event).await.map_err(ApiError::internal)?;

    let mut response = see_other("/admin/login");
    let gone = set_cookie(&state, SESSION_COOKIE, "", Some(0));
    if let Ok(value) = header::HeaderValue::from_str(&gone) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// What an unknown, used or expired setup link answers.
const SETUP_LINK_GONE: &str = "this setup link is unknown, already used or expired; \
     create an admin on the server with `keyri admin create`";

pub async fn setup_form(
    query: web::Query<SetupQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if !state.admin.setup.is_valid(&query.token, now_ms()) {
        return Err(ApiError::Missing(SETUP_LINK_GONE).into());
    }
    let body = SetupPage { token: &query.token, error: "" }.render().map_err(ApiError::internal)?;
    Ok(page(body))
}

pub async fn setup(
    req: HttpRequest,
    form: Form<SetupForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    check_origin(&req, &state)?;
    if !state.admin.setup.is_valid(&form.token, now_ms()) {
        return Err(ApiError::Missing(SETUP_LINK_GONE).into());
    }

    let form = form.into_inner();
    let name = match AdminName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => return setup_again(&form.token, &e.to_string()),
    };
    if form.password != form.confirm {
        return setup_again(&form.token, "The two passwords differ.");
    }
    let password = match Password::new(form.password) {
        Ok(password) => password,
        Err(e) => return setup_again(&form.token, &e.to_string()),
    };
    let (auth, directory, who) = (state.admin.clone(), state.directory.clone(), name.clone());
    blocking(move || accounts::create(&directory, &auth.hasher, &who, &password, true)).await?;
    state.admin.setup.consume(&form.token, now_ms());
    state.admin.setup.cancel();

    let ip = client_ip(&req).to_string();
    let event = Event::new(None, Actor::Admin { name: name.as_str().into() }, action::ADMIN_SETUP)
        .detail("ip", ip);
    state.audit.record(event).await.map_err(ApiError::internal)?;
    tracing::info!(admin = %name.as_str(), "first admin created through the setup link");
    Ok(start_session(&state, name.as_str()))
}
