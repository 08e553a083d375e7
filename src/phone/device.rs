//! Device signing keys for server-side authentication: one P-256 key per user
//! on this device, kept in a key store the app chooses (the secure enclave or
//! keystore on real phones; a private file for the simulator).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;

use crate::auth::SignedRequest;
use crate::protocol::{b64, hpke};

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store: {0}")]
    Io(#[from] std::io::Error),
    #[error("key store: the stored key for {0:?} is unreadable")]
    Corrupt(String),
}

/// Where device keys live. Implement it over the platform's key storage.
pub trait KeyStore {
    fn load(&self, username: &str) -> Result<Option<SigningKey>, KeyStoreError>;
    fn save(&self, username: &str, key: &SigningKey) -> Result<(), KeyStoreError>;
}

/// Loads the user's device key, creating and saving one on first use.
pub fn device_key(store: &dyn KeyStore, username: &str) -> Result<SigningKey, KeyStoreError> {
    if let Some(key) = store.load(username)? {
        return Ok(key);
    }
    let key = SigningKey::generate();
    store.save(username, &key)?;
    Ok(key)
}

/// The public half to register with the server, as base64url of the point.
pub fn public_key_b64(key: &SigningKey) -> String {
    b64::encode(hpke::uncompressed(&key.verifying_key().into()))
}

/// The payload for server-side authentication: a login request signed for
/// this session and the origin the user was shown.
pub fn signed_payload(
    key: &SigningKey,
    username: &str,
    login: &super::PendingLogin,
    now_ms: i64,
) -> String {
    let origin = login.view.widget.origin.as_deref();
    SignedRequest::sign(key, username, &login.session_id, origin, now_ms).to_json()
}

/// Keys in memory, for apps that persist them elsewhere and for tests.
#[derive(Default)]
pub struct MemoryKeyStore(Mutex<HashMap<String, Vec<u8>>>);

impl KeyStore for MemoryKeyStore {
    fn load(&self, username: &str) -> Result<Option<SigningKey>, KeyStoreError> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(username)
            .map(|bytes| {
                SigningKey::from_slice(bytes).map_err(|_| KeyStoreError::Corrupt(username.into()))
            })
            .transpose()
    }

    fn save(&self, username: &str, key: &SigningKey) -> Result<(), KeyStoreError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(username.to_owned(), key.to_bytes().to_vec());
        Ok(())
    }
}

/// Keys as files in a directory only the owner can read: one file per user,
/// named by the base64url of the username, holding the base64url scalar.
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, username: &str) -> PathBuf {
        self.dir.join(format!("{}.key", b64::encode(username.as_bytes())))
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self, username: &str) -> Result<Option<SigningKey>, KeyStoreError> {
        let text = match std::fs::read_to_string(self.path(username)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = || KeyStoreError::Corrupt(username.to_owned());
        let bytes = b64::decode(text.trim()).map_err(|_| corrupt())?;
        SigningKey::from_slice(&bytes).map(Some).map_err(|_| corrupt())
    }

    fn save(&self, username: &str, key: &SigningKey) -> Result<(), KeyStoreError> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.path(username))?;
        file.write_all(b64::encode(key.to_bytes()).as_bytes())?;
        file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_store_keeps_one_private_key_per_user() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileKeyStore::new(dir.path().join("keys"));
        let alice = device_key(&store, "Alice/../x").expect("created");
        let again = device_key(&store, "Alice/../x").expect("loaded");
        assert_eq!(alice.to_bytes(), again.to_bytes());
        let bob = device_key(&store, "bob").expect("created");
        assert_ne!(alice.to_bytes(), bob.to_bytes());

        let path = store.path("Alice/../x");
        assert_eq!(path.parent(), Some(dir.path().join("keys").as_path()));
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.save("bob", &bob).is_err(), "an existing key is never overwritten");
    }

    #[test]
    fn a_corrupt_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileKeyStore::new(dir.path());
        std::fs::write(store.path("eve"), "garbage").expect("written");
        assert!(matches!(device_key(&store, "eve"), Err(KeyStoreError::Corrupt(_))));
        assert_eq!(std::fs::read_to_string(store.path("eve")).expect("kept"), "garbage");
    }
}
