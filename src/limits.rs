//! Rate limits and connection caps. Each limit is a token bucket per key
//! (client address or tenant): it holds a minute's allowance spread over
//! time, with a burst of a sixth of it.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most keys one limiter tracks; past it, idle keys are dropped first and an
/// unknown key is refused rather than tracked, so memory stays bounded.
const MAX_KEYS: usize = 200_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key. A limit of 0 means unlimited.
pub struct RateLimiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: Mutex::default() }
    }

    fn burst(&self) -> f64 {
        f64::from((self.per_minute / 6).max(5))
    }

    fn rate(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes one token for `key`, or says in how many seconds one will be
    /// there.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let (burst, rate) = (self.burst(), self.rate());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            Self::forget_full(&mut buckets, burst, rate, now);
            if buckets.len() >= MAX_KEYS {
                return Err(60);
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: burst, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
    }

    fn forget_full(buckets: &mut HashMap<K, Bucket>, burst: f64, rate: f64, now: Instant) {
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
    }

    /// Whether `key` has a token left, without taking it.
    pub fn peek(&self, key: &K) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let (burst, rate) = (self.burst(), self.rate());
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bucket) = buckets.get(key) else { return Ok(()) };
        let elapsed = Instant::now().saturating_duration_since(bucket.at).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * rate).min(burst);
        match tokens >= 1.0 {
            true => Ok(()),
            false => Err(((1.0 - tokens) / rate).ceil().max(1.0) as u64),
        }
    }

    /// Drops keys whose bucket has refilled: they carry no history.
    pub fn sweep(&self) {
        let (burst, rate) = (self.burst(), self.rate());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Self::forget_full(&mut buckets, burst, rate, Instant::now());
    }
}

/// Caps on open widget sockets, in total and per client address.
pub struct SocketCaps {
    per_ip: usize,
    total: usize,
    open: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a socket was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapReached {
    PerAddress,
    Total,
}

/// Holds one socket's place; gives it back when dropped.
pub struct SocketSlot {
    caps: Arc<SocketCaps>,
    ip: IpAddr,
}

impl SocketCaps {
    pub fn new(per_ip: usize, total: usize) -> Self {
        Self { per_ip, total, open: AtomicUsize::new(0), by_ip: Mutex::default() }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<SocketSlot, CapReached> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.load(Ordering::Relaxed) >= self.total {
            return Err(CapReached::Total);
        }
        let count = by_ip.entry(ip).or_insert(0);
        if *count >= self.per_ip {
            return Err(CapReached::PerAddress);
        }
        *count += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(SocketSlot { caps: self.clone(), ip })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut by_ip = self.caps.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = by_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                by_ip.remove(&self.ip);
            }
        }
        self.caps.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(60);
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check_at(&"a", start), Ok(()));
        }
        assert_eq!(limiter.check_at(&"a", start), Err(1));
        assert_eq!(limiter.check_at(&"b", start), Ok(()), "keys are separate");
        assert_eq!(limiter.check_at(&"a", start + Duration::from_millis(1100)), Ok(()));
        assert!(limiter.check_at(&"a", start + Duration::from_millis(1200)).is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::new(0);
        for _ in 0..1000 {
            assert!(limiter.check(&1).is_ok());
        }
    }

    #[test]
    fn sweeping_forgets_only_refilled_keys() {
        let limiter = RateLimiter::new(600);
        limiter.check(&"busy").expect("ok");
        limiter.sweep();
        assert_eq!(limiter.buckets.lock().expect("lock").len(), 1);
    }

    #[test]
    fn socket_caps_count_per_address_and_in_total() {
        let caps = Arc::new(SocketCaps::new(2, 3));
        let (a, b) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        let first = caps.acquire(a).expect("first");
        let _second = caps.acquire(a).expect("second");
        assert_eq!(caps.acquire(a).err(), Some(CapReached::PerAddress));
        let _third = caps.acquire(b).expect("other address");
        assert_eq!(caps.acquire(b).err(), Some(CapReached::Total));
        drop(first);
        let _again = caps.acquire(a).expect("a closed socket gives its place back");
        assert_eq!(caps.open(), 3);
    }
}
