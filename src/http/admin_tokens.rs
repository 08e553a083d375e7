//! Admin API tokens in the dashboard: list, create (shown once) and revoke.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::AppState;
use super::admin_pages::CsrfForm;
use super::admin_session::{PageError, blocking, check_form, page, see_other, signed_in};
use super::client::client_ip;
use super::error::ApiError;
use super::form::Form;
use crate::admin::{AdminName, tokens};
use crate::audit::{Actor, Event, action};
use crate::cli::format_time;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage<'a> {
    admin: &'a str,
    csrf: &'a str,
    tokens: Vec<TokenRow>,
    /// A token created just now, shown this once.
    fresh: &'a str,
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let admin = signed_in(&req, &state)?;

    render(&state, &admin.admin, &admin.csrf, "")
}

fn render(
    state: &AppState,
    admin: &str,
    csrf: &str,
    fresh: &str,
) -> Result<HttpResponse, PageError> {
    let rows = tokens::list(&state.directory)
        .map_err(ApiError::from)?
        .into_iter()
        .map(|t| TokenRow { id: t.id, name: t.name, created: format_time(t.created_at) })
        .collect();
    let body = TokensPage { admin, csrf, tokens: rows, fresh };
    Ok(page(body.render().map_err(ApiError::internal)?))
}

pub async fn create(
    req: HttpRequest,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let name = AdminName::parse(&admin.admin).map_err(ApiError::from)?;
    let directory = state.directory.clone();
    let (token, record) = blocking(move || tokens::issue(&directory, &name)).await?;
    let event =
        Event::new(None, Actor::Admin { name: admin.admin.clone() }, action::ADMIN_TOKEN_CREATE)
            .detail("tokenId", record.id.clone())
            .detail("ip", client_ip(&req).to_string());
    state.audit.record(event).await.map_err(ApiError::internal)?;

    render(&state, &admin.admin, &admin.csrf, &token)
}

pub async fn revoke(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = check_form(&req, &state, &form.csrf)?;

    let (directory, id) = (state.directory.clone(), path.into_inner());
    let token_id = id.clone();
    if !blocking(move || tokens::revoke(&directory, &token_id)).await? {
        return Err(ApiError::NotFound.into());
    }
    let event =
        Event::new(None, Actor::Admin { name: admin.admin.clone() }, action::ADMIN_TOKEN_REVOKE)
            .detail("tokenId", id)
            .detail("ip", client_ip(&req).to_string());
    state.audit.record(event).await.map_err(ApiError::internal)?;

    Ok(see_other("/admin/tokens"))
}
