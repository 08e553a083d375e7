//! Sign-in throttling: failures are counted per account and per client
//! address in a sliding window. A success does not clear the count, so an
//! attacker who also knows one valid password cannot reset it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The window failures are counted in.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Failures allowed per account in the window.
pub const MAX_PER_ACCOUNT: usize = 5;
/// Failures allowed per address in the window; higher, since several admins
/// may share one address.
pub const MAX_PER_ADDRESS: usize = 20;
/// Most keys tracked, so a flood of made-up names cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` when the account or the address used up its
    /// failures.
    pub fn check(&self, account: &str, address: &str, now: i64) -> Result<(), u64> {
        let mut map = self.map();
        let mut wait = 0;
        for (key, max) in
            [(account_key(account), MAX_PER_ACCOUNT), (address_key(address), MAX_PER_ADDRESS)]
        {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|at| now - at < WINDOW_MS);
                if times.len() >= max {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max(oldest + WINDOW_MS - now);
                }
            }
        }
        match wait {
            0 => Ok(()),
            ms => Err(u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)),
        }
    }

    /// Counts one failed sign-in.
    pub fn fail(&self, account: &str, address: &str, now: i64) {
        let mut map = self.map();
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.back().is_some_and(|at| now - at < WINDOW_MS));
        }
        for key in [account_key(account), address_key(address)] {
            map.entry(key).or_default().push_back(now);
        }
    }
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_failures_until_the_window_passes() {
        let throttle = Throttle::default();
        for i in 0..MAX_PER_ACCOUNT {
            assert!(throttle.check("alice", "10.0.0.1", 0).is_ok(), "attempt {i}");
            throttle.fail("Alice", &format!("10.0.0.{i}"), 0);
        }
        let wait = throttle.check("alice", "10.9.9.9", 1000).expect_err("locked");
        assert_eq!(wait, 899);
        assert!(throttle.check("bob", "10.9.9.9", 1000).is_ok());
        assert!(throttle.check("alice", "10.9.9.9", WINDOW_MS).is_ok());
    }

    #[test]
    fn an_address_is_locked_across_accounts() {
        let throttle = Throttle::default();
        for i in 0..MAX_PER_ADDRESS {
            throttle.fail(&format!("user{i}"), "10.0.0.1", 0);
        }
        assert!(throttle.check("someone", "10.0.0.1", 1).is_err());
        assert!(throttle.check("someone", "10.0.0.2", 1).is_ok());
    }
}
