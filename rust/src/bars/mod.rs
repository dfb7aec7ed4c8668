//! Bar aggregation: 1-minute OHLCV bars into higher timeframes, batch and live.
//!
//! The core (`validate`, `bucket`, `batch`, `incremental`) is plain Rust over slices and is
//! tested without Python. This file is the thin PyO3 layer: zero-copy numpy views in, the GIL
//! released for the loop, numpy arrays out, `BarDataError` raised on bad data. Timeframe
//! strings are parsed once, in Python (`harness.bars.parse_timeframe`); Rust receives periods
//! and offsets in nanoseconds. A panic in the core becomes `NativePanicError`, never an abort.

pub mod batch;
pub mod bucket;
pub mod incremental;
pub mod validate;

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyTuple};

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::errors::{panic_error, HarnessError};
use batch::{Series, Spec};
use bucket::Bar;
use incremental::Live;
use validate::{BarError, Columns, Offending, MAX_PERIOD};

/// Add the bar-aggregation functions and classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(aggregate_columns, m)?)?;
    m.add_class::<Aggregator>()?;
    Ok(())
}

fn bar_data_error(py: Python<'_>, err: BarError) -> PyErr {
    let value = match err.value {
        Offending::Int(x) => PyInt::new(py, x).into_any(),
        Offending::Float(x) => PyFloat::new(py, x).into_any(),
        Offending::None => py.None().into_bound(py),
    };
    let args = (err.field, err.index, err.reason, value).into_pyobject(py);
    match args {
        Ok(args) => HarnessError::BarData.new_err(py, args, None),
        Err(e) => e,
    }
}

fn invalid_input(py: Python<'_>, field: &str, value: i64, reason: &str) -> PyErr {
    let args = (field, value, reason).into_pyobject(py);
    match args {
        Ok(args) => HarnessError::InvalidInput.new_err(py, args, None),
        Err(e) => e,
    }
}

/// Periods and offsets from Python, checked (the facade already guarantees them).
fn specs_from(py: Python<'_>, periods: &[i64], offsets: &[i64]) -> PyResult<Vec<Spec>> {
    if periods.len() != offsets.len() {
        return Err(invalid_input(
            py,
            "offsets",
            offsets.len() as i64,
            "one offset per period is required",
        ));
    }
    periods
        .iter()
        .zip(offsets)
        .map(|(&period, &offset)| {
            if !(1..=MAX_PERIOD).contains(&period) {
                return Err(invalid_input(
                    py,
                    "period",
                    period,
                    "must be 1..=10000 days in ns",
                ));
            }
            Ok(Spec {
                period,
                offset: offset.rem_euclid(period),
            })
        })
        .collect()
}

fn series_to_py<'py>(py: Python<'py>, s: Series) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            s.t.into_pyarray(py).into_any(),
            s.o.into_pyarray(py).into_any(),
            s.h.into_pyarray(py).into_any(),
            s.l.into_pyarray(py).into_any(),
            s.c.into_pyarray(py).into_any(),
            s.v.into_pyarray(py).into_any(),
        ],
    )
}

type Int64Col<'py> = PyReadonlyArray1<'py, i64>;
type F64Col<'py> = PyReadonlyArray1<'py, f64>;

/// Borrow six C-contiguous numpy columns as slices (no copy).
fn columns<'a>(
    t: &'a Int64Col<'_>,
    o: &'a F64Col<'_>,
    h: &'a F64Col<'_>,
    l: &'a F64Col<'_>,
    c: &'a F64Col<'_>,
    v: &'a Int64Col<'_>,
) -> PyResult<Columns<'a>> {
    Ok(Columns {
        t: t.as_slice()?,
        o: o.as_slice()?,
        h: h.as_slice()?,
        l: l.as_slice()?,
        c: c.as_slice()?,
        v: v.as_slice()?,
    })
}

/// Aggregate contiguous columns into each (period, offset) in one pass; a list of 6-tuples.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn aggregate_columns<'py>(
    py: Python<'py>,
    t: Int64Col<'py>,
    o: F64Col<'py>,
    h: F64Col<'py>,
    l: F64Col<'py>,
    c: F64Col<'py>,
    v: Int64Col<'py>,
    periods: Vec<i64>,
    offsets: Vec<i64>,
) -> PyResult<Bound<'py, PyList>> {
    let specs = specs_from(py, &periods, &offsets)?;
    let cols = columns(&t, &o, &h, &l, &c, &v)?;
    series_list_detached(py, || batch::aggregate(&cols, &specs))
}

/// Run `work` with the GIL released, a panic caught, and its series as a list of tuples.
fn series_list_detached<'py, F>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyList>>
where
    F: FnOnce() -> Result<Vec<Series>, BarError> + Send,
{
    let result = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    let series = result
        .map_err(|payload| panic_error(py, payload))?
        .map_err(|e| bar_data_error(py, e))?;
    let tuples = series
        .into_iter()
        .map(|s| series_to_py(py, s))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, tuples)
}

type BarTuple = (i64, f64, f64, f64, f64, i64);

/// A completed bar as handed to Python: `(timeframe index, t, o, h, l, c, v)`.
type Completed = (usize, i64, f64, f64, f64, f64, i64);

fn bar_tuple(b: Bar) -> BarTuple {
    (b.t, b.o, b.h, b.l, b.c, b.v)
}

/// Incremental aggregator over several timeframes (periods and offsets in ns).
#[pyclass(module = "harness._native")]
pub struct Aggregator {
    live: Live,
}

#[pymethods]
impl Aggregator {
    #[new]
    fn new(
        py: Python<'_>,
        periods: Vec<i64>,
        offsets: Vec<i64>,
        input_period: i64,
    ) -> PyResult<Self> {
        let specs = specs_from(py, &periods, &offsets)?;
        if !(0..=MAX_PERIOD).contains(&input_period) {
            return Err(invalid_input(
                py,
                "input_period",
                input_period,
                "must be 0..=10000 days in ns",
            ));
        }
        Ok(Self {
            live: Live::new(&specs, input_period),
        })
    }

    /// Push one bar; returns `[(timeframe index, t, o, h, l, c, v), ...]` for completed bars.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        py: Python<'_>,
        t: i64,
        o: f64,
        h: f64,
        l: f64,
        c: f64,
        v: i64,
    ) -> PyResult<Vec<Completed>> {
        let done = self
            .live
            .push(Bar { t, o, h, l, c, v })
            .map_err(|e| bar_data_error(py, e))?;
        Ok(done
            .into_iter()
            .map(|(k, b)| (k, b.t, b.o, b.h, b.l, b.c, b.v))
            .collect())
    }

    /// Push a batch of columns (all or nothing); a list of 6-tuples of completed bars.
    #[allow(clippy::too_many_arguments)]
    fn push_many<'py>(
        &mut self,
        py: Python<'py>,
        t: Int64Col<'py>,
        o: F64Col<'py>,
        h: F64Col<'py>,
        l: F64Col<'py>,
        c: F64Col<'py>,
        v: Int64Col<'py>,
    ) -> PyResult<Bound<'py, PyList>> {
        let cols = columns(&t, &o, &h, &l, &c, &v)?;
        let live = &mut self.live;
        series_list_detached(py, || live.push_many(&cols))
    }

    /// The bar being built for timeframe `k`, or None.
    fn partial(&self, k: usize) -> Option<BarTuple> {
        self.live.partial(k).map(bar_tuple)
    }

    /// Bars accepted so far.
    #[getter]
    fn count(&self) -> i64 {
        self.live.count()
    }
}
