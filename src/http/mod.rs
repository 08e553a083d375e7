//! The HTTP face of the server: routes and the state they share.

mod admin_api;
mod admin_audit;
mod admin_pages;
pub mod admin_session;
mod admin_tenants;
mod admin_tokens;
mod backend;
mod body;
pub mod client;
pub mod defences;
mod demo_backend;
pub mod error;
mod form;
mod health;
mod pages;
mod phone;
mod widget_ws;

use actix_web::web;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::config::Config;
use crate::directory::Directory;
use crate::relay::{ConfirmedLog, Registry};

/// Everything a request handler may use; one per server, no globals.
pub struct AppState {
    pub config: Config,
    pub public_url: String,
    pub directory: std::sync::Arc<Directory>,
    pub registry: std::sync::Arc<Registry>,
    /// Confirmed sessions awaiting server-side verification.
    pub confirmed: std::sync::Arc<ConfirmedLog>,
    pub audit: AuditLog,
    pub defences: std::sync::Arc<defences::Defences>,
    /// The GeoIP database, when one is configured.
    pub geo: Option<std::sync::Arc<crate::geo::GeoDb>>,
    /// Flips to true when the server begins to stop.
    pub shutdown: watch::Receiver<bool>,
    /// Dashboard sign-ins, throttling and the setup link.
    pub admin: std::sync::Arc<crate::admin::AdminAuth>,
}

pub fn routes(cfg: &mut web::ServiceConfig, demo: bool, admin: bool) {
    if admin {
        admin_routes(cfg);
    }
    cfg.route("/v1/widget/ws", web::get().to(widget_ws::connect))
        .route("/v1/sessions/{id}", web::get().to(phone::view))
        .route("/v1/sessions/{id}/confirm", web::post().to(phone::confirm))
        .route("/v1/sessions/{id}/deny", web::post().to(phone::deny))
        .route("/v1/users/{username}/keys", web::post().to(backend::add_key))
        .route("/v1/users/{username}/keys", web::get().to(backend::list_keys))
        .route("/v1/users/{username}/keys/{key_id}", web::delete().to(backend::revoke_key))
        .route("/v1/verify", web::post().to(backend::verify))
        .route("/widget/keyri.js", web::get().to(pages::widget_bundle))
        .route("/assets/{path:.*}", web::get().to(pages::asset))
        .route("/q", web::get().to(pages::scan))
        .route("/v1/openapi.json", web::get().to(health::openapi))
        .route("/healthz", web::get().to(health::live))
        .route("/readyz", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics));
    if demo {
        cfg.route("/demo", web::get().to(pages::demo))
            .route("/demo/verify", web::post().to(demo_backend::verify));
    }
}

/// The dashboard under `/admin` and the admin API under `/v1/admin`.
fn admin_routes(cfg: &mut web::ServiceConfig) {
    use admin_tenants as tenants;
    cfg.route("/admin", web::get().to(admin_pages::home))
        .route("/admin/setup", web::get().to(admin_pages::setup_form))
        .route("/admin/setup", web::post().to(admin_pages::setup))
        .route("/admin/login", web::get().to(admin_pages::login_form))
        .route("/admin/login", web::post().to(admin_pages::login))
        .route("/admin/logout", web::post().to(admin_pages::logout))
        .route("/admin/tenants", web::get().to(tenants::list))
        .route("/admin/tenants", web::post().to(tenants::create))
        .route("/admin/tenants/{id}", web::get().to(tenants::show))
        .route("/admin/tenants/{id}", web::post().to(tenants::update))
        .route("/admin/tenants/{id}/live", web::get().to(tenants::live))
        .route("/admin/tenants/{id}/disable", web::post().to(tenants::disable))
        .route("/admin/tenants/{id}/enable", web::post().to(tenants::enable))
        .route("/admin/tenants/{id}/delete", web::post().to(tenants::delete))
        .route("/admin/tenants/{id}/secrets", web::post().to(tenants::create_secret))
        .route("/admin/tenants/{id}/secrets/rotate", web::post().to(tenants::rotate_secret))
        .route(
            "/admin/tenants/{id}/secrets/{secret}/revoke",
            web::post().to(tenants::revoke_secret),
        )
        .route("/admin/tenants/{id}/app-key/rotate", web::post().to(tenants::rotate_app_key))
        .route("/admin/audit", web::get().to(admin_audit::show))
        .route("/admin/audit/export", web::get().to(admin_audit::export))
        .route("/admin/tokens", web::get().to(admin_tokens::list))
        .route("/admin/tokens", web::post().to(admin_tokens::create))
        .route("/admin/tokens/{id}/revoke", web::post().to(admin_tokens::revoke));
    admin_api::routes(cfg);
}
