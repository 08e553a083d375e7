//! Settings in three layers, each overriding the one before: the defaults in
//! this file, then `keyri.toml` (or `--config FILE`), then environment
//! variables named `KEYRI_<SECTION>_<KEY>`. Unknown keys are errors that name
//! the key, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The commented sample configuration; every value in it is the default.
pub const SAMPLE: &str = include_str!("../keyri.toml");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub sessions: SessionConfig,
    pub demo: DemoConfig,
    pub audit: AuditConfig,
    pub network: NetworkConfig,
    pub limits: LimitsConfig,
    pub rate_limits: RateLimitsConfig,
    pub metrics: MetricsConfig,
    pub tls: TlsConfig,
    pub geoip: GeoIpConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// The URL people and phones reach this server at; empty means
    /// `http://<bind>`.
    pub public_url: String,
    /// Seconds open connections get to finish when the server stops.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory holding the database and the admin socket.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Lifetime given to the sessions of new tenants.
    pub lifetime_secs: u32,
    /// Time a widget has to say hello after its socket opens.
    pub hello_timeout_secs: u64,
    /// Interval between pings to a widget socket; one missing two answers in
    /// a row is dropped.
    pub ping_interval_secs: u64,
    /// Largest sealed payload accepted for new tenants, in bytes.
    pub max_sealed_bytes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Serve `/demo` and create a demo tenant on first start.
    pub enabled: bool,
}

/// The longest a group commit may wait for more records: 50 ms.
pub const MAX_COMMIT_DELAY_US: u32 = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Record security events. Only ever off to measure what recording costs.
    pub enabled: bool,
    /// Records older than this many days are removed; 0 keeps everything.
    pub retention_days: u32,
    /// Microseconds the writer waits for more records before it commits the
    /// first one, so that one disk flush serves several calls; 0 commits at
    /// once (records that queue during a commit still share the next one).
    pub commit_delay_us: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers name the client,
    /// as address ranges. Such headers from anyone else are ignored.
    pub trusted_proxies: Vec<String>,
    /// Which header those proxies write: `x-forwarded-for` or `forwarded`.
    /// Only that one is read; the other may come from the client itself.
    pub forwarded_header: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self { trusted_proxies: Vec::new(), forwarded_header: "x-forwarded-for".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open widget sockets one client address may hold.
    pub widget_sockets_per_ip: usize,
    /// Open widget sockets in all; keep below the process's file limit.
    pub widget_sockets_total: usize,
    /// Sessions waiting for a phone, per tenant.
    pub pending_sessions_per_tenant: usize,
    /// Largest frame a widget may send, in bytes (a hello is ~120).
    pub widget_frame_bytes: usize,
    /// Seconds a client has to send a request's headers (against slowloris).
    pub request_header_timeout_secs: u64,
    /// Seconds a client has to send a request's body, once its headers came.
    pub request_body_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Per client address, per minute; 0 is unlimited.
    pub socket_opens_per_ip: u32,
    pub session_calls_per_ip: u32,
    pub verify_per_ip: u32,
    /// Refused verifications per client address, per minute; successes
    /// never give failures back.
    pub verify_failures_per_ip: u32,
    /// Per tenant, per minute; 0 is unlimited.
    pub socket_opens_per_tenant: u32,
    pub session_calls_per_tenant: u32,
    pub verify_per_tenant: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address ranges allowed to read `/metrics`.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoIpConfig {
    /// A MaxMind-format City or Country database; empty means none.
    pub database: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, the server speaks https.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the dashboard under `/admin` and the admin API under `/v1/admin`.
    pub enabled: bool,
    /// Seconds without a request after which a dashboard sign-in ends.
    pub session_idle_secs: u64,
    /// Minutes the first-run setup link stays valid.
    pub setup_link_mins: u64,
    /// Argon2id memory per password hash, in KiB (OWASP minimum: 19456).
    pub password_hash_memory_kib: u32,
    /// Argon2id passes per password hash (OWASP minimum with 19 MiB: 2).
    pub password_hash_passes: u32,
    /// Allows parameters below the OWASP minimum. For test suites only.
    pub allow_weak_password_hashing_for_tests: bool,
}

/// OWASP's minimum Argon2id memory, in KiB, with 2 passes and 1 lane.
pub const OWASP_MEMORY_KIB: u32 = 19_456;

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle_secs: 1800,
            setup_link_mins: 60,
            password_hash_memory_kib: OWASP_MEMORY_KIB,
            password_hash_passes: 2,
            allow_weak_password_hashing_for_tests: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `keyri=debug`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { bind: "127.0.0.1:8080".into(), public_url: String::new(), shutdown_timeout_secs: 5 }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("./data") }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifetime_secs: 60,
            hello_timeout_secs: 10,
            ping_interval_secs: 15,
            max_sealed_bytes: 32 * 1024,
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { enabled: true, retention_days: 400, commit_delay_us: 1000 }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            widget_sockets_per_ip: 100,
            widget_sockets_total: 19_000,
            pending_sessions_per_tenant: 20_000,
            widget_frame_bytes: 1024,
            request_header_timeout_secs: 5,
            request_body_timeout_secs: 10,
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            socket_opens_per_ip: 600,
            session_calls_per_ip: 1200,
            verify_per_ip: 1200,
            verify_failures_per_ip: 120,
            socket_opens_per_tenant: 600_000,
            session_calls_per_tenant: 1_200_000,
            verify_per_tenant: 600_000,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { allow: vec!["127.0.0.1/32".into(), "::1/128".into()] }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// Where the configuration file is looked for when none is named.
pub const DEFAULT_PATH: &str = "keyri.toml";

impl Config {
    /// Loads the layers. A file named explicitly must exist; the default
    /// `./keyri.toml` may be absent.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(source) => {
                return Err(ConfigError::Read { path: path.into(), source });
            }
        };
        Self::from_text(&text, path, env)
    }

    /// The layers from a file's text (`path` names it in errors).
    pub fn from_text(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let from_file: Config = toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.into(),
            message: e.to_string().trim_end().to_owned(),
        })?;

        let config = from_file.with_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `KEYRI_<SECTION>_<KEY>` overrides, typed like the defaults.
    pub fn with_env(
        self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table =
            toml::Table::try_from(&self).map_err(|e| ConfigError::Invalid(e.to_string()))?;

        for (var, raw) in env {
            let Some(rest) = var.strip_prefix("KEYRI_") else {
                continue;
            };
            let err = |message: String| ConfigError::Env { var: var.clone(), message };
            // Section names may hold underscores (`rate_limits`): take the
            // longest section the name starts with.
            let lower = rest.to_ascii_lowercase();
            let section = table
                .keys()
                .filter(|s| lower.starts_with(&format!("{s}_")))
                .max_by_key(|s| s.len())
                .cloned()
                .or_else(|| lower.split_once('_').map(|(s, _)| s.to_owned()))
                .ok_or_else(|| err("expected KEYRI_<SECTION>_<KEY>".into()))?;
            let key = lower[section.len()..].trim_start_matches('_').to_owned();
            let slot = table
                .get_mut(&section)
                .and_then(|s| s.as_table_mut())
                .ok_or_else(|| err(format!("unknown section [{section}]")))?
                .get_mut(&key)
                .ok_or_else(|| err(format!("unknown key `{key}` in section [{section}]")))?;
            *slot = typed_like(slot, &raw).map_err(err)?;
        }

        // One line, with the setting's name, which the parser puts on a second.
        let one_line = |e: toml::de::Error| e.to_string().trim().replace('\n', " ");
        table.try_into().map_err(|e| ConfigError::Invalid(one_line(e)))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if !self.server.public_url.is_empty() {
            let url = &self.server.public_url;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "server.public_url must start with http:// or https://, got {url:?}"
                )));
            }
        }
        if self.sessions.lifetime_secs == 0 || self.sessions.lifetime_secs > 600 {
            return Err(ConfigError::Invalid(
                "sessions.lifetime_secs must be between 1 and 600".into(),
            ));
        }
        if self.audit.commit_delay_us > MAX_COMMIT_DELAY_US {
            return Err(ConfigError::Invalid(format!(
                "audit.commit_delay_us is at most {MAX_COMMIT_DELAY_US} (every audited call \
                 waits for it)"
            )));
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return Err(ConfigError::Invalid(
                "tls.cert_file and tls.key_file go together: set both or neither".into(),
            ));
        }
        if !["x-forwarded-for", "forwarded"].contains(&self.network.forwarded_header.as_str()) {
            return Err(ConfigError::Invalid(
                "network.forwarded_header is x-forwarded-for or forwarded".into(),
            ));
        }
        crate::netmask::parse_list("network.trusted_proxies", &self.network.trusted_proxies)
            .map_err(ConfigError::Invalid)?;
        crate::netmask::parse_list("metrics.allow", &self.metrics.allow)
            .map_err(ConfigError::Invalid)?;
        let limits = &self.limits;
        if limits.widget_sockets_per_ip == 0
            || limits.widget_sockets_total == 0
            || limits.pending_sessions_per_tenant == 0
            || limits.widget_frame_bytes < 256
            || limits.request_header_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "limits: socket and session caps and the header timeout must be positive, \
                 and widget_frame_bytes at least 256"
                    .into(),
            ));
        }
        let bounded = [
            ("sessions.ping_interval_secs", self.sessions.ping_interval_secs, 3600),
            ("sessions.hello_timeout_secs", self.sessions.hello_timeout_secs, 300),
            ("limits.request_header_timeout_secs", limits.request_header_timeout_secs, 300),
            ("limits.request_body_timeout_secs", limits.request_body_timeout_secs, 300),
            ("server.shutdown_timeout_secs", self.server.shutdown_timeout_secs.max(1), 3600),
        ];
        for (name, value, max) in bounded {
            if value == 0 || value > max {
                return Err(ConfigError::Invalid(format!("{name} must be between 1 and {max}")));
            }
        }
        let admin = &self.admin;
        let weak =
            admin.password_hash_memory_kib < OWASP_MEMORY_KIB || admin.password_hash_passes < 2;
        if weak && !admin.allow_weak_password_hashing_for_tests {
            return Err(ConfigError::Invalid(format!(
                "admin.password_hash_memory_kib must be at least {OWASP_MEMORY_KIB} and \
                 admin.password_hash_passes at least 2"
            )));
        }
        if admin.session_idle_secs == 0 || admin.setup_link_mins == 0 {
            return Err(ConfigError::Invalid(
                "admin.session_idle_secs and admin.setup_link_mins must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.bind must be an address such as 127.0.0.1:8080, got {:?}",
                self.server.bind
            ))
        })
    }

    /// The public URL, derived from the bound address when not set.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if !self.server.public_url.is_empty() {
            return self.server.public_url.trim_end_matches('/').to_owned();
        }
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        if bound.ip().is_unspecified() {
            return format!("{scheme}://localhost:{}", bound.port());
        }
        format!("{scheme}://{bound}")
    }

    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("keyri.redb")
    }

    pub fn admin_socket_path(&self) -> PathBuf {
        self.storage.data_dir.join("admin.sock")
    }
}

/// Parses an environment value as the same TOML type the setting has.
fn typed_like(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    match current {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {raw:?}")),
        // Lists come as comma-separated items: `10.0.0.0/8,192.168.0.0/16`.
        toml::Value::Array(_) => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        )),
        toml::Value::Boolean(_) => raw
            .trim()
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| format!("expected true or false, got {raw:?}")),
        _ => Err("this setting cannot be set from the environment".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keyri.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn the_sample_file_holds_exactly_the_defaults() {
        let sample: Config = toml::from_str(SAMPLE).expect("sample parses");
        assert_eq!(sample, Config::default());
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let (_dir, path) =
            write("[server]\nbind = \"127.0.0.1:9000\"\n[sessions]\nlifetime_secs = 30\n");
        let vars = env(&[("KEYRI_SESSIONS_LIFETIME_SECS", "45"), ("OTHER", "x")]);
        let config = Config::load(Some(&path), vars).expect("loads");
        assert_eq!(config.server.bind, "127.0.0.1:9000");
        assert_eq!(config.sessions.lifetime_secs, 45);
        assert_eq!(config.storage, StorageConfig::default());
    }

    #[test]
    fn env_reaches_sections_with_underscores_and_lists() {
        let vars = env(&[
            ("KEYRI_RATE_LIMITS_VERIFY_PER_IP", "7"),
            ("KEYRI_NETWORK_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ]);
        let config = Config::default().with_env(vars).expect("applies");
        assert_eq!(config.rate_limits.verify_per_ip, 7);
        assert_eq!(config.network.trusted_proxies, ["10.0.0.0/8", "::1"]);
    }

    #[test]
    fn env_sets_keys_with_underscores() {
        let vars = env(&[("KEYRI_SERVER_PUBLIC_URL", "https://id.example.com/")]);
        let config = Config::default().with_env(vars).expect("applies");
        assert_eq!(config.server.public_url, "https://id.example.com/");
        let bound: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(config.public_url(bound), "https://id.example.com");
    }

    #[test]
    fn a_value_out_of_its_type_is_refused_on_one_line_with_its_name() {
        for (var, value, name) in [
            ("KEYRI_AUDIT_RETENTION_DAYS", "-1", "audit.retention_days"),
            ("KEYRI_AUDIT_COMMIT_DELAY_US", "99999999999", "audit.commit_delay_us"),
        ] {
            let err = Config::default().with_env(env(&[(var, value)])).expect_err("refused");
            let text = err.to_string();
            assert!(text.contains(name) && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn a_commit_delay_past_its_bound_is_refused_by_name() {
        let vars = env(&[("KEYRI_AUDIT_COMMIT_DELAY_US", "50001")]);
        let config = Config::default().with_env(vars).expect("applies");
        let err = config.validate().expect_err("refused").to_string();
        assert!(err.contains("audit.commit_delay_us"), "{err}");
        let vars = env(&[("KEYRI_AUDIT_COMMIT_DELAY_US", "50000")]);
        Config::default().with_env(vars).expect("applies").validate().expect("at the bound");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_them() {
        let (_dir, path) = write("[server]\nbnd = \"x\"\n");
        let err = Config::load(Some(&path), env(&[])).expect_err("refused").to_string();
        assert!(err.contains("bnd"), "{err}");

        let err = Config::load(Some(&path), env(&[])).expect_err("refused");
        assert!(matches!(err, ConfigError::File { .. }));

        let vars = env(&[("KEYRI_SERVER_BINDD", "x")]);
        let err = Config::default().with_env(vars).expect_err("refused").to_string();
        assert!(err.contains("KEYRI_SERVER_BINDD") && err.contains("bindd"), "{err}");

        let vars = env(&[("KEYRI_NOPE_X", "x")]);
        let err = Config::default().with_env(vars).expect_err("refused").to_string();
        assert!(err.contains("[nope]"), "{err}");
    }

    #[test]
    fn badly_typed_or_invalid_values_are_refused() {
        let vars = env(&[("KEYRI_SESSIONS_LIFETIME_SECS", "soon")]);
        let err = Config::default().with_env(vars).expect_err("refused").to_string();
        assert!(err.contains("whole number"), "{err}");

        let (_dir, path) = write("[server]\nbind = \"nowhere\"\n");
        let err = Config::load(Some(&path), env(&[])).expect_err("refused").to_string();
        assert!(err.contains("server.bind"), "{err}");

        let (_dir, path) = write("[sessions]\nlifetime_secs = 0\n");
        assert!(Config::load(Some(&path), env(&[])).is_err());
    }

    #[test]
    fn admin_password_hashing_below_owasp_needs_the_test_only_switch() {
        let (_dir, path) = write("[admin]\npassword_hash_memory_kib = 1024\n");
        let err = Config::load(Some(&path), env(&[])).expect_err("refused").to_string();
        assert!(err.contains("password_hash_memory_kib"), "{err}");
        let (_dir, path) = write("[admin]\npassword_hash_passes = 1\n");
        assert!(Config::load(Some(&path), env(&[])).is_err());

        let text = "[admin]\npassword_hash_memory_kib = 1024\n\
                    allow_weak_password_hashing_for_tests = true\n";
        let (_dir, path) = write(text);
        let config = Config::load(Some(&path), env(&[])).expect("allowed for tests");
        assert_eq!(config.admin.password_hash_memory_kib, 1024);
        assert_eq!(Config::default().admin.password_hash_memory_kib, 19_456);
        assert_eq!(Config::default().admin.password_hash_passes, 2);
    }

    #[test]
    fn a_named_file_must_exist_but_the_default_may_not() {
        let missing = Path::new("/nonexistent/keyri.toml");
        let err = Config::load(Some(missing), env(&[])).expect_err("refused");
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
