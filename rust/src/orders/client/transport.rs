//! Send: one request at a time, repeated when that is safe, recorded when the call is traced.
//!
//! A request that certainly was not processed (connection refused, HTTP 429) is repeated on
//! the backoff schedule, and so is any request to an idempotent endpoint (searches, log-in)
//! after a 5xx or a lost answer. A 401 and a mutation whose outcome is unknown go back to the
//! caller (`Stop::Unauthorized`, `Stop::Ambiguous`): it logs in again, or reconciles. The
//! answer itself is judged by the call's read step (`orders::read`).

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};

use super::super::api::Endpoint;
use super::super::build::Request;
use super::super::clock;
use super::super::error::{Failure, OrderError};
use super::super::read::{unavailable, Answer};
use super::super::retry::parse_retry_after;
use super::super::trace::{self, NoAnswer};
use super::Client;

/// How sending a request ended, when it did not succeed.
pub(super) enum Stop {
    /// A final error to give the caller.
    Failed(OrderError),
    /// HTTP 401: log in again (once) and repeat.
    Unauthorized,
    /// A mutation whose outcome is unknown: reconcile before anything else.
    Ambiguous(Failure),
}

impl From<OrderError> for Stop {
    fn from(e: OrderError) -> Stop {
        Stop::Failed(e)
    }
}

/// What one HTTP request produced.
enum Reply {
    /// An answer: its status, raw body and (non-200) `Retry-After` in seconds.
    Answer(u16, Vec<u8>, Option<f64>),
    /// Nothing was written: the connection could not be made.
    NotSent(String),
    /// Written, but no complete answer (time-out, reset, truncated body).
    Lost(String),
}

/// Why an attempt failed, before deciding whether to repeat it.
enum Failed {
    RateLimited(Failure, Option<f64>),
    NotSent(Failure),
    Lost(Failure),
}

impl Client {
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
        let retry_after = if status == 200 {
            None
        } else {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, clock::unix_now()))
        };
        // The whole body, whatever the status (as httpx reads it): the read step judges it,
        // and a connection whose answer was read to its end goes back to the pool.
        match response.bytes().await {
            Ok(bytes) => Reply::Answer(status, bytes.to_vec(), retry_after),
            Err(e) => Reply::Lost(describe(&e)),
        }
    }

    /// Send `req` (with `auth`, if any) until `read` accepts an answer or the policy of the
    /// module ends the call. `attempts` counts the requests of the whole call.
    pub(super) async fn exchange<T, F>(
        &self,
        req: &Request,
        auth: Option<&HeaderValue>,
        attempts: &mut u32,
        read: &F,
    ) -> Result<T, Stop>
    where
        F: Fn(&Answer<'_>, u32) -> Result<T, OrderError>,
    {
        let ep = req.endpoint;
        loop {
            *attempts += 1;
            let n = *attempts;
            let failed = match self.send_once(ep, &req.body, auth).await {
                Reply::Answer(status, body, retry_after) => {
                    trace::record(ep, &req.body, Ok((status, &body, retry_after)));
                    let answer = Answer {
                        status,
                        body: &body,
                        retry_after,
                    };
                    match read(&answer, n) {
                        Ok(value) => return Ok(value),
                        Err(OrderError::Auth(f)) if f.http_status == Some(401) => {
                            return Err(Stop::Unauthorized)
                        }
                        Err(OrderError::RateLimited(f, advice)) => Failed::RateLimited(f, advice),
                        // An unreadable answer or a 5xx; one that is not `maybe_sent` would
                        // read the same however often it is asked: final.
                        Err(OrderError::Unavailable(f)) if f.maybe_sent => Failed::Lost(f),
                        Err(e) => return Err(Stop::Failed(e)),
                    }
                }
                Reply::NotSent(what) => {
                    trace::record(ep, &req.body, Err(NoAnswer::NotSent));
                    Failed::NotSent(unavailable(ep, &what, None, n, false))
                }
                Reply::Lost(what) => {
                    trace::record(ep, &req.body, Err(NoAnswer::Lost));
                    Failed::Lost(unavailable(ep, &what, None, n, true))
                }
            };
            let advice = match failed {
                Failed::Lost(f) if !ep.idempotent => return Err(Stop::Ambiguous(f)),
                Failed::RateLimited(_, advice) => advice,
                _ => None,
            };
            let Some(delay) = self.backoff.delay_after(n, advice) else {
                return Err(Stop::Failed(match failed {
                    Failed::RateLimited(f, advice) => OrderError::RateLimited(f, advice),
                    Failed::NotSent(f) | Failed::Lost(f) => OrderError::Unavailable(f),
                }));
            };
            let cap = self.settings.max_retry_after_s;
            if let Some(advice) = advice.filter(|a| *a > cap) {
                return Err(Stop::Failed(OrderError::RateLimited(
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
        }
    }

    /// `req` sent on the session (logging in or refreshing as needed); a 401 leads to one
    /// fresh log-in and one repeat.
    pub(super) async fn call<T, F>(
        &self,
        req: &Request,
        attempts: &mut u32,
        read: &F,
    ) -> Result<T, Stop>
    where
        F: Fn(&Answer<'_>, u32) -> Result<T, OrderError>,
    {
        let mut session = self.session().await?;
        let mut relogged = false;
        loop {
            match self
                .exchange(req, Some(&session.header), attempts, read)
                .await
            {
                Err(Stop::Unauthorized) if !relogged => {
                    relogged = true;
                    session = self.relogin(session.generation).await?;
                }
                Err(Stop::Unauthorized) => {
                    return Err(Stop::Failed(OrderError::Auth(Failure {
                        message: format!(
                            "{} refused the session (HTTP 401) after a fresh login",
                            req.endpoint.path
                        ),
                        endpoint: req.endpoint.path,
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

    /// An authenticated read (never ambiguous: reads are repeated inside `exchange`).
    pub(super) async fn fetch<T, F>(&self, req: &Request, read: &F) -> Result<T, OrderError>
    where
        F: Fn(&Answer<'_>, u32) -> Result<T, OrderError>,
    {
        let mut attempts = 0;
        self.call(req, &mut attempts, read)
            .await
            .map_err(|e| settle(req.endpoint, e, attempts))
    }
}

pub(super) fn auth_failure(
    ep: Endpoint,
    what: &str,
    status: Option<u16>,
    attempts: u32,
) -> OrderError {
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

/// Turn how a send ended into the caller's error.
pub(super) fn settle(ep: Endpoint, e: Stop, attempts: u32) -> OrderError {
    match e {
        Stop::Failed(e) => e,
        Stop::Ambiguous(f) => OrderError::Unavailable(f),
        Stop::Unauthorized => auth_failure(ep, "unauthorized (HTTP 401)", Some(401), attempts),
    }
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
