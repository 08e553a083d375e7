//! Seeded random and mutated input against every parser that faces the
//! outside: HPKE opening, QR text, QR pictures, the configuration file and
//! the request bodies. None may panic; broken input is an error, and a
//! changed ciphertext never opens. Bounded and repeatable: fixed seeds.

use keyri::config::Config;
use keyri::protocol::hpke;
use keyri::protocol::qr::QrLogin;
use p256::SecretKey;
use p256::elliptic_curve::Generate;

/// xorshift64*: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.next() as u8).collect()
    }

    /// Flips, inserts, deletes or duplicates a few bytes.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(4) {
                0 if at < out.len() => out[at] ^= 1 << self.below(8),
                1 => out.insert(at, self.next() as u8),
                2 if at < out.len() => {
                    out.remove(at);
                }
                _ => {
                    let end = (at + self.below(16)).min(out.len());
                    let piece = out[at..end].to_vec();
                    out.splice(at..at, piece);
                }
            }
        }
        out
    }
}

#[test]
fn changed_or_random_ciphertexts_never_open_and_never_panic() {
    let mut rng = Rng(0x5eed_0001);
    let secret = SecretKey::generate();
    let public = hpke::uncompressed(&secret.public_key());
    let sealed = hpke::seal(&public, b"info", b"the payload").expect("seals");
    for _ in 0..3000 {
        let changed = rng.mutate(&sealed);
        if changed != sealed {
            assert!(hpke::open(&secret, b"info", &changed).is_err());
        }
        let _ = hpke::check_sealed_shape(&changed);
        let random = rng.bytes(200);
        assert!(hpke::open(&secret, b"info", &random).is_err());
    }
    assert_eq!(hpke::open(&secret, b"info", &sealed).expect("opens"), b"the payload");
}

#[test]
fn qr_text_parsing_never_panics_and_what_parses_round_trips() {
    let mut rng = Rng(0x5eed_0002);
    let valid = b"https://id.example.com/q?s=q1w2e3r4t5y6u7i8o9p0aQ&k=AAAAAAAAAAAAAAAAAAAAAA";
    let mut parsed = 0;
    for _ in 0..20_000 {
        let text = String::from_utf8_lossy(&rng.mutate(valid)).into_owned();
        if let Ok(qr) = QrLogin::parse(&text) {
            parsed += 1;
            assert_eq!(QrLogin::parse(&qr.to_text()), Ok(qr));
        }
    }
    assert!(parsed > 0, "mutations never kept a valid code: the test tests nothing");
}

#[test]
fn broken_pictures_are_errors_not_panics() {
    let mut rng = Rng(0x5eed_0003);
    let png = crate::browser::qr_png(
        "http://127.0.0.1/q?s=q1w2e3r4t5y6u7i8o9p0aQ&k=AAAAAAAAAAAAAAAAAAAAAA",
    );
    for _ in 0..300 {
        let _ = keyri::phone::qr_image::decode_png(&rng.mutate(&png));
        let _ = keyri::phone::qr_image::decode_png(&rng.bytes(300));
    }
}

#[test]
fn mangled_configuration_files_load_or_fail_cleanly() {
    let mut rng = Rng(0x5eed_0004);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyri.toml");
    let mut loaded = 0;
    for _ in 0..400 {
        std::fs::write(&path, rng.mutate(keyri::config::SAMPLE.as_bytes())).expect("written");
        if let Ok(config) = Config::load(Some(&path), Vec::new()) {
            loaded += 1;
            config.validate().expect("a loaded configuration is valid");
        }
    }
    assert!(loaded > 0, "no mutation loaded: the test tests nothing");
}

#[test]
fn request_bodies_of_every_shape_parse_or_fail_cleanly() {
    use keyri::auth::SignedRequest;
    use keyri::protocol::messages::{ConfirmRequest, WidgetIn};

    let mut rng = Rng(0x5eed_0005);
    let bodies: [&[u8]; 3] = [
        br#"{"sealed":"BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        br#"{"type":"hello","publicKey":"BFx0"}"#,
        br#"{"type":"keyri.auth.v1","keyId":"k","data":"{\"a\":1}","signature":"AA"}"#,
    ];
    for _ in 0..5000 {
        for body in bodies {
            let input = rng.mutate(body);
            let _ = serde_json::from_slice::<ConfirmRequest>(&input);
            let _ = serde_json::from_slice::<WidgetIn>(&input);
            if let Ok(request) = serde_json::from_slice::<SignedRequest>(&input) {
                let _ = keyri::auth::verify::check_shape(&request);
            }
        }
    }
}
