//! The thin PyO3 layer over the order client: argument checks (raised before anything is
//! sent), one tokio future per call handed to asyncio, and the conversion of results and errors
//! to Python objects. The GIL is never held while waiting: the future runs on tokio's threads.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use super::api::{self, Account, Contract, ModifyRequest, Order, OrderId};
use super::bridge::{Bridge, ToPy};
use super::client::{Client, PlaceParams, Placed, Settings};
use super::error::{InputValue, OrderError};
use super::prices::{price_rule, PriceRule};
use super::runtime::runtime;
use super::tag;
use crate::errors::harness_error;

/// Build the `harness.errors` exception for an `OrderError`.
pub fn to_pyerr(py: Python<'_>, err: OrderError) -> PyErr {
    let class = err.class_name();
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
            let args = (field, value, reason).into_pyobject(py);
            match args {
                Ok(args) => harness_error(py, class, args, None),
                Err(e) => e,
            }
        }
        OrderError::Rejected(f)
        | OrderError::NotFound(f)
        | OrderError::Auth(f)
        | OrderError::Unavailable(f) => broker_error(py, class, f, None),
        OrderError::RateLimited(f, retry_after) => broker_error(py, class, f, Some(retry_after)),
    }
}

fn broker_error(
    py: Python<'_>,
    class: &str,
    f: super::error::Failure,
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
        Ok(harness_error(py, class, args, Some(&kwargs)))
    };
    build().unwrap_or_else(|e| e)
}

// ----- argument checks (before anything is sent) -----

fn invalid(py: Python<'_>, field: &str, value: &Bound<'_, PyAny>, reason: &str) -> PyErr {
    match (field, value, reason).into_pyobject(py) {
        Ok(args) => harness_error(py, "InvalidInputError", args, None),
        Err(e) => e,
    }
}

/// A strictly positive `int` (bool refused).
fn positive_int(field: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = value.py();
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(invalid(py, field, value, "must be a positive integer"));
    }
    match value.extract::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(py, field, value, "must be a positive integer")),
    }
}

/// `Side`, 0/1, or "buy"/"sell" (case-insensitive).
fn side(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let py = value.py();
    if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_cow()?;
        if text.eq_ignore_ascii_case("buy") {
            return Ok(0);
        }
        if text.eq_ignore_ascii_case("sell") {
            return Ok(1);
        }
    } else if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        if let Ok(n @ (0 | 1)) = value.extract::<i64>() {
            return Ok(n);
        }
    }
    Err(invalid(
        py,
        "side",
        value,
        "must be Side, 0/1 or 'buy'/'sell'",
    ))
}

/// An `OrderType` value (1..=7).
fn order_type(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        if let Ok(n @ 1..=7) = value.extract::<i64>() {
            return Ok(n);
        }
    }
    Err(invalid(value.py(), "type", value, "must be an OrderType"))
}

/// `None` or a finite number (bool refused).
fn price(field: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let numeric = value.is_instance_of::<PyFloat>()
        || (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>());
    match value.extract::<f64>() {
        Ok(x) if numeric && x.is_finite() => Ok(Some(x)),
        _ => Err(invalid(value.py(), field, value, "must be a finite number")),
    }
}

/// The prices an order type takes: a missing one it needs, or one it does not take, is the
/// error (in the order limit, stop, trail), naming the caller's value.
fn prices_for_type(
    py: Python<'_>,
    order_type: i64,
    given: [Option<&Bound<'_, PyAny>>; 3],
) -> PyResult<()> {
    let given = given.map(|v| v.filter(|v| !v.is_none()));
    let Some(rule) = price_rule(order_type, given.map(|v| v.is_some())) else {
        return Ok(());
    };
    let index = super::prices::PRICE_FIELDS
        .iter()
        .position(|f| *f == rule.field())
        .unwrap_or(0);
    let none = py.None().into_bound(py);
    let value = match rule {
        PriceRule::Required(_) => &none,
        PriceRule::NotTaken(_) => given[index].unwrap_or(&none),
    };
    Err(invalid(py, rule.field(), value, &rule.reason(order_type)))
}

/// `None` or a customTag by the rule of `tag` (as `harness.orders.validation.custom_tag`): a
/// non-empty string of at most 128 characters, no control character, no lone surrogate.
fn custom_tag(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let py = value.py();
    let Ok(s) = value.cast::<PyString>() else {
        return Err(invalid(py, "custom_tag", value, tag::NOT_A_TAG));
    };
    // Python's len (code points) before any encoding: a tag too long is named by its length
    // even if it also holds a lone surrogate, as the Python side does.
    let chars = s.len()?;
    if chars == 0 {
        return Err(invalid(py, "custom_tag", value, tag::NOT_A_TAG));
    }
    if chars > tag::MAX_CHARS {
        let head = s.get_item(pyo3::types::PySlice::new(
            py,
            0,
            tag::SHOWN_CHARS as isize,
            1,
        ))?;
        let shown = head.add("...")?;
        return Err(invalid(py, "custom_tag", &shown, &tag::too_long(chars)));
    }
    match s.to_cow() {
        Ok(text) if !tag::has_control(&text) => Ok(Some(text.into_owned())),
        // A lone surrogate cannot be encoded as UTF-8: to_cow fails.
        _ => Err(invalid(py, "custom_tag", value, tag::NOT_TEXT)),
    }
}

/// A contract symbol or id: a non-empty string.
fn contract_key(value: &Bound<'_, PyAny>) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) if !s.to_cow()?.trim().is_empty() => Ok(s.to_cow()?.into_owned()),
        _ => Err(invalid(
            value.py(),
            "contract_id",
            value,
            "must be a contract symbol or id",
        )),
    }
}

/// `None` or `{"stop_loss"?: {ticks, type}, "take_profit"?: {ticks, type}}` (any Mapping).
fn brackets(
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Option<api::Bracket>, Option<api::Bracket>)> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok((None, None));
    };
    let bad = || {
        invalid(
            value.py(),
            "brackets",
            value,
            "must map stop_loss/take_profit to {ticks, type}",
        )
    };
    let mapping = value.cast::<PyMapping>().map_err(|_| bad())?;
    let strict_int = |item: Option<Bound<'_, PyAny>>| -> Option<i64> {
        let item = item?;
        if item.is_instance_of::<PyBool>() || !item.is_instance_of::<PyInt>() {
            return None;
        }
        item.extract::<i64>().ok()
    };
    let one = |key: &str| -> PyResult<Option<api::Bracket>> {
        let item = match mapping.get_item(key) {
            Ok(item) if !item.is_none() => item,
            _ => return Ok(None),
        };
        let item = item.cast::<PyMapping>().map_err(|_| bad())?;
        let ticks = strict_int(item.get_item("ticks").ok()).ok_or_else(bad)?;
        let kind = strict_int(item.get_item("type").ok()).ok_or_else(bad)?;
        Ok(Some(api::Bracket {
            ticks,
            order_type: kind,
        }))
    };
    Ok((one("stop_loss")?, one("take_profit")?))
}

// ----- results as Python objects -----

impl ToPy for () {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(py.None().into_bound(py))
    }
}

impl ToPy for Placed {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok((
            self.order_id,
            self.custom_tag,
            self.reconciled,
            self.attempts,
        )
            .into_pyobject(py)?
            .into_any())
    }
}

impl ToPy for Vec<Account> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let list = PyList::empty(py);
        for a in self {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "id"), a.id.0)?;
            d.set_item(intern!(py, "name"), a.name)?;
            d.set_item(intern!(py, "balance"), a.balance)?;
            d.set_item(intern!(py, "can_trade"), a.can_trade)?;
            d.set_item(intern!(py, "is_visible"), a.is_visible)?;
            d.set_item(intern!(py, "simulated"), a.simulated)?;
            list.append(d)?;
        }
        Ok(list.into_any())
    }
}

impl ToPy for Arc<Contract> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let c = &*self;
        let d = PyDict::new(py);
        d.set_item(intern!(py, "id"), &c.id)?;
        d.set_item(intern!(py, "name"), &c.name)?;
        d.set_item(intern!(py, "description"), &c.description)?;
        d.set_item(intern!(py, "tick_size"), c.tick_size)?;
        d.set_item(intern!(py, "tick_value"), c.tick_value)?;
        d.set_item(intern!(py, "active_contract"), c.active_contract)?;
        d.set_item(intern!(py, "symbol_id"), c.symbol_id.as_deref())?;
        Ok(d.into_any())
    }
}

impl ToPy for Option<Order> {
    fn to_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let Some(o) = self else {
            return Ok(py.None().into_bound(py));
        };
        let d = PyDict::new(py);
        d.set_item(intern!(py, "id"), o.id.0)?;
        d.set_item(intern!(py, "account_id"), o.account_id.0)?;
        d.set_item(intern!(py, "contract_id"), o.contract_id)?;
        d.set_item(intern!(py, "status"), o.status)?;
        d.set_item(intern!(py, "type"), o.order_type)?;
        d.set_item(intern!(py, "side"), o.side)?;
        d.set_item(intern!(py, "size"), o.size)?;
        d.set_item(intern!(py, "limit_price"), o.limit_price)?;
        d.set_item(intern!(py, "stop_price"), o.stop_price)?;
        d.set_item(intern!(py, "fill_volume"), o.fill_volume)?;
        d.set_item(intern!(py, "filled_price"), o.filled_price)?;
        d.set_item(intern!(py, "custom_tag"), o.custom_tag)?;
        d.set_item(intern!(py, "creation_timestamp"), o.creation_timestamp)?;
        d.set_item(intern!(py, "update_timestamp"), o.update_timestamp)?;
        Ok(d.into_any())
    }
}

// ----- the Python class -----

/// Native ProjectX order client: every method returns an asyncio awaitable.
#[pyclass(frozen, module = "harness._native", name = "OrderClient")]
pub struct OrderClient {
    inner: Arc<Client>,
    bridge: Bridge,
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

    /// `Account/search` -> list of account dicts.
    #[pyo3(signature = (only_active=true))]
    fn accounts<'py>(&self, py: Python<'py>, only_active: bool) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        self.bridge
            .spawn(py, async move { client.accounts(only_active).await })
    }

    /// A contract dict by symbol or id (cached).
    fn resolve_contract<'py>(
        &self,
        py: Python<'py>,
        symbol_or_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = contract_key(symbol_or_id)?;
        let client = self.inner.clone();
        self.bridge
            .spawn(py, async move { client.resolve_contract(&key).await })
    }

    /// `Order/place` -> `(order_id, custom_tag, reconciled, attempts)`.
    #[pyo3(signature = (account_id, contract_id, side, size, *, r#type=None, limit_price=None,
        stop_price=None, trail_price=None, custom_tag=None, brackets=None))]
    #[allow(clippy::too_many_arguments)]
    fn place_order<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        contract_id: &Bound<'py, PyAny>,
        side: &Bound<'py, PyAny>,
        size: &Bound<'py, PyAny>,
        r#type: Option<&Bound<'py, PyAny>>,
        limit_price: Option<&Bound<'py, PyAny>>,
        stop_price: Option<&Bound<'py, PyAny>>,
        trail_price: Option<&Bound<'py, PyAny>>,
        custom_tag: Option<&Bound<'py, PyAny>>,
        brackets: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The order of checks is the one of `harness/orders/validation.py`.
        let account_id = positive_int("account_id", account_id)?;
        let contract = contract_key(contract_id)?;
        let side = self::side(side)?;
        let size = positive_int("size", size)?;
        let order_type = match r#type.filter(|t| !t.is_none()) {
            Some(t) => self::order_type(t)?,
            None => 2,
        };
        let (limit_price_obj, stop_price_obj, trail_price_obj) =
            (limit_price, stop_price, trail_price);
        let limit_price = price("limit_price", limit_price)?;
        let stop_price = price("stop_price", stop_price)?;
        let trail_price = price("trail_price", trail_price)?;
        let custom_tag = self::custom_tag(custom_tag)?;
        let (stop_loss_bracket, take_profit_bracket) = self::brackets(brackets)?;
        prices_for_type(
            py,
            order_type,
            [limit_price_obj, stop_price_obj, trail_price_obj],
        )?;
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
            stop_loss_bracket,
            take_profit_bracket,
        };
        let client = self.inner.clone();
        self.bridge
            .spawn(py, async move { client.place_order(params).await })
    }

    /// A market order -> `(order_id, custom_tag, reconciled, attempts)`.
    #[pyo3(signature = (account_id, contract_id, side, size, *, custom_tag=None))]
    fn place_market_order<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        contract_id: &Bound<'py, PyAny>,
        side: &Bound<'py, PyAny>,
        size: &Bound<'py, PyAny>,
        custom_tag: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = PlaceParams {
            account_id: positive_int("account_id", account_id)?,
            contract: contract_key(contract_id)?,
            side: self::side(side)?,
            size: positive_int("size", size)?,
            order_type: 2,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            custom_tag: self::custom_tag(custom_tag)?,
            stop_loss_bracket: None,
            take_profit_bracket: None,
        };
        let client = self.inner.clone();
        self.bridge
            .spawn(py, async move { client.place_order(params).await })
    }

    /// `Order/modify` -> None.
    #[pyo3(signature = (account_id, order_id, *, size=None, limit_price=None, stop_price=None,
        trail_price=None))]
    #[allow(clippy::too_many_arguments)]
    fn modify_order<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        order_id: &Bound<'py, PyAny>,
        size: Option<&Bound<'py, PyAny>>,
        limit_price: Option<&Bound<'py, PyAny>>,
        stop_price: Option<&Bound<'py, PyAny>>,
        trail_price: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let account_id = positive_int("account_id", account_id)?;
        let order_id = OrderId(positive_int("order_id", order_id)?);
        let size = match size.filter(|s| !s.is_none()) {
            Some(s) => Some(positive_int("size", s)?),
            None => None,
        };
        let request = ModifyRequest {
            account_id,
            order_id,
            size,
            limit_price: price("limit_price", limit_price)?,
            stop_price: price("stop_price", stop_price)?,
            trail_price: price("trail_price", trail_price)?,
        };
        if request.size.is_none()
            && request.limit_price.is_none()
            && request.stop_price.is_none()
            && request.trail_price.is_none()
        {
            return Err(invalid(
                py,
                "modify",
                &py.None().into_bound(py),
                "give at least one of size, limit_price, stop_price, trail_price",
            ));
        }
        let client = self.inner.clone();
        self.bridge
            .spawn(py, async move { client.modify_order(request).await })
    }

    /// `Order/cancel` -> None.
    fn cancel_order<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        order_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let account_id = positive_int("account_id", account_id)?;
        let order_id = positive_int("order_id", order_id)?;
        let client = self.inner.clone();
        self.bridge.spawn(py, async move {
            client.cancel_order(account_id, order_id).await
        })
    }

    /// The order dict carrying `tag`, or None.
    fn find_order_by_tag<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        tag: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let account_id = positive_int("account_id", account_id)?;
        let tag = self::custom_tag(Some(tag))?
            .ok_or_else(|| invalid(py, "custom_tag", tag, tag::NOT_A_TAG))?;
        let client = self.inner.clone();
        self.bridge.spawn(py, async move {
            client.find_order_by_tag(account_id, &tag).await
        })
    }

    /// The order dict with `order_id`, or None.
    fn get_order<'py>(
        &self,
        py: Python<'py>,
        account_id: &Bound<'py, PyAny>,
        order_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let account_id = positive_int("account_id", account_id)?;
        let order_id = positive_int("order_id", order_id)?;
        let client = self.inner.clone();
        self.bridge.spawn(
            py,
            async move { client.get_order(account_id, order_id).await },
        )
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
        self.bridge.spawn(py, async move {
            let nothing: Option<()> = None;
            #[allow(clippy::unnecessary_literal_unwrap)]
            nothing.expect("panic probe");
            Ok(())
        })
    }
}
