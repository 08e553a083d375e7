//! The text inside the QR code: `<scanUrl>?s=<sessionId>&k=<fingerprint>`.
//!
//! The widget writes it and the phone reads it. The server never writes it, so
//! a relay cannot swap the key fingerprint the phone will check.

use super::ids::{KeyId, SessionId};

/// What a phone learns from scanning a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrLogin {
    /// The scan URL without the query parameters the widget added.
    pub scan_url: String,
    pub session_id: SessionId,
    pub fingerprint: KeyId,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("the code has no query string; it is not a keyri login code")]
    NoQuery,
    #[error("the code has no valid session id (s=)")]
    BadSession,
    #[error("the code has no valid key fingerprint (k=)")]
    BadFingerprint,
}

impl QrLogin {
    /// Parses QR text; `s` and `k` may come in any order after other parameters.
    pub fn parse(text: &str) -> Result<Self, QrError> {
        let text = text.trim();
        let (base, query) = text.split_once('?').ok_or(QrError::NoQuery)?;

        let mut session = None;
        let mut fingerprint = None;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("s", value)) => session = SessionId::parse(value),
                Some(("k", value)) => fingerprint = KeyId::parse(value),
                _ if !pair.is_empty() => kept.push(pair),
                _ => {}
            }
        }

        let scan_url = match kept.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", kept.join("&")),
        };
        Ok(Self {
            scan_url,
            session_id: session.ok_or(QrError::BadSession)?,
            fingerprint: fingerprint.ok_or(QrError::BadFingerprint)?,
        })
    }

    /// The QR text as the widget builds it.
    pub fn to_text(&self) -> String {
        let joiner = if self.scan_url.contains('?') { '&' } else { '?' };
        format!("{}{joiner}s={}&k={}", self.scan_url, self.session_id, self.fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "q1w2e3r4t5y6u7i8o9p0aQ";
    const KID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn parses_the_widget_form_and_round_trips() {
        let text = format!("https://id.example.com/q?s={SID}&k={KID}");
        let qr = QrLogin::parse(&text).expect("parses");
        assert_eq!(qr.scan_url, "https://id.example.com/q");
        assert_eq!(qr.session_id.as_str(), SID);
        assert_eq!(qr.fingerprint.as_str(), KID);
        assert_eq!(qr.to_text(), text);
    }

    #[test]
    fn keeps_parameters_of_an_app_scheme_scan_url() {
        let text = format!("myapp://keyri?env=prod&k={KID}&s={SID}");
        let qr = QrLogin::parse(&text).expect("parses");
        assert_eq!(qr.scan_url, "myapp://keyri?env=prod");
        assert_eq!(QrLogin::parse(&qr.to_text()), Ok(qr));
    }

    #[test]
    fn refuses_codes_without_valid_session_or_fingerprint() {
        assert_eq!(QrLogin::parse("https://x/q"), Err(QrError::NoQuery));
        let no_sid = format!("https://x/q?k={KID}");
        assert_eq!(QrLogin::parse(&no_sid), Err(QrError::BadSession));
        let bad_sid = format!("https://x/q?s=abc&k={KID}");
        assert_eq!(QrLogin::parse(&bad_sid), Err(QrError::BadSession));
        let bad_kid = format!("https://x/q?s={SID}&k=zz");
        assert_eq!(QrLogin::parse(&bad_kid), Err(QrError::BadFingerprint));
    }
}
