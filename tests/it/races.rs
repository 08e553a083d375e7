//! Concurrent operator commands, early verification, and other edges that
//! once went wrong: each test holds the behaviour that is right.

use std::time::Duration;

use keyri::admin_socket;
use keyri::ops::Command;
use keyri::protocol::messages::WidgetOut;

use crate::support::{TestApp, hold_database};

fn create(name: &str) -> Command {
    Command::TenantCreate {
        name: name.into(),
        origins: vec!["https://a.example".into()],
        allow_native: false,
        scan_url: None,
        risk_policy: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_created_at_once_are_all_known_to_the_running_server() {
    let app = TestApp::start().await;
    let socket = app.config.admin_socket_path();
    for round in 0..10 {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let socket = socket.clone();
                let command = create(&format!("T{round}-{i}"));
                std::thread::spawn(move || admin_socket::request(&socket, &command))
            })
            .collect();
        for handle in handles {
            let created = handle.join().expect("thread").expect("created");
            let key = created["appKey"].as_str().expect("app key");
            assert!(app.running.directory.by_app_key(key).is_some(), "{created}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_rotated_at_once_are_all_stored() {
    let app = TestApp::start().await;
    app.add_tenant("Rot", &["https://a.example"], false);
    let socket = app.config.admin_socket_path();
    for _ in 0..5 {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let socket = socket.clone();
                let command =
                    Command::TenantRotateSecret { tenant: "Rot".into(), grace_secs: 3600 };
                std::thread::spawn(move || admin_socket::request(&socket, &command))
            })
            .collect();
        let printed: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("rotated"))
            .map(|v| v["apiSecret"].as_str().expect("secret").to_owned())
            .collect();
        let tenant = app.running.directory.find("Rot").expect("tenant");
        for secret in &printed {
            let hash = keyri::tenants::hash_secret(secret);
            assert!(tenant.secrets.iter().any(|s| s.hash == hash), "a printed secret was lost");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_name_created_at_once_makes_one_tenant() {
    let app = TestApp::start().await;
    let socket = app.config.admin_socket_path();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || admin_socket::request(&socket, &create("Same")).is_ok())
        })
        .collect();
    let created = handles.into_iter().map(|h| h.join().expect("thread"));
    assert_eq!(created.filter(|ok| *ok).count(), 1);
    let named: Vec<_> = app.running.directory.list().expect("list");
    assert_eq!(named.iter().filter(|t| t.name == "Same").count(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_verifies_the_moment_the_payload_arrives_finds_the_session() {
    use keyri::phone::device::{self, MemoryKeyStore};

    let app = TestApp::start().await;
    let key = device::device_key(&MemoryKeyStore::default(), "alice").expect("key");
    let added = app.backend().register_key("alice", &device::public_key_b64(&key), "t").await;
    assert_eq!(added.expect("answered").status, 201);
    for _ in 0..30 {
        let mut widget = app.widget().await;
        let phone = app.phone();
        let login = phone.fetch(&widget.qr()).await.expect("fetched");
        assert_eq!(widget.next().await, WidgetOut::Scanned);
        let payload = device::signed_payload(&key, "alice", &login, keyri::protocol::now_ms());
        let confirming =
            tokio::spawn(async move { phone.confirm(&login, payload.as_bytes()).await });
        let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
        let opened = String::from_utf8(widget.open(&sealed)).expect("text");
        let answer = app.backend().verify(&opened).await.expect("answered");
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        confirming.await.expect("task").expect("confirmed");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_socket_that_never_said_hello_does_not_hold_up_shutdown() {
    let app = TestApp::start_with(|c| {
        c.server.shutdown_timeout_secs = 4;
        c.sessions.hello_timeout_secs = 30;
    })
    .await;
    let _ws = app.connect(&app.app_key, Some(&app.url)).await.expect("socket");
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2), "stop took {:?}", started.elapsed());
}

#[tokio::test]
async fn durations_too_large_for_the_clock_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = keyri::config::Config::default();
    config.storage.data_dir = dir.path().join("data");
    config.sessions.ping_interval_secs = i64::MAX as u64;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let err = keyri::server::start(config, listener).await.err().expect("refused");
    assert!(err.to_string().contains("sessions.ping_interval_secs"), "{err}");
}

#[test]
fn a_variable_that_is_not_text_is_skipped_unless_it_is_a_setting() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(["tenant", "create", "--name", name, "--origin", "https://a.example"])
            .env("KEYRI_STORAGE_DATA_DIR", dir.path().join("data"))
            .env(name, std::ffi::OsStr::from_bytes(b"caf\xe9"))
            .current_dir(dir.path())
            .output()
            .expect("runs")
    };
    let unrelated = run("SOME_UNRELATED_VAR");
    assert!(unrelated.status.success(), "{}", String::from_utf8_lossy(&unrelated.stderr));
    let setting = run("KEYRI_LOG_LEVEL");
    assert!(!setting.status.success());
    let stderr = String::from_utf8_lossy(&setting.stderr);
    assert!(stderr.contains("KEYRI_LOG_LEVEL") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_export_since_before_the_clock_began_is_everything_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["tenant", "create", "--name", "A", "--origin", "https://a.example"])
        .env("KEYRI_STORAGE_DATA_DIR", &data)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(created.status.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["audit", "export", "--since", "10000000000000000s"])
        .env("KEYRI_STORAGE_DATA_DIR", &data)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

mod revocation {
    use std::time::Duration;

    use keyri::auth::SignedRequest;
    use keyri::phone::device;
    use keyri::protocol::messages::WidgetOut;
    use keyri::protocol::{SessionId, b64, now_ms};
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;
    use serde_json::json;

    use crate::support::TestApp;

    async fn confirmed_session(app: &TestApp) -> SessionId {
        let mut widget = app.widget().await;
        let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
        app.phone().confirm(&login, b"anything").await.expect("confirmed");
        assert_eq!(widget.next().await, WidgetOut::Scanned);
        assert!(matches!(widget.next().await, WidgetOut::Payload { .. }));
        widget.session_id.clone()
    }

    /// A revocation and a verification that queue behind one slow database
    /// commit: whichever order they run in, the key ends up revoked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_revocation_racing_a_verification_is_never_undone() {
        let app = TestApp::start().await;
        for i in 0..4u64 {
            let user = format!("bob{i}");
            let key = SigningKey::generate();
            let public = device::public_key_b64(&key);
            let added = app.backend().register_key(&user, &public, "t").await.expect("answered");
            let key_id = added.body["keyId"].as_str().expect("id").to_owned();
            let session = confirmed_session(&app).await;
            let request =
                SignedRequest::sign(&key, &user, &session, Some(&app.url), now_ms()).to_json();

            // Hold the database's write lock, as a slow commit would.
            let directory = app.running.directory.clone();
            let holder = tokio::task::spawn_blocking(move || {
                directory.with_store(|s| {
                    s.append_audit(1, |seq, prev| {
                        std::thread::sleep(Duration::from_millis(300));
                        json!({"seq": seq, "at": now_ms(), "tenant": null,
                               "actor": {"kind": "system"}, "action": "test.hold",
                               "outcome": "success", "details": {}, "prev": b64::encode(prev)})
                        .to_string()
                        .into_bytes()
                    })
                })
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (backend, u, k) = (app.backend(), user.clone(), key_id.clone());
            let revoke = tokio::spawn(async move { backend.revoke_key(&u, &k).await });
            tokio::time::sleep(Duration::from_millis(80)).await;
            let backend = app.backend();
            let verify = tokio::spawn(async move { backend.verify(&request).await });
            holder.await.expect("task").expect("held");
            let revoked = revoke.await.expect("task").expect("answered");
            let _ = verify.await.expect("task").expect("answered");
            assert_eq!(revoked.status, 200);

            let listed = app.backend().list_keys(&user).await.expect("answered");
            assert!(listed.body["keys"][0]["revokedAt"].is_i64(), "{:?}", listed.body);
            let later = confirmed_session(&app).await;
            let again = SignedRequest::sign(&key, &user, &later, Some(&app.url), now_ms());
            let answer = app.backend().verify(&again.to_json()).await.expect("answered");
            assert_eq!(answer.error(), Some("revoked_key"));
        }
        app.stop().await;
    }

    #[tokio::test]
    async fn timestamps_at_the_ends_of_the_clock_are_stale_not_a_crash() {
        use p256::ecdsa::Signature;
        use p256::ecdsa::signature::Signer;

        let app = TestApp::start().await;
        let key = SigningKey::generate();
        let public = device::public_key_b64(&key);
        let added = app.backend().register_key("alice", &public, "t").await.expect("answered");
        assert_eq!(added.status, 201);
        let session = confirmed_session(&app).await;
        for timestamp in [i64::MIN, i64::MIN + 1, i64::MAX, now_ms() + i64::MIN] {
            let data = json!({"username": "alice", "sessionId": session.to_string(),
                "origin": app.url, "timestamp": timestamp, "nonce": "AAAAAAAAAAAAAAAAAAAAAA"})
            .to_string();
            let signature: Signature = key.sign(data.as_bytes());
            let key_id = keyri::protocol::PublicKey::from_b64(&device::public_key_b64(&key))
                .expect("point")
                .fingerprint();
            let request = SignedRequest {
                kind: "keyri.auth.v1".into(),
                key_id: key_id.to_string(),
                data,
                signature: b64::encode(signature.to_bytes()),
            };
            let answer = app.backend().verify(&request.to_json()).await.expect("answered");
            assert_eq!((answer.status, answer.error()), (401, Some("stale")), "{timestamp}");
        }
        app.stop().await;
    }
}

/// Sends a request head announcing a 1,000-byte body, then trickles one
/// byte every half second; returns the answer and how long it took.
async fn trickle(app: &TestApp, path: &str, content_type: &str) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(app.running.addr).await.expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         Content-Length: 1000\r\n\r\nx"
    );
    stream.write_all(head.as_bytes()).await.expect("sent");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while started.elapsed() < Duration::from_secs(6) {
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {
                let _ = stream.write_all(b" ").await;
            }
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test]
async fn a_client_trickling_a_body_is_cut_off() {
    let app = TestApp::start_with(|c| c.limits.request_body_timeout_secs = 1).await;
    let forms = "application/x-www-form-urlencoded";
    for (path, content_type) in
        [("/demo/verify", "application/json"), ("/admin/login", forms), ("/admin/setup", forms)]
    {
        let (text, took) = trickle(&app, path, content_type).await;
        assert!(took < Duration::from_secs(4), "{path} held open {took:?}");
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dashboard_form_over_its_limit_is_refused() {
    let app = TestApp::start().await;
    let big = format!("name=admin&password={}", "p".repeat(20_000));
    let answer = app
        .http()
        .post(format!("{}/admin/login", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", app.url.as_str())
        .body(big)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 413);
    let as_json = app
        .http()
        .post(format!("{}/admin/login", app.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(as_json.status(), 400);
    let not_a_number = app
        .http()
        .post(format!("{}/admin/tenants/tn_x/app-key/rotate", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=x&overlap_hours=soon")
        .send()
        .await
        .expect("answered");
    assert_eq!(not_a_number.status(), 400);
    let body = not_a_number.text().await.expect("body");
    assert!(body.contains("malformed form"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_clients_own_forwarded_header_does_not_name_it_through_the_proxy() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app =
        TestApp::start_with(|c| c.network.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let mut request = app.ws_url(&app.app_key).into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert("origin", app.url.parse().expect("origin"));
    headers.insert("x-forwarded-for", "198.51.100.7".parse().expect("xff"));
    headers.insert("forwarded", "for=192.0.2.55".parse().expect("forwarded"));
    let ws = tokio_tungstenite::connect_async(request).await.expect("socket").0;
    let widget = crate::support::Widget::hello(ws).await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(login.view.widget.ip, "198.51.100.7");

    let metrics = app
        .http()
        .get(format!("{}/metrics", app.url))
        .header("x-forwarded-for", "198.51.100.7")
        .header("forwarded", "for=127.0.0.1")
        .send()
        .await
        .expect("answered");
    assert_eq!(metrics.status().as_u16(), 403);
    let junk_hop = app
        .http()
        .get(format!("{}/metrics", app.url))
        .header("x-forwarded-for", "198.51.100.7, unknown")
        .send()
        .await
        .expect("answered");
    assert_eq!(junk_hop.status().as_u16(), 200, "an unreadable hop ends at the proxy itself");
    app.stop().await;
}

/// Sends a phone call and resets the connection at once, without waiting
/// for the answer, as a phone that loses its network does.
async fn call_and_vanish(app: &TestApp, path: &str, body: &str) {
    use tokio::io::AsyncWriteExt;

    let stream = tokio::net::TcpStream::connect(app.running.addr).await.expect("connects");
    // A zero linger makes the drop below a reset; it does not block then.
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).expect("linger");
    let mut stream = stream;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-App-Key: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.app_key,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
}

/// A phone that vanishes while its deny or confirm is being recorded still
/// ends the login for the widget: the rest runs to its end on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_phone_that_vanishes_mid_call_still_ends_the_login() {
    let app = TestApp::start().await;

    let mut denied = app.widget().await;
    app.phone().fetch(&denied.qr()).await.expect("fetched");
    assert_eq!(denied.next().await, WidgetOut::Scanned);
    let (holder, _) = hold_database(&app, 600);
    tokio::time::sleep(Duration::from_millis(50)).await;
    call_and_vanish(&app, &format!("/v1/sessions/{}/deny", denied.session_id), "").await;
    holder.await.expect("released");
    assert_eq!(denied.next().await, WidgetOut::Denied);

    let mut confirmed = app.widget().await;
    app.phone().fetch(&confirmed.qr()).await.expect("fetched");
    assert_eq!(confirmed.next().await, WidgetOut::Scanned);
    let sealed = crate::support::seal_for(&confirmed, b"still arrives");
    let (holder, _) = hold_database(&app, 600);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let path = format!("/v1/sessions/{}/confirm", confirmed.session_id);
    call_and_vanish(&app, &path, &format!(r#"{{"sealed":"{sealed}"}}"#)).await;
    holder.await.expect("released");
    let WidgetOut::Payload { sealed } = confirmed.next().await else { panic!("no payload") };
    assert_eq!(confirmed.open(&sealed), b"still arrives");
    app.stop().await;
}

/// A widget that leaves while its confirm is being recorded ends the
/// session as widget gone, in the answer and in the counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_widget_gone_while_its_confirm_is_recorded_counts_as_gone() {
    use keyri::relay::Outcome;

    let app = TestApp::start().await;
    let widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    let (holder, _) = hold_database(&app, 500);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let phone = app.phone();
    let confirm = tokio::spawn(async move { phone.confirm(&login, b"token").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(widget);
    holder.await.expect("released");
    let answer = confirm.await.expect("task").expect_err("not delivered");
    assert_eq!(answer.code(), Some("widget_gone"), "{answer}");
    let ended = app.running.registry.ended();
    let count = |outcome| ended.iter().find(|(o, _)| *o == outcome).map_or(0, |(_, n)| *n);
    assert_eq!(count(Outcome::Confirmed), 0, "{ended:?}");
    assert_eq!(count(Outcome::WidgetGone), 1, "{ended:?}");
    app.stop().await;
}

/// A server told to stop while a deny is being recorded still tells that
/// widget it was denied, not merely that the server is stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deny_in_flight_at_a_stop_still_reaches_its_widget() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    app.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let (holder, _) = hold_database(&app, 400);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (phone, session) = (app.phone(), widget.session_id.clone());
    let deny = tokio::spawn(async move { phone.deny(&session).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stop = tokio::spawn(app.stop());
    assert_eq!(widget.next().await, WidgetOut::Denied);
    holder.await.expect("released");
    deny.await.expect("task").expect("denied");
    stop.await.expect("stopped");
}

/// A widget that stops reading its socket while it floods pings loses the
/// socket within the write deadline, freeing its session and its slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_widget_that_stops_reading_is_let_go() {
    use futures_util::SinkExt;
    use tokio_tungstenite::MaybeTlsStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = TestApp::start().await;
    let app_key = app.add_tenant("Stuck", &[], true);
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("small buffer");
    let stream = socket.connect(app.running.addr).await.expect("connects");
    let request = app.ws_url(&app_key).into_client_request().expect("request");
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .expect("upgraded");
    let mut widget = crate::support::Widget::hello(ws).await;
    assert_eq!(app.running.registry.live(), 1);

    // Pings whose pongs are never read, until the server's writes block.
    let flood = tokio::spawn(async move {
        loop {
            if widget.ws.send(Message::Ping(vec![0u8; 125].into())).await.is_err() {
                return;
            }
        }
    });
    let started = std::time::Instant::now();
    while app.running.registry.live() > 0 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.running.registry.live(), 0, "still held after {:?}", started.elapsed());
    flood.abort();
    app.stop().await;
}
