//! A hostile client against the limits: each flood is answered as documented
//! while a legitimate client, from another address, still logs in.

use std::time::Duration;

use futures_util::SinkExt;
use keyri::protocol::messages::WidgetOut;
use keyri::protocol::{SessionId, b64};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{Frame, TestApp, Widget, Ws, next_frame, seal_for};

const ATTACKER: &str = "203.0.113.66";
const USER: &str = "198.51.100.20";

/// A server that trusts 127.0.0.1 as its proxy, so tests can speak for many
/// client addresses through `X-Forwarded-For`.
async fn behind_proxy(adjust: impl FnOnce(&mut keyri::config::Config)) -> TestApp {
    TestApp::start_with(|c| {
        c.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        adjust(c);
    })
    .await
}

async fn connect_as(app: &TestApp, client: &str) -> Result<Ws, tungstenite::Error> {
    let mut request = app.ws_url(&app.app_key).into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("origin", app.url.parse().expect("origin"));
    headers.insert("x-forwarded-for", client.parse().expect("xff"));
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

fn status_of(result: Result<Ws, tungstenite::Error>) -> (u16, Option<String>) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let retry =
                response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
            (response.status().as_u16(), retry)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => (101, None),
    }
}

/// A complete login for a client at `client`, through the proxy header.
async fn login_as(app: &TestApp, client: &str) {
    let ws = connect_as(app, client).await.expect("socket for the legitimate user");
    let mut widget = Widget::hello(ws).await;
    let http = app.http();
    let url = format!("{}/v1/sessions/{}", app.url, widget.session_id);
    let get = http.get(&url).header("x-app-key", &app.app_key).header("x-forwarded-for", client);
    assert_eq!(get.send().await.expect("answered").status().as_u16(), 200);
    let body = serde_json::json!({ "sealed": seal_for(&widget, b"legit") });
    let confirm = http
        .post(format!("{url}/confirm"))
        .header("x-app-key", &app.app_key)
        .header("x-forwarded-for", client)
        .json(&body);
    assert_eq!(confirm.send().await.expect("answered").status().as_u16(), 200);
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"legit");
}

#[tokio::test]
async fn a_socket_flood_from_one_address_is_capped_and_others_still_log_in() {
    let app = behind_proxy(|c| c.limits.widget_sockets_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_as(&app, ATTACKER).await.expect("under the cap"));
    }
    let (status, retry) = status_of(connect_as(&app, ATTACKER).await);
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s > 0)));

    login_as(&app, USER).await;

    drop(held.pop());
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = connect_as(&app, ATTACKER).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a closed socket gives its place back");
    app.stop().await;
}

#[tokio::test]
async fn past_the_total_socket_cap_the_server_says_it_is_busy() {
    let app = TestApp::start_with(|c| c.limits.widget_sockets_total = 2).await;
    let _a = app.connect(&app.app_key, Some(&app.url)).await.expect("first");
    let _b = app.connect(&app.app_key, Some(&app.url)).await.expect("second");
    let (status, _) = status_of(app.connect(&app.app_key, Some(&app.url)).await);
    assert_eq!(status, 503);
    app.stop().await;
}

#[tokio::test]
async fn socket_opens_are_rate_limited_per_address() {
    let app = behind_proxy(|c| c.rate_limits.socket_opens_per_ip = 30).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(status_of(connect_as(&app, ATTACKER).await).0);
    }
    assert_eq!(&statuses[..5], &[101; 5], "the burst is let in");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    login_as(&app, USER).await;
    app.stop().await;
}

#[tokio::test]
async fn guessing_session_ids_hits_the_rate_limit_and_learns_nothing() {
    let app = behind_proxy(|c| c.rate_limits.session_calls_per_ip = 60).await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let url = format!("{}/v1/sessions/{}", app.url, SessionId::generate());
        let response = app
            .http()
            .get(url)
            .header("x-app-key", &app.app_key)
            .header("x-forwarded-for", ATTACKER)
            .send()
            .await
            .expect("answered");
        let retry = response.headers().contains_key("retry-after");
        statuses.push((response.status().as_u16(), retry));
    }
    assert!(statuses[..10].iter().all(|s| *s == (404, false)), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == (429, true)), "{statuses:?}");
    login_as(&app, USER).await;
    app.stop().await;
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let direct = TestApp::start().await;
    let mut request = direct.ws_url(&direct.app_key).into_client_request().expect("request");
    request.headers_mut().insert("origin", direct.url.parse().expect("origin"));
    request.headers_mut().insert("x-forwarded-for", ATTACKER.parse().expect("xff"));
    let ws = tokio_tungstenite::connect_async(request).await.expect("socket").0;
    let widget = Widget::hello(ws).await;
    let login = direct.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(login.view.widget.ip, "127.0.0.1", "a spoofed header was believed");
    direct.stop().await;

    let proxied = behind_proxy(|_| {}).await;
    let ws = connect_as(&proxied, ATTACKER).await.expect("socket");
    let widget = Widget::hello(ws).await;
    let login = proxied.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(login.view.widget.ip, ATTACKER);
    assert_eq!(login.view.risk, vec!["different_network".to_owned()]);
    proxied.stop().await;
}

#[tokio::test]
async fn a_tenant_cannot_hold_more_waiting_sessions_than_its_cap() {
    let app = TestApp::start_with(|c| c.limits.pending_sessions_per_tenant = 2).await;
    let _first = app.widget().await;
    let second = app.widget().await;
    let mut ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    let public = keyri::protocol::hpke::uncompressed(
        &<p256::SecretKey as p256::elliptic_curve::Generate>::generate().public_key(),
    );
    let hello = format!(r#"{{"type":"hello","publicKey":"{}"}}"#, b64::encode(public));
    ws.send(Message::text(hello)).await.expect("sent");
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "too_many_sessions"),
        other => panic!("expected too_many_sessions, got {other:?}"),
    }

    drop(second);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _third = app.widget().await;
    app.stop().await;
}

#[tokio::test]
async fn a_second_socket_never_receives_another_sessions_payload() {
    let app = TestApp::start().await;
    let mut victim = app.widget().await;
    let mut intruder = app.widget().await;
    assert_ne!(victim.session_id, intruder.session_id);

    let login = app.phone().fetch(&victim.qr()).await.expect("fetched");
    app.phone().confirm(&login, b"for the victim only").await.expect("confirmed");
    assert_eq!(victim.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = victim.next().await else { panic!("no payload") };
    assert_eq!(victim.open(&sealed), b"for the victim only");

    let heard = tokio::time::timeout(Duration::from_millis(500), intruder.next()).await;
    assert!(heard.is_err(), "the other socket heard {heard:?}");
    let again = app.phone().confirm(&login, b"second payload").await.expect_err("one only");
    assert_eq!(again.code(), Some("already_finished"), "the relay is no tunnel");
    app.stop().await;
}

#[tokio::test]
async fn a_hello_split_into_fragments_is_put_back_together() {
    use tungstenite::protocol::frame::Frame as RawFrame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};

    let app = TestApp::start().await;
    let mut ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    let public = keyri::protocol::hpke::uncompressed(
        &<p256::SecretKey as p256::elliptic_curve::Generate>::generate().public_key(),
    );
    let hello = format!(r#"{{"type":"hello","publicKey":"{}"}}"#, b64::encode(public));
    let (head, tail) = hello.as_bytes().split_at(20);
    let first = RawFrame::message(head.to_vec(), OpCode::Data(Data::Text), false);
    let rest = RawFrame::message(tail.to_vec(), OpCode::Data(Data::Continue), true);
    ws.send(Message::Frame(first)).await.expect("sent");
    ws.send(Message::Frame(rest)).await.expect("sent");
    match next_frame(&mut ws).await {
        Frame::Json(WidgetOut::Session { .. }) => {}
        other => panic!("expected a session, got {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_cut_off() {
    let app = TestApp::start_with(|c| c.limits.request_header_timeout_secs = 1).await;
    let addr = app.running.addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("sent");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was held open past the header timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn repeated_refused_verifications_slow_that_anonymous_address_down_only() {
    let app = behind_proxy(|c| c.rate_limits.verify_failures_per_ip = 30).await;
    let verify = |client: &'static str| {
        app.http()
            .post(format!("{}/demo/verify", app.url))
            .header("x-forwarded-for", client)
            .body("{}")
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(verify(ATTACKER).await.expect("answered").status().as_u16());
    }
    assert_eq!(&statuses[..5], &[400; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let other = verify(USER).await.expect("answered").status().as_u16();
    assert_eq!(other, 400, "another address is not slowed down");
    app.stop().await;
}

#[tokio::test]
async fn junk_passed_on_by_a_tenants_backend_cannot_lock_the_tenant_out() {
    let app = behind_proxy(|c| c.rate_limits.verify_failures_per_ip = 30).await;
    for _ in 0..25 {
        let answer = app.backend().verify("{}").await.expect("answered");
        assert_eq!(answer.status, 400, "refusals from the backend are not counted");
    }
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_metrics_stay_private() {
    let app = behind_proxy(|_| {}).await;
    login_as(&app, USER).await;
    let get = |path: &str| app.http().get(format!("{}{path}", app.url)).send();
    assert_eq!(get("/healthz").await.expect("answered").text().await.expect("body"), "ok");
    let ready = get("/readyz").await.expect("answered");
    assert_eq!(ready.status().as_u16(), 200);

    let metrics = get("/metrics").await.expect("answered").text().await.expect("body");
    assert!(metrics.contains("keyri_sessions_total{outcome=\"confirmed\"} 1"), "{metrics}");
    assert!(metrics.contains("keyri_relay_latency_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("keyri_audit_queue_depth 0"), "{metrics}");

    let outside = app
        .http()
        .get(format!("{}/metrics", app.url))
        .header("x-forwarded-for", ATTACKER)
        .send()
        .await
        .expect("answered");
    assert_eq!(outside.status().as_u16(), 403);
    app.stop().await;
}

#[tokio::test]
async fn wrong_admin_tokens_from_one_ipv6_64_share_one_limit() {
    let app = behind_proxy(|_| {}).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/admin/tenants", app.url);
    let wrong = |client: String| {
        let request = http.get(&url).bearer_auth("kat_wrong").header("x-forwarded-for", client);
        async move { request.send().await.expect("answers").status().as_u16() }
    };
    let max = keyri::admin::throttle::MAX_PER_ACCOUNT;
    // Every guess from another address of the same /64.
    for i in 0..max {
        assert_eq!(wrong(format!("2001:db8:1:2::{:x}", i + 1)).await, 401, "guess {i}");
    }
    assert_eq!(wrong("2001:db8:1:2:ffff::1".into()).await, 429);
    assert_eq!(wrong("2001:db8:1:3::1".into()).await, 401, "the next /64 is apart");
    app.stop().await;
}
