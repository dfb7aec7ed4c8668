//! Read: an answer's HTTP status and raw body -> the result, or the error the client raises.
//!
//! Pure (no I/O, no clock), and the same decisions as the Python read
//! (`harness/orders/python/read.py`): HTTP 200 with a JSON object whose `success` is true and
//! whose `errorCode` agrees is a success, read per endpoint; `success: false` (or a code that
//! contradicts it) is a business failure per endpoint (`error::business_failure`); 401 `Auth`,
//! 429 `RateLimited`, 5xx and unreadable bodies `Unavailable` with `maybe_sent`, any other
//! status `Rejected`. `attempts` is the count of requests the call has made so far. Whether
//! to try again is the send step's decision, taken from the error.

use serde::de::DeserializeOwned;

use super::api::{self, Contract, Endpoint, Envelope, Order};
use super::error::{business_failure, Failure, OrderError};

/// An answer as it came back: the HTTP status, the raw body, and a non-200 answer's
/// `Retry-After` in seconds (as read on receipt).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
    pub retry_after: Option<f64>,
}

/// What a placement returns (mirrors `PlacedOrder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub order_id: i64,
    pub custom_tag: String,
    pub reconciled: bool,
    pub attempts: u32,
}

/// The broker out of reach, or an answer that says nothing (`what` says why).
pub fn unavailable(
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

fn plain(ep: Endpoint, message: String, status: u16, attempts: u32) -> Failure {
    Failure {
        message,
        endpoint: ep.path,
        error_code: None,
        error_message: None,
        http_status: Some(status),
        attempts,
        maybe_sent: false,
    }
}

/// The envelope of a successful answer to `ep` (with its payload), or the error it means.
pub fn answer<R: DeserializeOwned + Envelope>(
    ep: Endpoint,
    a: &Answer<'_>,
    attempts: u32,
) -> Result<R, OrderError> {
    match a.status {
        200 => {
            // serde would read a JSON array as a struct's fields: only an object is an answer.
            if a.body.trim_ascii_start().first() != Some(&b'{') {
                let what = match serde_json::from_slice::<serde::de::IgnoredAny>(a.body) {
                    Ok(_) => "unreadable answer: not an object".to_owned(),
                    Err(e) => format!("unreadable answer: {e}"),
                };
                return Err(OrderError::Unavailable(unavailable(
                    ep,
                    &what,
                    Some(200),
                    attempts,
                    true,
                )));
            }
            match serde_json::from_slice::<R>(a.body) {
                Ok(r) if r.succeeded() => Ok(r),
                Ok(r) => Err(business_failure(
                    ep,
                    r.error_code(),
                    r.error_message(),
                    attempts,
                )),
                Err(e) => Err(OrderError::Unavailable(unavailable(
                    ep,
                    &format!("unreadable answer: {e}"),
                    Some(200),
                    attempts,
                    true,
                ))),
            }
        }
        401 => Err(OrderError::Auth(plain(
            ep,
            format!("{} refused the session (HTTP 401)", ep.path),
            401,
            attempts,
        ))),
        429 => Err(OrderError::RateLimited(
            plain(
                ep,
                format!(
                    "{} rate limited (HTTP 429) after {attempts} attempts",
                    ep.path
                ),
                429,
                attempts,
            ),
            a.retry_after,
        )),
        status if status >= 500 => Err(OrderError::Unavailable(unavailable(
            ep,
            &format!("HTTP {status}"),
            Some(status),
            attempts,
            true,
        ))),
        status => Err(OrderError::Rejected(plain(
            ep,
            format!("{} answered HTTP {status}", ep.path),
            status,
            attempts,
        ))),
    }
}

/// `Order/place` -> `Placed`; a success without an order id is `Unavailable` with
/// `maybe_sent` (the order may stand: reconcile by tag).
pub fn place(a: &Answer<'_>, custom_tag: &str, attempts: u32) -> Result<Placed, OrderError> {
    let ep = api::ORDER_PLACE;
    match answer::<api::PlaceResponse>(ep, a, attempts)?.order_id.0 {
        Some(id) => Ok(Placed {
            order_id: id.0,
            custom_tag: custom_tag.to_owned(),
            reconciled: false,
            attempts,
        }),
        None => Err(OrderError::Unavailable(unavailable(
            ep,
            "success without an orderId",
            Some(200),
            attempts,
            true,
        ))),
    }
}

/// `Order/modify`: `()`, or the error (code 2: `NotFound`).
pub fn modify(a: &Answer<'_>, attempts: u32) -> Result<(), OrderError> {
    answer::<api::EmptyResponse>(api::ORDER_MODIFY, a, attempts).map(drop)
}

/// `Order/cancel`: `()`, or the error (code 2: `NotFound`).
pub fn cancel(a: &Answer<'_>, attempts: u32) -> Result<(), OrderError> {
    answer::<api::EmptyResponse>(api::ORDER_CANCEL, a, attempts).map(drop)
}

/// `Order/search` -> the first order carrying `custom_tag`, or `None`.
pub fn search_by_tag(
    a: &Answer<'_>,
    custom_tag: &str,
    attempts: u32,
) -> Result<Option<Order>, OrderError> {
    let r: api::OrdersResponse = answer(api::ORDER_SEARCH, a, attempts)?;
    Ok(r.orders
        .into_iter()
        .find(|o| o.custom_tag.as_deref() == Some(custom_tag)))
}

/// `Order/searchById` -> the order if it is `order_id`; `None` when the broker answers
/// `success: false` (no such order) or an answer without it.
pub fn search_by_id(
    a: &Answer<'_>,
    order_id: i64,
    attempts: u32,
) -> Result<Option<Order>, OrderError> {
    match answer::<api::OrderResponse>(api::ORDER_SEARCH_BY_ID, a, attempts) {
        Ok(r) => Ok(r.order.filter(|o| o.id.0 == order_id)),
        Err(OrderError::Rejected(f)) if f.http_status == Some(200) => Ok(None),
        Err(OrderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Account/search` -> the accounts.
pub fn accounts(a: &Answer<'_>, attempts: u32) -> Result<Vec<api::Account>, OrderError> {
    answer::<api::AccountsResponse>(api::ACCOUNT_SEARCH, a, attempts).map(|r| r.accounts)
}

/// `Contract/searchById` -> the contract `id` (the answer's `contract`, or the older docs'
/// `contracts` list); `None` when the broker does not know it (code 1).
pub fn contract_by_id(
    a: &Answer<'_>,
    id: &str,
    attempts: u32,
) -> Result<Option<Contract>, OrderError> {
    match answer::<api::ContractsResponse>(api::CONTRACT_SEARCH_BY_ID, a, attempts) {
        Ok(r) => Ok(r
            .contract
            .into_iter()
            .chain(r.contracts)
            .find(|c| c.id == id)),
        Err(OrderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Contract/search` -> the contract `symbol` names (`pick_contract`), or `None`.
pub fn contract_search(
    a: &Answer<'_>,
    symbol: &str,
    attempts: u32,
) -> Result<Option<Contract>, OrderError> {
    let r: api::ContractsResponse = answer(api::CONTRACT_SEARCH, a, attempts)?;
    Ok(pick_contract(r.contracts, symbol))
}

/// The contract a symbol names among search rows: the symbol's own root, active first.
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

    fn ok(body: &str) -> Answer<'_> {
        Answer {
            status: 200,
            body: body.as_bytes(),
            retry_after: None,
        }
    }

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
    fn a_placement_reads_its_order_id_or_says_it_may_stand() {
        let placed = place(
            &ok(r#"{"success":true,"errorCode":0,"orderId":"77"}"#),
            "t",
            2,
        );
        assert_eq!(
            placed,
            Ok(Placed {
                order_id: 77,
                custom_tag: "t".to_owned(),
                reconciled: false,
                attempts: 2
            })
        );
        let err = place(&ok(r#"{"success":true,"errorCode":0}"#), "t", 1).unwrap_err();
        let f = err.failure().unwrap();
        assert_eq!(
            (err.class_name(), f.maybe_sent),
            ("BrokerUnavailableError", true)
        );
        let rejected = place(
            &ok(r#"{"success":false,"errorCode":2,"orderId":5}"#),
            "t",
            1,
        );
        assert_eq!(rejected.unwrap_err().class_name(), "OrderRejectedError");
    }

    #[test]
    fn statuses_map_to_their_classes() {
        let with = |status, retry_after| Answer {
            status,
            body: b"",
            retry_after,
        };
        let ep = api::ORDER_CANCEL;
        let class = |a: Answer<'_>| answer::<api::EmptyResponse>(ep, &a, 3).unwrap_err();
        let e = class(with(401, None));
        assert_eq!(
            (e.class_name(), e.failure().unwrap().http_status),
            ("AuthError", Some(401))
        );
        match class(with(429, Some(1.5))) {
            OrderError::RateLimited(f, advice) => {
                assert_eq!((f.attempts, advice), (3, Some(1.5)));
                assert_eq!(
                    f.message,
                    "/api/Order/cancel rate limited (HTTP 429) after 3 attempts"
                );
            }
            other => panic!("{other:?}"),
        }
        let e = class(with(503, None));
        assert!(e.failure().unwrap().maybe_sent);
        assert_eq!(e.class_name(), "BrokerUnavailableError");
        assert_eq!(class(with(400, None)).class_name(), "OrderRejectedError");
        for body in ["[]", "[true]", "\"pong\"", "not json", "{\"success\":tru"] {
            let e = answer::<api::EmptyResponse>(ep, &ok(body), 1).unwrap_err();
            let f = e.failure().unwrap();
            assert_eq!(
                (e.class_name(), f.maybe_sent),
                ("BrokerUnavailableError", true),
                "{body}"
            );
            assert!(f.message.contains("unreadable answer"), "{body}");
        }
    }

    #[test]
    fn a_search_by_id_reads_a_refusal_as_no_order() {
        let none = search_by_id(&ok(r#"{"success":false,"errorCode":1}"#), 5, 1);
        assert_eq!(none.map(|o| o.is_none()), Ok(true));
        let other = search_by_id(&ok(r#"{"success":true,"order":{"id":6}}"#), 5, 1);
        assert_eq!(other.map(|o| o.is_none()), Ok(true));
        let found = search_by_id(&ok(r#"{"success":true,"order":{"id":"5"}}"#), 5, 1);
        assert_eq!(found.map(|o| o.map(|o| o.id.0)), Ok(Some(5)));
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
}
