//! The login as users live it: scan, look, confirm or deny, expire.

use keyri::protocol::messages::{SessionStatus, WidgetOut};

use crate::support::{Frame, PROMPT, TestApp, next_frame, seal_for};

#[tokio::test]
async fn a_confirmed_login_delivers_the_payload_to_the_widget_that_asked() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    assert_eq!(widget.scan_url, format!("{}/q", app.url));
    assert_eq!(widget.session_id.as_str().len(), 22);

    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("session fetched");
    assert_eq!(login.view.status, SessionStatus::Pending, "no phone looked before this one");
    assert_eq!(login.view.widget.origin.as_deref(), Some(app.url.as_str()));
    assert_eq!(login.view.widget.browser, "Chrome 156");
    assert_eq!(login.view.widget.os, "Linux");
    assert_eq!(login.view.widget.ip, "127.0.0.1");
    assert_eq!(login.view.mobile.ip, "127.0.0.1");
    assert!(login.view.risk.is_empty(), "{:?}", login.view.risk);
    assert!(login.view.widget.location.is_none());
    assert_eq!(widget.next().await, WidgetOut::Scanned);

    phone.confirm(&login, b"session-token-123").await.expect("confirmed");
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"session-token-123");
    widget.expect_closed().await;

    app.stop().await;
}

#[tokio::test]
async fn a_second_look_at_a_session_does_not_notify_the_widget_again() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let phone = app.phone();
    phone.fetch(&widget.qr()).await.expect("first look");
    let again = phone.fetch(&widget.qr()).await.expect("second look");
    assert_eq!(again.view.status, SessionStatus::Scanned);
    assert_eq!(widget.next().await, WidgetOut::Scanned);

    phone.deny(&widget.session_id).await.expect("denied");
    assert_eq!(widget.next().await, WidgetOut::Denied, "no second scanned frame");
    app.stop().await;
}

#[tokio::test]
async fn a_denied_login_tells_the_widget_and_cannot_be_confirmed_after() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(widget.next().await, WidgetOut::Scanned);

    phone.deny(&widget.session_id).await.expect("denied");
    assert_eq!(widget.next().await, WidgetOut::Denied);
    widget.expect_closed().await;

    let again = phone.deny(&widget.session_id).await.expect_err("second deny");
    assert_eq!(again.code(), Some("already_finished"));
    let confirm = phone.confirm(&login, b"x").await.expect_err("confirm after deny");
    assert_eq!(confirm.code(), Some("already_finished"));
    app.stop().await;
}

#[tokio::test]
async fn an_unscanned_session_expires_and_then_is_not_found() {
    let app = TestApp::start_with(|c| c.sessions.lifetime_secs = 1).await;
    let mut widget = app.widget().await;
    let lifetime = widget.expires_at - keyri::protocol::now_ms();
    assert!(lifetime <= 1000 && lifetime > 0, "{lifetime}");

    assert_eq!(widget.next().await, WidgetOut::Expired);
    widget.expect_closed().await;

    let phone = app.phone();
    let err = phone.fetch(&widget.qr()).await.expect_err("expired");
    assert_eq!(err.code(), Some("not_found"));
    let err = phone.confirm_sealed(&widget.session_id, &seal_for(&widget, b"x")).await;
    assert_eq!(err.expect_err("expired").code(), Some("not_found"));
    app.stop().await;
}

#[tokio::test]
async fn of_two_confirms_in_a_row_only_the_first_counts() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("fetched");

    phone.confirm(&login, b"first").await.expect("first confirm");
    let err = phone.confirm(&login, b"second").await.expect_err("second confirm");
    assert_eq!(err.code(), Some("already_finished"));
    let err = phone.deny(&widget.session_id).await.expect_err("deny after confirm");
    assert_eq!(err.code(), Some("already_finished"));

    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"first");
    widget.expect_closed().await;
    app.stop().await;
}

#[tokio::test]
async fn of_many_concurrent_confirms_and_denies_exactly_one_wins() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("fetched");

    let mut calls = Vec::new();
    for i in 0..16 {
        let (phone, login) = (phone.clone(), login.clone());
        calls.push(tokio::spawn(async move {
            match i % 4 {
                0 => phone.deny(&login.session_id).await,
                _ => phone.confirm(&login, format!("payload {i}").as_bytes()).await,
            }
        }));
    }
    let mut wins = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(()) => wins += 1,
            Err(e) => assert_eq!(e.code(), Some("already_finished"), "{e}"),
        }
    }
    assert_eq!(wins, 1);

    assert_eq!(widget.next().await, WidgetOut::Scanned);
    match widget.next().await {
        WidgetOut::Payload { sealed } => {
            assert!(String::from_utf8(widget.open(&sealed)).expect("text").starts_with("payload"))
        }
        WidgetOut::Denied => {}
        other => panic!("unexpected {other:?}"),
    }
    widget.expect_closed().await;
    app.stop().await;
}

#[tokio::test]
async fn confirming_after_the_widget_left_delivers_nothing_and_says_so() {
    let app = TestApp::start().await;
    let widget = app.widget().await;
    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("fetched");

    let id = widget.session_id.clone();
    drop(widget);
    let session = app.running.registry.get(&id).expect("still known");
    for _ in 0..100 {
        if session.outcome().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(session.outcome(), Some(keyri::relay::Outcome::WidgetGone));

    let err = phone.confirm(&login, b"token").await.expect_err("nobody to deliver to");
    assert_eq!(err.code(), Some("widget_gone"));
    let err = phone.fetch(&login_qr(&login, &app)).await.expect_err("gone");
    assert_eq!(err.code(), Some("widget_gone"));
    app.stop().await;
}

fn login_qr(login: &keyri::phone::PendingLogin, app: &TestApp) -> keyri::protocol::qr::QrLogin {
    let key = keyri::protocol::PublicKey::from_b64(&login.view.public_key).expect("key");
    keyri::protocol::qr::QrLogin {
        scan_url: format!("{}/q", app.url),
        session_id: login.session_id.clone(),
        fingerprint: key.fingerprint(),
    }
}

#[tokio::test]
async fn a_phone_refuses_to_seal_when_the_key_does_not_match_the_code() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let other = app.widget().await;
    let phone = app.phone();

    // A code naming this session but another widget's key, as a relay that
    // swapped keys would produce.
    let mut forged = widget.qr();
    forged.fingerprint = other.fingerprint();
    let err = phone.fetch(&forged).await.expect_err("mismatch");
    assert!(matches!(err, keyri::phone::PhoneError::KeyMismatch), "{err}");

    // Nothing was confirmed: the real code still works.
    let login = phone.fetch(&widget.qr()).await.expect("fetched");
    phone.confirm(&login, b"ok").await.expect("confirmed");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    assert!(matches!(widget.next().await, WidgetOut::Payload { .. }));
    app.stop().await;
}

#[tokio::test]
async fn stopping_the_server_closes_widget_sockets() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let stop = tokio::spawn(app.stop());
    // A close frame of the server's own, not a dropped connection.
    let close = loop {
        match tokio::time::timeout(PROMPT, widget.ws.next()).await.expect("in time") {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => break other,
        }
    };
    let Some(Ok(Message::Close(Some(frame)))) = close else { panic!("got {close:?}") };
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "server stopping");
    stop.await.expect("stopped");
}

/// A tenant disabled while its widget was still to say hello: the hello
/// gets `tenant_disabled`, and no session opens.
#[tokio::test]
async fn a_tenant_disabled_before_the_hello_opens_no_session() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = TestApp::start().await;
    let app_key = app.add_tenant("Late", &[], true);
    let mut ws = app.connect(&app_key, None).await.expect("opens");
    let id = app.running.directory.find(&app_key).expect("tenant").id;
    app.running.directory.update(&id, |t| t.enabled = false).expect("disabled");
    app.running.registry.close_tenant(&id);

    let key = keyri::protocol::hpke::uncompressed(
        &p256::SecretKey::from_slice(&[9; 32]).expect("key").public_key(),
    );
    let hello =
        format!(r#"{{"type":"hello","publicKey":"{}"}}"#, keyri::protocol::b64::encode(&key));
    ws.send(Message::text(hello)).await.expect("sent");
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "tenant_disabled"),
        other => panic!("expected tenant_disabled, got {other:?}"),
    }
    assert!(matches!(next_frame(&mut ws).await, Frame::Closed));
    assert_eq!(app.running.registry.open_count_for(&id), 0);
    app.stop().await;
}

#[tokio::test]
async fn tenants_survive_a_restart_on_the_same_data_dir() {
    let app = TestApp::start().await;
    let app_key = app.app_key.clone();
    let config = app.config.clone();
    let dir = app.stop().await;

    let app = TestApp::start_in(config, dir).await;
    assert_eq!(app.app_key, app_key);
    let mut widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    app.phone().confirm(&login, b"after restart").await.expect("confirmed");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"after restart");
    app.stop().await;
}
