//! Risk signals with a GeoIP database, and per-tenant policies that show,
//! warn about or refuse a login.

use std::net::Ipv4Addr;

use keyri::protocol::messages::WidgetOut;
use keyri::risk::Action;
use keyri::tenants::NewTenant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::mmdb::{city, database};
use crate::support::{Frame, TestApp, Widget, next_frame, seal_for};

const PARIS_BROWSER: &str = "203.0.113.66";
const BERLIN_PHONE: &str = "198.51.100.20";
const PARIS_PHONE: &str = "203.0.113.9";

async fn located_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("city.mmdb");
    let db = database(&[
        (Ipv4Addr::new(203, 0, 113, 0), 24, city("FR", "Paris", 48.8566, 2.3522)),
        (Ipv4Addr::new(198, 51, 100, 0), 24, city("DE", "Berlin", 52.52, 13.405)),
    ]);
    std::fs::write(&path, db).expect("database written");
    let app = TestApp::start_with(|c| {
        c.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.geoip.database = path.display().to_string();
    })
    .await;
    std::mem::forget(dir);
    app
}

fn tenant_with(app: &TestApp, rules: &[(&str, Action)]) -> String {
    let new = NewTenant {
        name: "Strict".into(),
        origins: vec![app.url.clone()],
        session_lifetime_secs: 60,
        max_sealed_bytes: 4096,
        risk_policy: rules.iter().map(|(s, a)| (s.to_string(), *a)).collect(),
        ..NewTenant::default()
    };
    app.running.directory.create(new).expect("created").0.app_key
}

async fn widget_from(app: &TestApp, app_key: &str, client: &str) -> Widget {
    let mut request = app.ws_url(app_key).into_client_request().expect("request");
    request.headers_mut().insert("origin", app.url.parse().expect("origin"));
    request.headers_mut().insert("x-forwarded-for", client.parse().expect("xff"));
    Widget::hello(tokio_tungstenite::connect_async(request).await.expect("socket").0).await
}

async fn look(app: &TestApp, app_key: &str, widget: &Widget, client: &str) -> reqwest::Response {
    app.http()
        .get(format!("{}/v1/sessions/{}", app.url, widget.session_id))
        .header("x-app-key", app_key)
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn the_phone_sees_both_places_their_distance_and_the_country_signal() {
    let app = located_app().await;
    let widget = widget_from(&app, &app.app_key, PARIS_BROWSER).await;
    let view: serde_json::Value =
        look(&app, &app.app_key, &widget, BERLIN_PHONE).await.json().await.expect("json");
    assert_eq!(view["widget"]["location"], serde_json::json!({"country": "FR", "city": "Paris"}));
    assert_eq!(view["mobile"]["location"], serde_json::json!({"country": "DE", "city": "Berlin"}));
    assert_eq!(view["risk"], serde_json::json!(["different_network", "different_country"]));
    let km = view["distanceKm"].as_u64().expect("distance");
    assert!((870..=885).contains(&km), "{km}");

    let near = widget_from(&app, &app.app_key, PARIS_BROWSER).await;
    let view: serde_json::Value =
        look(&app, &app.app_key, &near, PARIS_PHONE).await.json().await.expect("json");
    assert_eq!(view["risk"], serde_json::json!([]));
    assert_eq!(view["distanceKm"], 0);

    let unknown = widget_from(&app, &app.app_key, "192.0.2.1").await;
    let view: serde_json::Value =
        look(&app, &app.app_key, &unknown, BERLIN_PHONE).await.json().await.expect("json");
    assert_eq!(view["widget"]["location"], serde_json::Value::Null);
    assert_eq!(view["distanceKm"], serde_json::Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_refusing_policy_ends_the_session_and_tells_both_sides() {
    let app = located_app().await;
    let key = tenant_with(&app, &[("different_country", Action::Refuse)]);
    let mut widget = widget_from(&app, &key, PARIS_BROWSER).await;

    let response = look(&app, &key, &widget, BERLIN_PHONE).await;
    assert_eq!(response.status().as_u16(), 403);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "risk_refused");
    assert!(body["message"].as_str().expect("text").contains("another country"));

    match widget.next().await {
        WidgetOut::Error { error, .. } => assert_eq!(error, "risk_refused"),
        other => panic!("expected risk_refused, got {other:?}"),
    }
    widget.expect_closed().await;

    let confirm = app
        .http()
        .post(format!("{}/v1/sessions/{}/confirm", app.url, widget.session_id))
        .header("x-app-key", &key)
        .header("x-forwarded-for", BERLIN_PHONE)
        .json(&serde_json::json!({ "sealed": seal_for(&widget, b"x") }))
        .send()
        .await
        .expect("answered");
    assert_eq!(confirm.status().as_u16(), 409);

    let data = app.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(["audit", "export"])
            .env("KEYRI_STORAGE_DATA_DIR", &data)
            .output()
            .expect("runs");
        String::from_utf8(output.stdout).expect("utf-8")
    })
    .await
    .expect("ran");
    assert!(records.contains("\"session.refuse\"") && records.contains("different_country"));
    app.stop().await;
}

#[tokio::test]
async fn a_confirm_without_a_look_meets_the_same_policy() {
    let app = located_app().await;
    let key = tenant_with(&app, &[("different_network", Action::Refuse)]);
    let mut widget = widget_from(&app, &key, PARIS_BROWSER).await;
    let confirm = app
        .http()
        .post(format!("{}/v1/sessions/{}/confirm", app.url, widget.session_id))
        .header("x-app-key", &key)
        .header("x-forwarded-for", BERLIN_PHONE)
        .json(&serde_json::json!({ "sealed": seal_for(&widget, b"never delivered") }))
        .send()
        .await
        .expect("answered");
    assert_eq!(confirm.status().as_u16(), 403);
    match next_frame(&mut widget.ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "risk_refused"),
        other => panic!("the payload must not arrive: {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn signals_set_to_show_become_notices_not_warnings() {
    let app = located_app().await;
    let key = tenant_with(&app, &[("different_network", Action::Show)]);
    let widget = widget_from(&app, &key, PARIS_BROWSER).await;
    let view: serde_json::Value =
        look(&app, &key, &widget, BERLIN_PHONE).await.json().await.expect("json");
    assert_eq!(view["notices"], serde_json::json!(["different_network"]));
    assert_eq!(view["risk"], serde_json::json!(["different_country"]));
    app.stop().await;
}

#[test]
fn a_missing_geoip_database_stops_the_server_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keyri"))
        .arg("serve")
        .env("KEYRI_STORAGE_DATA_DIR", dir.path().join("data"))
        .env("KEYRI_SERVER_BIND", "127.0.0.1:0")
        .env("KEYRI_GEOIP_DATABASE", "/nonexistent/city.mmdb")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/city.mmdb"), "{stderr}");
}

#[tokio::test]
async fn a_tenant_refusing_other_countries_also_refuses_an_unplaced_browser() {
    let app = located_app().await;
    let strict = tenant_with(&app, &[("different_country", Action::Refuse)]);
    let unplaced = widget_from(&app, &strict, "192.0.2.10").await;
    let response = look(&app, &strict, &unplaced, BERLIN_PHONE).await;
    assert_eq!(response.status().as_u16(), 403);

    // A tenant that only warns is not refused for an unknown place.
    let lenient = widget_from(&app, &app.app_key, "192.0.2.10").await;
    let view: serde_json::Value =
        look(&app, &app.app_key, &lenient, BERLIN_PHONE).await.json().await.expect("json");
    assert_eq!(view["risk"], serde_json::json!(["different_network"]));
    app.stop().await;
}
