//! base64url without padding (RFC 4648 §5), the only binary encoding on the wire.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding or other alphabets are refused.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_padding_and_standard_alphabet() {
        let bytes = [0xfb, 0xff, 0x00, 0x10];
        let text = encode(bytes);
        assert_eq!(text, "-_8AEA");
        assert_eq!(decode(&text).expect("decodes"), bytes);
        assert!(decode("-_8AEA==").is_err());
        assert!(decode("+/8AEA").is_err());
    }
}
