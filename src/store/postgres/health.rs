//! Whether intake can store, for the health routes: PostgreSQL answering
//! `SELECT 1` is not enough (a database turned read-only still does).
//!
//! While intake has traffic, its own last commit is the answer. When it has
//! been idle a moment, a failure is checked again by a test commit on
//! intake's own connections, so that health recovers without waiting for
//! traffic a load balancer may be holding back.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

/// Intake counts as having traffic this long after a commit attempt.
const RECENT: Duration = Duration::from_secs(1);
/// The test commit gives up after this long (it may wait for a lock).
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(super) struct WriteHealth {
    failing: AtomicBool,
    /// Failed commits so far: a probe that began before a failure must not
    /// clear it.
    failures: AtomicU64,
    last_attempt: Mutex<Option<Instant>>,
    /// One probe at a time.
    pub(super) probing: tokio::sync::Mutex<()>,
}

/// What [`WriteHealth::check`] says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Healthy,
    /// Intake's last commit failed, and it has traffic: no probe.
    Failing,
    /// A failure, with intake idle: probe; `seen` is the failure count to
    /// pass to [`WriteHealth::probed`].
    Probe {
        seen: u64,
    },
}

impl WriteHealth {
    /// An intake commit ended; `unavailable` when it failed for want of
    /// the database (a refused event says nothing about health).
    pub fn committed(&self, ok: bool, unavailable: bool) {
        *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if ok {
            self.failing.store(false, Ordering::Relaxed);
        } else if unavailable {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.failing.store(true, Ordering::Relaxed);
        }
    }

    pub fn check(&self) -> Verdict {
        if !self.failing.load(Ordering::Relaxed) {
            return Verdict::Healthy;
        }
        let last = *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < RECENT) {
            return Verdict::Failing;
        }
        Verdict::Probe {
            seen: self.failures.load(Ordering::Relaxed),
        }
    }

    /// A probe that began at failure count `seen` committed.
    pub fn probed(&self, seen: u64) {
        if self.failures.load(Ordering::Relaxed) == seen {
            self.failing.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intakes_own_outcome_rules_while_it_has_traffic_then_a_probe_does() {
        let health = WriteHealth::default();
        assert_eq!(health.check(), Verdict::Healthy);
        health.committed(false, false);
        assert_eq!(
            health.check(),
            Verdict::Healthy,
            "a refused event is not a failure"
        );
        health.committed(false, true);
        assert_eq!(health.check(), Verdict::Failing);
        *health.last_attempt.lock().unwrap() = Some(Instant::now() - RECENT);
        let Verdict::Probe { seen } = health.check() else {
            panic!("idle and failing: probe");
        };
        // A failure while the probe ran: the probe's success does not count.
        health.committed(false, true);
        health.probed(seen);
        *health.last_attempt.lock().unwrap() = Some(Instant::now() - RECENT);
        let Verdict::Probe { seen } = health.check() else {
            panic!("still failing");
        };
        health.probed(seen);
        assert_eq!(health.check(), Verdict::Healthy);
        health.committed(false, true);
        health.committed(true, false);
        assert_eq!(
            health.check(),
            Verdict::Healthy,
            "a commit that succeeds clears it"
        );
    }
}
