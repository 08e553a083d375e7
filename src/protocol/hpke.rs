//! HPKE (RFC 9180) base mode, single-shot, with the suite
//! DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM and empty aad.
//!
//! `sealed` is `enc` (the 65-byte ephemeral point) followed by the AES-GCM
//! ciphertext and its tag. Only the suite the protocol names is implemented, so
//! there is nothing to negotiate and nothing to downgrade.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// Length of `enc`, an uncompressed SEC1 P-256 point.
pub const ENC_LEN: usize = 65;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The shortest sealed value: `enc` and a tag around an empty plaintext.
pub const MIN_SEALED_LEN: usize = ENC_LEN + TAG_LEN;

const KEM_ID: u16 = 0x0010;
const KDF_ID: u16 = 0x0001;
const AEAD_ID: u16 = 0x0002;
const MODE_BASE: u8 = 0;
const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// Why a sealed value could not be opened or a value could not be sealed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HpkeError {
    #[error("sealed payload is shorter than {MIN_SEALED_LEN} bytes")]
    TooShort,
    #[error("enc is not a valid P-256 point")]
    BadEnc,
    #[error("recipient key is not a valid P-256 point")]
    BadRecipient,
    #[error("payload does not open with this key and info")]
    OpenFailed,
}

/// Checks the parts of a sealed value a relay can check without any key:
/// its length and that `enc` is a valid point.
pub fn check_sealed_shape(sealed: &[u8]) -> Result<(), HpkeError> {
    if sealed.len() < MIN_SEALED_LEN {
        return Err(HpkeError::TooShort);
    }
    PublicKey::from_sec1_bytes(&sealed[..ENC_LEN]).map_err(|_| HpkeError::BadEnc)?;
    Ok(())
}

/// Seals `plaintext` to the recipient's uncompressed public key.
pub fn seal(recipient: &[u8], info: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HpkeError> {
    let pk_r = PublicKey::from_sec1_bytes(recipient).map_err(|_| HpkeError::BadRecipient)?;
    let sk_e = SecretKey::generate();
    seal_with_ephemeral(&pk_r, &sk_e, info, plaintext)
}

fn seal_with_ephemeral(
    pk_r: &PublicKey,
    sk_e: &SecretKey,
    info: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    let enc = uncompressed(&sk_e.public_key());
    let dh = sk_e.diffie_hellman(pk_r);
    let shared = extract_and_expand(dh.raw_secret_bytes(), &enc, &uncompressed(pk_r));
    let (key, nonce) = key_schedule(&shared, info);

    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| HpkeError::OpenFailed)?;
    let body = cipher.encrypt(&nonce.into(), plaintext).map_err(|_| HpkeError::OpenFailed)?;

    let mut sealed = enc;
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// Opens a sealed value with the recipient's secret key.
pub fn open(recipient: &SecretKey, info: &[u8], sealed: &[u8]) -> Result<Vec<u8>, HpkeError> {
    if sealed.len() < MIN_SEALED_LEN {
        return Err(HpkeError::TooShort);
    }
    let (enc, body) = sealed.split_at(ENC_LEN);
    let pk_e = PublicKey::from_sec1_bytes(enc).map_err(|_| HpkeError::BadEnc)?;

    let dh = recipient.diffie_hellman(&pk_e);
    let pk_r = uncompressed(&recipient.public_key());
    let shared = extract_and_expand(dh.raw_secret_bytes(), enc, &pk_r);
    let (key, nonce) = key_schedule(&shared, info);

    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| HpkeError::OpenFailed)?;
    cipher.decrypt(&nonce.into(), body).map_err(|_| HpkeError::OpenFailed)
}

/// The 65-byte uncompressed SEC1 form of a public key.
pub fn uncompressed(key: &PublicKey) -> Vec<u8> {
    key.to_sec1_point(false).as_bytes().to_vec()
}

fn kem_suite_id() -> Vec<u8> {
    let mut id = b"KEM".to_vec();
    id.extend_from_slice(&KEM_ID.to_be_bytes());
    id
}

fn hpke_suite_id() -> Vec<u8> {
    let mut id = b"HPKE".to_vec();
    for part in [KEM_ID, KDF_ID, AEAD_ID] {
        id.extend_from_slice(&part.to_be_bytes());
    }
    id
}

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    let labeled = [VERSION_LABEL, suite, label, ikm].concat();
    Hkdf::<Sha256>::new(Some(salt), &labeled)
}

fn labeled_extract_bytes(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let labeled = [VERSION_LABEL, suite, label, ikm].concat();
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &labeled);
    prk.to_vec()
}

fn labeled_expand(prk: &Hkdf<Sha256>, suite: &[u8], label: &[u8], info: &[u8], out: &mut [u8]) {
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let labeled = [&length[..], VERSION_LABEL, suite, label, info].concat();
    // Lengths here are the suite's fixed 12 or 32 bytes, far below HKDF's limit.
    prk.expand(&labeled, out).unwrap_or_default();
}

fn extract_and_expand(dh: &[u8], enc: &[u8], pk_r: &[u8]) -> [u8; 32] {
    let suite = kem_suite_id();
    let prk = labeled_extract(&suite, b"", b"eae_prk", dh);
    let context = [enc, pk_r].concat();
    let mut shared = [0u8; 32];
    labeled_expand(&prk, &suite, b"shared_secret", &context, &mut shared);
    shared
}

fn key_schedule(shared: &[u8; 32], info: &[u8]) -> ([u8; 32], [u8; 12]) {
    let suite = hpke_suite_id();
    let psk_id_hash = labeled_extract_bytes(&suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract_bytes(&suite, b"", b"info_hash", info);
    let context = [&[MODE_BASE][..], &psk_id_hash, &info_hash].concat();

    let secret = labeled_extract(&suite, shared, b"secret", b"");
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    labeled_expand(&secret, &suite, b"key", &context, &mut key);
    labeled_expand(&secret, &suite, b"base_nonce", &context, &mut nonce);
    (key, nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> (SecretKey, Vec<u8>) {
        let sk = SecretKey::generate();
        let pk = uncompressed(&sk.public_key());
        (sk, pk)
    }

    #[test]
    fn seals_and_opens_with_matching_info() {
        let (sk, pk) = recipient();
        let sealed = seal(&pk, b"info", b"token").expect("seals");
        assert_eq!(sealed.len(), MIN_SEALED_LEN + 5);
        assert_eq!(open(&sk, b"info", &sealed).expect("opens"), b"token");
    }

    #[test]
    fn refuses_other_info_flipped_bytes_and_short_input() {
        let (sk, pk) = recipient();
        let sealed = seal(&pk, b"info", b"token").expect("seals");
        assert_eq!(open(&sk, b"other", &sealed), Err(HpkeError::OpenFailed));

        let mut flipped = sealed.clone();
        *flipped.last_mut().expect("not empty") ^= 1;
        assert_eq!(open(&sk, b"info", &flipped), Err(HpkeError::OpenFailed));

        let mut bad_enc = sealed.clone();
        bad_enc[1] ^= 0xff;
        assert_eq!(open(&sk, b"info", &bad_enc), Err(HpkeError::BadEnc));
        assert_eq!(open(&sk, b"info", &sealed[..80]), Err(HpkeError::TooShort));
    }

    #[test]
    fn shape_check_accepts_sealed_and_refuses_garbage() {
        let (_, pk) = recipient();
        let sealed = seal(&pk, b"i", b"").expect("seals");
        assert_eq!(check_sealed_shape(&sealed), Ok(()));
        assert_eq!(check_sealed_shape(&[4u8; 81]), Err(HpkeError::BadEnc));
        assert_eq!(check_sealed_shape(&sealed[..80]), Err(HpkeError::TooShort));
    }

    #[test]
    fn refuses_recipient_that_is_not_a_point() {
        assert_eq!(seal(&[4u8; 65], b"i", b"x"), Err(HpkeError::BadRecipient));
    }
}
