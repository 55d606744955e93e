//! The seller's own logic: implement [`EventHandler`] and hand it to
//! [`crate::app::Application::build_with`]. Each stored event is handed to it
//! once it is committed, from the durable queue, with retries.
//!
//! ```no_run
//! use async_trait::async_trait;
//! use tiktok_webhook::{queue::{EventHandler, HandlerError}, tiktok::{Event, Topic}};
//!
//! struct PrintProvider;
//!
//! #[async_trait]
//! impl EventHandler for PrintProvider {
//!     async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
//!         if let Topic::OrderStatusChange(change) = &event.topic {
//!             // Call your print provider here; an Err is retried with backoff.
//!             let _ = change.order_status.as_ref();
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! A handler may run more than once for one event (a retry after a timeout,
//! or after a crash once the lease ran out), so make it idempotent: the
//! event id is a good key.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::tiktok::Event;

#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

/// Why handling failed. It is retried with backoff unless `permanent`.
#[derive(Debug, Clone)]
pub struct HandlerError {
    pub message: String,
    /// An HTTP status, when the failure was an answer from a receiver.
    pub status: Option<u16>,
    /// The receiver asked to wait this long (honoured within bounds).
    pub retry_after: Option<Duration>,
    /// No point retrying: the event goes straight to the dead letters.
    pub permanent: bool,
}

impl HandlerError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: None,
            retry_after: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::retry(message)
        }
    }
}

/// Does nothing and succeeds: the queue with no seller logic configured.
#[derive(Debug, Default)]
pub struct NoopHandler;

#[async_trait]
impl EventHandler for NoopHandler {
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Several handlers in order; the first failure fails the attempt, and the
/// retry runs them all again (hence: idempotent handlers).
pub struct Chain(pub Vec<Arc<dyn EventHandler>>);

#[async_trait]
impl EventHandler for Chain {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        for handler in &self.0 {
            handler.handle(event).await?;
        }
        Ok(())
    }
}
