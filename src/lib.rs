//! `tiktok-webhook`: receives TikTok Shop webhooks, verifies them over the raw
//! bytes, keeps each exactly once, projects orders, and serves a REST API.
//!
//! The write path: bytes → [`tiktok::WebhookVerifier`] → [`tiktok::Event`] →
//! [`store::writer::Writer`] → one transaction → 200.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod health;
pub mod intake;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod tiktok;
