//! `keyri admin …` and `keyri tenant revoke-secret` from the shell, on the
//! database file and through a running server's admin socket.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_client::{ADMIN, AdminClient, PASSWORD};
use crate::support::TestApp;

fn keyri(args: &[&str], data_dir: &std::path::Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(args)
        .env("KEYRI_STORAGE_DATA_DIR", data_dir)
        .env_remove("KEYRI_SERVER_BIND")
        .current_dir(data_dir.parent().expect("parent"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyri runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("password written");
    drop(input);
    child.wait_with_output().expect("keyri ends")
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_work_on_the_file_and_through_the_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let created = keyri(&["admin", "create", ADMIN], &data, &format!("{PASSWORD}\n"));
    assert!(ok(&created).contains("admin alice created"));
    let short = keyri(&["admin", "create", "bob"], &data, "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("12 to 1024"));
    for nothing in ["", "\n"] {
        let empty = keyri(&["admin", "create", "bob"], &data, nothing);
        assert!(!empty.status.success());
        assert!(String::from_utf8_lossy(&empty.stderr).contains("no password read"));
    }

    let app = TestApp::start_in(
        {
            let mut config = keyri::config::Config::default();
            config.storage.data_dir = data.clone();
            config.server.shutdown_timeout_secs = 1;
            config.admin.allow_weak_password_hashing_for_tests = true;
            config.admin.password_hash_memory_kib = 1024;
            config.admin.password_hash_passes = 1;
            config
        },
        dir,
    )
    .await;
    assert!(app.setup_link.is_none(), "an admin exists: no setup link");
    let mut session = AdminClient::new(&app);
    assert_eq!(session.sign_in(ADMIN, PASSWORD).await.status, StatusCode::SEE_OTHER);

    let data = app.config.storage.data_dir.clone();
    let new_password = "a brand new long password";
    let reset = keyri(&["admin", "reset-password", ADMIN], &data, &format!("{new_password}\n"));
    assert!(ok(&reset).contains("reset"));
    let page = session.get("/admin/tenants").await;
    assert_eq!(page.location(), Some("/admin/login"), "a reset ends open sign-ins");
    let mut fresh = AdminClient::new(&app);
    assert_eq!(fresh.sign_in(ADMIN, PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fresh.sign_in(ADMIN, new_password).await.status, StatusCode::SEE_OTHER);

    let token = keyri(&["admin", "token", "create", ADMIN, "--json"], &data, "");
    let token: Value = serde_json::from_str(&ok(&token)).expect("json");
    let token = token["token"].as_str().expect("token");
    let listed = reqwest::Client::new()
        .get(format!("{}/v1/admin/tenants", app.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers");
    assert_eq!(listed.status(), 200);
    let token_id = keyri(&["admin", "token", "list", "--json"], &data, "");
    let token_id: Value = serde_json::from_str(&ok(&token_id)).expect("json");
    let token_id = token_id[0]["id"].as_str().expect("id").to_owned();
    ok(&keyri(&["admin", "token", "revoke", &token_id], &data, ""));
    let refused = reqwest::Client::new()
        .get(format!("{}/v1/admin/tenants", app.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 401, "revoked from the shell");

    let rotated = keyri(&["tenant", "rotate-secret", "Demo", "--grace", "1h", "--json"], &data, "");
    let rotated: Value = serde_json::from_str(&ok(&rotated)).expect("json");
    let listed = keyri(&["tenant", "list", "--json"], &data, "");
    let listed: Value = serde_json::from_str(&ok(&listed)).expect("json");
    let secrets = listed[0]["secrets"].as_array().expect("secrets listed").clone();
    assert_eq!(secrets.len(), 2, "current and rotated-out");
    assert!(listed.to_string().find("hash").is_none(), "no hashes in the listing");
    let old_id = secrets[0]["id"].as_str().expect("id").to_owned();
    let revoked = keyri(&["tenant", "revoke-secret", "Demo", &old_id], &data, "");
    assert!(ok(&revoked).contains(&old_id));
    let status = |secret: String| {
        let url = format!("{}/v1/users/alice/keys", app.url);
        async move {
            let client = reqwest::Client::new();
            client.get(url).bearer_auth(secret).send().await.expect("answers").status()
        }
    };
    assert_eq!(status(app.api_secret.clone()).await, 401, "revoked through the socket");
    let new = rotated["apiSecret"].as_str().expect("secret").to_owned();
    assert_eq!(status(new).await, 200);
    let recorded = crate::admin::audit_actions(&app, "secret.rotate").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["details"]["secretId"], rotated["secretId"], "{recorded:?}");
    assert!(rotated["secretId"].as_str().is_some_and(|id| id.starts_with("sec_")));

    let missing = keyri(&["tenant", "revoke-secret", "Demo", "sec_nope"], &data, "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no secret"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_disable_and_app_key_rotation_work_through_the_running_server() {
    let app = TestApp::start().await;
    let data = app.config.storage.data_dir.clone();
    let app_key = app.add_tenant("Shell", &[], true);
    let ws = app.connect(&app_key, None).await.expect("opens");
    let mut widget = crate::support::Widget::hello(ws).await;

    let rotated =
        keyri(&["tenant", "rotate-app-key", "Shell", "--overlap", "1h", "--json"], &data, "");
    let rotated: Value = serde_json::from_str(&ok(&rotated)).expect("json");
    let new_key = rotated["appKey"].as_str().expect("key").to_owned();
    assert_ne!(new_key, app_key);
    assert!(rotated["previousValidUntil"].is_i64());
    assert!(app.connect(&app_key, None).await.is_ok(), "old key within the overlap");
    let listed = ok(&keyri(&["tenant", "list"], &data, ""));
    let line = format!("previous app key: {app_key} (accepted until ");
    assert!(listed.contains(&line), "the list shows the key still accepted: {listed}");

    let disabled = keyri(&["tenant", "disable", "Shell", "--json"], &data, "");
    let disabled: Value = serde_json::from_str(&ok(&disabled)).expect("json");
    assert_eq!(disabled["enabled"], false);
    match crate::support::next_frame(&mut widget.ws).await {
        crate::support::Frame::Json(keyri::protocol::messages::WidgetOut::Error {
            error, ..
        }) => {
            assert_eq!(error, "tenant_disabled")
        }
        other => panic!("expected the socket to be told, got {other:?}"),
    }
    assert!(app.connect(&new_key, None).await.is_err());

    ok(&keyri(&["tenant", "enable", "Shell"], &data, ""));
    assert!(app.connect(&new_key, None).await.is_ok());
    app.stop().await;
}
