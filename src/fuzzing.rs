//! The code under fuzzing, one function per target in `fuzz/`: each takes
//! arbitrary bytes, must never panic, and checks what must hold for any
//! input. The regression tests feed every saved crash through them too.

use std::path::Path;

use p256::SecretKey;

use crate::auth::SignedRequest;
use crate::config::Config;
use crate::protocol::hpke;
use crate::protocol::messages::{ConfirmRequest, WidgetIn};
use crate::protocol::qr::QrLogin;

/// Every JSON body the server parses from clients.
pub fn request_bodies(data: &[u8]) {
    let _ = serde_json::from_slice::<ConfirmRequest>(data);
    let _ = serde_json::from_slice::<WidgetIn>(data);
    if let Ok(request) = serde_json::from_slice::<SignedRequest>(data) {
        let _ = crate::auth::verify::check_shape(&request);
        let _ = serde_json::from_str::<crate::auth::LoginData>(&request.data);
    }
}

/// Opening a sealed payload: arbitrary bytes never open.
pub fn hpke_open(data: &[u8]) {
    let Ok(secret) = SecretKey::from_slice(&[7u8; 32]) else { return };
    let _ = hpke::check_sealed_shape(data);
    assert!(hpke::open(&secret, b"keyri/v1/payload:fuzz", data).is_err());
}

/// The QR text a phone reads: what parses, round-trips.
pub fn qr_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(qr) = QrLogin::parse(text) {
        assert_eq!(QrLogin::parse(&qr.to_text()), Ok(qr));
    }
}

/// The configuration file: it loads valid, or is refused.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_text(text, Path::new("keyri.toml"), Vec::new()) {
        assert!(config.validate().is_ok());
    }
}
