//! The ProjectX Gateway order client (issue 3 fills this room).

use pyo3::prelude::*;

/// Add the order client classes to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
