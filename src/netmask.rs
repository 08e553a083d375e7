//! Address ranges in CIDR form (`10.0.0.0/8`, `2001:db8::/32`), for trusted
//! proxies and the addresses allowed to read metrics.

use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmask {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Netmask {
    type Err = String;

    /// Parses `address/prefix`, or a bare address as a single host.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an address range such as 10.0.0.0/8");
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Netmask {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses a list of ranges, naming the setting in the error.
pub fn parse_list(setting: &str, items: &[String]) -> Result<Vec<Netmask>, String> {
    items.iter().map(|i| i.parse().map_err(|e| format!("{setting}: {e}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let net: Netmask = "10.1.0.0/16".parse().expect("range");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let host: Netmask = "192.0.2.7".parse().expect("host");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        let all: Netmask = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("::1")));
        let v6: Netmask = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "::/129", "host/8", "10.0.0.0/-1"] {
            assert!(bad.parse::<Netmask>().is_err(), "{bad} accepted");
        }
    }
}
