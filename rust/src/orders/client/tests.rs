//! The client core against the scripted loopback broker (`fake_broker`): retries, 429 advice,
//! re-login, and the reconciliation of placements whose outcome is unknown. No Python involved.

use super::super::api::ModifyRequest;
use super::super::clock::{iso_utc, unix_now};
use super::super::error::OrderError;
use super::fake_broker::{login, ok, FakeBroker, Reply, Seen};
use super::{PlaceParams, RECONCILE_CLOCK_ALLOWANCE_S};

const MNQ: &str = "CON.F.US.MNQ.Z26";
const CONTRACT: &str = r#""contract":{"id":"CON.F.US.MNQ.Z26","name":"MNQZ6","description":"Micro","tickSize":0.25,"tickValue":0.5,"activeContract":true,"symbolId":"F.US.MNQ"}"#;

fn order_row(id: &str, tag: &str, status: i64) -> String {
    format!(
        r#"{{"id":{id},"accountId":1001,"contractId":"{MNQ}","status":{status},"type":1,"side":0,"size":1,"limitPrice":100.25,"customTag":"{tag}"}}"#
    )
}

fn tag_of(request: &Seen) -> String {
    serde_json::from_str::<serde_json::Value>(&request.body)
        .ok()
        .and_then(|v| v["customTag"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn market(tag: Option<&str>) -> PlaceParams {
    PlaceParams {
        account_id: 1001,
        contract: MNQ.to_owned(),
        side: 0,
        size: 1,
        order_type: 2,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        custom_tag: tag.map(str::to_owned),
        stop_loss_bracket: None,
        take_profit_bracket: None,
    }
}

#[tokio::test]
async fn a_read_is_retried_after_a_5xx() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Account/search" if n == 1 => Reply::Json(503, "{}".into(), None),
        _ => ok(
            r#""accounts":[{"id":1001,"name":"A","balance":1.5,"canTrade":true,"isVisible":true,"simulated":true}]"#,
        ),
    });
    let accounts = broker.client(&[0.001, 0.001]).accounts(true).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(broker.count("/api/Account/search"), 2);
    assert_eq!(broker.count("/api/Auth/loginKey"), 1);
    let seen = broker.seen.lock().unwrap();
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok"));
}

#[tokio::test]
async fn a_persistent_429_ends_as_rate_limited_with_the_advice() {
    let broker = FakeBroker::start(|r, _| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        _ => Reply::Json(429, "{}".into(), Some("0")),
    });
    let err = broker.client(&[5.0, 5.0]).accounts(true).await.unwrap_err();
    match err {
        OrderError::RateLimited(f, advice) => {
            assert_eq!(
                (f.attempts, f.http_status, f.maybe_sent),
                (3, Some(429), false)
            );
            assert_eq!(advice, Some(0.0), "Retry-After replaced the 5 s delays");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn a_401_logs_in_again_once_and_a_second_401_is_an_auth_error() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login(&format!("tok{n}")),
        "/api/Account/search" if r.authorization.as_deref() == Some("Bearer tok2") => {
            ok(r#""accounts":[]"#)
        }
        _ => Reply::Json(401, String::new(), None),
    });
    let client = broker.client(&[0.001]);
    assert!(client.accounts(true).await.unwrap().is_empty());
    assert_eq!(broker.count("/api/Auth/loginKey"), 2);
    // A later search finds the fresh token accepted; an order search is always refused.
    let err = client.find_order_by_tag(1001, "x").await.unwrap_err();
    assert_eq!(err.class_name(), "AuthError");
    assert_eq!(err.failure().unwrap().http_status, Some(401));
    assert_eq!(broker.count("/api/Auth/loginKey"), 3);
}

#[tokio::test]
async fn a_lost_placement_that_landed_is_reconciled_not_repeated() {
    let placed_tag = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let memory = placed_tag.clone();
    let broker = FakeBroker::start(move |r, _| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Contract/searchById" => ok(CONTRACT),
        "/api/Order/place" => {
            *memory.lock().unwrap() = tag_of(r); // processed, then the answer is lost
            Reply::Drop
        }
        "/api/Order/search" => {
            let tag = memory.lock().unwrap().clone();
            ok(&format!(r#""orders":[{}]"#, order_row("\"77\"", &tag, 2)))
        }
        _ => Reply::Json(404, String::new(), None),
    });
    let placed = broker
        .client(&[0.001, 0.001])
        .place_order(market(None))
        .await
        .unwrap();
    assert_eq!(broker.count("/api/Order/place"), 1);
    assert!(placed.reconciled);
    assert_eq!((placed.order_id, placed.attempts), (77, 1));
    assert_eq!(placed.custom_tag, *placed_tag.lock().unwrap());
    assert!(placed.custom_tag.starts_with("hx-"));
}

#[tokio::test]
async fn a_lost_placement_that_did_not_land_is_placed_again_with_the_same_tag() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Contract/searchById" => ok(CONTRACT),
        "/api/Order/place" if n == 1 => Reply::Json(500, "{}".into(), None),
        "/api/Order/place" => ok(r#""orderId":"9000000001""#),
        "/api/Order/search" => ok(r#""orders":[]"#),
        _ => Reply::Json(404, String::new(), None),
    });
    let placed = broker
        .client(&[0.001])
        .place_order(market(Some("mine")))
        .await
        .unwrap();
    assert_eq!(
        (placed.order_id, placed.attempts, placed.reconciled),
        (9_000_000_001, 2, false)
    );
    let seen = broker.seen.lock().unwrap();
    let tags: Vec<String> = seen
        .iter()
        .filter(|r| r.path == "/api/Order/place")
        .map(tag_of)
        .collect();
    assert_eq!(tags, ["mine", "mine"]);
}

#[tokio::test]
async fn an_exhausted_unknown_placement_says_it_may_have_been_sent() {
    let broker = FakeBroker::start(|r, _| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Contract/searchById" => ok(CONTRACT),
        "/api/Order/place" => Reply::Json(502, "{}".into(), None),
        "/api/Order/search" => ok(r#""orders":[]"#),
        _ => Reply::Json(404, String::new(), None),
    });
    let err = broker
        .client(&[0.001])
        .place_order(market(None))
        .await
        .unwrap_err();
    let f = err.failure().unwrap();
    assert_eq!(err.class_name(), "BrokerUnavailableError");
    assert_eq!(
        (f.attempts, f.maybe_sent, f.http_status),
        (2, true, Some(502))
    );
    assert_eq!(broker.count("/api/Order/search"), 2);
}

#[tokio::test]
async fn a_lost_cancel_that_took_effect_is_a_success() {
    let broker = FakeBroker::start(|r, _| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Order/cancel" => Reply::Drop,
        "/api/Order/searchById" => ok(&format!(r#""order":{}"#, order_row("5", "t", 3))),
        _ => Reply::Json(404, String::new(), None),
    });
    broker.client(&[0.001]).cancel_order(1001, 5).await.unwrap();
    assert_eq!(broker.count("/api/Order/cancel"), 1);
}

#[tokio::test]
async fn a_modify_not_reflected_is_sent_again_and_business_failures_map() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Order/modify" if n == 1 => Reply::Drop,
        "/api/Order/modify" if n == 2 => ok(""),
        "/api/Order/modify" => Reply::Json(
            200,
            r#"{"success":false,"errorCode":2,"errorMessage":"Order 6 not found."}"#.into(),
            None,
        ),
        "/api/Order/searchById" => ok(&format!(r#""order":{}"#, order_row("6", "t", 1))),
        _ => Reply::Json(404, String::new(), None),
    });
    let client = broker.client(&[0.001]);
    let mut change = ModifyRequest {
        account_id: 1001,
        order_id: super::api::OrderId(6),
        size: Some(3),
        ..ModifyRequest::default()
    };
    client.modify_order(change).await.unwrap();
    assert_eq!(broker.count("/api/Order/modify"), 2);
    change.size = Some(4);
    let err = client.modify_order(change).await.unwrap_err();
    assert_eq!(err.class_name(), "NotFoundError");
    let f = err.failure().unwrap();
    assert_eq!(
        (f.error_code, f.http_status, f.maybe_sent),
        (Some(2), Some(200), false)
    );
    assert_eq!(f.error_message.as_deref(), Some("Order 6 not found."));
}

#[tokio::test]
async fn nothing_listening_is_unavailable_and_certainly_not_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let broker = FakeBroker {
        url: format!("http://127.0.0.1:{port}"),
        seen: Default::default(),
    };
    let err = broker
        .client(&[0.001, 0.001])
        .accounts(true)
        .await
        .unwrap_err();
    let f = err.failure().unwrap();
    assert_eq!(err.class_name(), "BrokerUnavailableError");
    assert_eq!(
        (f.endpoint, f.attempts, f.maybe_sent),
        ("/api/Auth/loginKey", 3, false)
    );
}

#[tokio::test]
async fn an_absurd_retry_after_ends_the_call_at_once_without_a_panic() {
    // (header, least advice, most advice): the date is counted from now.
    for (header, least, most) in [
        ("100000000000000000000", 1e20, 1e20),
        ("9999999999", 9_999_999_999.0, 9_999_999_999.0),
        ("Sun, 06 Nov 2999 08:49:37 GMT", 3e10, 4e10),
    ] {
        let broker = FakeBroker::start(move |r, _| match r.path.as_str() {
            "/api/Auth/loginKey" => login("tok"),
            _ => Reply::Json(429, "{}".into(), Some(header)),
        });
        match broker.client(&[0.5]).accounts(true).await.unwrap_err() {
            OrderError::RateLimited(f, Some(seconds)) => {
                assert_eq!((f.attempts, f.maybe_sent), (1, false), "{header}");
                assert!((least..=most).contains(&seconds), "{header}: {seconds}");
            }
            other => panic!("expected RateLimited with advice, got {other:?}"),
        }
        assert_eq!(broker.count("/api/Account/search"), 1);
    }
}

#[tokio::test]
async fn a_refused_repeat_of_an_unknown_placement_says_it_may_have_been_sent() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Contract/searchById" => ok(CONTRACT),
        "/api/Order/place" if n == 1 => Reply::Json(500, "{}".into(), None),
        "/api/Order/place" => Reply::Json(
            200,
            r#"{"success":false,"errorCode":2,"errorMessage":"duplicate tag"}"#.into(),
            None,
        ),
        _ => Reply::Json(429, "{}".into(), None),
    });
    let err = broker
        .client(&[0.001])
        .place_order(market(Some("t")))
        .await
        .unwrap_err();
    assert_eq!(err.class_name(), "OrderRejectedError");
    let f = err.failure().unwrap();
    assert_eq!((f.error_code, f.attempts, f.maybe_sent), (Some(2), 2, true));
}

#[tokio::test]
async fn a_placement_reconciles_from_just_before_the_call_not_the_whole_look_back() {
    let broker = FakeBroker::start(|r, n| match r.path.as_str() {
        "/api/Auth/loginKey" => login("tok"),
        "/api/Contract/searchById" => ok(CONTRACT),
        "/api/Order/place" if n == 1 => Reply::Json(500, "{}".into(), None),
        "/api/Order/search" => ok(&format!(
            r#""orders":[{}]"#,
            r#"{"id":7001,"accountId":1001,"contractId":"CON.F.US.MNQ.Z26","status":2,"type":2,
                "side":0,"size":1,"creationTimestamp":"2026-01-05T00:00:00Z",
                "updateTimestamp":"2026-01-05T00:00:00Z","customTag":"t"}"#
        )),
        _ => Reply::Json(429, "{}".into(), None),
    });
    let began = unix_now();
    let placed = broker
        .client(&[0.001])
        .place_order(market(Some("t")))
        .await
        .expect("reconciled");
    assert!(placed.reconciled);
    let seen = broker.seen.lock().expect("seen").clone();
    let search = seen
        .iter()
        .find(|r| r.path == "/api/Order/search")
        .expect("a look-up");
    let body: serde_json::Value = serde_json::from_str(&search.body).expect("json");
    let start = body["startTimestamp"].as_str().expect("startTimestamp");
    let after = unix_now();
    // ISO texts of one layout order as the instants do; a look-back of the client's whole
    // window (3,600 s in these tests) would start far before the first bound.
    let low = iso_utc(began - RECONCILE_CLOCK_ALLOWANCE_S);
    let high = iso_utc(after - RECONCILE_CLOCK_ALLOWANCE_S);
    assert!(
        low.as_str() <= start && start <= high.as_str(),
        "{low} <= {start} <= {high}"
    );
}
