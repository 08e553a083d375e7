//! Bad and hostile input: each gets its documented error and changes nothing,
//! so the session it aimed at still works afterwards.

use futures_util::SinkExt;
use keyri::protocol::messages::{ErrorBody, WidgetOut};
use keyri::protocol::{b64, hpke};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{Frame, TestApp, Widget, next_frame, seal_for};

async fn post(app: &TestApp, path: &str, app_key: Option<&str>, body: &str) -> (u16, ErrorBody) {
    let mut request = app.http().post(format!("{}{path}", app.url)).body(body.to_owned());
    request = request.header("content-type", "application/json");
    if let Some(key) = app_key {
        request = request.header("x-app-key", key);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON error body"))
}

fn handshake_status(result: Result<crate::support::Ws, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the socket was accepted"),
    }
}

#[tokio::test]
async fn malformed_confirms_get_their_error_and_leave_the_session_usable() {
    let app = TestApp::start_with(|c| c.sessions.max_sealed_bytes = 1000).await;
    let mut widget = app.widget().await;
    let path = format!("/v1/sessions/{}/confirm", widget.session_id);
    let key = Some(app.app_key.as_str());

    let not_a_point = b64::encode([4u8; 65 + 16]);
    let short = b64::encode(
        &b64::decode(&seal_for(&widget, b"")).expect("b64")[..hpke::MIN_SEALED_LEN - 1],
    );
    let too_large = seal_for(&widget, &[7u8; 1000]);
    let cases = [
        ("not json", 400, "bad_request"),
        ("{}", 400, "bad_request"),
        (r#"{"sealed": 5}"#, 400, "bad_request"),
        ("{\"sealed\": \"@@@\"}", 400, "bad_request"),
        (r#"{"sealed": "AAAA=="}"#, 400, "bad_request"),
        (&format!(r#"{{"sealed": "{not_a_point}"}}"#), 400, "bad_request"),
        (&format!(r#"{{"sealed": "{short}"}}"#), 400, "bad_request"),
        (&format!(r#"{{"sealed": "{too_large}"}}"#), 413, "too_large"),
        (&format!(r#"{{"sealed": "{}"}}"#, "A".repeat(100_000)), 413, "too_large"),
    ];
    for (body, status, code) in cases {
        let (got, error) = post(&app, &path, key, body).await;
        assert_eq!((got, error.error.as_str()), (status, code), "{body:.60}");
        assert!(!error.message.is_empty());
    }

    let ok = format!(r#"{{"sealed": "{}", "extra": "ignored"}}"#, seal_for(&widget, b"fine"));
    let response = app
        .http()
        .post(format!("{}{path}", app.url))
        .header("x-app-key", app.app_key.as_str())
        .body(ok)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"fine");
    app.stop().await;
}

#[tokio::test]
async fn unknown_malformed_and_foreign_sessions_are_indistinguishable() {
    let app = TestApp::start().await;
    let other_key = app.add_tenant("Other", &["https://other.example"], false);
    let widget = app.widget().await;
    let sealed = seal_for(&widget, b"x");

    let unknown = keyri::protocol::SessionId::generate();
    let foreign = app.phone_for(&other_key);
    for (phone, id) in [
        (app.phone(), unknown.as_str().to_owned()),
        (app.phone(), "not-a-session".to_owned()),
        (foreign.clone(), widget.session_id.to_string()),
    ] {
        let url = format!("{}/v1/sessions/{id}", app.url);
        let key = if id == widget.session_id.as_str() { &other_key } else { &app.app_key };
        let response = app.http().get(&url).header("x-app-key", key).send().await.expect("ok");
        assert_eq!(response.status().as_u16(), 404);
        let body: ErrorBody = response.json().await.expect("json");
        assert_eq!(body.error, "not_found");
        assert_eq!(body.message, "no such session");
        drop(phone);
    }
    let session = keyri::protocol::SessionId::parse(widget.session_id.as_str()).expect("id");
    let err = foreign.confirm_sealed(&session, &sealed).await.expect_err("foreign");
    assert_eq!(err.code(), Some("not_found"));
    let err = foreign.deny(&session).await.expect_err("foreign");
    assert_eq!(err.code(), Some("not_found"));

    // The foreign attempts changed nothing: not even a scan was counted.
    let login = app.phone().fetch(&widget.qr()).await.expect("still pending");
    assert_eq!(login.view.status, keyri::protocol::messages::SessionStatus::Pending);
    app.stop().await;
}

#[tokio::test]
async fn phone_calls_without_or_with_an_unknown_app_key_are_refused() {
    let app = TestApp::start().await;
    let widget = app.widget().await;
    let path = format!("/v1/sessions/{}/deny", widget.session_id);

    let (status, body) = post(&app, &path, None, "").await;
    assert_eq!((status, body.error.as_str()), (400, "bad_request"));
    let unknown = keyri::protocol::AppKey::generate();
    let (status, body) = post(&app, &path, Some(unknown.as_str()), "").await;
    assert_eq!((status, body.error.as_str()), (403, "forbidden"));

    app.phone().deny(&widget.session_id).await.expect("still open");
    app.stop().await;
}

#[tokio::test]
async fn widget_sockets_need_a_known_app_key_and_an_allowed_origin() {
    let app = TestApp::start().await;
    let unknown = keyri::protocol::AppKey::generate();
    assert_eq!(handshake_status(app.connect(unknown.as_str(), Some(&app.url)).await), 403);
    assert_eq!(handshake_status(app.connect("", Some(&app.url)).await), 403);
    let evil = Some("https://evil.example");
    assert_eq!(handshake_status(app.connect(&app.app_key, evil).await), 403);
    assert_eq!(handshake_status(app.connect(&app.app_key, Some("null")).await), 403);
    assert_eq!(handshake_status(app.connect(&app.app_key, None).await), 403);

    let response = app
        .http()
        .get(format!("{}/v1/widget/ws?appKey={}", app.url, unknown))
        .header("origin", app.url.as_str())
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 403);
    let body: ErrorBody = response.json().await.expect("json");
    assert_eq!(body.error, "forbidden");
    app.stop().await;
}

#[tokio::test]
async fn native_clients_connect_only_where_allowed_and_are_flagged_to_the_phone() {
    let app = TestApp::start().await;
    let tv_key = app.add_tenant("TV", &[], true);
    let ws = app.connect(&tv_key, None).await.expect("native allowed");
    let widget = Widget::hello(ws).await;
    let login = app.phone_for(&tv_key).fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(login.view.widget.origin, None);
    assert_eq!(login.view.risk, vec!["native_client".to_owned()]);
    app.stop().await;
}

async fn send_and_expect_error(app: &TestApp, frame: Message, code: &str) {
    let mut ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    ws.send(frame).await.expect("sent");
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Error { error, message }) => {
            assert_eq!(error, code);
            assert!(!message.is_empty());
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert!(matches!(next_frame(&mut ws).await, Frame::Closed));
}

#[tokio::test]
async fn a_bad_hello_gets_an_error_frame_and_a_closed_socket() {
    let app = TestApp::start().await;
    let bad_point = b64::encode([4u8; 65]);
    let compressed = b64::encode([2u8; 33]);
    for frame in [
        "not json".to_owned(),
        r#"{"type":"confirm"}"#.to_owned(),
        r#"{"type":"hello"}"#.to_owned(),
        r#"{"type":"hello","publicKey":"!!"}"#.to_owned(),
        format!(r#"{{"type":"hello","publicKey":"{bad_point}"}}"#),
        format!(r#"{{"type":"hello","publicKey":"{compressed}"}}"#),
    ] {
        send_and_expect_error(&app, Message::text(frame), "bad_request").await;
    }
    send_and_expect_error(&app, Message::binary(vec![1, 2, 3]), "bad_request").await;
    assert_eq!(app.running.registry.open_count(), 0, "no session was created");
    app.stop().await;
}

#[tokio::test]
async fn a_widget_that_says_anything_after_hello_is_cut_off() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    widget.ws.send(Message::text(r#"{"type":"hello","publicKey":"x"}"#)).await.expect("sent");
    match widget.next().await {
        WidgetOut::Error { error, .. } => assert_eq!(error, "bad_request"),
        other => panic!("expected an error, got {other:?}"),
    }
    widget.expect_closed().await;
    let err = app.phone().fetch(&widget.qr()).await.expect_err("session ended");
    assert_eq!(err.code(), Some("widget_gone"));
    app.stop().await;
}

#[tokio::test]
async fn a_widget_that_never_says_hello_is_closed_after_the_deadline() {
    let app = TestApp::start_with(|c| c.sessions.hello_timeout_secs = 1).await;
    let mut ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "hello_timeout"),
        other => panic!("expected hello_timeout, got {other:?}"),
    }
    assert!(matches!(next_frame(&mut ws).await, Frame::Closed));
    app.stop().await;
}

#[tokio::test]
async fn oversized_widget_frames_close_the_socket_without_a_session() {
    let app = TestApp::start().await;
    let mut ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    let huge = format!(r#"{{"type":"hello","publicKey":"{}"}}"#, "A".repeat(10_000));
    let _ = ws.send(Message::text(huge)).await;
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "too_large"),
        other => panic!("expected too_large, got {other:?}"),
    }
    assert!(matches!(next_frame(&mut ws).await, Frame::Closed));
    assert_eq!(app.running.registry.open_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_answer_with_the_json_error_shape() {
    let app = TestApp::start().await;
    let response = app.http().get(format!("{}/nope", app.url)).send().await.expect("answered");
    assert_eq!(response.status().as_u16(), 404);
    let body: ErrorBody = response.json().await.expect("json");
    assert_eq!(body.error, "not_found");
    app.stop().await;
}
