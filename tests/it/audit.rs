//! The audit trail: what is recorded, that it survives a kill -9 with every
//! answered call in it, that edits show, and that backups are whole.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyri::protocol::messages::WidgetOut;
use redb::{ReadableTable, TableDefinition};
use serde_json::Value;

use crate::support::{TestApp, Widget};

const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

fn keyri(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyri"))
        .args(args)
        .env("KEYRI_STORAGE_DATA_DIR", data)
        .current_dir(data.parent().expect("parent"))
        .output()
        .expect("keyri runs")
}

fn export(data: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "export"];
    all.extend_from_slice(args);
    let output = keyri(data, &all);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON record per line"))
        .collect()
}

fn verify(data: &std::path::Path) -> (bool, Value) {
    let output = keyri(data, &["audit", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    (output.status.success(), report)
}

#[tokio::test]
async fn logins_keys_and_verifications_are_recorded_without_secrets_or_payloads() {
    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    app.phone().confirm(&login, b"secret-session-token").await.expect("confirmed");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let denied = app.widget().await;
    app.phone().deny(&denied.session_id).await.expect("denied");

    let key = keyri::phone::device::public_key_b64(
        &p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key"),
    );
    let added = app.backend().register_key("alice", &key, "phone").await.expect("answered");
    let key_id = added.body["keyId"].as_str().expect("id").to_owned();
    app.backend().verify("{\"type\":\"nope\"}").await.expect("answered");
    app.backend().revoke_key("alice", &key_id).await.expect("answered");

    let data = app.config.storage.data_dir.clone();
    let secret = app.api_secret.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let summary: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (r["action"].as_str().unwrap_or("").into(), r["outcome"].as_str().unwrap_or("").into())
        })
        .collect();
    let expected = [
        ("tenant.create", "success"),
        ("session.confirm", "success"),
        ("session.deny", "success"),
        ("user_key.register", "success"),
        ("login.verify", "bad_request"),
        ("user_key.revoke", "success"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(a, o)| (a.to_string(), o.to_string())).collect();
    assert_eq!(summary, expected);

    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
    // The server made the demo tenant on its first start, and says so.
    assert_eq!(records[0]["actor"]["kind"], "system");
    assert_eq!(records[0]["details"]["demo"], true);
    assert_eq!(records[0]["details"]["name"], "Demo");
    assert_eq!(records[1]["details"]["session"], widget.session_id.as_str());
    assert_eq!(records[1]["actor"]["kind"], "anonymous");
    assert_eq!(records[1]["actor"]["ip"], "127.0.0.1");
    assert_eq!(records[3]["actor"]["kind"], "api_secret");
    assert_eq!(records[3]["details"]["keyId"], key_id.as_str());

    let text = serde_json::to_string(&records).expect("json");
    assert!(!text.contains("secret-session-token"), "a payload leaked into the log");
    assert!(!text.contains(&secret), "a secret leaked into the log");
    let raw = std::fs::read(app.config.db_path()).expect("db file");
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // --tenant takes what the other commands take; a wrong one is an error.
    let data = app.config.storage.data_dir.clone();
    let app_key = app.app_key.clone();
    let (mine, unknown, gone) = tokio::task::spawn_blocking(move || {
        let mine = export(&data, &["--tenant", &app_key]);
        (mine, keyri(&data, &["audit", "export", "--tenant", "Nobody"]), {
            keyri(&data, &["audit", "export", "--tenant", "tn_deleted"])
        })
    })
    .await
    .expect("ran");
    assert_eq!(mine, records);
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no tenant \"Nobody\""), "{said}");
    assert!(gone.status.success() && gone.stdout.is_empty());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no audit records matched"));
    app.stop().await;
}

#[tokio::test]
async fn a_session_that_expires_after_a_scan_is_recorded() {
    let app = TestApp::start_with(|c| c.sessions.lifetime_secs = 1).await;
    let mut scanned = app.widget().await;
    let _unscanned = app.widget().await;
    app.phone().fetch(&scanned.qr()).await.expect("fetched");
    assert_eq!(scanned.next().await, WidgetOut::Scanned);
    assert_eq!(scanned.next().await, WidgetOut::Expired);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let data = app.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["tenant.create", "session.expire"], "only the scanned one expires");
    assert_eq!(records[1]["actor"]["kind"], "system");
    assert_eq!(records[1]["details"]["session"], scanned.session_id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn an_edited_or_removed_record_is_found_by_verify() {
    let app = TestApp::start().await;
    for _ in 0..3 {
        let widget = app.widget().await;
        app.phone().deny(&widget.session_id).await.expect("denied");
    }
    let data = app.config.storage.data_dir.clone();
    let db_path = app.config.db_path();
    let _dir = app.stop().await;

    let (ok, report) = verify(&data);
    assert!(ok && report["ok"] == true && report["records"] == 4, "{report}");

    {
        let db = redb::Database::open(&db_path).expect("opens");
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(AUDIT).expect("table");
            let mut row = table.get(2).expect("read").expect("row 2").value().to_vec();
            let text = String::from_utf8_lossy(&row[32..]).replace("127.0.0.1", "127.0.0.2");
            row.truncate(32);
            row.extend_from_slice(text.as_bytes());
            table.insert(2, row.as_slice()).expect("write");
        }
        txn.commit().expect("commit");
    }
    let (ok, report) = verify(&data);
    assert!(!ok);
    assert_eq!(report["firstBreak"]["seq"], 2, "{report}");
    let output = keyri(&data, &["audit", "verify"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken at sequence 2"), "{stderr}");

    {
        let db = redb::Database::open(&db_path).expect("opens");
        let txn = db.begin_write().expect("txn");
        txn.open_table(AUDIT).expect("table").remove(2).expect("removed");
        txn.commit().expect("commit");
    }
    let (ok, report) = verify(&data);
    assert!(!ok);
    assert_eq!(report["firstBreak"]["reason"], "record missing", "{report}");

    // An unreadable record is named, and the rest is still exported.
    {
        let db = redb::Database::open(&db_path).expect("opens");
        let txn = db.begin_write().expect("txn");
        txn.open_table(AUDIT).expect("table").insert(3, [0u8; 40].as_slice()).expect("written");
        txn.commit().expect("commit");
    }
    let output = keyri(&data, &["audit", "export"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 unreadable audit record(s) left out: sequence 3"), "{stderr}");
    let seqs: Vec<u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 4]);
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_is_whole_and_verifies() {
    let app = TestApp::start().await;
    let widget = app.widget().await;
    app.phone().deny(&widget.session_id).await.expect("denied");
    let robot = keyri::admin::AdminName::parse("robot").expect("name");
    keyri::admin::tokens::create(&app.running.directory, &robot).expect("admin token");
    let data = app.config.storage.data_dir.clone();
    let backup = app.dir.path().join("backup.redb");

    let (d, b) = (data.clone(), backup.clone());
    let output =
        tokio::task::spawn_blocking(move || keyri(&d, &["backup", b.to_str().expect("utf-8")]))
            .await
            .expect("ran");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (d, b) = (data.clone(), backup.clone());
    let again =
        tokio::task::spawn_blocking(move || keyri(&d, &["backup", b.to_str().expect("utf-8")]))
            .await
            .expect("ran");
    assert!(!again.status.success(), "an existing file is never overwritten");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).expect("backup").permissions().mode();
    assert_eq!(mode & 0o077, 0, "the backup is readable by others: {mode:o}");
    let store = keyri::store::Store::open(&backup).expect("the backup opens");
    let tenants = store.tenants().expect("tenants");
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].app_key, app.app_key);
    let report = keyri::audit::verify_chain(&store).expect("verifies");
    assert!(report.ok && report.records == 2, "the demo's creation and the login: {report:?}");
    let tokens = store.admin_tokens().expect("admin tokens");
    assert_eq!(tokens.len(), 1, "admin tokens are in the backup");
    assert_eq!(tokens[0].name, "robot");
    app.stop().await;
}

#[tokio::test]
async fn switched_off_the_log_records_nothing() {
    let app = TestApp::start_with(|c| c.audit.enabled = false).await;
    let widget = app.widget().await;
    app.phone().deny(&widget.session_id).await.expect("denied");
    let data = app.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    assert!(records.is_empty());
    app.stop().await;
}

/// A `keyri serve` child process on a free port, killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
    app_key: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(data: &std::path::Path) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyri"))
        .arg("serve")
        .env("KEYRI_STORAGE_DATA_DIR", data)
        .env("KEYRI_SERVER_BIND", format!("127.0.0.1:{port}"))
        .env("KEYRI_LOG_LEVEL", "warn")
        .current_dir(data.parent().expect("parent"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("first line");
    let app_key = first
        .split("app key ")
        .nth(1)
        .map(|rest| rest.trim().trim_end_matches(')').to_owned())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    ServerProcess { child, url: format!("http://127.0.0.1:{port}"), app_key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_9_the_database_opens_and_every_answered_event_is_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = spawn_server(&data);
    let confirmed = Arc::new(Mutex::new(Vec::<String>::new()));
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut logins = Vec::new();
    for _ in 0..6 {
        let (url, app_key, confirmed, stop) =
            (server.url.clone(), server.app_key.clone(), confirmed.clone(), stop.clone());
        logins.push(tokio::spawn(async move {
            let phone = keyri::phone::PhoneClient::new(&url, &app_key);
            let ws_url = format!("{}/v1/widget/ws?appKey={app_key}", url.replacen("http", "ws", 1));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                use tokio_tungstenite::tungstenite::client::IntoClientRequest;
                let mut request = ws_url.as_str().into_client_request().expect("request");
                request.headers_mut().insert("origin", url.parse().expect("header"));
                let Ok(Ok((ws, _))) = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio_tungstenite::connect_async(request),
                )
                .await
                else {
                    return;
                };
                let widget = Widget::hello(ws).await;
                let Ok(login) = phone.fetch(&widget.qr()).await else { return };
                if phone.confirm(&login, b"token").await.is_ok() {
                    confirmed.lock().expect("lock").push(widget.session_id.to_string());
                }
            }
        }));
    }
    let admin = {
        let (data, created, stop) = (data.clone(), created.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let name = format!("Tenant {i}");
                let origin = format!("https://t{i}.example");
                let args = ["tenant", "create", "--name", &name, "--origin", &origin, "--json"];
                let output = keyri(&data, &args);
                if output.status.success() {
                    let value: Value = serde_json::from_slice(&output.stdout).expect("json");
                    created.lock().expect("lock").push(value["id"].as_str().expect("id").into());
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for login in logins {
        let _ = tokio::time::timeout(Duration::from_secs(20), login).await;
    }
    admin.await.expect("admin loop");

    let confirmed = confirmed.lock().expect("lock").clone();
    let created = created.lock().expect("lock").clone();
    assert!(confirmed.len() > 5, "few logins completed: {}", confirmed.len());
    assert!(!created.is_empty(), "no admin change completed");

    let (d, c) = (data.clone(), created.clone());
    let (report, records, listed) = tokio::task::spawn_blocking(move || {
        let (ok, report) = verify(&d);
        assert!(ok, "{report}");
        let records = export(&d, &[]);
        let listed = keyri(&d, &["tenant", "list", "--json"]);
        let _ = c;
        (report, records, listed)
    })
    .await
    .expect("ran");
    assert_eq!(report["ok"], true);

    let logged = |action: &str, key: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["action"] == action)
            .filter_map(|r| r["details"][key].as_str().or(r["tenant"].as_str()).map(String::from))
            .collect()
    };
    let sessions = logged("session.confirm", "session");
    for id in &confirmed {
        assert!(sessions.contains(id), "answered confirm {id} missing from the log");
    }
    let tenants = logged("tenant.create", "none");
    for id in &created {
        assert!(tenants.contains(id), "answered tenant create {id} missing from the log");
    }
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("tenants");
    for id in &created {
        assert!(listed.as_array().expect("list").iter().any(|t| t["id"] == id.as_str()));
    }

    // The server starts again on the same data dir.
    let mut again = spawn_server(&data);
    assert!(again.app_key.starts_with("app_"));
    again.child.kill().expect("stopped");
    again.child.wait().expect("reaped");
}

#[tokio::test]
async fn retention_removes_old_records_and_the_chain_still_verifies_from_its_checkpoint() {
    use keyri::audit::{Actor, AuditLog, Record};
    use keyri::protocol::{b64, now_ms};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = keyri::store::Store::open(&dir.path().join("k.redb")).expect("opens");
    let old = now_ms() - 3 * 86_400_000;
    store
        .append_audit(5, |seq, prev| {
            let at = if seq <= 3 { old } else { now_ms() };
            let record = Record {
                seq,
                at,
                tenant: None,
                actor: Actor::System,
                action: "session.expire".into(),
                outcome: "success".into(),
                details: serde_json::json!({}),
                prev: b64::encode(prev),
            };
            serde_json::to_vec(&record).expect("json")
        })
        .expect("appended");
    let directory = Arc::new(keyri::directory::Directory::new(store).expect("directory"));

    let (log, writer) = AuditLog::start(
        directory.clone(),
        &keyri::config::AuditConfig { retention_days: 2, ..Default::default() },
    );
    let seq = log
        .record(keyri::audit::Event::new(None, Actor::System, "session.expire"))
        .await
        .expect("recorded");
    assert_eq!(seq, 7, "after retention's own record");
    writer.close().await;

    let report = directory.with_store(keyri::audit::verify_chain).expect("verifies");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.from_seq, report.records, report.head_seq), (3, 4, 7));
    let left = directory.with_store(|s| s.audit_page(0, 100)).expect("page");
    assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5, 6, 7]);
    let pruned: Record = serde_json::from_slice(&left[2].body).expect("json");
    assert_eq!(pruned.action, "audit.prune");
    assert_eq!(pruned.details["removed"], 3);
    assert_eq!(pruned.details["checkpoint"], 3);
}

#[tokio::test]
async fn the_database_is_owner_only_even_in_a_shared_directory() {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::DirBuilder::new().mode(0o755).create(&data).expect("shared dir");
    let app = TestApp::start_with(|c| c.storage.data_dir = data.clone()).await;
    let mode = std::fs::metadata(app.config.db_path()).expect("db").permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    app.stop().await;
}

#[tokio::test]
async fn verify_on_a_live_server_sees_one_snapshot_and_no_false_break() {
    let app = TestApp::start().await;
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let backend = app.backend();
            tokio::spawn(async move {
                for _ in 0..40 {
                    let _ = backend.verify("{}").await;
                }
            })
        })
        .collect();
    for _ in 0..10 {
        let report = app.running.directory.with_store(keyri::audit::verify_chain).expect("walks");
        assert!(report.ok, "{report:?}");
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    app.stop().await;
}

/// The confirm's record is on disk before its payload leaves: with the
/// database held by a slow commit, the widget hears nothing until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payload_leaves_only_after_its_confirm_is_recorded() {
    use std::sync::atomic::Ordering;

    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(widget.next().await, WidgetOut::Scanned);

    let (holder, released) = crate::support::hold_database(&app, 400);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let phone = app.phone();
    let confirm = tokio::spawn(async move { phone.confirm(&login, b"token").await });

    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    assert!(released.load(Ordering::SeqCst), "the payload left before its record was written");
    assert_eq!(widget.open(&sealed), b"token");
    confirm.await.expect("task").expect("confirmed");
    holder.await.expect("task");

    let data = app.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let confirms: Vec<&Value> =
        records.iter().filter(|r| r["action"] == "session.confirm").collect();
    assert_eq!(confirms.len(), 1, "{records:?}");
    assert_eq!(confirms[0]["details"]["session"], widget.session_id.as_str());
    assert_eq!(confirms[0]["outcome"], "success");
    app.stop().await;
}

/// A confirm whose widget has gone is recorded twice: the confirm, then
/// that nothing was delivered.
#[tokio::test]
async fn a_confirm_that_cannot_be_delivered_is_recorded_as_such() {
    let app = TestApp::start().await;
    let widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    let session = widget.session_id.clone();
    let registered = app.running.registry.get(&session).expect("session");
    // The socket's task stops listening while the session is still open, as
    // when a browser vanishes without a close the server has yet to notice.
    registered.close_mailbox();
    let answer = app.phone().confirm(&login, b"token").await;
    assert!(answer.is_err(), "nothing was delivered: {answer:?}");

    let data = app.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let outcomes: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "session.confirm")
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["success", "widget_gone"], "{records:?}");
    app.stop().await;
}

/// A confirm that cannot be recorded delivers nothing: the phone gets
/// `internal`, the widget an `internal` error frame, never the payload.
#[tokio::test]
async fn a_confirm_that_cannot_be_recorded_delivers_nothing() {
    use crate::support::{Frame, next_frame};

    let app = TestApp::start().await;
    let mut widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    // The database goes away, as a failing disk would take it.
    app.running.directory.close();
    let answer = app.phone().confirm(&login, b"must not arrive").await.expect_err("refused");
    assert_eq!(answer.code(), Some("internal"), "{answer}");
    match next_frame(&mut widget.ws).await {
        Frame::Json(WidgetOut::Error { error, .. }) => assert_eq!(error, "internal"),
        other => panic!("expected an internal error frame, got {other:?}"),
    }
    assert!(matches!(next_frame(&mut widget.ws).await, Frame::Closed));
    app.stop().await;
}

#[tokio::test]
async fn the_server_records_the_demo_tenant_it_creates_and_the_origins_it_adds() {
    let app = TestApp::start().await;
    let config = app.config.clone();
    let dir = app.stop().await;
    // A new start listens on another port, which the demo must then allow.
    let again = TestApp::start_in(config, dir).await;
    let port = again.running.addr.port();
    let data = again.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let actions: Vec<&str> = records.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["tenant.create", "tenant.update"]);
    assert_eq!(records[1]["actor"]["kind"], "system");
    let added =
        serde_json::json!([format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]);
    assert_eq!(records[1]["details"]["originsAdded"], added);

    // A start that changes nothing records nothing.
    let mut config = again.config.clone();
    let dir = again.stop().await;
    config.server.public_url = format!("http://127.0.0.1:{port}");
    let third = TestApp::start_in(config, dir).await;
    let data = third.config.storage.data_dir.clone();
    let records = tokio::task::spawn_blocking(move || export(&data, &[])).await.expect("ran");
    let _ = third.stop().await;
    assert_eq!(records.len(), 2, "{records:?}");
}

#[tokio::test]
async fn a_damaged_database_file_is_named_as_such_instead_of_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let created = keyri(&data, &["tenant", "create", "--name", "A", "--origin", "https://a.ex"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    // Flip bytes in every page after the header, as a failing disk might.
    let path = data.join("keyri.redb");
    let mut bytes = std::fs::read(&path).expect("db file");
    for at in (4096..bytes.len()).step_by(512) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(&path, &bytes).expect("damaged");

    for args in [&["tenant", "list"][..], &["audit", "verify"][..]] {
        let output = keyri(&data, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {:?}", output.status);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.trim().lines().last().unwrap_or("");
        assert!(last.contains("is damaged") && last.contains("backup"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&path).expect("db file"), bytes, "nothing was written");
}

#[tokio::test]
async fn an_edited_head_stops_the_server_and_the_shell_before_they_change_anything() {
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let app = TestApp::start().await;
    let config = app.config.clone();
    let db_path = app.config.db_path();
    let data = app.config.storage.data_dir.clone();
    let dir = app.stop().await;
    {
        let db = redb::Database::open(&db_path).expect("opens");
        let txn = db.begin_write().expect("txn");
        txn.open_table(META).expect("meta").remove("audit.head").expect("removed");
        txn.commit().expect("commit");
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = keyri::server::start(config, listener).await.err().expect("refused");
    assert!(refused.to_string().contains("audit log's head"), "{refused}");

    let (d, created) =
        (data.clone(), ["tenant", "create", "--name", "B", "--origin", "https://b.ex"]);
    let output = tokio::task::spawn_blocking(move || keyri(&d, &created)).await.expect("ran");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keyri audit verify") && stderr.contains("backup"), "{stderr}");
    let store = keyri::store::Store::open(&db_path).expect("opens");
    let names: Vec<String> =
        store.tenants().expect("tenants").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["Demo"], "nothing was changed");
    drop((store, dir));
}
