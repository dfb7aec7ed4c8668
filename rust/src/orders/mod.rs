//! The ProjectX Gateway order client in Rust: the same behaviour as `harness/orders/` (the
//! Python client), measured against it by the shared suite and the benchmark.
//!
//! - `api`: wire facts (paths, codes, bodies, the envelope, order ids).
//! - `error`: the error enum, one variant per `harness.errors` class.
//! - `retry`: the backoff schedule and `Retry-After`.
//! - `auth`: the shared token cache and JWT `exp` reading.
//! - `clock`: ISO-8601 timestamps without a date crate.
//! - `client`: the async client core (plain Rust, tokio + reqwest).
//! - `py`: the thin PyO3 class `harness._native.OrderClient`.

use pyo3::prelude::*;

pub mod api;
pub mod auth;
pub mod client;
pub mod clock;
pub mod error;
pub mod py;
pub mod retry;

/// Add the order client classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<py::OrderClient>()?;
    Ok(())
}
