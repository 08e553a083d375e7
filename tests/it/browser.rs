//! The widget in a real browser: headless Chromium shows the demo page, the
//! test reads the QR code off a screenshot, and the phone SDK approves it.

use keyri::phone::qr_image;
use keyri::protocol::qr::QrLogin;
use keyri::protocol::{b64, hpke};
use p256::SecretKey;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::webdriver::Browser;

/// Where screenshots are kept for people to look at after a run.
pub fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// A PNG of `text` as a QR code, 8 pixels a module with a quiet zone.
pub fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("encodes");
    let (modules, scale, quiet) = (code.width(), 8, 4);
    let side = (modules + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(&pixels).expect("pixels");
    writer.finish().expect("png");
    png
}

#[test]
fn a_rendered_code_decodes_to_its_text() {
    let text = "http://127.0.0.1:8080/q?s=q1w2e3r4t5y6u7i8o9p0aQ&k=AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(qr_image::decode_png(&qr_png(text)).expect("decodes"), text);
}

#[tokio::test]
async fn the_demo_page_receives_a_payload_approved_from_its_screenshot() {
    let app = TestApp::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo", app.url)).await;

    let shown =
        browser.wait_for("return document.getElementById('qr-text').textContent", "a code").await;
    let state = browser.eval("return document.getElementById('state').textContent", json!([]));
    assert_eq!(state.await, json!("waiting"));

    let png = browser.screenshot().await;
    std::fs::write(artifacts().join("demo-waiting.png"), &png).expect("saved");
    let decoded = qr_image::decode_png(&png).expect("the code reads off the screen");
    assert_eq!(json!(decoded), shown, "the pixels say what the page says");

    let qr = QrLogin::parse(&decoded).expect("a login code");
    let phone = app.phone();
    let login = phone.fetch(&qr).await.expect("the phone finds the session");
    assert_eq!(login.view.widget.origin.as_deref(), Some(app.url.as_str()));
    assert!(login.view.widget.browser.starts_with("Chrome"), "{}", login.view.widget.browser);
    browser
        .wait_for("return document.getElementById('state').textContent === 'scanned'", "scanned")
        .await;

    phone.confirm(&login, "signed in ✓".as_bytes()).await.expect("confirmed");
    let payload = browser
        .wait_for("return document.getElementById('payload').textContent", "the payload")
        .await;
    assert_eq!(payload, json!("signed in ✓"));
    let state = browser.eval("return document.getElementById('state').textContent", json!([]));
    assert_eq!(state.await, json!("confirmed"));
    std::fs::write(artifacts().join("demo-confirmed.png"), browser.screenshot().await)
        .expect("saved");

    browser.quit().await;
    app.stop().await;
}

#[tokio::test]
async fn the_widget_shows_a_denial_and_a_fresh_code_after_expiry() {
    let app = TestApp::start_with(|c| c.sessions.lifetime_secs = 2).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo", app.url)).await;
    let first =
        browser.wait_for("return document.getElementById('qr-text').textContent", "a code").await;

    // Expiry: the widget fetches a new code by itself.
    let script = format!(
        "const t = document.getElementById('qr-text').textContent; return t !== {first} && t"
    );
    let second = browser.wait_for(&script, "a fresh code").await;
    let qr = QrLogin::parse(second.as_str().expect("text")).expect("code");

    app.phone().deny(&qr.session_id).await.expect("denied");
    browser
        .wait_for("return document.getElementById('state').textContent === 'denied'", "denied")
        .await;
    std::fs::write(artifacts().join("demo-denied.png"), browser.screenshot().await).expect("saved");
    browser.quit().await;
    app.stop().await;
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("../fixtures/hpke-p256-sha256-aes256gcm.json"))
        .expect("vectors")
}

const OPEN_VECTORS: &str = r#"
const [cases, done] = [arguments[0], arguments[arguments.length - 1]];
const hex = (h) => new Uint8Array(h.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
const toHex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join('');
(async () => {
  const out = [];
  for (const c of cases) {
    const key = await Keyri.hpke.importPrivateKey(hex(c.skR), hex(c.pkR));
    out.push(toHex(await Keyri.hpke.open(key, hex(c.pkR), hex(c.info), hex(c.sealed))));
  }
  return out;
})().then(done, (e) => done('error: ' + e.message));
"#;

const SEAL_IN_PAGE: &str = r#"
const [pk, info, text, done] = arguments;
const b = Keyri.hpke.b64u;
Keyri.hpke.seal(b.decode(pk), b.decode(info), new TextEncoder().encode(text))
  .then((s) => done(b.encode(s)), (e) => done('error: ' + e.message));
"#;

const OPEN_IN_PAGE: &str = r#"
const [sk, pk, info, sealed, done] = arguments;
const b = Keyri.hpke.b64u;
Keyri.hpke.importPrivateKey(b.decode(sk), b.decode(pk))
  .then((key) => Keyri.hpke.open(key, b.decode(pk), b.decode(info), b.decode(sealed)))
  .then((p) => done(new TextDecoder().decode(p)), (e) => done('error: ' + e.message));
"#;

#[tokio::test]
async fn the_widget_hpke_opens_the_vectors_and_interoperates_with_the_rust_code() {
    let app = TestApp::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo", app.url)).await;
    browser.wait_for("return typeof Keyri === 'object'", "the widget script").await;

    let cases = vectors()["cases"].clone();
    let opened = browser.eval_async(OPEN_VECTORS, json!([cases])).await;
    let expected: Vec<Value> =
        cases.as_array().expect("cases").iter().map(|c| c["plaintext"].clone()).collect();
    assert_eq!(opened, json!(expected));

    let secret = <SecretKey as p256::elliptic_curve::Generate>::generate();
    let public = hpke::uncompressed(&secret.public_key());
    let info = b"keyri/v1/payload:AAAAAAAAAAAAAAAAAAAAAA";
    let args = json!([b64::encode(&public), b64::encode(info), "sealed in the page"]);
    let sealed = browser.eval_async(SEAL_IN_PAGE, args).await;
    let sealed = b64::decode(sealed.as_str().expect("text")).expect("base64url");
    assert_eq!(hpke::open(&secret, info, &sealed).expect("Rust opens"), b"sealed in the page");

    let from_rust = hpke::seal(&public, info, b"sealed in Rust").expect("seals");
    let args = json!([
        b64::encode(secret.to_bytes()),
        b64::encode(&public),
        b64::encode(info),
        b64::encode(&from_rust)
    ]);
    assert_eq!(browser.eval_async(OPEN_IN_PAGE, args).await, json!("sealed in Rust"));

    let mut tampered = from_rust.clone();
    tampered[80] ^= 1;
    let args = json!([
        b64::encode(secret.to_bytes()),
        b64::encode(&public),
        b64::encode(info),
        b64::encode(&tampered)
    ]);
    let refused = browser.eval_async(OPEN_IN_PAGE, args).await;
    assert!(refused.as_str().expect("text").starts_with("error:"), "{refused}");

    browser.quit().await;
    app.stop().await;
}

#[tokio::test]
async fn the_demo_page_signs_in_with_a_verified_device_key() {
    use keyri::phone::device::{self, MemoryKeyStore};

    let app = TestApp::start().await;
    let store = MemoryKeyStore::default();
    let key = device::device_key(&store, "alice").expect("key");
    let answer = app
        .backend()
        .register_key("alice", &device::public_key_b64(&key), "simulator")
        .await
        .expect("answered");
    assert_eq!(answer.status, 201);

    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo", app.url)).await;
    let text =
        browser.wait_for("return document.getElementById('qr-text').textContent", "a code").await;
    let qr = QrLogin::parse(text.as_str().expect("text")).expect("code");
    let phone = app.phone();
    let login = phone.fetch(&qr).await.expect("fetched");
    let payload = device::signed_payload(&key, "alice", &login, keyri::protocol::now_ms());
    phone.confirm(&login, payload.as_bytes()).await.expect("confirmed");

    let script = "const v = document.getElementById('verified'); \
                  return v.dataset.valid !== undefined && v.textContent";
    let shown = browser.wait_for(script, "the verification").await;
    assert_eq!(shown, json!("Signed in as alice"));
    std::fs::write(artifacts().join("demo-signed-in.png"), browser.screenshot().await)
        .expect("saved");

    // The page's request was used up: the same request cannot sign in again.
    let again = app.http().post(format!("{}/demo/verify", app.url)).body(payload);
    let answer: Value = again.send().await.expect("answered").json().await.expect("json");
    assert_eq!(answer["error"], "replayed");
    browser.quit().await;
    app.stop().await;
}
