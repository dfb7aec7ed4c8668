//! The order client core in plain Rust: one pooled keep-alive HTTP/1 connection pool, the
//! token cache, the contract cache, retries, and reconciliation of mutations whose outcome is
//! unknown. No Python here; `py.rs` is the thin binding.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{self, Contract, Endpoint, Envelope, ModifyRequest, Order, OrderId};
use super::auth::{Session, TokenCache};
use super::clock;
use super::error::{business_failure, Failure, InputValue, OrderError};
use super::prices;
use super::retry::{parse_retry_after, Backoff};
use super::runtime::this_process;

/// How many placed orders' contracts are remembered (for the tick grid of a later modify).
pub const REMEMBERED_ORDERS: usize = 4096;

/// How long before a placement call began its own look-ups search, in seconds: room for a
/// client clock that far ahead of the broker's (`harness.orders.reconcile`, the same figure).
pub const RECONCILE_CLOCK_ALLOWANCE_S: f64 = 300.0;

/// How the client is set up (mirrors `harness.orders.ClientSettings`).
#[derive(Clone)]
pub struct Settings {
    /// Gateway base URL, e.g. `http://127.0.0.1:8787`.
    pub base_url: String,
    /// `userName` for `Auth/loginKey`.
    pub username: String,
    /// The API key: secret, never printed.
    pub api_key: String,
    /// Whole-request time-out.
    pub timeout: Duration,
    /// Connection-establishment time-out.
    pub connect_timeout: Duration,
    /// Delays between attempts, in seconds.
    pub retry_delays_s: Vec<f64>,
    /// Randomise each delay within [50%, 150%).
    pub jitter: bool,
    /// How far back `find_order_by_tag` searches, in seconds.
    pub reconcile_lookback_s: f64,
    /// Most pooled keep-alive connections kept open.
    pub max_connections: usize,
    /// Longest `Retry-After` (seconds, finite, >= 0) waited before repeating a 429'd request;
    /// a longer advice ends the call at once with `RateLimited`.
    pub max_retry_after_s: f64,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What `place_order` sends, already checked for shape by the caller.
#[derive(Debug, Clone)]
pub struct PlaceParams {
    pub account_id: i64,
    pub contract: String,
    pub side: i64,
    pub size: i64,
    pub order_type: i64,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub trail_price: Option<f64>,
    pub custom_tag: Option<String>,
    pub stop_loss_bracket: Option<api::Bracket>,
    pub take_profit_bracket: Option<api::Bracket>,
}

/// Result of a placement (mirrors `PlacedOrder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order_id: i64,
    pub custom_tag: String,
    pub reconciled: bool,
    pub attempts: u32,
}

/// How one exchange with the broker ended, when it did not succeed.
enum Exchange {
    /// A final error to give the caller.
    Failed(OrderError),
    /// HTTP 401: log in again (once) and repeat.
    Unauthorized,
    /// A mutation whose outcome is unknown: reconcile before anything else.
    Ambiguous(Failure),
}

impl From<OrderError> for Exchange {
    fn from(e: OrderError) -> Exchange {
        Exchange::Failed(e)
    }
}

/// What one HTTP request produced.
enum Reply {
    /// HTTP 200 and its body.
    Answer(Vec<u8>),
    /// Any other status.
    Status(u16, Option<f64>),
    /// Nothing was written: the connection could not be made.
    NotSent(String),
    /// Written, but no complete answer (time-out, reset, truncated body).
    Lost(String),
}

/// What a client keeps per process, rebuilt (and the parent's leaked) in a forked child: the
/// connection pool (its sockets, and their registration with the runtime's epoll instance,
/// are shared with the parent), the in-flight limit and the refresh lock (a parent's task may
/// hold a permit or the lock at the instant of the fork, and would never give it back).
struct Transport {
    pid: u32,
    http: reqwest::Client,
    /// At most `max_connections` requests in flight (reqwest itself only bounds idle ones).
    in_flight: tokio::sync::Semaphore,
    /// Held while logging in or validating, so that only one task does it.
    refresh_lock: tokio::sync::Mutex<()>,
}

impl Transport {
    fn new(settings: &Settings) -> Result<Transport, String> {
        let http = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .no_proxy()
            .pool_max_idle_per_host(settings.max_connections.max(1))
            .pool_idle_timeout(Duration::from_secs(50))
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let max_in_flight = settings
            .max_connections
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Ok(Transport {
            pid: this_process(),
            http,
            in_flight: tokio::sync::Semaphore::new(max_in_flight),
            refresh_lock: tokio::sync::Mutex::new(()),
        })
    }
}

/// The ProjectX order client: cheap to share (`Arc`), safe across tasks and threads, and
/// usable in a process forked after it was used.
pub struct Client {
    /// This process's transport (owned; see `transport()` for the life of the pointer).
    transport: AtomicPtr<Transport>,
    urls: Vec<reqwest::Url>,
    settings: Settings,
    backoff: Backoff,
    tokens: TokenCache,
    contracts: RwLock<HashMap<String, Arc<Contract>>>,
    /// The contract id of each order this client placed (or read for a modify), oldest first.
    order_contracts: Mutex<(HashMap<i64, String>, VecDeque<i64>)>,
}

impl Drop for Client {
    fn drop(&mut self) {
        let transport = *self.transport.get_mut();
        // SAFETY: the pointer came from `Box::into_raw` and is freed only here, once. A
        // transport built in another process (the parent of a fork) is leaked instead: its
        // sockets are registered in an epoll instance the parent still uses.
        unsafe {
            if (*transport).pid == this_process() {
                drop(Box::from_raw(transport));
            }
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.settings.base_url)
            .field("username", &self.settings.username)
            .finish_non_exhaustive()
    }
}

/// A fresh random customTag: `hx-` and 24 hex digits.
pub fn new_custom_tag() -> String {
    let high: u64 = rand::random();
    let low: u32 = rand::random();
    format!("hx-{high:016x}{low:08x}")
}

impl Client {
    /// Build the client and its connection pool; nothing is sent until the first call.
    pub fn new(settings: Settings) -> Result<Client, String> {
        let base = settings.base_url.trim_end_matches('/');
        let urls = api::ENDPOINTS
            .iter()
            .map(|ep| {
                reqwest::Url::parse(&format!("{base}{}", ep.path))
                    .map_err(|e| format!("invalid base_url {:?}: {e}", settings.base_url))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(settings.max_retry_after_s.is_finite() && settings.max_retry_after_s >= 0.0) {
            return Err("max_retry_after_s must be a number of seconds >= 0".to_owned());
        }
        let transport = Box::into_raw(Box::new(Transport::new(&settings)?));
        let backoff = Backoff::new(&settings.retry_delays_s, settings.jitter);
        Ok(Client {
            transport: AtomicPtr::new(transport),
            urls,
            settings,
            backoff,
            tokens: TokenCache::default(),
            contracts: RwLock::new(HashMap::new()),
            order_contracts: Mutex::new((HashMap::new(), VecDeque::new())),
        })
    }

    /// This process's transport; in a forked child, a fresh one on first use (the parent's
    /// is leaked: see `Transport`).
    fn transport(&self) -> Result<&Transport, String> {
        let current = self.transport.load(Ordering::Acquire);
        // SAFETY: the pointer is never null and a transport is freed only when the client is
        // dropped (`Drop`), so it lives as long as `&self`; one replaced in a child is leaked.
        let transport = unsafe { &*current };
        if transport.pid == this_process() {
            return Ok(transport);
        }
        let fresh = Box::into_raw(Box::new(Transport::new(&self.settings)?));
        match self
            .transport
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // SAFETY: `fresh` now belongs to the client (freed by `Drop`); `current` is leaked.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(winner) => {
                // Another task of this process installed one first: use it, free ours.
                // SAFETY: `fresh` was never shared; `winner` lives like `current` above.
                unsafe {
                    drop(Box::from_raw(fresh));
                    Ok(&*winner)
                }
            }
        }
    }

    /// Base URL and user name (what a repr may show).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Forget the session, the contract cache and the orders' contracts (idle connections
    /// close when dropped).
    pub fn close(&self) {
        self.tokens.clear();
        if let Ok(mut map) = self.contracts.write() {
            map.clear();
        }
        if let Ok(mut orders) = self.order_contracts.lock() {
            orders.0.clear();
            orders.1.clear();
        }
    }

    // ----- transport -----

    async fn send_once(&self, ep: Endpoint, body: &[u8], auth: Option<&HeaderValue>) -> Reply {
        let transport = match self.transport() {
            Ok(t) => t,
            Err(reason) => return Reply::NotSent(reason),
        };
        // Never closed, so acquiring cannot fail; a queued request waits like the Python
        // client's slots.
        let _permit = transport.in_flight.acquire().await.ok();
        let mut request = transport
            .http
            .post(self.urls[ep.index].clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body.to_vec());
        if let Some(header) = auth {
            request = request.header(AUTHORIZATION, header.clone());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Reply::NotSent(describe(&e)),
            Err(e) => return Reply::Lost(describe(&e)),
        };
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, clock::unix_now()));
            return Reply::Status(status, retry_after);
        }
        match response.bytes().await {
            Ok(bytes) => Reply::Answer(bytes.to_vec()),
            Err(e) => Reply::Lost(describe(&e)),
        }
    }

    /// One request with retries for what certainly was not processed (and, on idempotent
    /// endpoints, for 5xx and lost answers). 401 and ambiguous mutations go back to the caller.
    async fn exchange<R: DeserializeOwned + Envelope>(
        &self,
        ep: Endpoint,
        body: &[u8],
        auth: Option<&HeaderValue>,
        attempts: &mut u32,
    ) -> Result<R, Exchange> {
        loop {
            *attempts += 1;
            let n = *attempts;
            let (failure, retry_after) = match self.send_once(ep, body, auth).await {
                Reply::Answer(bytes) => match serde_json::from_slice::<R>(&bytes) {
                    Ok(r) if r.succeeded() => return Ok(r),
                    Ok(r) => {
                        return Err(Exchange::Failed(business_failure(
                            ep,
                            r.error_code(),
                            r.error_message(),
                            n,
                        )))
                    }
                    Err(e) => (
                        Failed::Lost(format!("unreadable answer: {e}"), Some(200)),
                        None,
                    ),
                },
                Reply::Status(401, _) => return Err(Exchange::Unauthorized),
                Reply::Status(429, retry_after) => (Failed::RateLimited, retry_after),
                Reply::Status(status, _) if status >= 500 => {
                    (Failed::Lost(format!("HTTP {status}"), Some(status)), None)
                }
                Reply::Status(status, _) => {
                    return Err(Exchange::Failed(OrderError::Rejected(Failure {
                        message: format!("{} answered HTTP {status}", ep.path),
                        endpoint: ep.path,
                        error_code: None,
                        error_message: None,
                        http_status: Some(status),
                        attempts: n,
                        maybe_sent: false,
                    })))
                }
                Reply::NotSent(what) => (Failed::NotSent(what), None),
                Reply::Lost(what) => (Failed::Lost(what, None), None),
            };
            if let Failed::Lost(what, status) = &failure {
                if !ep.idempotent {
                    return Err(Exchange::Ambiguous(unavailable(ep, what, *status, n, true)));
                }
            }
            if let Some(delay) = self.backoff.delay_after(n, retry_after) {
                let cap = self.settings.max_retry_after_s;
                if let Some(advice) = retry_after.filter(|a| *a > cap) {
                    return Err(Exchange::Failed(OrderError::RateLimited(
                        Failure {
                            message: format!(
                                "{} rate limited (HTTP 429) after {n} attempts: Retry-After \
                                 {advice:.3} s is beyond max_retry_after_s {cap:.3} s",
                                ep.path
                            ),
                            endpoint: ep.path,
                            error_code: None,
                            error_message: None,
                            http_status: Some(429),
                            attempts: n,
                            maybe_sent: false,
                        },
                        Some(advice),
                    )));
                }
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(Exchange::Failed(match failure {
                Failed::RateLimited => OrderError::RateLimited(
                    Failure {
                        message: format!("{} rate limited (HTTP 429) after {n} attempts", ep.path),
                        endpoint: ep.path,
                        error_code: None,
                        error_message: None,
                        http_status: Some(429),
                        attempts: n,
                        maybe_sent: false,
                    },
                    retry_after,
                ),
                Failed::NotSent(what) => {
                    OrderError::Unavailable(unavailable(ep, &what, None, n, false))
                }
                Failed::Lost(what, status) => {
                    OrderError::Unavailable(unavailable(ep, &what, status, n, true))
                }
            }));
        }
    }

    /// An authenticated exchange: a session is obtained (logging in or validating as needed),
    /// and a 401 leads to one fresh login and one repeat.
    async fn call_raw<R: DeserializeOwned + Envelope>(
        &self,
        ep: Endpoint,
        body: &[u8],
        attempts: &mut u32,
    ) -> Result<R, Exchange> {
        let mut session = self.session().await?;
        let mut relogged = false;
        loop {
            match self
                .exchange::<R>(ep, body, Some(&session.header), attempts)
                .await
            {
                Err(Exchange::Unauthorized) if !relogged => {
                    relogged = true;
                    session = self.relogin(session.generation).await?;
                }
                Err(Exchange::Unauthorized) => {
                    return Err(Exchange::Failed(OrderError::Auth(Failure {
                        message: format!(
                            "{} refused the session (HTTP 401) after a fresh login",
                            ep.path
                        ),
                        endpoint: ep.path,
                        error_code: None,
                        error_message: None,
                        http_status: Some(401),
                        attempts: *attempts,
                        maybe_sent: false,
                    })))
                }
                other => return other,
            }
        }
    }

    /// An authenticated read (never ambiguous: reads are retried inside `exchange`).
    async fn read<B: Serialize, R: DeserializeOwned + Envelope>(
        &self,
        ep: Endpoint,
        body: &B,
    ) -> Result<R, OrderError> {
        let body = to_json(body)?;
        let mut attempts = 0;
        self.call_raw(ep, &body, &mut attempts)
            .await
            .map_err(|e| settle(ep, e, attempts))
    }

    // ----- session -----

    async fn session(&self) -> Result<Arc<Session>, OrderError> {
        if let Some(s) = self.tokens.current() {
            if !s.due(Instant::now()) {
                return Ok(s);
            }
        }
        let transport = self.transport().map_err(|what| {
            OrderError::Unavailable(unavailable(api::LOGIN_KEY, &what, None, 0, false))
        })?;
        let _guard = transport.refresh_lock.lock().await;
        match self.tokens.current() {
            Some(s) if !s.due(Instant::now()) => Ok(s),
            Some(s) => match self.validate(&s).await {
                Ok(fresh) => Ok(fresh),
                Err(_) => self.login().await,
            },
            None => self.login().await,
        }
    }

    async fn relogin(&self, stale_generation: u64) -> Result<Arc<Session>, OrderError> {
        let transport = self.transport().map_err(|what| {
            OrderError::Unavailable(unavailable(api::LOGIN_KEY, &what, None, 0, false))
        })?;
        let _guard = transport.refresh_lock.lock().await;
        if let Some(s) = self.tokens.current() {
            if s.generation != stale_generation && !s.due(Instant::now()) {
                return Ok(s);
            }
        }
        self.login().await
    }

    /// `Auth/loginKey`; call with the refresh lock held.
    async fn login(&self) -> Result<Arc<Session>, OrderError> {
        let ep = api::LOGIN_KEY;
        let body = to_json(&api::LoginRequest {
            user_name: &self.settings.username,
            api_key: &self.settings.api_key,
        })?;
        let mut attempts = 0;
        let answer = self
            .exchange::<api::LoginResponse>(ep, &body, None, &mut attempts)
            .await;
        let token = match answer {
            Ok(r) => r.token,
            Err(Exchange::Unauthorized) => {
                return Err(auth_failure(
                    ep,
                    "login refused (HTTP 401)",
                    Some(401),
                    attempts,
                ))
            }
            Err(e) => return Err(settle(ep, e, attempts)),
        };
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            auth_failure(
                ep,
                "login answered success without a token",
                Some(200),
                attempts,
            )
        })?;
        self.tokens.store(&token, clock::unix_now()).ok_or_else(|| {
            auth_failure(ep, "login answered an unusable token", Some(200), attempts)
        })
    }

    /// `Auth/validate` with the current token; call with the refresh lock held.
    async fn validate(&self, session: &Session) -> Result<Arc<Session>, OrderError> {
        let ep = api::VALIDATE;
        let mut attempts = 0;
        let answer = self
            .exchange::<api::ValidateResponse>(ep, b"", Some(&session.header), &mut attempts)
            .await;
        let token = match answer {
            Ok(r) => r.new_token,
            Err(Exchange::Unauthorized) => {
                return Err(auth_failure(
                    ep,
                    "session expired (HTTP 401)",
                    Some(401),
                    attempts,
                ))
            }
            Err(e) => return Err(settle(ep, e, attempts)),
        };
        match token.filter(|t| !t.is_empty()) {
            Some(t) => self.tokens.store(&t, clock::unix_now()).ok_or_else(|| {
                auth_failure(
                    ep,
                    "validate answered an unusable token",
                    Some(200),
                    attempts,
                )
            }),
            None => Err(auth_failure(
                ep,
                "validate answered no token",
                Some(200),
                attempts,
            )),
        }
    }

    // ----- reads -----

    /// `Account/search`.
    pub async fn accounts(&self, only_active: bool) -> Result<Vec<api::Account>, OrderError> {
        let body = api::AccountSearchRequest {
            only_active_accounts: only_active,
        };
        let r: api::AccountsResponse = self.read(api::ACCOUNT_SEARCH, &body).await?;
        Ok(r.accounts)
    }

    /// A contract by symbol (`MNQ`) or full id (`CON.F.US.MNQ.Z26`), cached.
    pub async fn resolve_contract(&self, key: &str) -> Result<Arc<Contract>, OrderError> {
        if let Some(c) = self.cached_contract(key) {
            return Ok(c);
        }
        let key = key.trim();
        if key.is_empty() {
            return Err(OrderError::unknown_contract(key));
        }
        let found = if key.contains('.') {
            self.contract_by_id(key).await?
        } else {
            self.contract_by_symbol(key).await?
        };
        let contract = Arc::new(found.ok_or_else(|| OrderError::unknown_contract(key))?);
        if let Ok(mut map) = self.contracts.write() {
            map.insert(key.to_owned(), contract.clone());
            map.insert(contract.id.clone(), contract.clone());
        }
        Ok(contract)
    }

    fn cached_contract(&self, key: &str) -> Option<Arc<Contract>> {
        self.contracts.read().ok()?.get(key).cloned()
    }

    async fn contract_by_id(&self, id: &str) -> Result<Option<Contract>, OrderError> {
        let body = api::ContractByIdRequest { contract_id: id };
        match self
            .read::<_, api::ContractsResponse>(api::CONTRACT_SEARCH_BY_ID, &body)
            .await
        {
            Ok(r) => Ok(r
                .contract
                .into_iter()
                .chain(r.contracts)
                .find(|c| c.id == id)),
            Err(OrderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn contract_by_symbol(&self, symbol: &str) -> Result<Option<Contract>, OrderError> {
        let body = api::ContractSearchRequest {
            search_text: symbol,
            live: false,
        };
        let r: api::ContractsResponse = self.read(api::CONTRACT_SEARCH, &body).await?;
        Ok(pick_contract(r.contracts, symbol))
    }

    /// The order carrying `tag` on `account_id`, searched over the reconcile look-back window.
    pub async fn find_order_by_tag(
        &self,
        account_id: i64,
        tag: &str,
    ) -> Result<Option<Order>, OrderError> {
        self.search_tag(account_id, tag, None).await
    }

    /// The order carrying `tag`, searched from `reconcile_lookback_s` ago, or (a placement's
    /// own look-up) from `RECONCILE_CLOCK_ALLOWANCE_S` before `since` if that is later: the
    /// order was created during the call, and a day of orders is not downloaded for it.
    async fn search_tag(
        &self,
        account_id: i64,
        tag: &str,
        since: Option<f64>,
    ) -> Result<Option<Order>, OrderError> {
        let mut start = clock::unix_now() - self.settings.reconcile_lookback_s.max(0.0);
        if let Some(began) = since {
            start = start.max(began - RECONCILE_CLOCK_ALLOWANCE_S);
        }
        let body = api::OrderSearchRequest {
            account_id,
            start_timestamp: clock::iso_utc(start),
        };
        let r: api::OrdersResponse = self.read(api::ORDER_SEARCH, &body).await?;
        Ok(r.orders
            .into_iter()
            .find(|o| o.custom_tag.as_deref() == Some(tag)))
    }

    /// One order by id (`None` when the broker has no such order).
    pub async fn get_order(
        &self,
        account_id: i64,
        order_id: i64,
    ) -> Result<Option<Order>, OrderError> {
        let body = api::OrderRefRequest {
            account_id,
            order_id: OrderId(order_id),
        };
        match self
            .read::<_, api::OrderResponse>(api::ORDER_SEARCH_BY_ID, &body)
            .await
        {
            Ok(r) => Ok(r.order.filter(|o| o.id.0 == order_id)),
            Err(OrderError::Rejected(f)) if f.http_status == Some(200) => Ok(None),
            Err(OrderError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ----- mutations -----

    /// `Order/place`; an unknown outcome is reconciled by customTag, never repeated blindly.
    pub async fn place_order(&self, p: PlaceParams) -> Result<Placed, OrderError> {
        let contract = self.resolve_contract(&p.contract).await?;
        let [limit_price, stop_price, trail_price] = prices::grid_prices(
            [p.limit_price, p.stop_price, p.trail_price],
            contract.tick_size,
        )?;
        let tag = p.custom_tag.unwrap_or_else(new_custom_tag);
        let body = to_json(&api::PlaceRequest {
            account_id: p.account_id,
            contract_id: &contract.id,
            order_type: p.order_type,
            side: p.side,
            size: p.size,
            limit_price,
            stop_price,
            trail_price,
            custom_tag: &tag,
            stop_loss_bracket: p.stop_loss_bracket,
            take_profit_bracket: p.take_profit_bracket,
        })?;
        let placed = self.place(p.account_id, tag, &body).await?;
        self.remember_contract(placed.order_id, &contract.id);
        Ok(placed)
    }

    /// Send a placement body; an unknown outcome is reconciled by `tag`.
    async fn place(&self, account_id: i64, tag: String, body: &[u8]) -> Result<Placed, OrderError> {
        let ep = api::ORDER_PLACE;
        let began = Some(clock::unix_now()); // the order, if it lands, is created after this
        let mut attempts = 0;
        let mut uncertain = false;
        loop {
            let failure = match self
                .call_raw::<api::PlaceResponse>(ep, body, &mut attempts)
                .await
            {
                Ok(api::PlaceResponse {
                    order_id: Some(id), ..
                }) => {
                    return Ok(Placed {
                        order_id: id.0,
                        custom_tag: tag,
                        reconciled: false,
                        attempts,
                    })
                }
                Ok(_) => unavailable(ep, "success without an orderId", Some(200), attempts, true),
                Err(Exchange::Ambiguous(f)) => f,
                Err(e) if uncertain => {
                    // An earlier attempt's outcome is unknown, and a repeat failed (most likely
                    // the duplicate-tag rejection: that attempt landed). Find the order, or
                    // say that it may stand.
                    if let Ok(Some(order)) = self.search_tag(account_id, &tag, began).await {
                        return Ok(reconciled(order, tag, attempts));
                    }
                    return Err(settle(ep, e, attempts).maybe_sent());
                }
                Err(e) => return Err(settle(ep, e, attempts)),
            };
            uncertain = true;
            if let Ok(Some(order)) = self.search_tag(account_id, &tag, began).await {
                return Ok(reconciled(order, tag, attempts));
            }
            match self.backoff.delay_after(attempts, None) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(OrderError::Unavailable(failure)),
            }
        }
    }

    /// Remember an order's contract (its tick grid serves a later modify).
    fn remember_contract(&self, order_id: i64, contract_id: &str) {
        let Ok(mut guard) = self.order_contracts.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.insert(order_id, contract_id.to_owned()).is_none() {
            order.push_back(order_id);
            if order.len() > REMEMBERED_ORDERS {
                if let Some(oldest) = order.pop_front() {
                    map.remove(&oldest);
                }
            }
        }
    }

    /// The tick size of an order's contract; `None` when the order or its contract is unknown
    /// (the modify then goes out as given and the broker judges it). A read that fails is the
    /// error of the modify, which is then not sent.
    async fn order_tick(&self, account_id: i64, order_id: i64) -> Result<Option<f64>, OrderError> {
        let known = self
            .order_contracts
            .lock()
            .ok()
            .and_then(|guard| guard.0.get(&order_id).cloned());
        let contract_id = match known {
            Some(id) => id,
            None => match self.get_order(account_id, order_id).await? {
                Some(order) => {
                    self.remember_contract(order_id, &order.contract_id);
                    order.contract_id
                }
                None => return Ok(None),
            },
        };
        match self.resolve_contract(&contract_id).await {
            Ok(contract) => Ok(Some(contract.tick_size)),
            Err(OrderError::InvalidInput { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `Order/modify`; a price is checked against (and snapped onto) the tick grid of the
    /// order's contract first; an unknown outcome is checked against the order before
    /// repeating.
    pub async fn modify_order(&self, mut m: ModifyRequest) -> Result<(), OrderError> {
        let given = [m.limit_price, m.stop_price, m.trail_price];
        if given.iter().any(Option::is_some) {
            if let Some(tick) = self.order_tick(m.account_id, m.order_id.0).await? {
                [m.limit_price, m.stop_price, m.trail_price] = prices::grid_prices(given, tick)?;
            }
        }
        let ep = api::ORDER_MODIFY;
        let body = to_json(&m)?;
        let done = |order: &Order| m.is_reflected_in(order);
        self.mutate(ep, &body, m.account_id, m.order_id.0, &done)
            .await
    }

    /// `Order/cancel`; an unknown outcome is checked against the order before repeating.
    pub async fn cancel_order(&self, account_id: i64, order_id: i64) -> Result<(), OrderError> {
        let ep = api::ORDER_CANCEL;
        let body = to_json(&api::OrderRefRequest {
            account_id,
            order_id: OrderId(order_id),
        })?;
        let done = |order: &Order| {
            matches!(
                order.status,
                api::status::CANCELLED | api::status::PENDING_CANCELLATION
            )
        };
        self.mutate(ep, &body, account_id, order_id, &done).await
    }

    /// Modify or cancel: on an unknown outcome read the order; `done` says whether the change
    /// already took effect; otherwise repeat on the backoff schedule.
    async fn mutate(
        &self,
        ep: Endpoint,
        body: &[u8],
        account_id: i64,
        order_id: i64,
        done: &(dyn Fn(&Order) -> bool + Sync),
    ) -> Result<(), OrderError> {
        let mut attempts = 0;
        let mut uncertain = false;
        loop {
            let failure = match self
                .call_raw::<api::EmptyResponse>(ep, body, &mut attempts)
                .await
            {
                Ok(_) => return Ok(()),
                Err(Exchange::Ambiguous(f)) => f,
                Err(e) if uncertain => {
                    // A repeat failed (refused: maybe because an earlier attempt already did it).
                    if let Ok(Some(order)) = self.get_order(account_id, order_id).await {
                        if done(&order) {
                            return Ok(());
                        }
                    }
                    return Err(settle(ep, e, attempts).maybe_sent());
                }
                Err(e) => return Err(settle(ep, e, attempts)),
            };
            uncertain = true;
            if let Ok(Some(order)) = self.get_order(account_id, order_id).await {
                if done(&order) {
                    return Ok(());
                }
            }
            match self.backoff.delay_after(attempts, None) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(OrderError::Unavailable(failure)),
            }
        }
    }
}

/// Why an attempt failed, before deciding whether to retry.
enum Failed {
    RateLimited,
    NotSent(String),
    Lost(String, Option<u16>),
}

fn to_json<B: Serialize>(body: &B) -> Result<Vec<u8>, OrderError> {
    // Serializing plain structs of numbers and strings cannot fail; map it anyway.
    serde_json::to_vec(body).map_err(|e| OrderError::InvalidInput {
        field: "body",
        value: InputValue::Str(String::new()),
        reason: e.to_string(),
    })
}

fn describe(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL (no secrets in it); add the innermost cause.
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "connection lost".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

fn unavailable(
    ep: Endpoint,
    what: &str,
    status: Option<u16>,
    attempts: u32,
    maybe_sent: bool,
) -> Failure {
    Failure {
        message: format!("{} unavailable after {attempts} attempts: {what}", ep.path),
        endpoint: ep.path,
        error_code: None,
        error_message: None,
        http_status: status,
        attempts,
        maybe_sent,
    }
}

fn auth_failure(ep: Endpoint, what: &str, status: Option<u16>, attempts: u32) -> OrderError {
    OrderError::Auth(Failure {
        message: format!("{}: {what}", ep.path),
        endpoint: ep.path,
        error_code: None,
        error_message: None,
        http_status: status,
        attempts,
        maybe_sent: false,
    })
}

/// Turn an exchange outcome into the caller's error.
fn settle(ep: Endpoint, e: Exchange, attempts: u32) -> OrderError {
    match e {
        Exchange::Failed(e) => e,
        Exchange::Ambiguous(f) => OrderError::Unavailable(f),
        Exchange::Unauthorized => auth_failure(ep, "unauthorized (HTTP 401)", Some(401), attempts),
    }
}

fn reconciled(order: Order, tag: String, attempts: u32) -> Placed {
    Placed {
        order_id: order.id.0,
        custom_tag: tag,
        reconciled: true,
        attempts,
    }
}

/// Pick the contract a symbol names among search rows: the symbol's own root, active first.
pub fn pick_contract(rows: Vec<Contract>, symbol: &str) -> Option<Contract> {
    let wanted = symbol.trim().to_ascii_uppercase();
    let root_of = |c: &Contract| -> Option<String> {
        c.symbol_id
            .as_deref()
            .and_then(|s| s.rsplit('.').next())
            .map(str::to_ascii_uppercase)
    };
    let matches = |c: &Contract| {
        root_of(c).as_deref() == Some(wanted.as_str())
            || c.name.eq_ignore_ascii_case(&wanted)
            || c.id
                .split('.')
                .nth(3)
                .is_some_and(|r| r.eq_ignore_ascii_case(&wanted))
    };
    let mut fallback = None;
    for c in rows {
        if matches(&c) {
            if c.active_contract {
                return Some(c);
            }
            fallback.get_or_insert(c);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(id: &str, symbol: &str, active: bool) -> Contract {
        Contract {
            id: id.to_owned(),
            name: id.rsplit('.').nth(1).unwrap_or("").to_owned(),
            symbol_id: Some(symbol.to_owned()),
            active_contract: active,
            tick_size: 0.25,
            ..Contract::default()
        }
    }

    #[test]
    fn custom_tags_are_hx_and_24_hex_and_unique() {
        let a = new_custom_tag();
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("hx-"));
        assert!(a[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_custom_tag());
    }

    #[test]
    fn symbols_pick_their_root_and_prefer_the_active_contract() {
        let rows = vec![
            contract("CON.F.US.MNQ.H27", "F.US.MNQ", false),
            contract("CON.F.US.MNQ.Z26", "F.US.MNQ", true),
            contract("CON.F.US.ENQ.Z26", "F.US.ENQ", true),
        ];
        assert_eq!(
            pick_contract(rows.clone(), "mnq").unwrap().id,
            "CON.F.US.MNQ.Z26"
        );
        assert_eq!(
            pick_contract(rows.clone(), "ENQ").unwrap().id,
            "CON.F.US.ENQ.Z26"
        );
        assert!(pick_contract(rows, "EP").is_none());
    }

    #[test]
    fn a_bad_base_url_is_refused_and_settings_hide_the_key() {
        let settings = Settings {
            base_url: "not a url".to_owned(),
            username: "u".to_owned(),
            api_key: "very-secret".to_owned(),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            retry_delays_s: vec![],
            jitter: false,
            reconcile_lookback_s: 60.0,
            max_connections: 1,
            max_retry_after_s: 1.0,
        };
        assert!(!format!("{settings:?}").contains("very-secret"));
        let err = Client::new(settings).unwrap_err();
        assert!(err.contains("base_url") && !err.contains("very-secret"));
    }
}
