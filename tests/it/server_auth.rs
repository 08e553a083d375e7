//! Server-side authentication: device keys, signed login requests, and their
//! one-time verification by a tenant's backend.

use keyri::auth::SignedRequest;
use keyri::phone::device::{self, MemoryKeyStore};
use keyri::protocol::messages::WidgetOut;
use keyri::protocol::{SessionId, b64, now_ms};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use serde_json::{Value, json};

use crate::support::TestApp;

/// A device key registered for `username` with the demo tenant.
async fn registered(app: &TestApp, username: &str) -> SigningKey {
    let key = SigningKey::generate();
    let answer = app
        .backend()
        .register_key(username, &device::public_key_b64(&key), "test phone")
        .await
        .expect("answered");
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    key
}

/// A session of the demo tenant that a phone has confirmed.
async fn confirmed_session(app: &TestApp) -> SessionId {
    let mut widget = app.widget().await;
    let login = app.phone().fetch(&widget.qr()).await.expect("fetched");
    app.phone().confirm(&login, b"anything").await.expect("confirmed");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    assert!(matches!(widget.next().await, WidgetOut::Payload { .. }));
    widget.session_id.clone()
}

fn sign(key: &SigningKey, user: &str, session: &SessionId, origin: &str, at: i64) -> String {
    SignedRequest::sign(key, user, session, Some(origin), at).to_json()
}

/// A request whose `data` is exactly `data`, signed by `key`.
fn sign_raw(key: &SigningKey, data: &str) -> SignedRequest {
    let signature: Signature = key.sign(data.as_bytes());
    let key_id = keyri::protocol::PublicKey::from_b64(&device::public_key_b64(key))
        .expect("point")
        .fingerprint();
    SignedRequest {
        kind: "keyri.auth.v1".into(),
        key_id: key_id.to_string(),
        data: data.to_owned(),
        signature: b64::encode(signature.to_bytes()),
    }
}

async fn refused(app: &TestApp, request: &str) -> (u16, String, String) {
    let answer = app.backend().verify(request).await.expect("answered");
    assert_eq!(answer.body["valid"], json!(false), "{:?}", answer.body);
    let message = answer.body["message"].as_str().unwrap_or("").to_owned();
    (answer.status, answer.error().unwrap_or("").to_owned(), message)
}

#[tokio::test]
async fn a_signed_login_verifies_once_and_records_the_keys_last_use() {
    let app = TestApp::start().await;
    let store = MemoryKeyStore::default();
    let key = device::device_key(&store, "Alice").expect("key");
    let answer = app
        .backend()
        .register_key("Alice", &device::public_key_b64(&key), "Pixel 9")
        .await
        .expect("answered");
    assert_eq!(answer.status, 201);
    let key_id = answer.body["keyId"].as_str().expect("keyId").to_owned();
    assert_eq!(answer.body["username"], "Alice");

    let mut widget = app.widget().await;
    let phone = app.phone();
    let login = phone.fetch(&widget.qr()).await.expect("fetched");
    let payload = device::signed_payload(&key, "Alice", &login, now_ms());
    phone.confirm(&login, payload.as_bytes()).await.expect("confirmed");
    assert_eq!(widget.next().await, WidgetOut::Scanned);
    let WidgetOut::Payload { sealed } = widget.next().await else { panic!("no payload") };
    let opened = String::from_utf8(widget.open(&sealed)).expect("text");

    let answer = app.backend().verify(&opened).await.expect("answered");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body,
        json!({"valid": true, "username": "Alice", "keyId": key_id,
               "sessionId": widget.session_id.as_str()})
    );
    assert_eq!(refused(&app, &opened).await.1, "replayed");

    let listed = app.backend().list_keys("Alice").await.expect("answered");
    let keys = listed.body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["label"], "Pixel 9");
    assert!(keys[0]["lastUsedAt"].as_i64().expect("last used") >= login.view.created_at);
    app.stop().await;
}

#[tokio::test]
async fn every_refusal_has_its_code() {
    let app = TestApp::start().await;
    let alice = registered(&app, "alice").await;
    let bob = registered(&app, "bob").await;
    let stranger = SigningKey::generate();
    let session = confirmed_session(&app).await;
    let (origin, now) = (app.url.clone(), now_ms());

    let cases: Vec<(&str, String)> = vec![
        ("unknown_key", sign(&stranger, "alice", &session, &origin, now)),
        ("unknown_key", sign(&bob, "alice", &session, &origin, now)),
        ("session_unknown", sign(&alice, "alice", &SessionId::generate(), &origin, now)),
        ("origin_mismatch", sign(&alice, "alice", &session, "https://evil.example", now)),
        ("stale", sign(&alice, "alice", &session, &origin, now - 121_000)),
        ("stale", sign(&alice, "alice", &session, &origin, now + 121_000)),
    ];
    for (code, request) in cases {
        let (status, error, message) = refused(&app, &request).await;
        assert_eq!((status, error.as_str()), (401, code), "{message}");
        assert!(!message.is_empty());
    }

    let mut tampered: Value =
        serde_json::from_str(&sign(&alice, "alice", &session, &origin, now)).expect("json");
    let data = tampered["data"].as_str().expect("data").replace(&origin, "http://x.example");
    tampered["data"] = json!(data);
    let (status, error, _) = refused(&app, &tampered.to_string()).await;
    assert_eq!((status, error.as_str()), (401, "bad_signature"));

    let good: SignedRequest =
        serde_json::from_str(&sign(&alice, "alice", &session, &origin, now)).expect("json");
    let raw = Signature::from_slice(&b64::decode(&good.signature).expect("b64")).expect("sig");
    let der = SignedRequest { signature: b64::encode(raw.to_der().as_bytes()), ..good.clone() };
    let (status, error, message) = refused(&app, &der.to_json()).await;
    assert_eq!((status, error.as_str()), (401, "bad_signature"));
    assert!(message.contains("64 raw bytes r||s"), "{message}");

    let malformed = sign_raw(&alice, "{not json");
    let (status, error, _) = refused(&app, &malformed.to_json()).await;
    assert_eq!((status, error.as_str()), (400, "bad_request"));
    let wrong_type = SignedRequest { kind: "other".into(), ..good.clone() };
    assert_eq!(refused(&app, &wrong_type.to_json()).await.1, "bad_request");
    assert_eq!(refused(&app, "not json").await.1, "bad_request");

    // None of the refusals used the session up.
    let answer = app.backend().verify(&good.to_json()).await.expect("answered");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    app.stop().await;
}

#[tokio::test]
async fn a_high_s_signature_verifies_like_its_low_s_twin() {
    let app = TestApp::start().await;
    let alice = registered(&app, "alice").await;
    let session = confirmed_session(&app).await;
    let mut request: SignedRequest =
        serde_json::from_str(&sign(&alice, "alice", &session, &app.url, now_ms())).expect("json");
    let sig = Signature::from_slice(&b64::decode(&request.signature).expect("b64")).expect("sig");
    let (r, s) = sig.split_scalars();
    let other = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).expect("sig");
    request.signature = b64::encode(other.to_bytes());
    let answer = app.backend().verify(&request.to_json()).await.expect("answered");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    app.stop().await;
}

#[tokio::test]
async fn a_never_confirmed_or_foreign_session_is_unknown() {
    let app = TestApp::start().await;
    let alice = registered(&app, "alice").await;
    let pending = app.widget().await;
    let request = sign(&alice, "alice", &pending.session_id, &app.url, now_ms());
    assert_eq!(refused(&app, &request).await.1, "session_unknown");

    // The same device key registered with another tenant cannot verify a
    // session of the demo tenant.
    let (_, other_secret) = app.add_tenant_with_secret("Other", &["https://o.example"], false);
    let other = keyri::backend_api::BackendClient::new(&app.url, &other_secret);
    let answer =
        other.register_key("alice", &device::public_key_b64(&alice), "").await.expect("answered");
    assert_eq!(answer.status, 201);
    let session = confirmed_session(&app).await;
    let request = sign(&alice, "alice", &session, &app.url, now_ms());
    let answer = other.verify(&request).await.expect("answered");
    assert_eq!((answer.status, answer.error()), (401, Some("session_unknown")));
    let answer = app.backend().verify(&request).await.expect("answered");
    assert_eq!(answer.status, 200, "the failed attempt used nothing up");
    app.stop().await;
}

#[tokio::test]
async fn a_key_revoked_between_approval_and_verification_is_refused() {
    let app = TestApp::start().await;
    let alice = registered(&app, "alice").await;
    let session = confirmed_session(&app).await;
    let request = sign(&alice, "alice", &session, &app.url, now_ms());

    let key_id = serde_json::from_str::<SignedRequest>(&request).expect("json").key_id;
    let answer = app.backend().revoke_key("alice", &key_id).await.expect("answered");
    assert_eq!(answer.status, 200);
    assert!(answer.body["revokedAt"].as_i64().is_some());
    assert_eq!(refused(&app, &request).await.1, "revoked_key");

    let again = app.backend().revoke_key("alice", &key_id).await.expect("answered");
    assert_eq!(again.body["revokedAt"], answer.body["revokedAt"], "revocation is idempotent");
    let wrong_user = app.backend().revoke_key("bob", &key_id).await.expect("answered");
    assert_eq!((wrong_user.status, wrong_user.error()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_verifications_of_one_request_give_one_success() {
    let app = TestApp::start().await;
    let alice = registered(&app, "alice").await;
    let session = confirmed_session(&app).await;
    let request = sign(&alice, "alice", &session, &app.url, now_ms());

    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (backend, request) = (app.backend(), request.clone());
            tokio::spawn(async move { backend.verify(&request).await.expect("answered") })
        })
        .collect();
    let mut codes = Vec::new();
    for call in calls {
        let answer = call.await.expect("task");
        codes.push(answer.error().unwrap_or("valid").to_owned());
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| *c == "valid").count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| c == "valid" || c == "replayed"), "{codes:?}");
    app.stop().await;
}

#[tokio::test]
async fn key_registration_validates_its_input_and_needs_a_current_secret() {
    let app = TestApp::start().await;
    let key = device::public_key_b64(&SigningKey::generate());
    let backend = app.backend();

    let answer = backend.register_key("Alice", &key, "Pixel").await.expect("answered");
    assert_eq!(answer.status, 201);
    let again = backend.register_key("alice", &key, "Pixel").await.expect("answered");
    assert_eq!((again.status, again.error()), (409, Some("already_registered")));
    let listed = backend.list_keys("alice").await.expect("answered");
    assert_eq!(listed.body["keys"], json!([]), "usernames keep their case");

    for (user, key, label) in [
        ("bob", "not-a-key", ""),
        ("bob", &b64::encode([4u8; 65]), ""),
        ("bo\nb", &key, ""),
        ("bob", &key, "tab\tlabel"),
        ("bob", &key, &"x".repeat(101)),
    ] {
        let answer = backend.register_key(user, key, label).await.expect("answered");
        assert_eq!((answer.status, answer.error()), (400, Some("bad_request")), "{user:?}");
    }
    let listed = backend.list_keys("bob").await.expect("answered");
    assert_eq!(listed.body["keys"], json!([]));

    let nobody = keyri::backend_api::BackendClient::new(&app.url, "sk_wrong");
    let answer = nobody.list_keys("Alice").await.expect("answered");
    assert_eq!((answer.status, answer.error()), (401, Some("unauthorized")));
    let response =
        app.http().get(format!("{}/v1/users/Alice/keys", app.url)).send().await.expect("answered");
    assert_eq!(response.status().as_u16(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_works_through_its_grace_period_and_not_after() {
    let app = TestApp::start().await;
    let old = app.backend();
    let (_, fresh) =
        app.running.directory.update(&app.app_key, |t| t.rotate_secret(60_000)).expect("rotated");
    let new = keyri::backend_api::BackendClient::new(&app.url, fresh.expose());
    assert_eq!(old.list_keys("a").await.expect("answered").status, 200);
    assert_eq!(new.list_keys("a").await.expect("answered").status, 200);

    let (_, newest) =
        app.running.directory.update(&app.app_key, |t| t.rotate_secret(0)).expect("rotated");
    assert_eq!(old.list_keys("a").await.expect("answered").status, 401);
    assert_eq!(new.list_keys("a").await.expect("answered").status, 401);
    let newest = keyri::backend_api::BackendClient::new(&app.url, newest.expose());
    assert_eq!(newest.list_keys("a").await.expect("answered").status, 200);
    app.stop().await;
}
