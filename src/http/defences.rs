//! The server's defences against abuse, in one place: who the client is
//! (through trusted proxies only), rate limits per client address and per
//! tenant, caps on open sockets, and the counters that show them at work.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;

use super::error::ApiError;
use crate::config::Config;
use crate::limits::{RateLimiter, SocketCaps};
use crate::metrics::Metrics;
use crate::netmask::{self, Netmask};

/// What a rate limit counts.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    SocketOpen,
    SessionCall,
    Verify,
}

pub struct Defences {
    trusted: Vec<Netmask>,
    metrics_allow: Vec<Netmask>,
    pub sockets: Arc<SocketCaps>,
    pub metrics: Metrics,
    socket_opens_ip: RateLimiter<IpAddr>,
    socket_opens_tenant: RateLimiter<String>,
    session_calls_ip: RateLimiter<IpAddr>,
    session_calls_tenant: RateLimiter<String>,
    verify_ip: RateLimiter<IpAddr>,
    verify_tenant: RateLimiter<String>,
    verify_failures_ip: RateLimiter<IpAddr>,
}

impl Defences {
    /// Builds the defences; the config was validated, so ranges parse.
    pub fn new(config: &Config) -> Self {
        let ranges = |name, list: &[String]| netmask::parse_list(name, list).unwrap_or_default();
        let rates = &config.rate_limits;
        let limits = &config.limits;
        Self {
            trusted: ranges("network.trusted_proxies", &config.network.trusted_proxies),
            metrics_allow: ranges("metrics.allow", &config.metrics.allow),
            sockets: Arc::new(SocketCaps::new(
                limits.widget_sockets_per_ip,
                limits.widget_sockets_total,
            )),
            metrics: Metrics::default(),
            socket_opens_ip: RateLimiter::new(rates.socket_opens_per_ip),
            socket_opens_tenant: RateLimiter::new(rates.socket_opens_per_tenant),
            session_calls_ip: RateLimiter::new(rates.session_calls_per_ip),
            session_calls_tenant: RateLimiter::new(rates.session_calls_per_tenant),
            verify_ip: RateLimiter::new(rates.verify_per_ip),
            verify_tenant: RateLimiter::new(rates.verify_per_tenant),
            verify_failures_ip: RateLimiter::new(rates.verify_failures_per_ip),
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy,
    /// then the nearest untrusted address its forwarding headers name.
    pub fn client_ip(&self, req: &HttpRequest) -> IpAddr {
        let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = super::client::forwarded_for(req);
        // Walk from the nearest hop outwards; the first untrusted one is the
        // client. Hops further out could have been written by anyone.
        let mut client = peer;
        for hop in hops.iter().rev() {
            client = *hop;
            if !self.is_trusted(*hop) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|range| range.contains(ip))
    }

    pub fn may_read_metrics(&self, ip: IpAddr) -> bool {
        self.metrics_allow.iter().any(|range| range.contains(ip))
    }

    fn refused(&self, retry_after: u64) -> ApiError {
        self.metrics.rate_limited();
        ApiError::RateLimited(retry_after)
    }

    /// Counts a call against the client address's limit.
    pub fn check_ip(&self, limit: Limit, ip: IpAddr) -> Result<(), ApiError> {
        let limiter = match limit {
            Limit::SocketOpen => &self.socket_opens_ip,
            Limit::SessionCall => &self.session_calls_ip,
            Limit::Verify => &self.verify_ip,
        };
        limiter.check(&ip).map_err(|secs| self.refused(secs))
    }

    /// Counts a call against the tenant's limit.
    pub fn check_tenant(&self, limit: Limit, tenant: &str) -> Result<(), ApiError> {
        let limiter = match limit {
            Limit::SocketOpen => &self.socket_opens_tenant,
            Limit::SessionCall => &self.session_calls_tenant,
            Limit::Verify => &self.verify_tenant,
        };
        limiter.check(&tenant.to_owned()).map_err(|secs| self.refused(secs))
    }

    /// Refuses a client address that has had too many verifications
    /// refused lately.
    pub fn check_verify_failures(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.verify_failures_ip.peek(&ip).map_err(|secs| self.refused(secs))
    }

    /// Counts a refused verification; a success never gives one back.
    pub fn verify_failed(&self, ip: IpAddr) {
        let _ = self.verify_failures_ip.check(&ip);
    }

    pub fn sweep(&self) {
        self.socket_opens_ip.sweep();
        self.socket_opens_tenant.sweep();
        self.session_calls_ip.sweep();
        self.session_calls_tenant.sweep();
        self.verify_ip.sweep();
        self.verify_tenant.sweep();
        self.verify_failures_ip.sweep();
    }
}
