//! The durable processing queue: each stored event has a job row, written in
//! the same transaction as the event. Workers take the events this instance
//! has just stored from the hand-off (their jobs created leased to them, see
//! [`handoff`]) and claim any other due job with a lease, hand the event to
//! the seller's [`EventHandler`] (and the built-in [`Forwarder`]), and pass
//! every attempt to the recorder, which records them together. Retries back
//! off; after the cap a job is dead-lettered until retried by hand.

pub mod backoff;
pub mod forward;
pub mod handler;
mod handoff;
mod recorder;
mod wake;
mod worker;

use std::{sync::Arc, time::Duration};

pub use backoff::RetryPolicy;
pub use forward::Forwarder;
pub use handler::{Chain, EventHandler, HandlerError, NoopHandler};
pub use handoff::{HandedJob, Handoff, Reservation};
pub use wake::Wake;
pub use worker::{Queue, QueueHandle};

/// How the workers run.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// Worker tasks in this instance (`QUEUE_WORKERS`).
    pub workers: usize,
    /// Jobs one worker claims at a time (`QUEUE_BATCH`).
    pub batch: i64,
    /// How long a claimed job stays with its worker before others may take
    /// it over (`JOB_LEASE`): longer than any handler call may take.
    pub lease: Duration,
    /// How often idle workers look for due jobs (`QUEUE_POLL_INTERVAL`);
    /// new events in this instance wake them at once.
    pub poll: Duration,
    pub retry: RetryPolicy,
    /// Bound on finishing running jobs at shutdown (`SHUTDOWN_TIMEOUT`).
    pub shutdown: Duration,
}

/// The handler the settings ask for: the forwarder when `FORWARD_URL` is
/// set, then the seller's own, or nothing.
pub fn handler_for(
    settings: &crate::config::Settings,
    own: Option<Arc<dyn EventHandler>>,
) -> anyhow::Result<Arc<dyn EventHandler>> {
    let mut chain: Vec<Arc<dyn EventHandler>> = own.into_iter().collect();
    if let (Some(url), Some(secret)) = (&settings.forward_url, &settings.webhook_secret) {
        chain.push(Arc::new(Forwarder::new(
            url,
            secret,
            settings.forward_timeout,
        )?));
    }
    Ok(match chain.len() {
        0 => Arc::new(NoopHandler),
        1 => chain.pop().expect("one handler"),
        _ => Arc::new(Chain(chain)),
    })
}
