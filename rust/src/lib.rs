//! `harness._native`: the Rust hot paths of the rollout harness.
//!
//! Two rooms mirror the two migrated paths: `orders` (the ProjectX Gateway client) and `bars`
//! (1-minute bar aggregation). This file only binds them into one Python module; policy
//! (routing, recording, gating) stays in Python.

use pyo3::prelude::*;

pub mod bars;
pub mod errors;
pub mod orders;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The git commit built from (build.rs), "" when built outside a checkout.
    m.add("__git_commit__", env!("HARNESS_GIT_COMMIT"))?;
    bars::register(m)?;
    orders::register(m)?;
    Ok(())
}
