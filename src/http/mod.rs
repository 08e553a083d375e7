//! The HTTP face of the server: routes and the state they share.

mod backend;
mod body;
pub mod client;
pub mod defences;
mod demo_backend;
pub mod error;
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
}

pub fn routes(cfg: &mut web::ServiceConfig, demo: bool) {
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
