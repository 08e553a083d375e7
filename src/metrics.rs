//! Counters for `/metrics`, in the Prometheus text format. Plain atomics:
//! reading them never slows a login down.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::relay::Outcome;

/// Upper bounds, in microseconds, of the relay latency histogram: from a
/// phone's confirm arriving to the payload being handed to the widget.
const LATENCY_BUCKETS_US: [u64; 10] =
    [100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000, 1_000_000];

#[derive(Default)]
pub struct Metrics {
    rate_limited: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
}

/// Values read from elsewhere when `/metrics` is asked for.
pub struct Gauges {
    pub open_sockets: usize,
    pub live_sessions: usize,
    pub audit_queue: usize,
    /// Sessions ended so far, by outcome.
    pub outcomes: Vec<(Outcome, u64)>,
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Confirmed => "confirmed",
        Outcome::Denied => "denied",
        Outcome::Expired => "expired",
        Outcome::WidgetGone => "widget_gone",
    }
}

impl Metrics {
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn relayed(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US.iter().position(|b| us <= *b);
        self.latency[bucket.unwrap_or(LATENCY_BUCKETS_US.len())].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP keyri_widget_sockets_open Widget sockets open now.");
        let _ = writeln!(out, "# TYPE keyri_widget_sockets_open gauge");
        let _ = writeln!(out, "keyri_widget_sockets_open {}", gauges.open_sockets);
        let _ = writeln!(out, "# HELP keyri_sessions_live Sessions whose widget is connected.");
        let _ = writeln!(out, "# TYPE keyri_sessions_live gauge");
        let _ = writeln!(out, "keyri_sessions_live {}", gauges.live_sessions);
        let _ = writeln!(out, "# HELP keyri_sessions_total Sessions ended, by outcome.");
        let _ = writeln!(out, "# TYPE keyri_sessions_total counter");
        for (outcome, count) in &gauges.outcomes {
            let name = outcome_name(*outcome);
            let _ = writeln!(out, "keyri_sessions_total{{outcome=\"{name}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP keyri_rate_limited_total Calls refused by a rate limit.");
        let _ = writeln!(out, "# TYPE keyri_rate_limited_total counter");
        let _ = writeln!(out, "keyri_rate_limited_total {}", get(&self.rate_limited));
        let _ =
            writeln!(out, "# HELP keyri_audit_queue_depth Audit records waiting to be written.");
        let _ = writeln!(out, "# TYPE keyri_audit_queue_depth gauge");
        let _ = writeln!(out, "keyri_audit_queue_depth {}", gauges.audit_queue);
        let name = "keyri_relay_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Confirm received to payload handed to the widget.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS_US.iter().zip(&self.latency) {
            cumulative += get(count);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += get(&self.latency[LATENCY_BUCKETS_US.len()]);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.rate_limited();
        metrics.relayed(std::time::Duration::from_micros(300));
        metrics.relayed(std::time::Duration::from_secs(5));
        let outcomes = vec![(Outcome::Confirmed, 2), (Outcome::Denied, 0)];
        let gauges = Gauges { open_sockets: 3, live_sessions: 2, audit_queue: 0, outcomes };
        let text = metrics.render(&gauges);
        assert!(text.contains("keyri_widget_sockets_open 3\n"));
        assert!(text.contains("keyri_sessions_total{outcome=\"confirmed\"} 2\n"));
        assert!(text.contains("keyri_sessions_total{outcome=\"denied\"} 0\n"));
        assert!(text.contains("keyri_rate_limited_total 1\n"));
        assert!(text.contains("keyri_relay_latency_seconds_bucket{le=\"0.00025\"} 0\n"));
        assert!(text.contains("keyri_relay_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("keyri_relay_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("keyri_relay_latency_seconds_count 2\n"));
    }
}
