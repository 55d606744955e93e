//! Hardening for the open internet, over HTTP: rate limits, security layers
//! and deadlines, the OpenAPI document, secret rotation and the legacy
//! scheme, metrics, and what the logs must never hold. One test binary, so
//! that these share one link step.

#[path = "../support/mod.rs"]
mod support;

mod layers;
mod log_hygiene;
mod metrics;
mod openapi;
mod rate_limits;
mod signatures;
mod startup;
