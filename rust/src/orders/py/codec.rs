//! The pure steps as Python functions (`harness.orders.codec`, the Rust side): build a request
//! from checked arguments, read an answer. Each runs with the GIL released (a search answer
//! can be large) and a panic caught (`NativePanicError`), as the bar functions do.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use super::super::api::{Bracket, ModifyRequest, OrderId};
use super::super::build::{self, PlaceParams};
use super::super::error::OrderError;
use super::super::read::{self, Answer};
use super::convert::{order_error, ToPy};
use crate::errors::panic_error;

/// Run `work` without the GIL, a panic caught; its result (or error) as a Python object.
fn detached<'py, T, F>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
where
    T: ToPy,
    F: FnOnce() -> Result<T, OrderError> + Send,
{
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    match result {
        Ok(Ok(value)) => value.to_py(py),
        Ok(Err(err)) => Err(order_error(py, err)),
        Err(payload) => Err(panic_error(py, payload)),
    }
}

fn bracket(pair: Option<(i64, i64)>) -> Option<Bracket> {
    pair.map(|(ticks, order_type)| Bracket { ticks, order_type })
}

/// `Order/place` of checked arguments on the resolved contract -> `Request`.
#[pyfunction]
#[pyo3(signature = (account_id, side, size, order_type, limit_price, stop_price, trail_price,
    stop_loss, take_profit, contract_id, tick_size, custom_tag))]
#[allow(clippy::too_many_arguments)]
pub fn build_place<'py>(
    py: Python<'py>,
    account_id: i64,
    side: i64,
    size: i64,
    order_type: i64,
    limit_price: Option<f64>,
    stop_price: Option<f64>,
    trail_price: Option<f64>,
    stop_loss: Option<(i64, i64)>,
    take_profit: Option<(i64, i64)>,
    contract_id: String,
    tick_size: f64,
    custom_tag: String,
) -> PyResult<Bound<'py, PyAny>> {
    let params = PlaceParams {
        account_id,
        contract: contract_id,
        side,
        size,
        order_type,
        limit_price,
        stop_price,
        trail_price,
        custom_tag: None,
        stop_loss_bracket: bracket(stop_loss),
        take_profit_bracket: bracket(take_profit),
    };
    detached(py, || {
        build::place(&params, &params.contract, tick_size, &custom_tag)
    })
}

/// `Order/modify` of checked arguments, prices snapped onto `tick_size` (None: as given).
#[pyfunction]
#[pyo3(signature = (account_id, order_id, size, limit_price, stop_price, trail_price, tick_size))]
#[allow(clippy::too_many_arguments)]
pub fn build_modify<'py>(
    py: Python<'py>,
    account_id: i64,
    order_id: i64,
    size: Option<i64>,
    limit_price: Option<f64>,
    stop_price: Option<f64>,
    trail_price: Option<f64>,
    tick_size: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = ModifyRequest {
        account_id,
        order_id: OrderId(order_id),
        size,
        limit_price,
        stop_price,
        trail_price,
    };
    detached(py, || build::modify(&m, tick_size).map(|(_, r)| r))
}

/// `Order/cancel` -> `Request`.
#[pyfunction]
pub fn build_cancel(py: Python<'_>, account_id: i64, order_id: i64) -> PyResult<Bound<'_, PyAny>> {
    detached(py, || build::cancel(account_id, order_id))
}

/// `Order/search` from `start_unix_s` -> `Request`.
#[pyfunction]
pub fn build_search_by_tag(
    py: Python<'_>,
    account_id: i64,
    start_unix_s: f64,
) -> PyResult<Bound<'_, PyAny>> {
    detached(py, || build::search_by_tag(account_id, start_unix_s))
}

/// `Order/searchById` -> `Request`.
#[pyfunction]
pub fn build_search_by_id(
    py: Python<'_>,
    account_id: i64,
    order_id: i64,
) -> PyResult<Bound<'_, PyAny>> {
    detached(py, || build::search_by_id(account_id, order_id))
}

fn answer(status: u16, body: &[u8], retry_after: Option<f64>) -> Answer<'_> {
    Answer {
        status,
        body,
        retry_after,
    }
}

/// The answer to `Order/place` -> `PlacedOrder`, or the error it means.
#[pyfunction]
#[pyo3(signature = (status, body, retry_after=None, *, custom_tag, attempts=1))]
pub fn read_place<'py>(
    py: Python<'py>,
    status: u16,
    body: &[u8],
    retry_after: Option<f64>,
    custom_tag: String,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    detached(py, || {
        read::place(&answer(status, body, retry_after), &custom_tag, attempts)
    })
}

/// The answer to `Order/modify` -> None, or the error it means.
#[pyfunction]
#[pyo3(signature = (status, body, retry_after=None, *, attempts=1))]
pub fn read_modify<'py>(
    py: Python<'py>,
    status: u16,
    body: &[u8],
    retry_after: Option<f64>,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    detached(py, || {
        read::modify(&answer(status, body, retry_after), attempts)
    })
}

/// The answer to `Order/cancel` -> None, or the error it means.
#[pyfunction]
#[pyo3(signature = (status, body, retry_after=None, *, attempts=1))]
pub fn read_cancel<'py>(
    py: Python<'py>,
    status: u16,
    body: &[u8],
    retry_after: Option<f64>,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    detached(py, || {
        read::cancel(&answer(status, body, retry_after), attempts)
    })
}

/// The answer to `Order/search` -> the order carrying `custom_tag`, or None.
#[pyfunction]
#[pyo3(signature = (status, body, retry_after=None, *, custom_tag, attempts=1))]
pub fn read_search_by_tag<'py>(
    py: Python<'py>,
    status: u16,
    body: &[u8],
    retry_after: Option<f64>,
    custom_tag: String,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    detached(py, || {
        read::search_by_tag(&answer(status, body, retry_after), &custom_tag, attempts)
    })
}

/// The answer to `Order/searchById` -> the order `order_id`, or None.
#[pyfunction]
#[pyo3(signature = (status, body, retry_after=None, *, order_id, attempts=1))]
pub fn read_search_by_id<'py>(
    py: Python<'py>,
    status: u16,
    body: &[u8],
    retry_after: Option<f64>,
    order_id: i64,
    attempts: u32,
) -> PyResult<Bound<'py, PyAny>> {
    detached(py, || {
        read::search_by_id(&answer(status, body, retry_after), order_id, attempts)
    })
}

/// Add the pure steps to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_place, m)?)?;
    m.add_function(wrap_pyfunction!(build_modify, m)?)?;
    m.add_function(wrap_pyfunction!(build_cancel, m)?)?;
    m.add_function(wrap_pyfunction!(build_search_by_tag, m)?)?;
    m.add_function(wrap_pyfunction!(build_search_by_id, m)?)?;
    m.add_function(wrap_pyfunction!(read_place, m)?)?;
    m.add_function(wrap_pyfunction!(read_modify, m)?)?;
    m.add_function(wrap_pyfunction!(read_cancel, m)?)?;
    m.add_function(wrap_pyfunction!(read_search_by_tag, m)?)?;
    m.add_function(wrap_pyfunction!(read_search_by_id, m)?)?;
    Ok(())
}
