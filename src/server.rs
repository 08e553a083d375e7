//! Starting and stopping the server. It starts from a listener it is handed,
//! so tests can bind port 0 and run many servers side by side.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use tokio::sync::watch;

use crate::admin::{AdminAuth, accounts};
use crate::admin_socket;
use crate::audit::writer::Writer;
use crate::audit::{Actor, AuditLog, Event, action};
use crate::config::Config;
use crate::config::OWASP_MEMORY_KIB;
use crate::directory::Directory;
use crate::geo::GeoDb;
use crate::http::defences::Defences;
use crate::http::error::ApiError;
use crate::http::{AppState, routes};
use crate::relay::{ConfirmedLog, Registry};
use crate::store::{Store, StoreError};
use crate::tenants::{NewSecret, NewTenant, normalize_origin};
use crate::tls::{Tls, TlsError};

/// How long a closed connection may linger for its peer to hang up, in ms.
const CLOSE_GRACE_MS: u64 = 200;
/// How often finished and expired sessions are swept from memory.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Geo(String),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    /// The demo tenant's app key, when the demo is on.
    pub demo_app_key: Option<String>,
    /// The demo tenant's API secret, only on the start that created it.
    pub demo_secret: Option<NewSecret>,
    pub directory: Arc<Directory>,
    pub registry: Arc<Registry>,
    pub audit: AuditLog,
    /// The first-run link to choose the first admin's password, when no
    /// admin exists yet. Shown once, never logged.
    pub setup_link: Option<String>,
    audit_writer: Option<Writer>,
    handle: actix_web::dev::ServerHandle,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    admin: admin_socket::Listener,
    tls: Option<Tls>,
}

/// Opens the database, prepares the demo, and starts serving on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    config.validate()?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url(addr);
    let tls = match config.tls.enabled() {
        true => Some(Tls::new(config.tls.cert_file.as_ref(), config.tls.key_file.as_ref())?),
        false => None,
    };
    let store = Store::open(&config.db_path())?;
    if config.audit.enabled {
        store.check_audit_head()?;
    }
    let directory = Arc::new(Directory::new(store)?);
    let (demo_app_key, demo_secret, demo_change) = match config.demo.enabled {
        true => ensure_demo_tenant(&directory, &config, &public_url)?,
        false => (None, None, None),
    };
    let geo = match config.geoip.database.as_str() {
        "" => None,
        path => Some(Arc::new(GeoDb::open(path.as_ref()).map_err(StartError::Geo)?)),
    };
    let registry = Arc::new(Registry::default());
    let defences = Arc::new(Defences::new(&config));
    let confirmed = Arc::new(ConfirmedLog::default());
    let (shutdown, shutdown_rx) = watch::channel(false);

    let (audit, audit_writer) = match config.audit.enabled {
        true => {
            let (log, writer) = AuditLog::start(directory.clone(), &config.audit);
            (log, Some(writer))
        }
        false => {
            tracing::warn!("the audit log is switched off: security events are not recorded");
            (AuditLog::disabled(), None)
        }
    };
    if let Some(change) = demo_change {
        audit.record(change).await?;
    }
    let (admin_auth, setup_link) = admin_auth(&config, &directory, &public_url).await?;
    let admin = admin_socket::Listener::start(
        &config,
        directory.clone(),
        audit.clone(),
        Arc::new(crate::ops::Live { admin: admin_auth.clone(), registry: registry.clone() }),
    )?;

    let state = web::Data::new(AppState {
        config: config.clone(),
        public_url: public_url.clone(),
        directory: directory.clone(),
        registry: registry.clone(),
        confirmed: confirmed.clone(),
        audit: audit.clone(),
        defences: defences.clone(),
        geo,
        shutdown: shutdown_rx,
        admin: admin_auth,
    });
    let demo = config.demo.enabled;
    let admin_enabled = config.admin.enabled;
    let http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }))
            .configure(|cfg| routes(cfg, demo, admin_enabled))
            .default_service(web::to(|| async { Err::<String, _>(ApiError::NoSuchRoute) }))
    })
    .disable_signals()
    // TODO: cap plain HTTP connections per client address, as widget sockets are.
    // Frames are small and each is awaited by someone: sending at once beats
    // waiting for the peer's delayed acknowledgement (tens of milliseconds).
    .tcp_nodelay(true)
    // After the server's close frame a well-behaved widget hangs up at once;
    // one that does not is not worth a file descriptor for a full second.
    .client_disconnect_timeout(Duration::from_millis(CLOSE_GRACE_MS))
    .client_request_timeout(Duration::from_secs(config.limits.request_header_timeout_secs))
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    let server = match &tls {
        Some(tls) => http.listen_rustls_0_23(listener, tls.server_config()?)?,
        None => http.listen(listener)?,
    }
    .run();
    let handle = server.handle();
    let done = tokio::spawn(server);

    let sweeper = registry.clone();
    let mut stop = shutdown.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    sweeper.sweep();
                    defences.sweep();
                    confirmed.sweep(crate::protocol::now_ms());
                }
                _ = stop.changed() => break,
            }
        }
    });

    tracing::info!(%addr, %public_url, "keyri listening");
    Ok(Running {
        addr,
        public_url,
        demo_app_key,
        demo_secret,
        audit,
        setup_link,
        audit_writer,
        directory,
        registry,
        handle,
        shutdown,
        done,
        admin,
        tls,
    })
}

impl Running {
    /// Reads the TLS certificate and key again, keeping the current ones if
    /// the files are not usable. Without TLS there is nothing to do.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Stops accepting, closes widget sockets, and waits for the rest.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.registry.close_all();
        self.admin.stop().await;
        self.handle.stop(true).await;
        let _ = self.done.await;
        if let Some(writer) = self.audit_writer {
            writer.close().await;
        }
        self.directory.close();
        tracing::info!("keyri stopped");
    }
}

/// The dashboard's state, and a setup link when no admin exists yet.
async fn admin_auth(
    config: &Config,
    directory: &Directory,
    public_url: &str,
) -> Result<(Arc<AdminAuth>, Option<String>), StartError> {
    let settings = config.admin.clone();
    if settings.password_hash_memory_kib < OWASP_MEMORY_KIB || settings.password_hash_passes < 2 {
        tracing::warn!(
            memory_kib = settings.password_hash_memory_kib,
            passes = settings.password_hash_passes,
            "admin password hashing is weaker than OWASP's minimum: for tests only"
        );
    }
    let auth = Arc::new(AdminAuth::new(&settings)?);
    if settings.enabled {
        // In the background: starting must not wait for a slow hash.
        let warming = auth.clone();
        tokio::task::spawn_blocking(move || warming.hasher.warm());
    }
    let mut link = None;
    if config.admin.enabled && !accounts::any(directory)? {
        let minutes = i64::try_from(config.admin.setup_link_mins).unwrap_or(i64::MAX / 60_000);
        let token = auth.setup.issue(crate::protocol::now_ms() + minutes * 60_000);
        link = Some(format!("{public_url}/admin/setup?token={token}"));
    }
    Ok((auth, link))
}

/// What `ensure_demo_tenant` did: the demo's app key (none when the database
/// already had tenants but no demo), its API secret when it was created just
/// now, and the audit record of a change, if it made one.
type DemoReady = (Option<String>, Option<NewSecret>, Option<Event>);

/// Creates the demo tenant on first start; on later starts makes sure it
/// still allows the current public URL.
fn ensure_demo_tenant(
    directory: &Directory,
    config: &Config,
    public_url: &str,
) -> Result<DemoReady, StoreError> {
    let origins = demo_origins(public_url);
    let existing = directory.list()?.into_iter().find(|t| t.demo);
    let mut created_secret = None;
    let change;
    let tenant = match existing {
        Some(tenant) if origins.iter().all(|o| tenant.origins.contains(o)) => {
            change = None;
            tenant
        }
        Some(tenant) => {
            let (tenant, added) = directory.update(&tenant.id, |t| {
                let mut added = Vec::new();
                for origin in &origins {
                    if !t.origins.contains(origin) {
                        t.origins.push(origin.clone());
                        added.push(origin.clone());
                    }
                }
                added
            })?;
            let event = Event::new(Some(&tenant.id), Actor::System, action::TENANT_UPDATE)
                .detail("name", tenant.name.clone())
                .detail("originsAdded", added)
                .detail("reason", "the demo follows the server's public URL");
            change = Some(event);
            tenant
        }
        None if !directory.list()?.is_empty() => return Ok((None, None, None)),
        None => {
            let new = NewTenant {
                name: "Demo".into(),
                origins,
                allow_native: false,
                scan_url: None,
                session_lifetime_secs: config.sessions.lifetime_secs,
                max_sealed_bytes: config.sessions.max_sealed_bytes,
                demo: true,
                risk_policy: Default::default(),
            };
            let (tenant, secret) = directory.create(new)?;
            created_secret = Some(secret);
            let event = Event::new(Some(&tenant.id), Actor::System, action::TENANT_CREATE)
                .detail("name", tenant.name.clone())
                .detail("origins", tenant.origins.clone())
                .detail("demo", true);
            change = Some(event);
            tenant
        }
    };
    tracing::info!(app_key = %tenant.app_key, "demo ready at {public_url}/demo");
    Ok((Some(tenant.app_key), created_secret, change))
}

/// The public URL's origin, plus its twin when it is a loopback address, since
/// people type `localhost` and `127.0.0.1` interchangeably.
fn demo_origins(public_url: &str) -> Vec<String> {
    let Ok(origin) = normalize_origin(public_url) else {
        return Vec::new();
    };
    let mut origins = vec![origin.clone()];
    for (a, b) in [("//localhost", "//127.0.0.1"), ("//127.0.0.1", "//localhost")] {
        if origin.contains(a) {
            origins.push(origin.replacen(a, b, 1));
        }
    }
    origins
}
