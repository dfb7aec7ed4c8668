//! The order client core in plain Rust (no Python here; `py` is the thin binding).
//!
//! Every call is build (`orders::build`) -> send (`transport`: one pooled keep-alive HTTP/1
//! connection pool, retries, the session of `session`) -> read (`orders::read`). The rooms:
//! - `mod.rs`: the client's state (settings, per-process transport, token and contract
//!   caches) and its life cycle;
//! - `transport`: sending one request, what may be repeated, the trace;
//! - `session`: log-in, refresh, log-in again after a 401;
//! - `lookups`: accounts, contracts (cached), orders by tag or id;
//! - `mutations`: place, modify, cancel, and the reconciliation of an unknown outcome.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::api::{self, Contract};
use super::auth::TokenCache;
use super::retry::Backoff;
use super::runtime::this_process;

mod lookups;
mod mutations;
mod session;
mod transport;

#[cfg(test)]
mod fake_broker;
#[cfg(test)]
mod tests;

pub use super::build::PlaceParams;
pub use super::read::Placed;

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

/// Makes ring the TLS crypto provider of this extension's rustls before the first client is built.
///
/// reqwest is built with `rustls-no-provider` (Cargo.toml says why) and takes the process-default
/// provider, erring without one. The default lives in this module's own statically linked copy
/// of rustls, so no other extension in the interpreter is affected; `Err` from `install_default`
/// means one is already installed, which is the goal.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Transport {
    fn new(settings: &Settings) -> Result<Transport, String> {
        install_crypto_provider();
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
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn custom_tags_are_hx_and_24_hex_and_unique() {
        let a = new_custom_tag();
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("hx-"));
        assert!(a[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_custom_tag());
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
