//! The order client's errors in plain Rust, one variant per class of `harness.errors`.
//!
//! `py.rs` turns them into the Python classes; everything here is testable without Python.

use super::api::{self, Endpoint};

/// A caller's value, kept for the error text (`invalid field=value: reason`).
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A string (printed quoted, as Python's `repr`).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

/// What the broker answered (or failed to answer), carried by every broker error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Human-readable summary (never contains a key or token).
    pub message: String,
    /// The endpoint path, e.g. `/api/Order/place`.
    pub endpoint: &'static str,
    /// The envelope's `errorCode`, when there was one.
    pub error_code: Option<i64>,
    /// The envelope's `errorMessage`, when there was one.
    pub error_message: Option<String>,
    /// HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// HTTP requests made for this call.
    pub attempts: u32,
    /// Whether the broker may have processed the request.
    pub maybe_sent: bool,
}

/// Every way an order-client call fails; each maps to one class of `harness.errors`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    /// `InvalidInputError(field, value, reason)`: refused before anything was sent.
    #[error("invalid {field}={value:?}: {reason}")]
    InvalidInput {
        field: &'static str,
        value: InputValue,
        reason: String,
    },
    /// `OrderRejectedError`: HTTP 200 with `success: false` (or a code disagreeing).
    #[error("{}", .0.message)]
    Rejected(Failure),
    /// `NotFoundError`: the order or contract does not exist.
    #[error("{}", .0.message)]
    NotFound(Failure),
    /// `AuthError`: credentials refused, or a 401 survived a fresh login.
    #[error("{}", .0.message)]
    Auth(Failure),
    /// `RateLimitedError`: 429 through every retry; the last `Retry-After` in seconds.
    #[error("{}", .0.message)]
    RateLimited(Failure, Option<f64>),
    /// `BrokerUnavailableError`: transport failure, time-out or 5xx.
    #[error("{}", .0.message)]
    Unavailable(Failure),
}

impl OrderError {
    /// The broker facts, unless this is an input error.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            OrderError::InvalidInput { .. } => None,
            OrderError::Rejected(f)
            | OrderError::NotFound(f)
            | OrderError::Auth(f)
            | OrderError::RateLimited(f, _)
            | OrderError::Unavailable(f) => Some(f),
        }
    }

    /// This error, marked as ending a call an earlier attempt of which may have been
    /// processed by the broker (`maybe_sent`); input errors are left as they are.
    pub fn maybe_sent(mut self) -> OrderError {
        match &mut self {
            OrderError::InvalidInput { .. } => {}
            OrderError::Rejected(f)
            | OrderError::NotFound(f)
            | OrderError::Auth(f)
            | OrderError::RateLimited(f, _)
            | OrderError::Unavailable(f) => f.maybe_sent = true,
        }
        self
    }

    /// Name of the `harness.errors` class this error is raised as.
    pub fn class_name(&self) -> &'static str {
        match self {
            OrderError::InvalidInput { .. } => "InvalidInputError",
            OrderError::Rejected(_) => "OrderRejectedError",
            OrderError::NotFound(_) => "NotFoundError",
            OrderError::Auth(_) => "AuthError",
            OrderError::RateLimited(..) => "RateLimitedError",
            OrderError::Unavailable(_) => "BrokerUnavailableError",
        }
    }

    /// Error for a contract that does not resolve.
    pub fn unknown_contract(value: &str) -> OrderError {
        OrderError::InvalidInput {
            field: "contract_id",
            value: InputValue::Str(value.to_owned()),
            reason: "unknown contract".to_owned(),
        }
    }
}

/// Map an HTTP-200 business failure (`success: false`) to its class.
pub fn business_failure(
    endpoint: Endpoint,
    error_code: Option<i64>,
    error_message: Option<&str>,
    attempts: u32,
) -> OrderError {
    let failure = Failure {
        message: format!(
            "{} failed: errorCode={} {}",
            endpoint.path,
            error_code.map_or_else(|| "null".to_owned(), |c| c.to_string()),
            error_message.unwrap_or("")
        )
        .trim_end()
        .to_owned(),
        endpoint: endpoint.path,
        error_code,
        error_message: error_message.map(str::to_owned),
        http_status: Some(200),
        attempts,
        maybe_sent: false,
    };
    if endpoint == api::LOGIN_KEY || endpoint == api::VALIDATE {
        OrderError::Auth(failure)
    } else if api::is_not_found(endpoint, error_code) {
        OrderError::NotFound(failure)
    } else {
        OrderError::Rejected(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_failures_map_per_endpoint() {
        let e = business_failure(api::ORDER_CANCEL, Some(2), Some("Order not found"), 1);
        assert_eq!(e.class_name(), "NotFoundError");
        let e = business_failure(api::ORDER_PLACE, Some(2), Some("duplicate customTag"), 1);
        assert_eq!(e.class_name(), "OrderRejectedError");
        let f = e.failure().unwrap();
        assert_eq!(f.error_code, Some(2));
        assert_eq!(f.http_status, Some(200));
        assert!(!f.maybe_sent);
        assert_eq!(f.endpoint, "/api/Order/place");
        let e = business_failure(api::CONTRACT_SEARCH_BY_ID, Some(1), None, 1);
        assert_eq!(e.class_name(), "NotFoundError");
        let e = business_failure(api::LOGIN_KEY, Some(3), None, 1);
        assert_eq!(e.class_name(), "AuthError");
        let e = business_failure(api::ORDER_MODIFY, Some(3), None, 2);
        assert_eq!(e.class_name(), "OrderRejectedError");
        assert_eq!(e.failure().unwrap().attempts, 2);
    }

    #[test]
    fn input_errors_name_field_and_value() {
        let e = OrderError::unknown_contract("XYZ");
        assert_eq!(e.class_name(), "InvalidInputError");
        assert!(e.failure().is_none());
        assert!(e.to_string().contains("contract_id"));
        assert!(e.to_string().contains("XYZ"));
    }
}
