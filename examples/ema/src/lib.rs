//! The worked example's exponential moving average in Rust: a bot's own function, built as its
//! own small crate and registered with the rollout harness (docs/example.md).
//!
//! `ema(prices, span)` equals pandas' `Series(prices).ewm(span=span, adjust=False).mean()`
//! (pandas' "Exponentially weighted window" documentation: alpha = 2 / (span + 1),
//! y[0] = x[0], y[t] = (1 - alpha) y[t-1] + alpha x[t]), computed with pandas' own operation
//! order (`pandas/_libs/window/aggregations.pyx`, `ewm`) so that this side, the Python side
//! (`ema_py.py`) and pandas give the same doubles.
//!
//! Input is checked before anything is computed, by the same rules and with the same error as
//! the Python side: `harness.errors.InvalidInputError` naming the argument (`prices`,
//! `prices[i]`, `span`). The harness reads that class as the caller's mistake: raised to the
//! caller, never a fallback, never counted against Rust by the breaker or the gate.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyTuple};

pyo3::import_exception!(harness.errors, InvalidInputError);

/// Inputs at least this long run the loop with the GIL released; shorter ones keep it.
///
/// Giving the GIL back is not free for the caller: when another Python thread is waiting for
/// it (the harness's shadow threads run the Python EMA beside the bot), that thread takes it
/// and the caller waits up to the switch interval (5 ms by default) to get it back. Measured
/// on the bot's 200-price calls with the harness at `staging` (docs/example.md): released on
/// every call, Rust's recorded p95 was 0.49 ms and p99 4.9 ms; kept, 0.016 ms and 0.036 ms.
/// At 100,000 prices the loop runs long enough (about a millisecond here) for other threads
/// to be worth it.
pub const DETACH_FROM: usize = 100_000;

/// The largest span accepted: 2**53. Every integer up to it is exactly a double, so `span - 1`
/// becomes the same double in Rust and in Python.
const MAX_SPAN: i64 = 1 << 53;

/// `InvalidInputError(field, value, reason)`: the harness's class, message built by it
/// (`invalid {field}={value!r}: {reason}`), so both sides' messages are equal by construction.
fn invalid(field: String, value: Py<PyAny>, reason: &str) -> PyErr {
    InvalidInputError::new_err((field, value, reason.to_owned()))
}

/// One price as a double: a Python `float` (or subclass, e.g. numpy's float64) or `int` (not
/// `bool`), finite once converted.
fn price(index: usize, item: &Bound<'_, PyAny>) -> PyResult<f64> {
    let number = (item.is_instance_of::<PyFloat>()
        || (item.is_instance_of::<PyInt>() && !item.is_instance_of::<PyBool>()))
    .then(|| item.extract::<f64>().ok())
    .flatten()
    .filter(|x| x.is_finite());
    number.ok_or_else(|| {
        invalid(
            format!("prices[{index}]"),
            item.clone().unbind(),
            "must be a finite number",
        )
    })
}

/// The prices of a `list` or `tuple`, checked in order (the first bad one is named).
fn prices_of(prices: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let items = if let Ok(list) = prices.cast::<PyList>() {
        list.iter().collect::<Vec<_>>()
    } else if let Ok(tuple) = prices.cast::<PyTuple>() {
        tuple.iter().collect::<Vec<_>>()
    } else {
        let name = prices.get_type().name()?.to_string();
        return Err(invalid(
            "prices".to_owned(),
            name.into_pyobject(prices.py())?.into_any().unbind(),
            "must be a list or tuple of numbers",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| price(i, item))
        .collect()
}

/// The span: an `int` (not `bool`) from 1 to 2**53.
fn span_of(span: &Bound<'_, PyAny>) -> PyResult<i64> {
    let value = (span.is_instance_of::<PyInt>() && !span.is_instance_of::<PyBool>())
        .then(|| span.extract::<i64>().ok())
        .flatten()
        .filter(|s| (1..=MAX_SPAN).contains(s));
    value.ok_or_else(|| {
        invalid(
            "span".to_owned(),
            span.clone().unbind(),
            "must be an integer from 1 to 2**53",
        )
    })
}

/// The loop, in pandas' order: center of mass, alpha, then per value a weighted mean of the
/// previous result (weight 1 - alpha) and the value (weight alpha), divided by the weights' sum
/// (which rounds to 1 or next to it: pandas divides, so we do), skipped when they are equal.
/// Rust never fuses or reorders floating-point operations, so this is the Python side's
/// arithmetic, double for double.
fn ema_of(values: &[f64], span: i64) -> Vec<f64> {
    let com = (span - 1) as f64 / 2.0;
    let alpha = 1.0 / (1.0 + com);
    let old_weight = 1.0 - alpha;
    let mut out = Vec::with_capacity(values.len());
    let mut iter = values.iter();
    let Some(&first) = iter.next() else {
        return out;
    };
    let mut weighted = first;
    out.push(weighted);
    for &value in iter {
        if weighted != value {
            weighted = (old_weight * weighted + alpha * value) / (old_weight + alpha);
        }
        out.push(weighted);
    }
    out
}

/// The EMA of `prices` (a list or tuple of finite numbers) with `span` (an int from 1 to
/// 2**53): a list of floats as long as `prices`, empty for empty input.
///
/// Raises `harness.errors.InvalidInputError` naming `prices`, `prices[i]` (the first bad
/// value: not a number, a bool, NaN or infinite) or `span`. The GIL is released while the loop
/// runs for `DETACH_FROM` prices or more.
#[pyfunction]
fn ema(py: Python<'_>, prices: &Bound<'_, PyAny>, span: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    // Checked in the order the Python side checks: span first, then the prices in order.
    let span = span_of(span)?;
    let values = prices_of(prices)?;
    if values.len() >= DETACH_FROM {
        Ok(py.detach(|| ema_of(&values, span)))
    } else {
        Ok(ema_of(&values, span))
    }
}

/// The module `ema_rs`: `ema`, and `DETACH_FROM` (the length from which the GIL is released).
#[pymodule]
fn ema_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DETACH_FROM", DETACH_FROM)?;
    m.add_function(wrap_pyfunction!(ema, m)?)
}
