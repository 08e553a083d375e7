//! Built-in TLS with rustls: the certificate and key come from PEM files
//! and are read again on SIGHUP, so a renewed certificate needs no restart.
//! A reload that fails keeps the certificate in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Makes ring the process's TLS provider, for servers and clients alike.
/// Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = ring::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read the private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Reads a certificate chain and its private key.
pub fn load(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_err = |message: String| TlsError::Cert { path: cert_file.into(), message };
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let key_err = |message: String| TlsError::Key { path: key_file.into(), message };
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| key_err(e.to_string()))?;
    let signer = ring::sign::any_supported_type(&key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(certified)
}

/// Hands every connection the current certificate.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The server's TLS settings and the means to reload its certificate.
pub struct Tls {
    cert_file: PathBuf,
    key_file: PathBuf,
    resolver: Arc<Resolver>,
}

impl Tls {
    pub fn new(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let current = load(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            resolver: Arc::new(Resolver(RwLock::new(Arc::new(current)))),
        })
    }

    /// A rustls configuration for HTTP/1.1 with safe default versions.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Setup(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Reads the files again; on failure the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert_file, &self.key_file)?;
        *self.resolver.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}
