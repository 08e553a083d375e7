//! The known-answer cases produced by an independent HPKE implementation.

use keyri::protocol::hpke;
use p256::SecretKey;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    #[serde(rename = "skR")]
    sk_r: String,
    #[serde(rename = "pkR")]
    pk_r: String,
    info: String,
    sealed: String,
    plaintext: String,
}

fn cases() -> Vec<Case> {
    let text = include_str!("../fixtures/hpke-p256-sha256-aes256gcm.json");
    serde_json::from_str::<Vectors>(text).expect("vectors parse").cases
}

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}

#[test]
fn every_known_answer_case_opens_to_its_plaintext() {
    let cases = cases();
    assert!(cases.len() >= 5);
    for case in cases {
        let sk = SecretKey::from_slice(&hex(&case.sk_r)).expect("scalar");
        assert_eq!(hpke::uncompressed(&sk.public_key()), hex(&case.pk_r));
        let opened = hpke::open(&sk, &hex(&case.info), &hex(&case.sealed)).expect("opens");
        assert_eq!(opened, hex(&case.plaintext));
    }
}

#[test]
fn known_answer_cases_refuse_a_changed_info_or_ciphertext() {
    for case in cases() {
        let sk = SecretKey::from_slice(&hex(&case.sk_r)).expect("scalar");
        let mut info = hex(&case.info);
        info.push(b'!');
        assert!(hpke::open(&sk, &info, &hex(&case.sealed)).is_err());

        let mut sealed = hex(&case.sealed);
        sealed[70] ^= 0x01;
        assert!(hpke::open(&sk, &hex(&case.info), &sealed).is_err());
    }
}

#[test]
fn what_we_seal_to_a_vector_key_opens_with_its_secret() {
    let case = &cases()[2];
    let sealed = hpke::seal(&hex(&case.pk_r), &hex(&case.info), b"round trip").expect("seals");
    let sk = SecretKey::from_slice(&hex(&case.sk_r)).expect("scalar");
    assert_eq!(hpke::open(&sk, &hex(&case.info), &sealed).expect("opens"), b"round trip");
}
