//! Build: every request of the Rust client, as its endpoint and the exact bytes it sends.
//!
//! Pure (no I/O, no clock): the arguments come checked (by `harness.orders.args` in Python),
//! and what a request needs beyond them is passed in (the resolved contract's id and tick, a
//! search's start time). The bytes equal the Python build's (`harness/orders/python/build.py`)
//! for the same arguments: same fields in the same order, written by `json::to_vec`.

use super::api::{self, Bracket, Endpoint, ModifyRequest, OrderId};
use super::clock;
use super::error::{InputValue, OrderError};
use super::json;
use super::prices;

/// A request ready to send: the endpoint and its JSON body (the auth header aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where it goes (its path, and whether it may be repeated blindly).
    pub endpoint: Endpoint,
    /// The body exactly as sent.
    pub body: Vec<u8>,
}

/// What `place_order` takes, already checked by the caller (`harness.orders.args.PlaceArgs`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceParams {
    pub account_id: i64,
    /// The contract symbol or id as given (resolved by the client).
    pub contract: String,
    pub side: i64,
    pub size: i64,
    pub order_type: i64,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub trail_price: Option<f64>,
    /// `None`: the client makes one.
    pub custom_tag: Option<String>,
    pub stop_loss_bracket: Option<Bracket>,
    pub take_profit_bracket: Option<Bracket>,
}

fn request<B: serde::Serialize>(endpoint: Endpoint, body: &B) -> Result<Request, OrderError> {
    let body = json::to_vec(body).map_err(|e| OrderError::InvalidInput {
        field: "body",
        value: InputValue::Str(String::new()),
        reason: e.to_string(),
    })?;
    Ok(Request { endpoint, body })
}

/// `Order/place` of `p` on the resolved contract (`contract_id`, `tick_size`): each price
/// checked against and snapped onto the tick grid in the order limit, stop, trail (the first
/// off it is `InvalidInput`), `custom_tag` sent.
pub fn place(
    p: &PlaceParams,
    contract_id: &str,
    tick_size: f64,
    custom_tag: &str,
) -> Result<Request, OrderError> {
    let [limit_price, stop_price, trail_price] =
        prices::grid_prices([p.limit_price, p.stop_price, p.trail_price], tick_size)?;
    request(
        api::ORDER_PLACE,
        &api::PlaceRequest {
            account_id: p.account_id,
            contract_id,
            order_type: p.order_type,
            side: p.side,
            size: p.size,
            limit_price,
            stop_price,
            trail_price,
            custom_tag,
            stop_loss_bracket: p.stop_loss_bracket,
            take_profit_bracket: p.take_profit_bracket,
        },
    )
}

/// `Order/modify`: the prices snapped onto the grid of `tick_size` (the order's contract;
/// `None` when unknown: sent as given). Returns the modification as sent (for reconciling
/// against the order) and the request.
pub fn modify(
    m: &ModifyRequest,
    tick_size: Option<f64>,
) -> Result<(ModifyRequest, Request), OrderError> {
    let mut sent = *m;
    let given = [m.limit_price, m.stop_price, m.trail_price];
    if let Some(tick) = tick_size.filter(|_| given.iter().any(Option::is_some)) {
        [sent.limit_price, sent.stop_price, sent.trail_price] = prices::grid_prices(given, tick)?;
    }
    let built = request(api::ORDER_MODIFY, &sent)?;
    Ok((sent, built))
}

/// `Order/cancel`.
pub fn cancel(account_id: i64, order_id: i64) -> Result<Request, OrderError> {
    let body = api::OrderRefRequest {
        account_id,
        order_id: OrderId(order_id),
    };
    request(api::ORDER_CANCEL, &body)
}

/// `Order/search` from `start_unix_s` (sent as ISO-8601 UTC with microseconds): the look-up of
/// an order by customTag.
pub fn search_by_tag(account_id: i64, start_unix_s: f64) -> Result<Request, OrderError> {
    let body = api::OrderSearchRequest {
        account_id,
        start_timestamp: clock::iso_utc(start_unix_s),
    };
    request(api::ORDER_SEARCH, &body)
}

/// `Order/searchById`.
pub fn search_by_id(account_id: i64, order_id: i64) -> Result<Request, OrderError> {
    let body = api::OrderRefRequest {
        account_id,
        order_id: OrderId(order_id),
    };
    request(api::ORDER_SEARCH_BY_ID, &body)
}

/// `Auth/loginKey` (the body carries the API key: never logged or traced).
pub fn login(username: &str, api_key: &str) -> Result<Request, OrderError> {
    let body = api::LoginRequest {
        user_name: username,
        api_key,
    };
    request(api::LOGIN_KEY, &body)
}

/// `Auth/validate`: no body; the current token goes in the header.
pub fn validate() -> Request {
    Request {
        endpoint: api::VALIDATE,
        body: Vec::new(),
    }
}

/// `Account/search`.
pub fn accounts(only_active: bool) -> Result<Request, OrderError> {
    let body = api::AccountSearchRequest {
        only_active_accounts: only_active,
    };
    request(api::ACCOUNT_SEARCH, &body)
}

/// `Contract/search` for a symbol, among contracts that are not live-only.
pub fn contract_search(symbol: &str) -> Result<Request, OrderError> {
    let body = api::ContractSearchRequest {
        search_text: symbol,
        live: false,
    };
    request(api::CONTRACT_SEARCH, &body)
}

/// `Contract/searchById`.
pub fn contract_by_id(contract_id: &str) -> Result<Request, OrderError> {
    request(
        api::CONTRACT_SEARCH_BY_ID,
        &api::ContractByIdRequest { contract_id },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(price: f64, tag: Option<&str>) -> PlaceParams {
        PlaceParams {
            account_id: 1001,
            contract: "MGC".to_owned(),
            side: 1,
            size: 2,
            order_type: 1,
            limit_price: Some(price),
            stop_price: None,
            trail_price: None,
            custom_tag: tag.map(str::to_owned),
            stop_loss_bracket: Some(Bracket {
                ticks: 8,
                order_type: 4,
            }),
            take_profit_bracket: None,
        }
    }

    fn text(r: &Request) -> &str {
        std::str::from_utf8(&r.body).unwrap()
    }

    #[test]
    fn a_placement_snaps_its_price_and_carries_the_tag() {
        let r = place(
            &limit(2621.8999999999996, None),
            "CON.F.US.MGC.Z26",
            0.1,
            "t-é",
        )
        .unwrap();
        assert_eq!(r.endpoint, api::ORDER_PLACE);
        assert_eq!(
            text(&r),
            r#"{"accountId":1001,"contractId":"CON.F.US.MGC.Z26","type":1,"side":1,"size":2,"limitPrice":2621.9,"stopPrice":null,"trailPrice":null,"customTag":"t-\u00e9","stopLossBracket":{"ticks":8,"type":4}}"#
        );
        let off = place(&limit(2621.85, None), "CON.F.US.MGC.Z26", 0.1, "t").unwrap_err();
        assert_eq!(off.class_name(), "InvalidInputError");
    }

    #[test]
    fn a_modify_sends_only_what_changes_snapped_when_the_tick_is_known() {
        let m = ModifyRequest {
            account_id: 1001,
            order_id: OrderId(7),
            limit_price: Some(2621.8999999999996),
            ..ModifyRequest::default()
        };
        let (sent, r) = modify(&m, Some(0.1)).unwrap();
        assert_eq!(sent.limit_price, Some(2621.9));
        assert_eq!(
            text(&r),
            r#"{"accountId":1001,"orderId":7,"limitPrice":2621.9}"#
        );
        let (_, as_given) = modify(&m, None).unwrap();
        assert_eq!(
            text(&as_given),
            r#"{"accountId":1001,"orderId":7,"limitPrice":2621.8999999999996}"#
        );
    }

    #[test]
    fn look_ups_and_cancel() {
        assert_eq!(
            text(&cancel(1001, 9).unwrap()),
            r#"{"accountId":1001,"orderId":9}"#
        );
        assert_eq!(
            text(&search_by_tag(1001, 1_752_872_401.268_009).unwrap()),
            r#"{"accountId":1001,"startTimestamp":"2025-07-18T21:00:01.268009+00:00"}"#
        );
        assert_eq!(
            search_by_id(1, 2).unwrap().endpoint,
            api::ORDER_SEARCH_BY_ID
        );
        assert!(validate().body.is_empty());
    }
}
