//! Sign-in throttling: failures are counted per account and per client
//! address in a sliding window. Each attempt counts before its password is
//! checked; a success takes back only its own attempt and never clears
//! earlier failures, so knowing one valid password cannot reset the count.

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

    /// Counts a sign-in attempt as a failure before its password is checked,
    /// so that a burst of parallel guesses cannot all pass the check at once.
    /// `Err(seconds to wait)` when the account or the address used up its
    /// failures; then nothing is counted.
    pub fn attempt(&self, account: &str, address: &str, now: i64) -> Result<(), u64> {
        let mut map = self.map();
        let keys =
            [(account_key(account), MAX_PER_ACCOUNT), (address_key(address), MAX_PER_ADDRESS)];
        let mut wait = 0;
        for (key, max) in &keys {
            if let Some(times) = map.get_mut(key) {
                times.retain(|at| now - at < WINDOW_MS);
                if times.len() >= *max {
                    let oldest = times.front().copied().unwrap_or(now);
                    wait = wait.max(oldest + WINDOW_MS - now);
                }
            }
        }
        if wait > 0 {
            return Err(u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1));
        }
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.back().is_some_and(|at| now - at < WINDOW_MS));
        }
        for (key, _) in keys {
            map.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// Takes back the failure counted by `attempt` at `at`, when the
    /// password was right. Earlier failures stay counted.
    pub fn succeeded(&self, account: &str, address: &str, at: i64) {
        let mut map = self.map();
        for key in [account_key(account), address_key(address)] {
            if let Some(times) = map.get_mut(&key)
                && let Some(i) = times.iter().rposition(|t| *t == at)
            {
                times.remove(i);
            }
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
            assert!(throttle.attempt("Alice", &format!("10.0.0.{i}"), 0).is_ok(), "attempt {i}");
        }
        let wait = throttle.attempt("alice", "10.9.9.9", 1000).expect_err("locked");
        assert_eq!(wait, 899);
        assert!(throttle.attempt("bob", "10.9.9.9", 1000).is_ok());
        assert!(throttle.attempt("alice", "10.9.9.9", WINDOW_MS).is_ok());
    }

    #[test]
    fn a_success_takes_back_only_its_own_attempt() {
        let throttle = Throttle::default();
        for at in 0..MAX_PER_ACCOUNT as i64 - 1 {
            throttle.attempt("alice", "10.0.0.1", at).expect("allowed");
        }
        throttle.attempt("alice", "10.0.0.1", 100).expect("allowed");
        throttle.succeeded("alice", "10.0.0.1", 100);
        throttle.attempt("alice", "10.0.0.1", 101).expect("the success freed one slot");
        assert!(throttle.attempt("alice", "10.0.0.1", 102).is_err(), "failures still count");
    }

    #[test]
    fn an_address_is_locked_across_accounts() {
        let throttle = Throttle::default();
        for i in 0..MAX_PER_ADDRESS {
            throttle.attempt(&format!("user{i}"), "10.0.0.1", 0).expect("allowed");
        }
        assert!(throttle.attempt("someone", "10.0.0.1", 1).is_err());
        assert!(throttle.attempt("someone", "10.0.0.2", 1).is_ok());
    }
}
