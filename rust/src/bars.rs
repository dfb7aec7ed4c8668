//! Bar aggregation (issue 4 fills this room).

use pyo3::prelude::*;

/// Add the bar-aggregation functions and classes to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
