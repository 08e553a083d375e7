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
    /// Read `Forwarded` rather than `X-Forwarded-For` from trusted proxies.
    standard_header: bool,
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

/// The key an address is limited by: itself for IPv4, its /64 for IPv6.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl Defences {
    /// Builds the defences; the config was validated, so ranges parse.
    pub fn new(config: &Config) -> Self {
        let ranges = |name, list: &[String]| netmask::parse_list(name, list).unwrap_or_default();
        let rates = &config.rate_limits;
        let limits = &config.limits;
        Self {
            trusted: ranges("network.trusted_proxies", &config.network.trusted_proxies),
            standard_header: config.network.forwarded_header == "forwarded",
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
        let hops = super::client::forwarded_for(req, self.standard_header);
        // Walk from the nearest hop outwards; the first untrusted one is the
        // client. Hops further out could have been written by anyone. A hop
        // that is not an address ends the walk at the last trusted one.
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(hop) = *hop else { break };
            client = hop;
            if !self.is_trusted(hop) {
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

    /// Counts a call against the client address's limit. IPv6 clients are
    /// counted by their /64, which one subscriber usually holds whole.
    pub fn check_ip(&self, limit: Limit, ip: IpAddr) -> Result<(), ApiError> {
        let ip = limit_key(ip);
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
        self.verify_failures_ip.peek(&limit_key(ip)).map_err(|secs| self.refused(secs))
    }

    /// Counts a refused verification; a success never gives one back.
    pub fn verify_failed(&self, ip: IpAddr) {
        let _ = self.verify_failures_ip.check(&limit_key(ip));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(other));
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(limit_key(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(limit_key(mapped), v4);
    }
}
