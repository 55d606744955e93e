//! Tests of the protocol module against the shared fixtures (copied to `tests/data/`
//! of the crate) and against hand-written quirks. They live inside `src/tiktok/` so
//! that the module and its tests travel together.

mod api_signing;
mod envelope;
mod events_orders;
mod events_other;
mod fuzz;
mod ids_status;
mod quirks;
mod signature;
mod signature_legacy;
mod support;
