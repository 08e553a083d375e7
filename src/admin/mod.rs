//! The admin side of the server, without HTTP: accounts and their passwords,
//! dashboard sign-ins, CSRF tokens, sign-in throttling, the first-run setup
//! link, admin API tokens and audit queries.

pub mod accounts;
pub mod audit_query;
pub mod csrf;
pub mod manage;
pub mod password;
pub mod sessions;
pub mod setup;
pub mod throttle;
pub mod tokens;

pub use accounts::{AdminAccount, AdminName};
pub use password::{Hasher, Password};
pub use sessions::{Sessions, SignedIn};
pub use setup::SetupLink;
pub use throttle::Throttle;
pub use tokens::AdminToken;

use crate::config::AdminConfig;
use crate::store::StoreError;

/// Everything the dashboard keeps in memory, one per server.
pub struct AdminAuth {
    pub hasher: Hasher,
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Wrong admin API tokens, by address; kept apart from sign-ins so that
    /// neither can lock the other out.
    pub token_failures: Throttle,
    pub setup: SetupLink,
}

impl AdminAuth {
    pub fn new(config: &AdminConfig) -> Result<Self, AdminError> {
        let idle_ms =
            i64::try_from(config.session_idle_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok(Self {
            hasher: Hasher::new(config.password_hash_memory_kib, config.password_hash_passes)?,
            sessions: Sessions::new(idle_ms),
            throttle: Throttle::default(),
            token_failures: Throttle::default(),
            setup: SetupLink::default(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin name must be 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadName,
    #[error("password must be {min} to {max} characters", min = password::MIN_CHARS,
            max = password::MAX_CHARS)]
    WeakPassword,
    #[error("an admin named {0:?} already exists")]
    NameTaken(String),
    #[error("no admin named {0:?}")]
    NoSuchAdmin(String),
    #[error("the setup link is unknown, used or expired")]
    SetupLinkInvalid,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// SHA-256 of a random token, base64url: how session ids, setup links and
/// API tokens are kept. They carry 256 random bits, so a fast hash suffices.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::protocol::b64::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token with a readable prefix.
pub fn random_token(prefix: &str) -> String {
    let bytes = crate::protocol::ids::random_bytes::<32>();
    format!("{prefix}{}", crate::protocol::b64::encode(bytes))
}
