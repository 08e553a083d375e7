//! The `keyri` binary as an operator and a phone user run it.

use std::process::{Command, Output};

use keyri::protocol::messages::WidgetOut;
use serde_json::Value;

use crate::support::TestApp;

fn keyri(args: &[&str], data_dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(args)
        .env("KEYRI_STORAGE_DATA_DIR", data_dir)
        .env_remove("KEYRI_SERVER_BIND")
        .current_dir(data_dir.parent().expect("parent"))
        .output()
        .expect("keyri runs")
}

fn json_out(output: &Output) -> Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON value")
}

#[test]
fn tenant_create_prints_the_secret_once_and_list_never_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = [
        "tenant",
        "create",
        "--name",
        "Acme",
        "--origin",
        "https://app.acme.example",
        "--origin",
        "HTTPS://App.Acme.Example:443",
        "--json",
    ];
    let output = keyri(&args, &data);
    let notice = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(notice.contains("created a new database"), "{notice}");
    let created = json_out(&output);
    assert_eq!(created["name"], "Acme");
    assert!(created["id"].as_str().expect("id").starts_with("tn_"));
    assert!(created["appKey"].as_str().expect("app key").starts_with("app_"));
    let secret = created["apiSecret"].as_str().expect("secret");
    assert!(secret.starts_with("sk_") && secret.len() == 46);
    assert_eq!(created["origins"], serde_json::json!(["https://app.acme.example"]));

    let output = keyri(&["tenant", "list", "--json"], &data);
    assert!(output.stderr.is_empty(), "only a new database is announced");
    let listed = json_out(&output);
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert_eq!(listed[0]["appKey"], created["appKey"]);
    assert!(listed[0].get("apiSecret").is_none());
    let raw = std::fs::read(data.join("keyri.redb")).expect("db");
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret stored");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["tenant", "create", "--name", "Acme", "--origin", "https://a.example"];
    assert!(keyri(&args, &data).status.success());
    for args in [&["tenant", "list"][..], &["audit", "export"][..]] {
        // As `keyri tenant list | head -0`: the reader is gone before any output.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(args)
            .env("KEYRI_STORAGE_DATA_DIR", &data)
            .current_dir(dir.path())
            .stdout(writer)
            .output()
            .expect("keyri runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {:?} {stderr}", output.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // A change's output may be the only copy of a secret: losing it is an error.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["tenant", "rotate-secret", "Acme", "--grace", "0"])
        .env("KEYRI_STORAGE_DATA_DIR", &data)
        .current_dir(dir.path())
        .stdout(writer)
        .output()
        .expect("keyri runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("change was made") && stderr.contains("rotate or revoke"), "{stderr}");
}

#[test]
fn bad_tenant_input_is_one_clear_line_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for args in [
        &["tenant", "create", "--name", "X", "--origin", "https://x.example/path"][..],
        &["tenant", "create", "--name", "", "--origin", "https://x.example"][..],
        &["tenant", "rotate-secret", "nobody"][..],
    ] {
        let output = keyri(args, &data);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("keyri: "), "{stderr}");
    }
    let listed = json_out(&keyri(&["tenant", "list", "--json"], &data));
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn a_grace_without_a_unit_is_refused_and_no_secret_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["tenant", "create", "--name", "Acme", "--origin", "https://a.example"];
    assert!(keyri(&args, &data).status.success());
    let before = json_out(&keyri(&["tenant", "list", "--json"], &data));
    for flag in ["--grace", "--overlap"] {
        let command = if flag == "--grace" { "rotate-secret" } else { "rotate-app-key" };
        let output = keyri(&["tenant", command, "Acme", flag, "24"], &data);
        assert!(!output.status.success(), "{command} {flag} 24 succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("needs a unit") && stderr.contains("24h"), "{stderr}");
    }
    assert_eq!(json_out(&keyri(&["tenant", "list", "--json"], &data)), before);
}

#[test]
fn server_logs_into_a_file_carry_no_colour_codes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("keyri.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .arg("serve")
        .env("KEYRI_STORAGE_DATA_DIR", dir.path().join("data"))
        .env("KEYRI_SERVER_BIND", "127.0.0.1:0")
        .env("KEYRI_LOG_LEVEL", "info")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("server starts");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut first).expect("first line");
    child.kill().expect("stopped");
    child.wait().expect("reaped");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("demo ready"), "{first} {text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn an_unknown_setting_stops_the_server_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["serve"])
        .env("KEYRI_STORAGE_DATA_DIR", &data)
        .env("KEYRI_SERVER_PORTT", "1")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("KEYRI_SERVER_PORTT") && stderr.contains("portt"), "{stderr}");
    assert!(!data.exists(), "nothing was created");
}

#[tokio::test]
async fn tenant_commands_reach_a_running_server_through_its_admin_socket() {
    let app = TestApp::start().await;
    let data = app.config.storage.data_dir.clone();
    let socket = data.join("admin.sock");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).expect("socket exists").permissions().mode();
    assert_eq!(mode & 0o077, 0, "socket is owner-only: {mode:o}");

    let args = ["tenant", "create", "--name", "Live", "--origin", "https://live.example", "--json"];
    let created = tokio::task::spawn_blocking({
        let data = data.clone();
        move || json_out(&keyri(&args, &data))
    })
    .await
    .expect("ran");
    let app_key = created["appKey"].as_str().expect("app key").to_owned();
    assert!(app.running.directory.by_app_key(&app_key).is_some(), "server knows it at once");

    let rotated = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            json_out(&keyri(&["tenant", "rotate-secret", "Live", "--grace", "1h", "--json"], &data))
        }
    })
    .await
    .expect("ran");
    assert_ne!(rotated["apiSecret"], created["apiSecret"]);
    let until = rotated["previousValidUntil"].as_i64().expect("grace end");
    let hour = until - keyri::protocol::now_ms();
    assert!((3_590_000..=3_600_000).contains(&hour), "{hour}");

    let listed =
        tokio::task::spawn_blocking(move || json_out(&keyri(&["tenant", "list", "--json"], &data)))
            .await
            .expect("ran");
    assert_eq!(listed.as_array().expect("array").len(), 2);
    app.stop().await;
}

#[test]
fn a_held_database_without_a_server_socket_is_reported_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let _held = keyri::store::Store::open(&data.join("keyri.redb")).expect("opens");
    let output = keyri(&["tenant", "list"], &data);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("admin socket"), "{stderr}");
}

#[tokio::test]
async fn the_phone_simulator_approves_a_login_from_the_code_text() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let code = widget.qr().to_text();
    let output = approve_yes(code, &app, "token from the terminal").await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&app.url) && stdout.contains("Chrome 156"), "{stdout}");

    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"token from the terminal");
    app.stop().await;
}

#[tokio::test]
async fn the_phone_simulator_denies_when_the_user_says_no() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let code = widget.qr().to_text();
    let app_key = app.app_key.clone();
    let url = app.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args([
                "phone",
                "approve",
                &code,
                "--server",
                &url,
                "--app-key",
                &app_key,
                "--payload",
                "x",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        child.stdin.take().expect("stdin").write_all(b"n\n").expect("answer");
        child.wait_with_output().expect("exits")
    })
    .await
    .expect("ran");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Denied."));
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    assert_eq!(widget.next().await, WidgetOut::Denied);
    app.stop().await;
}

#[tokio::test]
async fn the_phone_simulator_reads_a_png_of_the_code() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let png = crate::browser::qr_png(&widget.qr().to_text());
    let path = app.dir.path().join("code.png");
    std::fs::write(&path, png).expect("written");

    let code = path.to_str().expect("utf-8").to_owned();
    let output = approve_yes(code, &app, "from a picture").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert_eq!(widget.open(&sealed), b"from a picture");
    app.stop().await;
}

/// Runs `keyri phone approve CODE --payload PAYLOAD --yes` against `server`.
async fn approve_at(code: String, server: String, app_key: String, payload: &str) -> Output {
    let payload = payload.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(["phone", "approve", &code, "--server", &server, "--app-key", &app_key])
            .args(["--payload", &payload, "--yes"])
            .output()
            .expect("runs")
    })
    .await
    .expect("ran")
}

/// `approve_at` the app's own server with its app key.
async fn approve_yes(code: String, app: &TestApp, payload: &str) -> Output {
    approve_at(code, app.url.clone(), app.app_key.clone(), payload).await
}

/// Runs `keyri phone approve CODE --yes` against `server`; its failure text.
async fn approve_fails(code: String, server: String, app_key: String) -> String {
    let output = approve_at(code, server, app_key, "x").await;
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A code whose page has gone, a code that names no session, and a server
/// named without its scheme each get a sentence that says what it means.
#[tokio::test]
async fn the_phone_simulator_explains_a_stale_code_and_a_bare_server_address() {
    let app = TestApp::start().await;
    let (url, app_key) = (app.url.clone(), app.app_key.clone());

    let widget = app.widget().await;
    let gone = widget.qr().to_text();
    drop(widget);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stderr = approve_fails(gone, url.clone(), app_key.clone()).await;
    assert!(stderr.contains("closed or lost its connection"), "{stderr}");

    let mut unknown = app.widget().await.qr();
    unknown.session_id = keyri::protocol::SessionId::generate();
    let stderr = approve_fails(unknown.to_text(), url.clone(), app_key.clone()).await;
    assert!(stderr.contains("unknown or has expired"), "{stderr}");

    let code = app.widget().await.qr().to_text();
    let bare = url.trim_start_matches("http://").to_owned();
    let stderr = approve_fails(code, bare, app_key).await;
    assert!(stderr.contains("--server must start with http://"), "{stderr}");
    app.stop().await;
}

#[test]
fn the_phone_simulator_refuses_a_code_that_is_not_a_login_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["phone", "approve", "https://example.com/hello", "--app-key", "app_x"])
        .args(["--server", "http://127.0.0.1:1"])
        .args(["--payload", "x", "--yes"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a keyri login code"), "{stderr}");
}

#[tokio::test]
async fn the_phone_simulator_registers_a_device_key_and_signs_a_login() {
    let app = TestApp::start().await;
    let keys = app.dir.path().join("phone-keys");
    let (url, secret, key_dir) =
        (app.url.clone(), app.api_secret.clone(), keys.display().to_string());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(["phone", "register", "--username", "alice", "--server", &url])
            .args(["--api-secret", &secret, "--key-dir", &key_dir])
            .output()
            .expect("runs")
    })
    .await
    .expect("ran");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("registered for alice"));
    use std::os::unix::fs::PermissionsExt;
    let dir_mode = std::fs::metadata(&keys).expect("key dir").permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "key dir is owner-only");

    let mut widget = app.widget().await;
    let (code, app_key, key_dir) =
        (widget.qr().to_text(), app.app_key.clone(), keys.display().to_string());
    let url = app.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args(["phone", "approve", &code, "--server", &url, "--app-key", &app_key, "--yes"])
            .args(["--signed", "--username", "alice", "--key-dir", &key_dir])
            .output()
            .expect("runs")
    })
    .await
    .expect("ran");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    let opened = String::from_utf8(widget.open(&sealed)).expect("text");
    let answer = app.backend().verify(&opened).await.expect("answered");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["username"], "alice");
    app.stop().await;
}

#[test]
fn signing_without_a_registered_device_key_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["phone", "approve", "http://127.0.0.1:1/q?s=x", "--app-key", "app_x"])
        .args(["--server", "http://127.0.0.1:1"])
        .args(["--signed", "--username", "nobody", "--yes", "--key-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keyri phone register"), "{stderr}");
}

#[tokio::test]
async fn the_phone_simulator_sends_nothing_when_its_question_gets_no_answer() {
    let app = TestApp::start().await;
    let widget = app.widget().await;
    let (code, app_key) = (widget.qr().to_text(), app.app_key.clone());
    let url = app.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keyri"))
            .args([
                "phone",
                "approve",
                &code,
                "--server",
                &url,
                "--app-key",
                &app_key,
                "--payload",
                "x",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs")
    })
    .await
    .expect("ran");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing was sent"));
    let login = app.phone().fetch(&widget.qr()).await.expect("still open");
    assert!(login.view.risk.is_empty());
    app.phone().confirm(&login, b"later").await.expect("still confirmable");
    app.stop().await;
}

#[test]
fn a_missing_picture_is_reported_as_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(["phone", "approve", "/nonexistent/code.png", "--app-key", "app_x"])
        .args(["--server", "http://127.0.0.1:1"])
        .args(["--payload", "x", "--yes"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read /nonexistent/code.png"), "{stderr}");
}
