//! The thin PyO3 layer over the order client: `harness._native.OrderClient` and the pure steps
//! (`codec`).
//!
//! The boundary is typed: arguments arrive checked by `harness.orders.args` (the one place the
//! rules of `harness/orders/validation.py` are applied) as ints, floats, str and None, so
//! nothing here inspects a raw Python object or checks a value a second time; results leave as
//! the dataclasses of `harness.orders.models` (`convert`), errors as the `harness.errors`
//! classes. Each call is one tokio future handed to asyncio (`bridge`); the GIL is never held
//! while waiting. `trace`, when given, is a `harness.orders.trace.Trace`: the call's exchanges
//! are appended to its `exchanges` list before its awaitable settles.

pub mod codec;
pub mod convert;

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::api::{Bracket, ModifyRequest, OrderId};
use super::bridge::Bridge;
use super::client::{Client, PlaceParams, Settings};
use super::runtime::runtime;
use convert::ToPy;

/// Native ProjectX order client: every method returns an asyncio awaitable.
#[pyclass(frozen, module = "harness._native", name = "OrderClient")]
pub struct OrderClient {
    inner: Arc<Client>,
    bridge: Bridge,
}

/// The `exchanges` list of a `harness.orders.trace.Trace` (looked up only when tracing).
fn exchanges<'py>(trace: Option<Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyList>>> {
    match trace {
        Some(trace) => {
            let list = trace.getattr(intern!(trace.py(), "exchanges"))?;
            Ok(Some(list.cast_into::<PyList>()?))
        }
        None => Ok(None),
    }
}

fn bracket(pair: Option<(i64, i64)>) -> Option<Bracket> {
    pair.map(|(ticks, order_type)| Bracket { ticks, order_type })
}

#[pymethods]
impl OrderClient {
    /// Build the client (no network until the first call).
    #[new]
    #[pyo3(signature = (base_url, username, api_key, timeout_s=10.0, connect_timeout_s=3.0,
        retry_delays_s=vec![0.75, 1.5, 3.0], jitter=false, reconcile_lookback_s=86400.0,
        max_connections=32, max_retry_after_s=3.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        base_url: String,
        username: String,
        api_key: String,
        timeout_s: f64,
        connect_timeout_s: f64,
        retry_delays_s: Vec<f64>,
        jitter: bool,
        reconcile_lookback_s: f64,
        max_connections: usize,
        max_retry_after_s: f64,
    ) -> PyResult<Self> {
        let seconds = |name: &str, s: f64| -> PyResult<Duration> {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err(format!("{name} must be a positive number of seconds"))
                })
        };
        let settings = Settings {
            timeout: seconds("timeout_s", timeout_s)?,
            connect_timeout: seconds("connect_timeout_s", connect_timeout_s)?,
            base_url,
            username,
            api_key,
            retry_delays_s,
            jitter,
            reconcile_lookback_s,
            max_connections,
            max_retry_after_s,
        };
        let runtime = runtime()
            .map_err(|e| PyValueError::new_err(format!("cannot start the tokio runtime: {e}")))?;
        let _entered = runtime.enter();
        let inner = Client::new(settings).map_err(PyValueError::new_err)?;
        Ok(OrderClient {
            inner: Arc::new(inner),
            bridge: Bridge::default(),
        })
    }

    fn __repr__(&self) -> String {
        let s = self.inner.settings();
        format!(
            "OrderClient(base_url={:?}, username={:?})",
            s.base_url, s.username
        )
    }

    /// `Account/search` -> list of `Account`.
    #[pyo3(signature = (only_active, trace=None))]
    fn accounts<'py>(
        &self,
        py: Python<'py>,
        only_active: bool,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.accounts(only_active).await },
            exchanges(trace)?,
        )
    }

    /// A `Contract` by symbol or id (cached); `key` checked non-blank by the caller.
    #[pyo3(signature = (key, trace=None))]
    fn resolve_contract<'py>(
        &self,
        py: Python<'py>,
        key: String,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.resolve_contract(&key).await },
            exchanges(trace)?,
        )
    }

    /// `Order/place` of `harness.orders.args.PlaceArgs` (in its field order) -> `PlacedOrder`.
    #[pyo3(signature = (account_id, contract, side, size, order_type, limit_price, stop_price,
        trail_price, custom_tag, stop_loss, take_profit, trace=None))]
    #[allow(clippy::too_many_arguments)]
    fn place_order<'py>(
        &self,
        py: Python<'py>,
        account_id: i64,
        contract: String,
        side: i64,
        size: i64,
        order_type: i64,
        limit_price: Option<f64>,
        stop_price: Option<f64>,
        trail_price: Option<f64>,
        custom_tag: Option<String>,
        stop_loss: Option<(i64, i64)>,
        take_profit: Option<(i64, i64)>,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = PlaceParams {
            account_id,
            contract,
            side,
            size,
            order_type,
            limit_price,
            stop_price,
            trail_price,
            custom_tag,
            stop_loss_bracket: bracket(stop_loss),
            take_profit_bracket: bracket(take_profit),
        };
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.place_order(params).await },
            exchanges(trace)?,
        )
    }

    /// `Order/modify` of `harness.orders.args.ModifyArgs` (in its field order) -> None.
    #[pyo3(signature = (account_id, order_id, size, limit_price, stop_price, trail_price,
        trace=None))]
    #[allow(clippy::too_many_arguments)]
    fn modify_order<'py>(
        &self,
        py: Python<'py>,
        account_id: i64,
        order_id: i64,
        size: Option<i64>,
        limit_price: Option<f64>,
        stop_price: Option<f64>,
        trail_price: Option<f64>,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = ModifyRequest {
            account_id,
            order_id: OrderId(order_id),
            size,
            limit_price,
            stop_price,
            trail_price,
        };
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.modify_order(request).await },
            exchanges(trace)?,
        )
    }

    /// `Order/cancel` -> None.
    #[pyo3(signature = (account_id, order_id, trace=None))]
    fn cancel_order<'py>(
        &self,
        py: Python<'py>,
        account_id: i64,
        order_id: i64,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.cancel_order(account_id, order_id).await },
            exchanges(trace)?,
        )
    }

    /// The `Order` carrying `tag`, or None.
    #[pyo3(signature = (account_id, tag, trace=None))]
    fn find_order_by_tag<'py>(
        &self,
        py: Python<'py>,
        account_id: i64,
        tag: String,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.find_order_by_tag(account_id, &tag).await },
            exchanges(trace)?,
        )
    }

    /// The `Order` with `order_id`, or None.
    #[pyo3(signature = (account_id, order_id, trace=None))]
    fn get_order<'py>(
        &self,
        py: Python<'py>,
        account_id: i64,
        order_id: i64,
        trace: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.get_order(account_id, order_id).await },
            exchanges(trace)?,
        )
    }

    /// The `Contract` cached under `key`, or None: no I/O (an order shadow's input).
    fn cached_contract<'py>(
        &self,
        py: Python<'py>,
        key: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .cached_contract(key)
            .map(|c| c.to_py(py))
            .transpose()
    }

    /// The contract id of an order this client placed or read, or None: no I/O.
    fn cached_order_contract(&self, order_id: i64) -> Option<String> {
        self.inner.cached_order_contract(order_id)
    }

    /// Forget the session and caches, unregister from the event loop -> None.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.close();
        // A call made after this binds afresh (and still works).
        self.bridge.unbind(py);
        super::bridge::ready_none(py)
    }

    /// Test hook: an awaitable whose Rust future panics (must raise NativePanicError).
    fn _panic_probe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.bridge.spawn(
            py,
            async move {
                let nothing: Option<()> = None;
                #[allow(clippy::unnecessary_literal_unwrap)]
                nothing.expect("panic probe");
                Ok(())
            },
            None,
        )
    }
}
