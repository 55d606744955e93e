//! The time source, injected so that tests can move time (max age, and later
//! leases and backoff) without sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

/// System time plus an adjustable offset (zero outside tests).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now_unix(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset_secs.load(Ordering::Relaxed)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves this clock (and its clones) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}
