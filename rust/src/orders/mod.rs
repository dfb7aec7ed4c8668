//! The ProjectX Gateway order client in Rust: the same behaviour as `harness/orders/` (the
//! Python client), measured against it by the shared suite and the benchmark.
//!
//! Every call is three steps, as on the Python side: **build** the request (`build`, pure),
//! **send** it (`client`: retries, session, reconciliation), **read** the answer (`read`,
//! pure). The rooms:
//! - `api`: wire facts (paths, codes, bodies, the envelope, order ids).
//! - `build`, `json`: requests, written byte for byte as the Python client writes them.
//! - `read`: answers -> results or errors, decided as the Python client decides.
//! - `error`: the error enum, one variant per `harness.errors` class.
//! - `retry`: the backoff schedule and `Retry-After`.
//! - `auth`: the shared token cache and JWT `exp` reading.
//! - `clock`: ISO-8601 timestamps without a date crate.
//! - `prices`: the tick grid and the exact grid value.
//! - `trace`: what a call exchanged, recorded when asked.
//! - `client`: the async client core (plain Rust, tokio + reqwest).
//! - `runtime`: the tokio runtime, one per process (rebuilt in a forked child).
//! - `bridge`: the crossing from tokio to asyncio (GIL-free on the tokio side).
//! - `py`: the thin PyO3 layer: `harness._native.OrderClient` and the pure steps.

use pyo3::prelude::*;

pub mod api;
pub mod auth;
pub mod bridge;
pub mod build;
pub mod client;
pub mod clock;
pub mod error;
pub mod json;
pub mod prices;
pub mod py;
pub mod read;
pub mod retry;
pub mod runtime;
pub mod trace;

/// Add the order client classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One tokio worker by default: the tokio side of a call is microseconds of work (the GIL is
    // never taken there, see `bridge`), and on a 2-core machine the other core belongs to the
    // Python thread; measured on loopback, one worker was as fast or faster than two.
    // `HARNESS_TOKIO_WORKERS=n` overrides (read once, at import; the runtime starts on first
    // use, and again in a forked child).
    let workers = std::env::var("HARNESS_TOKIO_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    runtime::set_workers(workers);
    m.add_class::<py::OrderClient>()?;
    py::codec::register(m)?;
    Ok(())
}
