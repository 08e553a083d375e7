//! The dashboard and the admin API over real sockets: setup, sign-in and the
//! attacks a dashboard must withstand, and the key lifecycle end to end.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_client::{ADMIN, AdminClient, PASSWORD, by_id, hidden};
use crate::support::{Frame, TestApp, Widget, next_frame};

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_once() {
    let app = TestApp::start().await;
    let link = app.setup_link.clone().expect("printed on first start");
    let token = link.split("token=").nth(1).expect("token").to_owned();

    let mut stranger = AdminClient::new(&app);
    let guessed = stranger.get("/admin/setup?token=not-the-token").await;
    assert_eq!(guessed.status, StatusCode::NOT_FOUND);

    // A mistake shows the form again with what was wrong; the link still works.
    let mut first = AdminClient::new(&app);
    assert_eq!(first.get(&format!("/admin/setup?token={token}")).await.status, StatusCode::OK);
    for (name, confirm, says) in
        [(ADMIN, "another password!", "The two passwords differ."), ("", PASSWORD, "name")]
    {
        let form = [
            ("token", token.as_str()),
            ("name", name),
            ("password", PASSWORD),
            ("confirm", confirm),
        ];
        let mistake = first.post("/admin/setup", &form).await;
        assert_eq!(mistake.status, StatusCode::BAD_REQUEST);
        assert!(mistake.body.contains("id=\"setup-error\""), "{}", mistake.body);
        assert!(mistake.body.contains(says), "{}", mistake.body);
        assert!(mistake.body.contains(&format!("value=\"{token}\"")), "the link is kept");
    }
    assert!(app.running.directory.with_store(|s| s.admins()).expect("admins").is_empty());

    let mut admin = AdminClient::set_up(&app).await;
    assert_eq!(admin.get("/admin/tenants").await.status, StatusCode::OK);

    let again = stranger.get(&format!("/admin/setup?token={token}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "single use");
    assert!(again.body.contains("keyri admin create"), "says what to do: {}", again.body);
    let form = [("token", token.as_str()), ("name", "mallory"), ("password", PASSWORD)];
    let reused = stranger.post("/admin/setup", &form).await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND);
    let admins = app.running.directory.with_store(|s| s.admins()).expect("admins");
    assert_eq!(admins.len(), 1);
    assert!(admins[0].password_hash.starts_with("$argon2id$"));
    assert!(!admins[0].password_hash.contains(PASSWORD));
    app.stop().await;
}

#[tokio::test]
async fn a_restart_with_an_admin_prints_no_setup_link() {
    let app = TestApp::start().await;
    AdminClient::set_up(&app).await;
    let config = app.config.clone();
    let dir = app.stop().await;
    let again = TestApp::start_in(config, dir).await;
    assert!(again.setup_link.is_none());
    again.stop().await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_in_answer_and_time() {
    // Heavier hashing than the other tests, so that hashing, not noise,
    // dominates the time of a sign-in.
    let app = TestApp::start_with(|c| c.admin.password_hash_memory_kib = 8 * 1024).await;
    AdminClient::set_up(&app).await;

    let mut timings = Vec::new();
    let mut pages = Vec::new();
    for name in [ADMIN, "nobody"].repeat(5) {
        let mut client = AdminClient::new(&app);
        let started = Instant::now();
        let page = client.sign_in(name, "wrong password!!").await;
        timings.push((name, started.elapsed()));
        pages.push(page);
    }
    for page in &pages {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(!page.headers.contains_key("set-cookie") || page.csrf().len() > 10);
        let text = by_id(&page.body, "login-error").expect("an error line");
        assert_eq!(text, "Wrong name or password.");
    }
    let strip = |body: &str| body.replace(&hidden(body, "csrf").unwrap_or_default(), "");
    assert_eq!(strip(&pages[0].body), strip(&pages[1].body), "same page for both");

    // The fastest of each: other tests running at the same time only ever
    // add time, so the minimum is the cost of the work itself.
    let fastest = |who: &str| {
        let times = timings.iter().filter(|(n, _)| *n == who).map(|(_, t)| *t);
        times.min().unwrap_or_default()
    };
    let (known, unknown) = (fastest(ADMIN), fastest("nobody"));
    assert!(
        unknown * 2 > known && known * 2 > unknown,
        "known {known:?} vs unknown {unknown:?}: an unknown name must cost a hash too"
    );
    app.stop().await;
}

#[tokio::test]
async fn brute_force_sign_in_is_throttled_even_for_the_right_password() {
    let app = TestApp::start().await;
    AdminClient::set_up(&app).await;

    let mut attacker = AdminClient::new(&app);
    for attempt in 0..5 {
        let page = attacker.sign_in(ADMIN, &format!("guess number {attempt}")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let locked = attacker.sign_in(ADMIN, PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = locked.headers["retry-after"].to_str().expect("text").parse().expect("secs");
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(locked.body.contains("Too many failed sign-ins"), "{}", locked.body);
    assert!(locked.body.contains("<form"), "the sign-in form is shown again");
    assert!(!attacker.cookies.iter().any(|(k, _)| k == "keyri_admin"), "not signed in");

    let failures = audit_actions(&app, "admin.sign_in").await;
    assert_eq!(failures.iter().filter(|r| r["outcome"] == "bad_credentials").count(), 5);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_sign_in_records_an_admin_name_but_never_other_typed_text() {
    let app = TestApp::start().await;
    AdminClient::set_up(&app).await;
    let typed = "CorrectHorse!Battery9";
    let mut client = AdminClient::new(&app);
    assert_eq!(client.sign_in(typed, "anything at all").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.sign_in(ADMIN, "a wrong password").await.status, StatusCode::UNAUTHORIZED);

    let failures = audit_actions(&app, "admin.sign_in").await;
    let failures: Vec<_> = failures.iter().filter(|r| r["outcome"] == "bad_credentials").collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let known: Vec<_> = failures.iter().map(|r| &r["details"]["nameKnown"]).collect();
    assert_eq!(known, [&json!(false), &json!(true)]);
    assert_eq!(failures[1]["details"]["name"], ADMIN);
    assert!(failures[0]["details"].get("name").is_none(), "{:?}", failures[0]);
    let raw = std::fs::read(app.config.db_path()).expect("db file");
    assert!(!raw.windows(typed.len()).any(|w| w == typed.as_bytes()), "typed text stored");
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let before = app.running.directory.list().expect("list").len();

    let missing = admin.post("/admin/tenants", &[("name", "NoToken")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = admin.post("/admin/tenants", &[("csrf", "forged"), ("name", "Forged")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("CSRF"), "{}", wrong.body);

    let csrf = admin.csrf().await;
    let foreign = admin
        .post_with_origin(
            "/admin/tenants",
            &[("csrf", &csrf), ("name", "CrossSite")],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let sandboxed = admin
        .post_with_origin("/admin/tenants", &[("csrf", &csrf), ("name", "Null")], Some("null"))
        .await;
    assert_eq!(sandboxed.status, StatusCode::FORBIDDEN, "a sandboxed frame posts Origin: null");

    let login = AdminClient::new(&app)
        .post("/admin/login", &[("csrf", "x"), ("name", ADMIN), ("password", PASSWORD)])
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN, "sign-in needs its CSRF cookie too");
    assert_eq!(app.running.directory.list().expect("list").len(), before);
    app.stop().await;
}

#[tokio::test]
async fn a_cookie_stolen_before_sign_out_is_worthless_after_it() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let csrf = admin.csrf().await;
    let stolen = admin.cookies.clone();

    let out = admin.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers["set-cookie"].to_str().expect("text").contains("Max-Age=0"));

    let mut thief = AdminClient::new(&app);
    thief.cookies = stolen;
    let page = thief.get("/admin/tenants").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/admin/login"));
    let post = thief.post("/admin/tenants", &[("csrf", &csrf), ("name", "Thief")]).await;
    assert_eq!(post.location(), Some("/admin/login"));
    assert!(app.running.directory.find("Thief").is_err());
    let api = thief.get("/admin/audit/export?format=jsonl").await;
    assert_eq!(api.status, StatusCode::SEE_OTHER, "a signed-out session exports nothing");
    app.stop().await;
}

#[tokio::test]
async fn the_sign_in_cookie_is_http_only_strict_and_scoped() {
    let app = TestApp::start().await;
    let mut client = AdminClient::set_up(&app).await;
    client.cookies.clear();
    let page = client.sign_in(ADMIN, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let cookies: Vec<&str> =
        page.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    let session = cookies.iter().find(|c| c.starts_with("keyri_admin=")).expect("cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(session.contains(part), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http on loopback");
    app.stop().await;
}

#[tokio::test]
async fn html_in_a_tenant_name_is_shown_as_text() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let name = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let (id, _) = admin.create_tenant(name, "https://app.example").await;

    for path in ["/admin/tenants".to_owned(), format!("/admin/tenants/{id}"), "/admin/audit".into()]
    {
        let page = admin.get(&path).await;
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body.contains("&#60;script&#62;alert(1)") || page.body.contains("&lt;script&gt;")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_admin_page_forbids_framing_and_caching() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let (id, _) = admin.create_tenant("Framed", "https://app.example").await;
    let mut anonymous = AdminClient::new(&app);
    let mut pages = vec![anonymous.get("/admin/login").await];
    for path in [
        "/admin/tenants".to_owned(),
        format!("/admin/tenants/{id}"),
        "/admin/audit".into(),
        "/admin/tenants/nope".into(),
    ] {
        pages.push(admin.get(&path).await);
    }
    for page in pages {
        assert_eq!(page.headers["x-frame-options"], "DENY");
        let csp = page.headers["content-security-policy"].to_str().expect("text");
        for rule in ["frame-ancestors 'none'", "script-src 'self'", "style-src 'self'"] {
            assert!(csp.contains(rule), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(!page.body.contains("<script>") && !page.body.contains("style=\""));
    }
    app.stop().await;
}

/// Admin API calls with a token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(app: &TestApp) -> Self {
        let name = keyri::admin::AdminName::parse("robot").expect("name");
        let token = keyri::admin::tokens::create(&app.running.directory, &name).expect("token");
        Self { http: reqwest::Client::new(), base: app.url.clone(), token }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1/admin{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The status of a backend call made with `secret`.
async fn backend_status(app: &TestApp, secret: &str) -> u16 {
    let url = format!("{}/v1/users/alice/keys", app.url);
    let response = reqwest::Client::new().get(url).bearer_auth(secret).send().await.expect("ok");
    response.status().as_u16()
}

#[tokio::test]
async fn wrong_admin_tokens_are_recorded_then_refused_unrecorded_and_right_ones_always_work() {
    let app = TestApp::start().await;
    let api = Api::new(&app).await;
    let max = keyri::admin::throttle::MAX_PER_ACCOUNT;
    for i in 0..=max {
        let guess = Api { token: format!("kat_guess_number_{i}"), ..Api::new(&app).await };
        let expected = if i < max { 401 } else { 429 };
        assert_eq!(guess.call(reqwest::Method::GET, "/tenants", None).await.0, expected, "{i}");
    }
    // The right token is never held up by wrong ones, nor by many calls at once.
    let calls = (0..20).map(|_| api.call(reqwest::Method::GET, "/tenants", None));
    let statuses: Vec<u16> =
        futures_util::future::join_all(calls).await.iter().map(|r| r.0).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let failures = audit_actions(&app, "admin.sign_in").await;
    assert_eq!(failures.len(), max, "only the ones before the limit: {failures:?}");
    assert!(failures.iter().all(|r| r["outcome"] == "bad_token"), "{failures:?}");
    assert!(!serde_json::to_string(&failures).expect("json").contains("kat_guess"));

    // Wrong tokens do not lock out dashboard sign-ins from the same address.
    AdminClient::set_up(&app).await;
    let mut admin = AdminClient::new(&app);
    assert_eq!(admin.sign_in(ADMIN, PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(admin.get("/admin/tenants").await.status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_runs_the_secret_lifecycle_and_refuses_without_a_token() {
    let app = TestApp::start().await;
    let api = Api::new(&app).await;
    let anonymous = reqwest::get(format!("{}/v1/admin/tenants", app.url)).await.expect("ok");
    assert_eq!(anonymous.status(), 401);
    let wrong = Api { token: "kat_guess".into(), ..Api::new(&app).await };
    assert_eq!(wrong.call(reqwest::Method::GET, "/tenants", None).await.0, 401);

    let body = json!({"name": "Acme", "origins": ["https://app.acme.example"]});
    let (status, created) = api.call(reqwest::Method::POST, "/tenants", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let first = created["apiSecret"].as_str().expect("secret").to_owned();
    let first_id = created["secretId"].as_str().expect("secret id").to_owned();
    assert_eq!(backend_status(&app, &first).await, 200);

    let rotate = json!({"label": "new backend", "graceSecs": 3600});
    let path = format!("/tenants/{id}/secrets/rotate");
    let (status, rotated) = api.call(reqwest::Method::POST, &path, Some(rotate)).await;
    assert_eq!(status, 201, "{rotated}");
    let second = rotated["apiSecret"].as_str().expect("secret").to_owned();
    assert_eq!(backend_status(&app, &first).await, 200, "old works in the grace period");
    assert_eq!(backend_status(&app, &second).await, 200, "new works");
    let listed = rotated["secrets"].as_array().expect("secrets");
    assert!(listed.iter().all(|s| s.get("hash").is_none()), "hashes are never shown");

    let path = format!("/tenants/{id}/secrets/{first_id}");
    let (status, _) = api.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(backend_status(&app, &first).await, 401, "revoked at once");
    assert_eq!(backend_status(&app, &second).await, 200);

    let path = format!("/tenants/{id}/secrets/rotate");
    let (_, third) = api.call(reqwest::Method::POST, &path, Some(json!({"graceSecs": 0}))).await;
    assert_eq!(backend_status(&app, &second).await, 401, "no grace: ended at once");
    let third = third["apiSecret"].as_str().expect("secret").to_owned();
    assert_eq!(backend_status(&app, &third).await, 200);

    let (status, records) =
        api.call(reqwest::Method::GET, &format!("/audit?tenant={id}"), None).await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = records["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in ["tenant.create", "secret.rotate", "secret.revoke"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let text = records.to_string();
    assert!(!text.contains(&first) && !text.contains(&second), "no secret in the log");
    assert!(text.contains("\"kind\":\"admin\"") && text.contains("robot"));
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_app_key_keeps_working_only_for_its_overlap() {
    let app = TestApp::start().await;
    let api = Api::new(&app).await;
    let old = app.add_tenant("Tv", &[], true);
    let id = app.running.directory.find(&old).expect("tenant").id;

    let path = format!("/tenants/{id}/app-key/rotate");
    let (status, rotated) =
        api.call(reqwest::Method::POST, &path, Some(json!({"overlapSecs": 3600}))).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["appKey"].as_str().expect("key").to_owned();
    assert_ne!(new, old);
    assert!(app.connect(&old, None).await.is_ok(), "old key within the overlap");
    assert!(app.connect(&new, None).await.is_ok());

    let (_, again) = api.call(reqwest::Method::POST, &path, Some(json!({"overlapSecs": 0}))).await;
    let newest = again["appKey"].as_str().expect("key").to_owned();
    assert!(app.connect(&new, None).await.is_err(), "no overlap: refused at once");
    assert!(app.connect(&newest, None).await.is_ok());
    app.stop().await;
}

#[tokio::test]
async fn disabling_a_tenant_closes_its_widget_sockets_at_once() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let app_key = app.add_tenant("Closing", &[], true);
    let other = app.widget().await;
    let ws = app.connect(&app_key, None).await.expect("opens");
    let mut widget = Widget::hello(ws).await;
    let id = app.running.directory.find(&app_key).expect("tenant").id;
    let session = widget.session_id.clone();

    let csrf = admin.csrf().await;
    let page = admin.post(&format!("/admin/tenants/{id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    match next_frame(&mut widget.ws).await {
        Frame::Json(keyri::protocol::messages::WidgetOut::Error { error, .. }) => {
            assert_eq!(error, "tenant_disabled")
        }
        other => panic!("expected an error frame, got {other:?}"),
    }
    widget.expect_closed().await;
    assert!(app.running.registry.get(&session).is_none_or(|s| s.outcome().is_some()));
    assert_eq!(app.running.registry.open_count_for(&id), 0);
    assert!(app.connect(&app_key, None).await.is_err(), "refused while disabled");
    assert!(app.running.registry.get(&other.session_id).is_some(), "others unaffected");

    let csrf = admin.csrf().await;
    admin.post(&format!("/admin/tenants/{id}/enable"), &[("csrf", &csrf)]).await;
    assert!(app.connect(&app_key, None).await.is_ok(), "enabled again");
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_tenant_needs_its_name_typed() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let (id, _) = admin.create_tenant("Doomed", "https://d.example").await;

    let csrf = admin.csrf().await;
    let path = format!("/admin/tenants/{id}/delete");
    let refused = admin.post(&path, &[("csrf", &csrf), ("confirm", "doomed")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(app.running.directory.find(&id).is_ok());
    let done = admin.post(&path, &[("csrf", &csrf), ("confirm", "Doomed")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(app.running.directory.find(&id).is_err());
    app.stop().await;
}

#[tokio::test]
async fn bad_settings_are_refused_with_the_reason() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let (id, _) = admin.create_tenant("Strict", "https://s.example").await;
    let csrf = admin.csrf().await;
    let path = format!("/admin/tenants/{id}");
    let form = [("csrf", csrf.as_str()), ("name", "Strict"), ("origins", "https://s.example/path")];
    let page = admin.post(&path, &form).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("scheme://host"), "{}", page.body);
    let kept = app.running.directory.find(&id).expect("tenant");
    assert_eq!(kept.origins, vec!["https://s.example".to_owned()]);
    app.stop().await;
}

#[tokio::test]
async fn the_audit_export_is_json_lines_or_csv_without_formulas() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    admin.create_tenant("=HYPERLINK(\"http://evil\")", "https://f.example").await;

    // The demo tenant's creation is the server's; only the admin's is wanted here.
    let jsonl =
        admin.get("/admin/audit/export?format=jsonl&action=tenant.create&actor=admin:alice").await;
    assert_eq!(jsonl.status, StatusCode::OK);
    let lines: Vec<Value> =
        jsonl.body.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["actor"], json!({"kind": "admin", "name": ADMIN}));
    assert_eq!(lines[0]["details"]["ip"], "127.0.0.1");

    let csv =
        admin.get("/admin/audit/export?format=csv&action=tenant.create&actor=admin:alice").await;
    assert!(csv.headers["content-disposition"].to_str().expect("text").contains("attachment"));
    let mut rows = csv.body.lines();
    assert_eq!(rows.next(), Some("seq,at,tenant,actor,action,outcome,details"));
    let row = rows.next().expect("one record");
    assert!(row.contains("\"admin:alice\"") && row.contains("\"tenant.create\""), "{row}");
    assert!(!row.contains(",\"=") && !row.contains(",="), "formula defused: {row}");

    let filtered = admin.get("/admin/audit?actor=admin:nobody").await;
    assert_eq!(filtered.body.matches("class=\"audit-row\"").count(), 0);
    let all = admin.get("/admin/audit?action=tenant.create").await;
    assert_eq!(all.body.matches("class=\"audit-row\"").count(), 2, "the demo's and the admin's");
    let bad = admin.get("/admin/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

/// Audit records of one action, oldest first.
pub async fn audit_actions(app: &TestApp, action: &str) -> Vec<Value> {
    let filter =
        keyri::admin::audit_query::AuditFilter { action: action.into(), ..Default::default() };
    let (records, _) = app
        .running
        .directory
        .with_store(|s| keyri::admin::audit_query::page(s, &filter, None, 500))
        .expect("reads");
    let mut out: Vec<Value> =
        records.iter().map(|r| serde_json::to_value(r).expect("json")).collect();
    out.reverse();
    out
}

#[tokio::test]
async fn a_token_made_in_the_dashboard_drives_the_api_until_revoked() {
    let app = TestApp::start().await;
    let mut admin = AdminClient::set_up(&app).await;
    let csrf = admin.csrf().await;

    let page = admin.post("/admin/tokens", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = by_id(&page.body, "new-token").expect("shown once");
    assert!(token.starts_with("kat_"));
    let again = admin.get("/admin/tokens").await;
    assert!(!again.body.contains(&token), "never shown again");

    let api = Api { http: reqwest::Client::new(), base: app.url.clone(), token: token.clone() };
    assert_eq!(api.call(reqwest::Method::GET, "/tenants", None).await.0, 200);

    let id = again.body.split("data-token-id=\"").nth(1).expect("listed");
    let id = id.split('"').next().expect("id");
    let revoked = admin.post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(api.call(reqwest::Method::GET, "/tenants", None).await.0, 401);

    let actions = audit_actions(&app, "admin_token.revoke").await;
    assert_eq!(actions.len(), 1);
    assert!(!serde_json::to_string(&actions).expect("json").contains(&token));
    app.stop().await;
}

#[tokio::test]
async fn the_audit_query_pages_newest_first_and_filters_by_time() {
    let app = TestApp::start().await;
    let api = Api::new(&app).await;
    for name in ["One", "Two", "Three"] {
        let body = json!({"name": name});
        assert_eq!(api.call(reqwest::Method::POST, "/tenants", Some(body)).await.0, 201);
    }

    let mut seen = Vec::new();
    let mut path = "/audit?action=tenant.create&limit=2".to_owned();
    loop {
        let (status, page) = api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for record in page["records"].as_array().expect("records") {
            seen.push(record["details"]["name"].as_str().expect("name").to_owned());
        }
        match page["before"].as_u64() {
            Some(before) => path = format!("/audit?action=tenant.create&limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Three", "Two", "One", "Demo"], "newest first, each once");

    let (_, future) = api.call(reqwest::Method::GET, "/audit?since=2999-01-01", None).await;
    assert_eq!(future["records"], json!([]));
    let (_, past) = api.call(reqwest::Method::GET, "/audit?until=2000-01-01", None).await;
    assert_eq!(past["records"], json!([]));
    let (_, today) =
        api.call(reqwest::Method::GET, "/audit?since=2000-01-01&limit=500", None).await;
    assert!(today["records"].as_array().expect("records").len() >= 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_parallel_guesses_gets_no_more_tries_than_one_by_one() {
    let app = TestApp::start().await;
    AdminClient::set_up(&app).await;

    let mut guesses = Vec::new();
    for i in 0..15 {
        let mut client = AdminClient::new(&app);
        let form = client.get("/admin/login").await;
        let csrf = form.csrf();
        guesses.push(tokio::spawn(async move {
            let guess = format!("parallel guess {i}");
            let form = [("csrf", csrf.as_str()), ("name", ADMIN), ("password", &guess)];
            client.post("/admin/login", &form).await.status
        }));
    }
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("answered"));
    }
    let tried = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((tried, refused), (5, 10), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_sign_in_left_idle_ends_and_its_cookie_no_longer_works() {
    let app = TestApp::start_with(|c| c.admin.session_idle_secs = 1).await;
    let mut admin = AdminClient::set_up(&app).await;
    assert_eq!(admin.get("/admin/tenants").await.status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let page = admin.get("/admin/tenants").await;
    assert_eq!(page.location(), Some("/admin/login"), "idle for longer than allowed");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_honours_or_refuses_every_field_and_names_what_is_missing() {
    use reqwest::Method;

    let app = TestApp::start().await;
    let api = Api::new(&app).await;
    let body = json!({"name": "Quick", "sessionLifetimeSecs": 30, "maxSealedBytes": 4096});
    let (status, created) = api.call(Method::POST, "/tenants", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["sessionLifetimeSecs"], 30);
    assert_eq!(created["maxSealedBytes"], 4096);

    let (status, _) = api
        .call(Method::POST, "/tenants", Some(json!({"name": "Zero", "sessionLifetimeSecs": 0})))
        .await;
    assert_eq!(status, 400, "an impossible lifetime is refused, not replaced");
    let (status, _) =
        api.call(Method::POST, "/tenants/Quick/secrets", Some(json!({"graceSecs": 10}))).await;
    assert_eq!(status, 400, "a field that would do nothing is refused");

    let (status, missing) = api.call(Method::GET, "/tenants/nobody", None).await;
    assert_eq!((status, missing["message"].as_str()), (404, Some("no such tenant")));
    let (status, missing) = api.call(Method::DELETE, "/tenants/Quick/secrets/sec_nope", None).await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"], "not_found");
    app.stop().await;
}
