//! Results and errors as the Python objects the harness uses: the dataclasses of
//! `harness.orders.models` (built directly, positional arguments, no dict per row), the
//! `Request` of `harness.orders.codec`, the `Exchange` of `harness.orders.trace`, and the
//! `harness.errors` classes. Each Python class is imported once per process.

use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::super::api::{Account, Contract, Order};
use super::super::build::Request;
use super::super::error::{Failure, InputValue, OrderError};
use super::super::read::Placed;
use super::super::trace::Exchange;
use crate::errors::HarnessError;

/// A Python class or function, imported on first use and kept for the life of the process.
struct Imported {
    cell: PyOnceLock<Py<PyAny>>,
    module: &'static str,
    name: &'static str,
}

impl Imported {
    const fn new(module: &'static str, name: &'static str) -> Imported {
        Imported {
            cell: PyOnceLock::new(),
            module,
            name,
        }
    }

    fn get<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyAny>> {
        self.cell.import(py, self.module, self.name)
    }
}

static PLACED_ORDER: Imported = Imported::new("harness.orders.models", "PlacedOrder");
static ORDER: Imported = Imported::new("harness.orders.models", "Order");
static ACCOUNT: Imported = Imported::new("harness.orders.models", "Account");
static CONTRACT: Imported = Imported::new("harness.orders.models", "Contract");
static PARSE_TIMESTAMP: Imported = Imported::new("harness.orders.models", "parse_timestamp");
static RECONCILED: Imported = Imported::new("harness.orders.reconcile", "reconciled_placement");
static REQUEST: Imported = Imported::new("harness.orders.codec", "Request");
static EXCHANGE: Imported = Imported::new("harness.orders.trace", "Exchange");

/// A Rust value that knows its Python form.
pub trait ToPy: Send + 'static {
    /// Convert to a Python object (GIL held).
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>>;
}

impl ToPy for () {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(py.None().into_bound(py))
    }
}

impl ToPy for Placed {
    /// `PlacedOrder`; a reconciled one through `reconciled_placement`, which logs it as the
    /// Python client does.
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        if self.reconciled {
            let args = (self.order_id, self.custom_tag, self.attempts);
            return RECONCILED.get(py)?.call1(args);
        }
        let args = (self.order_id, self.custom_tag, false, self.attempts);
        PLACED_ORDER.get(py)?.call1(args)
    }
}

fn account<'py>(py: Python<'py>, a: Account) -> PyResult<Bound<'py, PyAny>> {
    let args = (
        a.id.0,
        a.name,
        a.balance,
        a.can_trade,
        a.is_visible,
        a.simulated,
    );
    ACCOUNT.get(py)?.call1(args)
}

impl ToPy for Vec<Account> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let rows = self
            .into_iter()
            .map(|a| account(py, a))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, rows)?.into_any())
    }
}

impl ToPy for Arc<Contract> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let c = &*self;
        let args = (
            &c.id,
            &c.name,
            &c.description,
            c.tick_size,
            c.tick_value,
            c.active_contract,
            c.symbol_id.as_deref(),
        );
        CONTRACT.get(py)?.call1(args)
    }
}

fn timestamp<'py>(py: Python<'py>, text: Option<String>) -> PyResult<Bound<'py, PyAny>> {
    match text {
        // The Python client's own parser: both sides read every timestamp form alike.
        Some(text) => PARSE_TIMESTAMP.get(py)?.call1((text,)),
        None => Ok(py.None().into_bound(py)),
    }
}

impl ToPy for Option<Order> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let Some(o) = self else {
            return Ok(py.None().into_bound(py));
        };
        let created = timestamp(py, o.creation_timestamp)?;
        let updated = timestamp(py, o.update_timestamp)?;
        let args = PyTuple::new(
            py,
            [
                o.id.0.into_pyobject(py)?.into_any(),
                o.account_id.0.into_pyobject(py)?.into_any(),
                PyString::new(py, &o.contract_id).into_any(),
                o.status.into_pyobject(py)?.into_any(),
                o.order_type.into_pyobject(py)?.into_any(),
                o.side.into_pyobject(py)?.into_any(),
                o.size.into_pyobject(py)?.into_any(),
                o.limit_price.into_pyobject(py)?.into_any(),
                o.stop_price.into_pyobject(py)?.into_any(),
                o.fill_volume.into_pyobject(py)?.into_any(),
                o.filled_price.into_pyobject(py)?.into_any(),
                o.custom_tag.into_pyobject(py)?.into_any(),
                created,
                updated,
            ],
        )?;
        ORDER.get(py)?.call1(args)
    }
}

impl ToPy for Request {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let body = PyBytes::new(py, &self.body);
        REQUEST.get(py)?.call1((self.endpoint.path, body))
    }
}

/// Append `exchanges` to the Python list of a `harness.orders.trace.Trace`.
pub fn append_exchanges(list: &Bound<'_, PyList>, exchanges: Vec<Exchange>) -> PyResult<()> {
    let py = list.py();
    let class = EXCHANGE.get(py)?;
    for e in exchanges {
        let args = (
            e.path,
            PyBytes::new(py, &e.request),
            e.status,
            PyBytes::new(py, &e.response),
            e.retry_after,
            e.failure.map(|f| f.as_str()),
        );
        list.append(class.call1(args)?)?;
    }
    Ok(())
}

/// The `harness.errors` exception for an `OrderError`.
pub fn order_error(py: Python<'_>, err: OrderError) -> PyErr {
    match err {
        OrderError::InvalidInput {
            field,
            value,
            reason,
        } => {
            let value: Bound<'_, PyAny> = match value {
                InputValue::Str(s) => PyString::new(py, &s).into_any(),
                InputValue::Int(i) => PyInt::new(py, i).into_any(),
                InputValue::Float(f) => PyFloat::new(py, f).into_any(),
            };
            match (field, value, reason).into_pyobject(py) {
                Ok(args) => HarnessError::InvalidInput.new_err(py, args, None),
                Err(e) => e,
            }
        }
        OrderError::Rejected(f) => broker_error(py, HarnessError::OrderRejected, f, None),
        OrderError::NotFound(f) => broker_error(py, HarnessError::NotFound, f, None),
        OrderError::Auth(f) => broker_error(py, HarnessError::Auth, f, None),
        OrderError::Unavailable(f) => broker_error(py, HarnessError::BrokerUnavailable, f, None),
        OrderError::RateLimited(f, advice) => {
            broker_error(py, HarnessError::RateLimited, f, Some(advice))
        }
    }
}

impl From<OrderError> for PyErr {
    fn from(err: OrderError) -> PyErr {
        Python::attach(|py| order_error(py, err))
    }
}

fn broker_error(
    py: Python<'_>,
    class: HarnessError,
    f: Failure,
    retry_after: Option<Option<f64>>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "endpoint"), f.endpoint)?;
        kwargs.set_item(intern!(py, "error_code"), f.error_code)?;
        kwargs.set_item(intern!(py, "error_message"), f.error_message.as_deref())?;
        kwargs.set_item(intern!(py, "http_status"), f.http_status)?;
        kwargs.set_item(intern!(py, "attempts"), f.attempts)?;
        kwargs.set_item(intern!(py, "maybe_sent"), f.maybe_sent)?;
        if let Some(advice) = retry_after {
            kwargs.set_item(intern!(py, "retry_after"), advice)?;
        }
        let args = PyTuple::new(py, [f.message.as_str()])?;
        Ok(class.new_err(py, args, Some(&kwargs)))
    };
    build().unwrap_or_else(|e| e)
}
