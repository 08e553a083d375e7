//! Pages and static files: the widget bundle, the demo, and `/q` for people
//! who scanned a code with a plain camera.

use std::borrow::Cow;
use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use askama::Template;
use rust_embed::RustEmbed;

use super::AppState;
use super::error::ApiError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Files concatenated, in order, into `/widget/keyri.js`.
const WIDGET_PARTS: [&str; 3] =
    ["vendor/qrcode-generator/qrcode.js", "widget/hpke.js", "widget/widget.js"];

#[derive(Template)]
#[template(path = "demo.html")]
struct DemoPage<'a> {
    app_key: &'a str,
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "scan.html")]
struct ScanPage;

/// Content-Security-Policy for our own pages: scripts and styles only from
/// this server, sockets only back to it, and no framing.
fn page_csp(public_url: &str) -> String {
    let ws = public_url.replacen("http", "ws", 1);
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {ws}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn html(state: &AppState, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", page_csp(&state.public_url)))
        .insert_header(("x-frame-options", "DENY"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .body(body)
}

pub async fn demo(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let app_key = state
        .directory
        .list()
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|t| t.demo && t.enabled)
        .map(|t| t.app_key)
        .ok_or(ApiError::NotFound)?;
    let page = DemoPage { app_key: &app_key, public_url: &state.public_url }
        .render()
        .map_err(ApiError::internal)?;
    Ok(html(&state, page))
}

pub async fn scan(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let page = ScanPage.render().map_err(ApiError::internal)?;
    Ok(html(&state, page))
}

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match Assets::get(&path) {
        Some(file) => HttpResponse::Ok()
            .content_type(content_type(&path))
            .insert_header(("x-content-type-options", "nosniff"))
            .insert_header(("cache-control", "public, max-age=300"))
            .body(file.data.into_owned()),
        None => ApiError::NotFound.into_response(),
    }
}

pub async fn widget_bundle() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("access-control-allow-origin", "*"))
        .body(bundle())
}

/// The widget as one script: its stylesheet as a string, the vendored QR
/// encoder, the HPKE code and the element, inside one function scope.
fn bundle() -> &'static str {
    static BUNDLE: OnceLock<String> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let text = |name: &str| {
            Assets::get(name).map_or(Cow::Borrowed(""), |f| match f.data {
                Cow::Borrowed(b) => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
                Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
            })
        };
        let css = serde_json::to_string(&text("widget/widget.css")).unwrap_or_default();
        let mut out = format!("(function () {{\nconst KEYRI_CSS = {css};\n");
        for part in WIDGET_PARTS {
            out.push_str(&text(part));
            out.push('\n');
        }
        out.push_str("})();\n");
        out
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

trait IntoResponse {
    fn into_response(self) -> HttpResponse;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
