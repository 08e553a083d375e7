//! The OpenAPI document stays in step with the routes the code registers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::TestApp;

fn document() -> Value {
    serde_json::from_str(include_str!("../../docs/openapi.json")).expect("valid JSON")
}

/// `{name}` → `{}`, so `/v1/sessions/{id}` and `/v1/sessions/{sessionId}` match.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// (method, path shape) of every HTTP route in `src/http/mod.rs` and the admin
/// API's `src/http/admin_api.rs`, without the widget socket (documented in
/// docs/protocol.md) and the web pages.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let sources =
        [include_str!("../../src/http/mod.rs"), include_str!("../../src/http/admin_api.rs")];
    let mut routes = BTreeSet::new();
    for piece in sources.iter().flat_map(|source| source.split(".route(").skip(1)) {
        let piece = piece.trim_start().strip_prefix('"').expect("a quoted path");
        let (path, rest) = piece.split_once('"').expect("a quoted path");
        let method = rest.split("web::").nth(1).and_then(|m| m.split('(').next()).expect("method");
        let api = path.starts_with("/v1/") || ["/healthz", "/readyz", "/metrics"].contains(&path);
        if api && path != "/v1/widget/ws" {
            routes.insert((method.to_owned(), shape(path)));
        }
    }
    routes
}

fn routes_in_document() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            routes.insert((method.clone(), shape(path)));
        }
    }
    routes
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let code = routes_in_code();
    assert!(code.len() >= 10, "routes not found in the source: {code:?}");
    let admin = code.iter().filter(|(_, path)| path.starts_with("/v1/admin/")).count();
    assert!(admin >= 11, "admin API routes not found in the source: {code:?}");
    assert_eq!(routes_in_document(), code);
}

#[test]
fn every_documented_error_response_uses_the_error_shape() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                let failure =
                    status.starts_with('4') || status.starts_with('5') || status == "default";
                let schema = &response["content"]["application/json"]["schema"];
                if failure && !schema.is_null() {
                    let text = schema.to_string();
                    assert!(
                        text.contains("#/components/schemas/Error")
                            || text.contains("#/components/schemas/Refusal")
                            || text.contains("#/components/schemas/Readiness"),
                        "{method} {path} {status}: {text}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_server_serves_the_document_and_answers_every_documented_route() {
    let app = TestApp::start().await;
    let served: Value = app
        .http()
        .get(format!("{}/v1/openapi.json", app.url))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(served, document());

    for (method, path) in routes_in_document() {
        let url = format!("{}{}", app.url, path.replace("{}", "x"));
        let request = match method.as_str() {
            "get" => app.http().get(url),
            "post" => app.http().post(url),
            "patch" => app.http().patch(url),
            "delete" => app.http().delete(url),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        assert!(!body.contains("no such route"), "{method} {path} is not served: {status}");
        assert_ne!(status, 405, "{method} {path}");
    }

    let missing = app.http().get(format!("{}/v1/nothing", app.url)).send().await.expect("ok");
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.expect("body").contains("no such route"));
    app.stop().await;
}
