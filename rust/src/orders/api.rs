//! Facts of the ProjectX Gateway API on the wire: paths, per-endpoint error codes, request and
//! response bodies, and how an answer's envelope is read.
//!
//! Mirrors `harness/projectx.py` (the Python side's source of the same facts); the API itself
//! is summed up in `docs/projectx-api.md`.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

use super::json::finite;

/// An API endpoint: its path and whether repeating it blindly is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Position in `ENDPOINTS` (the client keeps one parsed URL per endpoint).
    pub index: usize,
    /// Path below the base URL, e.g. `/api/Order/place`.
    pub path: &'static str,
    /// A search, login or validate: repeating it changes nothing at the broker.
    pub idempotent: bool,
}

/// `Auth/loginKey`.
pub const LOGIN_KEY: Endpoint = Endpoint {
    index: 0,
    path: "/api/Auth/loginKey",
    idempotent: true,
};
/// `Auth/validate`.
pub const VALIDATE: Endpoint = Endpoint {
    index: 1,
    path: "/api/Auth/validate",
    idempotent: true,
};
/// `Account/search`.
pub const ACCOUNT_SEARCH: Endpoint = Endpoint {
    index: 2,
    path: "/api/Account/search",
    idempotent: true,
};
/// `Contract/search`.
pub const CONTRACT_SEARCH: Endpoint = Endpoint {
    index: 3,
    path: "/api/Contract/search",
    idempotent: true,
};
/// `Contract/searchById`.
pub const CONTRACT_SEARCH_BY_ID: Endpoint = Endpoint {
    index: 4,
    path: "/api/Contract/searchById",
    idempotent: true,
};
/// `Order/place`.
pub const ORDER_PLACE: Endpoint = Endpoint {
    index: 5,
    path: "/api/Order/place",
    idempotent: false,
};
/// `Order/modify`.
pub const ORDER_MODIFY: Endpoint = Endpoint {
    index: 6,
    path: "/api/Order/modify",
    idempotent: false,
};
/// `Order/cancel`.
pub const ORDER_CANCEL: Endpoint = Endpoint {
    index: 7,
    path: "/api/Order/cancel",
    idempotent: false,
};
/// `Order/search`.
pub const ORDER_SEARCH: Endpoint = Endpoint {
    index: 8,
    path: "/api/Order/search",
    idempotent: true,
};
/// `Order/searchById`.
pub const ORDER_SEARCH_BY_ID: Endpoint = Endpoint {
    index: 9,
    path: "/api/Order/searchById",
    idempotent: true,
};

/// Every endpoint the client calls, in a fixed order (index = `EndpointId`).
pub const ENDPOINTS: [Endpoint; 10] = [
    LOGIN_KEY,
    VALIDATE,
    ACCOUNT_SEARCH,
    CONTRACT_SEARCH,
    CONTRACT_SEARCH_BY_ID,
    ORDER_PLACE,
    ORDER_MODIFY,
    ORDER_CANCEL,
    ORDER_SEARCH,
    ORDER_SEARCH_BY_ID,
];

/// `errorCode` 2 of `Order/place`: OrderRejected (duplicate customTag included).
pub const PLACE_ORDER_REJECTED: i64 = 2;
/// `errorCode` 2 of `Order/modify` and `Order/cancel`: OrderNotFound.
pub const MODIFY_CANCEL_ORDER_NOT_FOUND: i64 = 2;
/// `errorCode` 1 of `Contract/searchById`: ContractNotFound.
pub const CONTRACT_NOT_FOUND: i64 = 1;

/// OrderStatus values the reconciliation reads.
pub mod status {
    /// Open.
    pub const OPEN: i64 = 1;
    /// Filled.
    pub const FILLED: i64 = 2;
    /// Cancelled.
    pub const CANCELLED: i64 = 3;
    /// Expired.
    pub const EXPIRED: i64 = 4;
    /// Rejected.
    pub const REJECTED: i64 = 5;
    /// PendingCancellation.
    pub const PENDING_CANCELLATION: i64 = 7;
}

/// Whether a business failure (HTTP 200, `success: false`) means "no such thing".
pub fn is_not_found(endpoint: Endpoint, code: Option<i64>) -> bool {
    match code {
        Some(MODIFY_CANCEL_ORDER_NOT_FOUND)
            if endpoint == ORDER_MODIFY || endpoint == ORDER_CANCEL =>
        {
            true
        }
        Some(CONTRACT_NOT_FOUND) if endpoint == CONTRACT_SEARCH_BY_ID => true,
        _ => false,
    }
}

/// The envelope every answer carries: `{"success", "errorCode", "errorMessage"}`.
pub trait Envelope {
    /// `success`.
    fn success(&self) -> bool;
    /// `errorCode` when it is an integer (absent, null or anything else reads as `None`).
    fn error_code(&self) -> Option<i64>;
    /// `errorCode` is absent, null or zero: it does not contradict `success`.
    fn code_agrees(&self) -> bool;
    /// `errorMessage` when it is a string.
    fn error_message(&self) -> Option<&str>;
    /// The answer is a success only when `success` is true and `errorCode` agrees (0 or absent).
    fn succeeded(&self) -> bool {
        self.success() && self.code_agrees()
    }
}

/// `errorCode` read the way the Python client reads it, so both sides judge odd answers alike:
/// an integer is a code; absent, null, a numeric zero or `false` agrees with success; anything
/// else (a string, `true`, a fraction) is no code and contradicts success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The code, when the answer carried an integer.
    pub int: Option<i64>,
    /// Absent, null or numerically zero.
    pub agrees: bool,
}

impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode {
            int: None,
            agrees: true,
        }
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Null => ErrorCode::default(),
            // Python compares the code with 0, and `False == 0` there: false agrees.
            serde_json::Value::Bool(b) => ErrorCode {
                int: None,
                agrees: !b,
            },
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(code) => ErrorCode {
                    int: Some(code),
                    agrees: code == 0,
                },
                None => ErrorCode {
                    int: None,
                    agrees: n.as_f64() == Some(0.0),
                },
            },
            _ => ErrorCode {
                int: None,
                agrees: false,
            },
        })
    }
}

/// `success` is true only when it is the JSON `true` (as the Python client's `is True`).
fn only_true<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(matches!(
        serde_json::Value::deserialize(deserializer)?,
        serde_json::Value::Bool(true)
    ))
}

/// `errorMessage` when it is a string; anything else reads as absent.
fn text_or_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

macro_rules! response {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(default, deserialize_with = "only_true")]
            pub success: bool,
            #[serde(default)]
            pub error_code: ErrorCode,
            #[serde(default, deserialize_with = "text_or_none")]
            pub error_message: Option<String>,
            $(#[serde(default, deserialize_with = "nullable")] pub $field: $ty,)*
        }
        impl Envelope for $name {
            fn success(&self) -> bool { self.success }
            fn error_code(&self) -> Option<i64> { self.error_code.int }
            fn code_agrees(&self) -> bool { self.error_code.agrees }
            fn error_message(&self) -> Option<&str> { self.error_message.as_deref() }
        }
    };
}

response!(
    /// Answer of `Auth/loginKey`.
    LoginResponse { token: Option<String> }
);
response!(
    /// Answer of `Auth/validate`.
    ValidateResponse { new_token: Option<String> }
);
response!(
    /// Answer of `Account/search`.
    AccountsResponse { accounts: Vec<Account> }
);
response!(
    /// Answer of `Contract/search` (and of `searchById` in the older `contracts` form).
    ContractsResponse { contracts: Vec<Contract>, contract: Option<Contract> }
);
response!(
    /// Answer of `Order/place`.
    PlaceResponse { order_id: MaybeId }
);

/// A placement's `orderId`: an id, or `None` for anything that is not one (absent, null, a
/// fraction, text, a bool, out of range), as the Python read takes it: the answer then names
/// no order (`success without an orderId`), rather than being unreadable as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaybeId(pub Option<OrderId>);

impl<'de> Deserialize<'de> for MaybeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(MaybeId(OrderId::deserialize(value).ok()))
    }
}
response!(
    /// Answer of `Order/modify` and `Order/cancel`: the envelope alone.
    EmptyResponse {}
);
response!(
    /// Answer of `Order/search`.
    OrdersResponse { orders: Vec<Order> }
);
response!(
    /// Answer of `Order/searchById`.
    OrderResponse { order: Option<Order> }
);

/// A field that may be null: null reads as the type's default (as the Python side's
/// `row.get(key) or default` does), so one null never makes a whole answer unreadable.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An account row of `Account/search`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Account {
    #[serde(deserialize_with = "nullable")]
    pub id: OrderId,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub balance: f64,
    #[serde(deserialize_with = "nullable")]
    pub can_trade: bool,
    #[serde(deserialize_with = "nullable")]
    pub is_visible: bool,
    #[serde(deserialize_with = "nullable")]
    pub simulated: bool,
}

/// A contract row of `Contract/search` / `searchById`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Contract {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub tick_size: f64,
    #[serde(deserialize_with = "nullable")]
    pub tick_value: f64,
    #[serde(deserialize_with = "nullable")]
    pub active_contract: bool,
    pub symbol_id: Option<String>,
}

/// An order row of `Order/search` / `searchById`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Order {
    #[serde(deserialize_with = "nullable")]
    pub id: OrderId,
    #[serde(deserialize_with = "nullable")]
    pub account_id: OrderId,
    #[serde(deserialize_with = "nullable")]
    pub contract_id: String,
    #[serde(deserialize_with = "nullable")]
    pub status: i64,
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub order_type: i64,
    #[serde(deserialize_with = "nullable")]
    pub side: i64,
    #[serde(deserialize_with = "nullable")]
    pub size: i64,
    pub limit_price: Option<f64>,
    pub stop_price: Option<f64>,
    pub fill_volume: Option<i64>,
    pub filled_price: Option<f64>,
    pub custom_tag: Option<String>,
    pub creation_timestamp: Option<String>,
    pub update_timestamp: Option<String>,
}

/// An order (or account) id: read from a JSON number or a numeric string, always written as a
/// number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OrderId(pub i64);

impl OrderId {
    /// Parse a numeric string (surrounding whitespace allowed, nothing else).
    pub fn parse(text: &str) -> Option<OrderId> {
        let t = text.trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<i64>().ok().map(OrderId)
    }
}

impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = OrderId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an order id as a JSON integer or a numeric string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OrderId, E> {
                Ok(OrderId(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OrderId, E> {
                i64::try_from(v)
                    .map(OrderId)
                    .map_err(|_| E::custom("order id out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OrderId, E> {
                // Some encoders print integral ids as `123.0`; anything fractional, or beyond
                // 64 bits, is an error (as `harness.orders.models.parse_id` has it).
                if v.fract() == 0.0 && (i64::MIN as f64..-(i64::MIN as f64)).contains(&v) {
                    Ok(OrderId(v as i64))
                } else {
                    Err(E::custom("order id is not an integer"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OrderId, E> {
                OrderId::parse(v).ok_or_else(|| E::custom("order id is not a numeric string"))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// Body of `Auth/loginKey`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest<'a> {
    pub user_name: &'a str,
    pub api_key: &'a str,
}

/// Body of `Account/search`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSearchRequest {
    pub only_active_accounts: bool,
}

/// Body of `Contract/search`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractSearchRequest<'a> {
    pub search_text: &'a str,
    pub live: bool,
}

/// Body of `Contract/searchById`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractByIdRequest<'a> {
    pub contract_id: &'a str,
}

/// A bracket of `Order/place` (`{ticks, type}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bracket {
    pub ticks: i64,
    #[serde(rename = "type")]
    pub order_type: i64,
}

/// Body of `Order/place`: the three prices are always present (null when unused).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceRequest<'a> {
    pub account_id: i64,
    pub contract_id: &'a str,
    #[serde(rename = "type")]
    pub order_type: i64,
    pub side: i64,
    pub size: i64,
    #[serde(serialize_with = "finite")]
    pub limit_price: Option<f64>,
    #[serde(serialize_with = "finite")]
    pub stop_price: Option<f64>,
    #[serde(serialize_with = "finite")]
    pub trail_price: Option<f64>,
    pub custom_tag: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss_bracket: Option<Bracket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit_bracket: Option<Bracket>,
}

/// Body of `Order/modify`: only the fields that change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifyRequest {
    pub account_id: i64,
    pub order_id: OrderId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "finite")]
    pub limit_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "finite")]
    pub stop_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "finite")]
    pub trail_price: Option<f64>,
}

impl ModifyRequest {
    /// Whether `order` already carries every field this modification asks for.
    pub fn is_reflected_in(&self, order: &Order) -> bool {
        fn same(want: Option<f64>, have: Option<f64>) -> bool {
            match (want, have) {
                (None, _) => true,
                (Some(w), Some(h)) => (w - h).abs() <= 1e-9 * w.abs().max(1.0),
                (Some(_), None) => false,
            }
        }
        self.size.is_none_or(|s| s == order.size)
            && same(self.limit_price, order.limit_price)
            && same(self.stop_price, order.stop_price)
            && same(self.trail_price, order.stop_price.or(order.limit_price))
    }
}

/// Body of `Order/cancel` and `Order/searchById`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRefRequest {
    pub account_id: i64,
    pub order_id: OrderId,
}

/// Body of `Order/search`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSearchRequest {
    pub account_id: i64,
    pub start_timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_id_reads_numbers_and_numeric_strings() {
        let a: OrderId = serde_json::from_str("123456789012").unwrap();
        let b: OrderId = serde_json::from_str("\"123456789012\"").unwrap();
        let c: OrderId = serde_json::from_str("42.0").unwrap();
        assert_eq!(a, OrderId(123_456_789_012));
        assert_eq!(a, b);
        assert_eq!(c, OrderId(42));
    }

    #[test]
    fn order_id_refuses_what_is_not_an_integer() {
        for bad in [
            "\"12a\"", "\"\"", "\"1.5\"", "1.5", "true", "null", "\"+-1\"",
        ] {
            assert!(serde_json::from_str::<OrderId>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<OrderId>("18446744073709551615").is_err());
    }

    #[test]
    fn order_id_is_written_as_a_number() {
        let body = OrderRefRequest {
            account_id: 1001,
            order_id: OrderId::parse(" 77 ").unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"accountId":1001,"orderId":77}"#
        );
    }

    #[test]
    fn envelope_success_needs_success_and_a_zero_code() {
        let ok: PlaceResponse = serde_json::from_str(
            r#"{"orderId":5,"success":true,"errorCode":0,"errorMessage":null}"#,
        )
        .unwrap();
        assert!(ok.succeeded());
        assert_eq!(ok.order_id, MaybeId(Some(OrderId(5))));
        for odd in [r#""x""#, "1.5", "true", "null", "{}"] {
            let text = format!(r#"{{"success":true,"orderId":{odd}}}"#);
            let r: PlaceResponse = serde_json::from_str(&text).unwrap();
            assert_eq!(r.order_id, MaybeId(None), "{odd}");
        }
        let no_code: EmptyResponse = serde_json::from_str(r#"{"success":true}"#).unwrap();
        assert!(no_code.succeeded());
        let disagree: PlaceResponse =
            serde_json::from_str(r#"{"orderId":5,"success":true,"errorCode":2}"#).unwrap();
        assert!(
            !disagree.succeeded(),
            "an orderId is never success by itself"
        );
        let failed: PlaceResponse = serde_json::from_str(
            r#"{"orderId":9,"success":false,"errorCode":0,"errorMessage":"x"}"#,
        )
        .unwrap();
        assert!(!failed.succeeded());
        assert_eq!(failed.error_message(), Some("x"));
    }

    #[test]
    fn odd_envelopes_read_as_the_python_client_reads_them() {
        let read = |text: &str| -> EmptyResponse {
            serde_json::from_str(text).expect("an odd envelope is still readable")
        };
        let text_code = read(r#"{"success":true,"errorCode":"0","errorMessage":7}"#);
        assert!(
            !text_code.succeeded(),
            "a code that is not a number contradicts success"
        );
        assert_eq!(
            (text_code.error_code(), text_code.error_message()),
            (None, None)
        );
        let float_zero = read(r#"{"success":true,"errorCode":0.0}"#);
        assert!(float_zero.succeeded());
        assert_eq!(float_zero.error_code(), None);
        let text_success = read(r#"{"success":"true","errorCode":0}"#);
        assert!(!text_success.succeeded(), "only the JSON true is success");
        let null_code = read(r#"{"success":true,"errorCode":null,"errorMessage":null}"#);
        assert!(null_code.succeeded());
        assert!(read(r#"{"success":true,"errorCode":false}"#).succeeded());
        assert!(!read(r#"{"success":true,"errorCode":true}"#).succeeded());
        let failed = read(r#"{"success":false,"errorCode":2,"errorMessage":"no"}"#);
        assert_eq!(
            (failed.error_code(), failed.error_message()),
            (Some(2), Some("no"))
        );
    }

    #[test]
    fn not_found_depends_on_the_endpoint() {
        assert!(is_not_found(ORDER_CANCEL, Some(2)));
        assert!(is_not_found(ORDER_MODIFY, Some(2)));
        assert!(!is_not_found(ORDER_PLACE, Some(2)));
        assert!(is_not_found(CONTRACT_SEARCH_BY_ID, Some(1)));
        assert!(!is_not_found(ORDER_PLACE, Some(1)));
        assert!(!is_not_found(ORDER_CANCEL, None));
    }

    #[test]
    fn place_body_always_carries_the_three_prices() {
        let body = PlaceRequest {
            account_id: 1001,
            contract_id: "CON.F.US.MNQ.Z26",
            order_type: 2,
            side: 0,
            size: 1,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            custom_tag: "hx-1",
            stop_loss_bracket: None,
            take_profit_bracket: None,
        };
        let text = serde_json::to_string(&body).unwrap();
        assert!(text.contains(r#""limitPrice":null,"stopPrice":null,"trailPrice":null"#));
        assert!(!text.contains("Bracket"));
    }

    #[test]
    fn orders_read_string_ids_and_missing_fields() {
        let r: OrdersResponse = serde_json::from_str(
            r#"{"success":true,"errorCode":0,"orders":[{"id":"12","accountId":1001,
            "contractId":"CON.F.US.MNQ.Z26","status":1,"type":1,"side":0,"size":2,
            "limitPrice":21000.25,"customTag":"t","creationTimestamp":null}]}"#,
        )
        .unwrap();
        assert_eq!(r.orders[0].id, OrderId(12));
        assert_eq!(r.orders[0].limit_price, Some(21000.25));
        assert_eq!(r.orders[0].stop_price, None);
    }

    #[test]
    fn nulls_and_string_ids_in_rows_read_as_defaults() {
        let r: AccountsResponse = serde_json::from_str(
            r#"{"success":true,"accounts":[{"id":"1001","name":null,"balance":null,
            "canTrade":true,"isVisible":null,"simulated":false}]}"#,
        )
        .unwrap();
        let a = &r.accounts[0];
        assert_eq!((a.id, a.name.as_str(), a.balance), (OrderId(1001), "", 0.0));
        let o: OrderResponse = serde_json::from_str(
            r#"{"success":true,"order":{"id":5,"accountId":"1001","contractId":null,
            "status":null,"type":2,"side":1,"size":1,"updateTimestamp":null}}"#,
        )
        .unwrap();
        let o = o.order.unwrap();
        assert_eq!(
            (o.account_id, o.status, o.contract_id.as_str()),
            (OrderId(1001), 0, "")
        );
    }

    #[test]
    fn modify_is_reflected_when_every_asked_field_matches() {
        let order = Order {
            size: 2,
            limit_price: Some(100.25),
            ..Order::default()
        };
        let mut m = ModifyRequest {
            size: Some(2),
            limit_price: Some(100.25),
            ..ModifyRequest::default()
        };
        assert!(m.is_reflected_in(&order));
        m.size = Some(3);
        assert!(!m.is_reflected_in(&order));
    }
}
