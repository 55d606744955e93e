//! The TikTok Shop protocol: everything this service knows about what TikTok sends and
//! how it signs, kept apart from HTTP and storage so that it can be read side by side
//! with `spec/tiktok-shop-webhooks.md` and tested with the fixtures alone.
//!
//! A webhook travels through the module in two steps, and the types enforce the order:
//!
//! 1. [`WebhookVerifier::verify`] checks the `Authorization` signature over the raw
//!    bytes and returns a [`VerifiedBody`], the only way to obtain one.
//! 2. [`Event::parse`] takes that `VerifiedBody` (so nothing unverified is ever parsed)
//!    and reads the envelope and the topic. It refuses only bodies that cannot be an
//!    event at all (not UTF-8, not a JSON object, no integer `type`); anything odd inside
//!    a known topic becomes [`Topic::Malformed`] and an unknown code [`Topic::Unknown`],
//!    because TikTok must still get its 200 for those and the raw bytes are kept.
//!
//! Ids are [`Id`]s that keep their exact digits even when TikTok sends them as JSON
//! numbers above 2^64; nothing in this module turns an id or a time into `f64`.
//!
//! [`api_signing`] signs calls made *to* TikTok's Open API (spec section 5).

pub mod api_signing;
pub mod envelope;
pub mod ids;
pub mod signature;
pub mod status;
pub mod topics;

pub use envelope::{Event, EventId, ParseError};
pub use ids::Id;
pub use signature::{SignatureError, VerifiedBody, WebhookVerifier};
pub use status::OrderStatus;
pub use topics::Topic;

#[cfg(test)]
mod tests;
