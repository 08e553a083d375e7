//! Tenants: the companies or apps that use this server, each with its own
//! allowed origins, app key and API secrets.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::protocol::ids::{AppKey, TenantId, random_bytes};
use crate::protocol::{b64, now_ms};

/// Longest tenant name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most allowed origins per tenant; a longer list is almost surely a mistake.
pub const MAX_ORIGINS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub app_key: String,
    pub origins: Vec<String>,
    pub allow_native: bool,
    /// Where a scanned code points; `None` means `<public_url>/q`.
    pub scan_url: Option<String>,
    pub session_lifetime_secs: u32,
    pub max_sealed_bytes: u32,
    pub enabled: bool,
    pub demo: bool,
    pub created_at: i64,
    pub secrets: Vec<SecretRecord>,
    /// What each risk signal does for this tenant; unnamed ones warn.
    #[serde(default)]
    pub risk_policy: crate::risk::Policy,
    /// App keys replaced by a rotation, accepted until their expiry because
    /// apps in the field embed them.
    #[serde(default)]
    pub previous_app_keys: Vec<PreviousAppKey>,
}

/// An app key rotated out, still accepted until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousAppKey {
    pub app_key: String,
    pub expires_at: i64,
}

/// An API secret as stored: its hash, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub id: String,
    /// base64url SHA-256 of the secret. The secret has 256 random bits, so a
    /// fast hash is enough: there is nothing to guess that a slow hash would
    /// protect.
    pub hash: String,
    pub created_at: i64,
    /// When a rotated-out secret stops working; `None` while it is current.
    pub expires_at: Option<i64>,
    /// What the operator calls it, such as "billing backend".
    #[serde(default)]
    pub label: String,
    /// Last successful use, recorded at most once a minute.
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// A freshly made API secret, shown once and then only its hash is kept.
pub struct NewSecret(String);

impl NewSecret {
    pub fn generate() -> Self {
        Self(format!("sk_{}", b64::encode(random_bytes::<32>())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn record(&self, now: i64) -> SecretRecord {
        SecretRecord {
            id: format!("sec_{}", b64::encode(random_bytes::<9>())),
            hash: hash_secret(&self.0),
            created_at: now,
            expires_at: None,
            label: String::new(),
            last_used_at: None,
        }
    }
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret(<redacted>)")
    }
}

/// The stored form of an API secret.
pub fn hash_secret(secret: &str) -> String {
    b64::encode(Sha256::digest(secret.as_bytes()))
}

impl SecretRecord {
    /// Whether `presented` is this secret and still usable at `now`.
    pub fn accepts(&self, presented_hash: &str, now: i64) -> bool {
        let same: bool = self.hash.as_bytes().ct_eq(presented_hash.as_bytes()).into();
        same && self.expires_at.is_none_or(|at| now < at)
    }
}

/// What an operator supplies to create a tenant.
#[derive(Debug, Clone, Default)]
pub struct NewTenant {
    pub name: String,
    pub origins: Vec<String>,
    pub allow_native: bool,
    pub scan_url: Option<String>,
    pub session_lifetime_secs: u32,
    pub max_sealed_bytes: u32,
    pub demo: bool,
    pub risk_policy: crate::risk::Policy,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("tenant name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
    BadName,
    #[error("origin {0:?} is not of the form scheme://host[:port] (no path, no trailing slash)")]
    BadOrigin(String),
    #[error("at most {MAX_ORIGINS} origins per tenant")]
    TooManyOrigins,
    #[error("scan URL {0:?} must be an https:// link, an http:// link or an app scheme")]
    BadScanUrl(String),
    #[error("a tenant named {0:?} already exists")]
    NameTaken(String),
    #[error("no tenant {0:?}")]
    NotFound(String),
    #[error("label must be at most {MAX_LABEL_CHARS} characters without control characters")]
    BadLabel,
    #[error("no secret {0:?} for this tenant")]
    NoSuchSecret(String),
    #[error("session lifetime must be 1 to 600 seconds")]
    BadLifetime,
    #[error("payload size limit must be 256 to 1048576 bytes")]
    BadPayloadLimit,
    #[error("the typed name does not match the tenant's name")]
    ConfirmMismatch,
    #[error("grace period is longer than 30 days")]
    GraceTooLong,
}

/// Longest secret label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// Checks a secret label: short and without control characters.
pub fn check_label(label: &str) -> Result<String, TenantError> {
    let label = label.trim();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(TenantError::BadLabel);
    }
    Ok(label.to_owned())
}

impl NewTenant {
    /// Validates the request and makes the tenant with its first API secret.
    pub fn build(self) -> Result<(Tenant, NewSecret), TenantError> {
        let name = check_name(&self.name)?;
        let origins = check_origins(&self.origins)?;
        if let Some(url) = &self.scan_url {
            validate_scan_url(url)?;
        }

        let now = now_ms();
        let secret = NewSecret::generate();
        let tenant = Tenant {
            id: TenantId::generate().to_string(),
            name,
            app_key: AppKey::generate().to_string(),
            origins,
            allow_native: self.allow_native,
            scan_url: self.scan_url,
            session_lifetime_secs: self.session_lifetime_secs,
            max_sealed_bytes: self.max_sealed_bytes,
            enabled: true,
            demo: self.demo,
            created_at: now,
            secrets: vec![secret.record(now)],
            risk_policy: self.risk_policy,
            previous_app_keys: Vec::new(),
        };
        Ok((tenant, secret))
    }
}

impl Tenant {
    /// Whether a browser origin may open widget sockets for this tenant.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| allowed == origin)
    }

    /// The scan URL put in this tenant's codes.
    pub fn scan_url_or(&self, public_url: &str) -> String {
        self.scan_url.clone().unwrap_or_else(|| format!("{public_url}/q"))
    }

    /// Replaces the current secret with a new one; older ones keep working
    /// for at most `grace_ms` from now. Secrets past their grace are dropped.
    pub fn rotate_secret(&mut self, grace_ms: i64) -> NewSecret {
        let now = now_ms();
        // A shorter grace also shortens that of secrets rotated out before.
        let until = now + grace_ms;
        for secret in &mut self.secrets {
            secret.expires_at = Some(secret.expires_at.map_or(until, |at| at.min(until)));
        }
        self.secrets.retain(|s| s.expires_at.is_none_or(|at| at > now));
        let fresh = NewSecret::generate();
        self.secrets.push(fresh.record(now));
        fresh
    }

    /// Adds another current secret next to the existing ones.
    pub fn add_secret(&mut self, label: String) -> (NewSecret, String) {
        let fresh = NewSecret::generate();
        let mut record = fresh.record(now_ms());
        record.label = label;
        let id = record.id.clone();
        self.secrets.push(record);
        (fresh, id)
    }

    /// Removes a secret at once; the next call that presents it gets 401.
    pub fn revoke_secret(&mut self, id: &str) -> Result<(), TenantError> {
        let before = self.secrets.len();
        self.secrets.retain(|s| s.id != id);
        match self.secrets.len() < before {
            true => Ok(()),
            false => Err(TenantError::NoSuchSecret(id.to_owned())),
        }
    }

    /// Issues a new app key; the current one keeps working for `overlap_ms`.
    /// Previous keys past their overlap are dropped.
    pub fn rotate_app_key(&mut self, overlap_ms: i64) -> String {
        let now = now_ms();
        self.previous_app_keys.retain(|k| k.expires_at > now);
        if overlap_ms > 0 {
            let old = std::mem::replace(&mut self.app_key, AppKey::generate().to_string());
            self.previous_app_keys
                .push(PreviousAppKey { app_key: old, expires_at: now + overlap_ms });
        } else {
            self.app_key = AppKey::generate().to_string();
        }
        self.app_key.clone()
    }

    /// Every app key accepted at `now`: the current one and those still in
    /// their overlap window.
    pub fn app_keys_at(&self, now: i64) -> impl Iterator<Item = &str> {
        let previous = self.previous_app_keys.iter().filter(move |k| k.expires_at > now);
        std::iter::once(self.app_key.as_str()).chain(previous.map(|k| k.app_key.as_str()))
    }
}

/// A tenant's editable settings, as the dashboard and the admin API send them.
#[derive(Debug, Clone, Default)]
pub struct TenantSettings {
    pub name: String,
    pub origins: Vec<String>,
    pub allow_native: bool,
    pub scan_url: Option<String>,
    pub session_lifetime_secs: u32,
    pub max_sealed_bytes: u32,
}

impl TenantSettings {
    /// What a new tenant gets where the form or request says nothing.
    pub fn defaults(config: &crate::config::Config) -> Self {
        Self {
            session_lifetime_secs: config.sessions.lifetime_secs,
            max_sealed_bytes: config.sessions.max_sealed_bytes,
            ..Self::default()
        }
    }

    /// The settings a tenant has now.
    pub fn of(tenant: &Tenant) -> Self {
        Self {
            name: tenant.name.clone(),
            origins: tenant.origins.clone(),
            allow_native: tenant.allow_native,
            scan_url: tenant.scan_url.clone(),
            session_lifetime_secs: tenant.session_lifetime_secs,
            max_sealed_bytes: tenant.max_sealed_bytes,
        }
    }

    /// Validates every field and applies them to `tenant`.
    pub fn apply(self, tenant: &mut Tenant) -> Result<(), TenantError> {
        let name = check_name(&self.name)?;
        let origins = check_origins(&self.origins)?;
        let scan_url = self.scan_url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &scan_url {
            validate_scan_url(url)?;
        }
        if !(1..=600).contains(&self.session_lifetime_secs) {
            return Err(TenantError::BadLifetime);
        }
        if !(256..=1_048_576).contains(&self.max_sealed_bytes) {
            return Err(TenantError::BadPayloadLimit);
        }
        tenant.name = name;
        tenant.origins = origins;
        tenant.allow_native = self.allow_native;
        tenant.scan_url = scan_url;
        tenant.session_lifetime_secs = self.session_lifetime_secs;
        tenant.max_sealed_bytes = self.max_sealed_bytes;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<String, TenantError> {
    let name = name.trim().to_owned();
    let name_ok =
        (1..=MAX_NAME_CHARS).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    if !name_ok {
        return Err(TenantError::BadName);
    }
    Ok(name)
}

fn check_origins(list: &[String]) -> Result<Vec<String>, TenantError> {
    if list.len() > MAX_ORIGINS {
        return Err(TenantError::TooManyOrigins);
    }
    let mut origins = Vec::new();
    for origin in list {
        let origin = normalize_origin(origin)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// Accepts `scheme://host[:port]` with an http(s) scheme and returns it in the
/// form browsers send in the `Origin` header (lower-case, default port dropped).
pub fn normalize_origin(text: &str) -> Result<String, TenantError> {
    let bad = || TenantError::BadOrigin(text.to_owned());
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(bad()),
    };
    let host_ok = |host: &str| {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
    };
    let authority = rest.strip_suffix(default_port).unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !authority.ends_with(']') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    if !host_ok(host) || port.is_some_and(|p| p.parse::<u16>().map_or(true, |n| n == 0)) {
        return Err(bad());
    }
    Ok(format!("{scheme}://{authority}"))
}

fn validate_scan_url(url: &str) -> Result<(), TenantError> {
    let bad = || TenantError::BadScanUrl(url.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || url.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, origins: &[&str]) -> NewTenant {
        NewTenant {
            name: name.into(),
            origins: origins.iter().map(|o| o.to_string()).collect(),
            session_lifetime_secs: 60,
            max_sealed_bytes: 1024,
            ..NewTenant::default()
        }
    }

    #[test]
    fn origins_are_normalized_to_what_browsers_send() {
        assert_eq!(
            normalize_origin("HTTPS://App.Example.com").as_deref(),
            Ok("https://app.example.com")
        );
        assert_eq!(normalize_origin("https://a.example:443").as_deref(), Ok("https://a.example"));
        assert_eq!(
            normalize_origin("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(normalize_origin("http://[::1]:9000").as_deref(), Ok("http://[::1]:9000"));
    }

    #[test]
    fn origins_with_paths_other_schemes_or_bad_ports_are_refused() {
        for bad in [
            "https://a.example/",
            "https://a.example/x",
            "ftp://a",
            "a.example",
            "https://",
            "https://a:0",
            "https://a:99999",
            "https://a b",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn building_validates_name_and_origins_and_makes_one_secret() {
        let (tenant, secret) = new("Acme", &["https://a.example"]).build().expect("valid");
        assert!(tenant.app_key.starts_with("app_"));
        assert_eq!(tenant.secrets.len(), 1);
        assert!(secret.expose().starts_with("sk_") && secret.expose().len() == 46);
        assert_ne!(tenant.secrets[0].hash, secret.expose());
        assert!(tenant.secrets[0].accepts(&hash_secret(secret.expose()), now_ms()));
        assert!(!tenant.secrets[0].accepts(&hash_secret("sk_other"), now_ms()));

        assert_eq!(new("", &[]).build().err(), Some(TenantError::BadName));
        assert_eq!(new("a\u{7}b", &[]).build().err(), Some(TenantError::BadName));
        assert!(matches!(new("x", &["nope"]).build(), Err(TenantError::BadOrigin(_))));
    }

    #[test]
    fn rotation_keeps_the_old_secret_only_for_the_grace_period() {
        let (mut tenant, old) = new("Acme", &[]).build().expect("valid");
        let fresh = tenant.rotate_secret(60_000);
        let now = now_ms();
        let works = |t: &Tenant, s: &NewSecret, at: i64| {
            t.secrets.iter().any(|r| r.accepts(&hash_secret(s.expose()), at))
        };
        assert!(works(&tenant, &old, now) && works(&tenant, &fresh, now));
        assert!(!works(&tenant, &old, now + 61_000) && works(&tenant, &fresh, now + 61_000));

        tenant.rotate_secret(0);
        assert!(!works(&tenant, &fresh, now_ms() + 1));
    }

    #[test]
    fn debug_output_never_shows_a_new_secret() {
        let secret = NewSecret::generate();
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
