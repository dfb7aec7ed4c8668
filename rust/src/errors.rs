//! Raising the harness's one exception taxonomy (`harness.errors`) from Rust.
//!
//! The classes are defined once, in Python (they carry `maybe_sent`, pickle for the shadow
//! worker, and both implementations must raise the very same classes). The native module names
//! each one it raises in `HarnessError`, so the compiler knows the set, and imports each class
//! once per process into a `PyOnceLock` (the way pyo3's `import_exception!` caches a class, but
//! a failed import is an error here, not a panic): no look-up by name at every raise.

use std::any::Any;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

const ERRORS_MODULE: &str = "harness.errors";

/// A class of `harness.errors` that the native module raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarnessError {
    /// `InvalidInputError(field, value, reason)`.
    InvalidInput,
    /// `BarDataError(field, index, reason, value)`.
    BarData,
    /// `OrderRejectedError(message, **fields)`.
    OrderRejected,
    /// `NotFoundError(message, **fields)`.
    NotFound,
    /// `AuthError(message, **fields)`.
    Auth,
    /// `RateLimitedError(message, retry_after=..., **fields)`.
    RateLimited,
    /// `BrokerUnavailableError(message, **fields)`.
    BrokerUnavailable,
    /// `NativePanicError(message)`.
    NativePanic,
}

/// One cell per `HarnessError` variant, in declaration order.
static CLASSES: [PyOnceLock<Py<PyType>>; 8] = [const { PyOnceLock::new() }; 8];

impl HarnessError {
    /// The class name in `harness.errors`.
    pub fn name(self) -> &'static str {
        match self {
            HarnessError::InvalidInput => "InvalidInputError",
            HarnessError::BarData => "BarDataError",
            HarnessError::OrderRejected => "OrderRejectedError",
            HarnessError::NotFound => "NotFoundError",
            HarnessError::Auth => "AuthError",
            HarnessError::RateLimited => "RateLimitedError",
            HarnessError::BrokerUnavailable => "BrokerUnavailableError",
            HarnessError::NativePanic => "NativePanicError",
        }
    }

    /// The Python class, imported on first use and cached for the life of the process.
    pub fn class<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        CLASSES[self as usize]
            .import(py, ERRORS_MODULE, self.name())
            .cloned()
    }

    /// An instance built from positional and keyword arguments, as a `PyErr` to raise.
    ///
    /// Should the class not build (it always does), the failure to build it is raised instead,
    /// so an error path never turns into a second, more confusing error.
    pub fn new_err<'py>(
        self,
        py: Python<'py>,
        args: Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyErr {
        match self.class(py).and_then(|cls| cls.call(args, kwargs)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(err) => err,
        }
    }
}

/// The text of a caught panic payload.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// Turn a caught panic payload into `harness.errors.NativePanicError`.
pub fn panic_error(py: Python<'_>, payload: Box<dyn Any + Send>) -> PyErr {
    panic_text_error(py, &panic_text(payload.as_ref()))
}

/// `NativePanicError("Rust panic: <text>")`.
pub fn panic_text_error(py: Python<'_>, text: &str) -> PyErr {
    match PyTuple::new(py, [format!("Rust panic: {text}")]) {
        Ok(args) => HarnessError::NativePanic.new_err(py, args, None),
        Err(err) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_imported_once_and_is_the_python_class() {
        Python::initialize();
        Python::attach(|py| {
            // `cargo test` embeds a plain interpreter: the package is the repository's.
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let path = py.import("sys").unwrap().getattr("path").unwrap();
            path.call_method1("insert", (0, root)).unwrap();
            let module = py.import(ERRORS_MODULE).unwrap();
            for class in [
                HarnessError::InvalidInput,
                HarnessError::BarData,
                HarnessError::OrderRejected,
                HarnessError::NotFound,
                HarnessError::Auth,
                HarnessError::RateLimited,
                HarnessError::BrokerUnavailable,
                HarnessError::NativePanic,
            ] {
                let first = class.class(py).unwrap().as_ptr();
                assert_eq!(first, class.class(py).unwrap().as_ptr(), "cached");
                let named = module.getattr(class.name()).unwrap();
                assert_eq!(first, named.as_ptr(), "{}", class.name());
            }
        });
    }

    #[test]
    fn panics_read_as_text() {
        assert_eq!(panic_text(&"boom"), "boom");
        assert_eq!(panic_text(&String::from("bang")), "bang");
        assert_eq!(panic_text(&42_u8), "unknown panic payload");
    }
}
