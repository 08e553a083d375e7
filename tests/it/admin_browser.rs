//! The dashboard in headless Chromium, used the way an operator would: the
//! printed setup link, sign-in, a tenant, its secrets through their whole
//! life, disabling it, and finding all of it in the audit log. Screenshots
//! of the main pages land in `target/artifacts/`.

use serde_json::{Value, json};

use crate::admin_client::{ADMIN, PASSWORD};
use crate::browser::artifacts;
use crate::support::{Frame, TestApp, Widget, next_frame};
use crate::webdriver::Browser;

async fn shot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await;
    std::fs::write(artifacts().join(name), png).expect("screenshot saved");
}

async fn wait_path(browser: &Browser, path: &str) {
    let script =
        format!("return location.pathname === {path:?} && document.readyState === 'complete'");
    browser.wait_for(&script, path).await;
}

async fn text(browser: &Browser, id: &str) -> String {
    let script =
        format!("const e = document.getElementById({id:?}); return e ? e.textContent : ''");
    browser.wait_for(&script, id).await.as_str().unwrap_or_default().trim().to_owned()
}

/// The status of a backend call made with `secret`.
async fn backend_status(app: &TestApp, secret: &str) -> u16 {
    let url = format!("{}/v1/users/alice/keys", app.url);
    let response = reqwest::Client::new().get(url).bearer_auth(secret).send().await.expect("ok");
    response.status().as_u16()
}

#[tokio::test]
async fn an_operator_runs_the_whole_key_lifecycle_from_the_browser() {
    let app = TestApp::start().await;
    let browser = Browser::start().await;

    // First run: the printed link lets the operator choose the password.
    browser.goto(app.setup_link.as_deref().expect("setup link")).await;
    browser.type_into("#name", ADMIN).await;
    browser.type_into("#password", PASSWORD).await;
    browser.type_into("#confirm", PASSWORD).await;
    shot(&browser, "admin-setup.png").await;
    browser.click("#create-admin").await;
    wait_path(&browser, "/admin/tenants").await;

    // Sign out and back in.
    browser.click("#sign-out").await;
    wait_path(&browser, "/admin/login").await;
    browser.type_into("#name", ADMIN).await;
    browser.type_into("#password", PASSWORD).await;
    shot(&browser, "admin-sign-in.png").await;
    browser.click("#sign-in").await;
    wait_path(&browser, "/admin/tenants").await;

    // A tenant, and its first secret used against the API.
    browser.type_into("#new-name", "Acme").await;
    browser.type_into("#new-origins", "https://app.acme.example").await;
    browser.click("#create-tenant").await;
    let first = text(&browser, "new-secret").await;
    let first_id = text(&browser, "new-secret-id").await;
    let app_key = text(&browser, "app-key").await;
    assert!(first.starts_with("sk_"), "{first}");
    shot(&browser, "admin-secret-shown.png").await;
    browser.click("button.copy").await;
    let copied = "const b = document.querySelector('button.copy'); return b.textContent !== 'Copy'";
    browser.wait_for(copied, "the copy button, a script the CSP allows, to answer").await;
    assert_eq!(backend_status(&app, &first).await, 200);

    // Add an origin: the server's own, so a widget can connect from it.
    browser.click("#to-tenant").await;
    browser.wait_for("return document.getElementById('settings') !== null", "tenant").await;
    browser.type_into("#origins", &format!("https://app.acme.example\n{}", app.url)).await;
    browser.click("#save-settings").await;
    let saved = || {
        let tenant = app.running.directory.find("Acme").expect("tenant");
        tenant.origins.contains(&app.url).then_some(tenant)
    };
    let mut tenant = saved();
    for _ in 0..50 {
        if tenant.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tenant = saved();
    }
    let tenant = tenant.expect("the new origin is saved");
    let tenant_path = format!("/admin/tenants/{}", tenant.id);
    wait_path(&browser, &tenant_path).await;

    // Rotate with a two-hour grace: old and new both work.
    browser.type_into("#rotate-label", "new backend").await;
    browser.type_into("#grace-hours", "2").await;
    browser.click("#rotate-secret").await;
    let second = text(&browser, "new-secret").await;
    assert_ne!(second, first);
    assert_eq!(backend_status(&app, &first).await, 200, "old secret within the grace");
    assert_eq!(backend_status(&app, &second).await, 200, "new secret");

    // Revoke the old one: refused on the next call.
    browser.click("#to-tenant").await;
    wait_path(&browser, &tenant_path).await;
    browser.click(&format!("tr[data-secret-id='{first_id}'] button.revoke")).await;
    let gone =
        format!("return document.querySelector(\"tr[data-secret-id='{first_id}']\") === null");
    browser.wait_for(&gone, "the revoked secret leaves the list").await;
    assert_eq!(backend_status(&app, &first).await, 401, "revoked");
    assert_eq!(backend_status(&app, &second).await, 200);

    // A widget of this tenant is open; the page counts it live.
    let ws = app.connect(&app_key, Some(&app.url)).await.expect("socket opens");
    let mut widget = Widget::hello(ws).await;
    browser
        .wait_for(
            "return document.getElementById('open-sessions').textContent === '1'",
            "live count",
        )
        .await;
    shot(&browser, "admin-tenant.png").await;

    // Disable: the socket closes at once.
    browser.click("#disable-tenant").await;
    browser
        .wait_for(
            "return document.getElementById('tenant-status').textContent === 'disabled'",
            "off",
        )
        .await;
    match next_frame(&mut widget.ws).await {
        Frame::Json(keyri::protocol::messages::WidgetOut::Error { error, .. }) => {
            assert_eq!(error, "tenant_disabled")
        }
        other => panic!("expected the widget to hear why, got {other:?}"),
    }
    widget.expect_closed().await;
    let _ = widget.ws.close(None).await;
    assert!(app.connect(&app_key, Some(&app.url)).await.is_err());

    // Every action is in the audit page and in both exports.
    browser.goto(&format!("{}/admin/audit", app.url)).await;
    wait_path(&browser, "/admin/audit").await;
    shot(&browser, "admin-audit.png").await;
    let shown = browser
        .eval(
            "return [...document.querySelectorAll('td.action')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    let expected = [
        "admin.setup",
        "admin.sign_out",
        "admin.sign_in",
        "tenant.create",
        "tenant.update",
        "secret.rotate",
        "secret.revoke",
        "tenant.disable",
    ];
    for action in expected {
        assert!(shown.as_array().expect("list").contains(&json!(action)), "{action} in {shown}");
    }
    let fetch = "const done = arguments[arguments.length - 1]; \
                 fetch(arguments[0]).then(r => r.text()).then(done, e => done(String(e)));";
    let jsonl = browser.eval_async(fetch, json!(["/admin/audit/export?format=jsonl"])).await;
    let lines: Vec<Value> = jsonl
        .as_str()
        .expect("text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let csv = browser.eval_async(fetch, json!(["/admin/audit/export?format=csv"])).await;
    let csv = csv.as_str().expect("text");
    for action in expected {
        assert!(lines.iter().any(|l| l["action"] == action), "{action} in the JSON lines");
        assert!(csv.contains(&format!("\"{action}\"")), "{action} in the CSV");
    }
    for secret in [&first, &second] {
        assert!(!csv.contains(secret.as_str()), "no secret in the log");
    }

    browser.quit().await;
    app.stop().await;
}

/// Serves one HTML page, to every request, from another origin (another
/// port on loopback).
async fn serve_page(html: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n",
                    html.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(html.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn another_origin_cannot_frame_an_admin_page() {
    let app = TestApp::start().await;
    let browser = Browser::start().await;
    // The first frame is a page of ours that allows framing: it shows that a
    // frame that may load does load, so the second frame's emptiness means
    // the browser refused it.
    let html = format!(
        "<!doctype html><iframe src=\"{0}/healthz\"></iframe>\
         <iframe src=\"{0}/admin/login\"></iframe>",
        app.url
    );
    let evil = serve_page(html).await;
    browser.goto(&evil).await;
    browser.wait_for("return document.readyState === 'complete'", "the framing page").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    shot(&browser, "admin-framing-refused.png").await;

    browser.enter_frame(0).await;
    let allowed = browser.eval("return document.body.innerText", json!([])).await;
    assert_eq!(allowed, json!("ok"), "the control frame loaded");
    browser.leave_frame().await;

    browser.enter_frame(1).await;
    let framed = browser
        .eval("return [location.href, document.getElementById('sign-in') !== null]", json!([]))
        .await;
    assert_eq!(framed[1], json!(false), "the sign-in form must not render in a frame: {framed}");
    browser.leave_frame().await;

    browser.quit().await;
    app.stop().await;
}
