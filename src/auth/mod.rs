//! Server-side authentication: device keys registered by a tenant's backend,
//! login requests signed by those keys, and their one-time verification.

pub mod keys;
pub mod request;
pub mod verify;

pub use keys::{UserKey, Username};
pub use request::{LoginData, SignedRequest};
pub use verify::{Verified, VerifyError};
