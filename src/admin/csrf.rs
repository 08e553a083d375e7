//! CSRF tokens: one random token per dashboard sign-in, put in a hidden field
//! of every form and compared in constant time on every POST.

use subtle::ConstantTimeEq;

/// Whether a presented token is the expected one; empty never matches.
pub fn matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// A fresh token.
pub fn generate() -> String {
    super::random_token("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_same_token_matches() {
        let token = super::generate();
        assert!(super::matches(&token, &token.clone()));
        assert!(!super::matches(&token, ""));
        assert!(!super::matches(&token, &super::generate()));
        assert!(!super::matches("", ""));
    }
}
