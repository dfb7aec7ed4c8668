//! Raising the harness's one exception taxonomy (`harness.errors`) from Rust.
//!
//! The classes are defined once, in Python; the native module looks them up by name and
//! instantiates them, so both implementations raise the very same classes.

use std::any::Any;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

const ERRORS_MODULE: &str = "harness.errors";

/// Build an instance of `harness.errors.<class>` from positional and keyword arguments.
///
/// Falls back to a `RuntimeError` naming the failure if the class cannot be built, so an error
/// path never turns into a second, more confusing error.
pub fn harness_error<'py>(
    py: Python<'py>,
    class: &str,
    args: Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyErr {
    let built = py
        .import(ERRORS_MODULE)
        .and_then(|module| module.getattr(class))
        .and_then(|cls| cls.call(args, kwargs));
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

/// Turn a caught panic payload into `harness.errors.NativePanicError`.
pub fn panic_error(py: Python<'_>, payload: Box<dyn Any + Send>) -> PyErr {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    match PyTuple::new(py, [format!("Rust panic: {text}")]) {
        Ok(args) => harness_error(py, "NativePanicError", args, None),
        Err(err) => err,
    }
}
