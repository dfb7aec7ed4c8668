//! Recording what one call exchanged with the broker, when asked (`harness.orders.trace`).
//!
//! A traced call runs inside `RECORDER.scope(..)` (a tokio task-local): every request the
//! client sends while serving it, retries, log-ins and reconciling look-ups included, is
//! recorded there. An untraced call pays one task-local look-up per request and copies
//! nothing. The bridge hands the exchanges to Python before it settles the call's awaitable,
//! so a caller has them whether the call returned or raised.

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::api::{self, Endpoint};

/// The body recorded in place of one that carries a secret (`harness.orders.trace.REDACTED`).
pub const REDACTED: &[u8] = b"***";

/// Why no answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// The connection could not be made: nothing reached the broker.
    NotSent,
    /// The request was (or may have been) written; no complete answer came back.
    Lost,
}

impl NoAnswer {
    /// The text of `harness.orders.trace.Exchange.failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoAnswer::NotSent => "not_sent",
            NoAnswer::Lost => "lost",
        }
    }
}

/// One request and what came back (`harness.orders.trace.Exchange`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub path: &'static str,
    pub request: Vec<u8>,
    pub status: Option<u16>,
    pub response: Vec<u8>,
    pub retry_after: Option<f64>,
    pub failure: Option<NoAnswer>,
}

/// The exchanges of one traced call, in the order sent.
#[derive(Debug, Default)]
pub struct Recorder {
    exchanges: Mutex<Vec<Exchange>>,
}

impl Recorder {
    /// Everything recorded so far (the recorder is left empty).
    pub fn take(&self) -> Vec<Exchange> {
        match self.exchanges.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    fn push(&self, exchange: Exchange) {
        match self.exchanges.lock() {
            Ok(mut guard) => guard.push(exchange),
            Err(poisoned) => poisoned.into_inner().push(exchange),
        }
    }
}

tokio::task_local! {
    static RECORDER: Arc<Recorder>;
}

/// Run `work` with its exchanges recorded into `recorder`.
pub async fn traced<F: Future>(recorder: Arc<Recorder>, work: F) -> F::Output {
    RECORDER.scope(recorder, work).await
}

/// Record one exchange if the running call is traced; `answer` is the status, the raw body
/// and the `Retry-After` read, or why none came back. Bodies of the auth endpoints are
/// recorded as `REDACTED` (they carry the API key or a token).
pub fn record(
    endpoint: Endpoint,
    request: &[u8],
    answer: Result<(u16, &[u8], Option<f64>), NoAnswer>,
) {
    let _ = RECORDER.try_with(|recorder| {
        let secret = endpoint == api::LOGIN_KEY || endpoint == api::VALIDATE;
        let sent = if secret { REDACTED } else { request };
        let exchange = match answer {
            Ok((status, body, retry_after)) => Exchange {
                path: endpoint.path,
                request: sent.to_vec(),
                status: Some(status),
                response: if secret { REDACTED } else { body }.to_vec(),
                retry_after,
                failure: None,
            },
            Err(why) => Exchange {
                path: endpoint.path,
                request: sent.to_vec(),
                status: None,
                response: Vec::new(),
                retry_after: None,
                failure: Some(why),
            },
        };
        recorder.push(exchange);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_traced_call_records_and_secrets_are_redacted() {
        record(api::ORDER_PLACE, b"{}", Ok((200, b"{}", None))); // untraced: nothing
        let recorder = Arc::new(Recorder::default());
        traced(recorder.clone(), async {
            record(
                api::LOGIN_KEY,
                b"{\"apiKey\":\"k\"}",
                Ok((200, b"{\"token\":\"t\"}", None)),
            );
            record(api::ORDER_PLACE, b"{\"a\":1}", Ok((429, b"", Some(0.5))));
            record(api::ORDER_PLACE, b"{\"a\":1}", Err(NoAnswer::Lost));
        })
        .await;
        let seen = recorder.take();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            (seen[0].request.as_slice(), seen[0].response.as_slice()),
            (REDACTED, REDACTED)
        );
        assert_eq!(
            (seen[1].status, seen[1].retry_after),
            (Some(429), Some(0.5))
        );
        assert_eq!(
            (seen[2].status, seen[2].failure),
            (None, Some(NoAnswer::Lost))
        );
        assert!(recorder.take().is_empty());
    }
}
