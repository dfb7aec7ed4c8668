//! Place, modify and cancel, and the reconciliation of those whose outcome is unknown (the
//! policy of `harness/orders/reconcile.py`): a placement looks its customTag up, a modify or
//! cancel reads the order, and only then is the request repeated on the backoff schedule.

use super::super::api::{self, ModifyRequest, Order};
use super::super::build::{self, PlaceParams, Request};
use super::super::clock;
use super::super::error::OrderError;
use super::super::read::{self, Answer, Placed};
use super::transport::{settle, Stop};
use super::{new_custom_tag, Client, REMEMBERED_ORDERS};

fn reconciled(order: Order, tag: String, attempts: u32) -> Placed {
    Placed {
        order_id: order.id.0,
        custom_tag: tag,
        reconciled: true,
        attempts,
    }
}

impl Client {
    /// `Order/place`; an unknown outcome is reconciled by customTag, never repeated blindly.
    pub async fn place_order(&self, p: PlaceParams) -> Result<Placed, OrderError> {
        let contract = self.resolve_contract(&p.contract).await?;
        let tag = p.custom_tag.clone().unwrap_or_else(new_custom_tag);
        let request = build::place(&p, &contract.id, contract.tick_size, &tag)?;
        let placed = self.place(p.account_id, tag, &request).await?;
        self.remember_contract(placed.order_id, &contract.id);
        Ok(placed)
    }

    /// Send a placement; an unknown outcome is reconciled by `tag`.
    async fn place(
        &self,
        account_id: i64,
        tag: String,
        request: &Request,
    ) -> Result<Placed, OrderError> {
        let ep = api::ORDER_PLACE;
        let began = Some(clock::unix_now()); // the order, if it lands, is created after this
        let mut attempts = 0;
        let mut uncertain = false;
        let reader = |a: &Answer<'_>, n| read::place(a, &tag, n);
        loop {
            let failure = match self.call(request, &mut attempts, &reader).await {
                Ok(placed) => return Ok(placed),
                Err(Stop::Ambiguous(f)) => f,
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
    pub async fn modify_order(&self, m: ModifyRequest) -> Result<(), OrderError> {
        let mut tick = None;
        if [m.limit_price, m.stop_price, m.trail_price]
            .iter()
            .any(Option::is_some)
        {
            tick = self.order_tick(m.account_id, m.order_id.0).await?;
        }
        let (sent, request) = build::modify(&m, tick)?;
        let done = |order: &Order| sent.is_reflected_in(order);
        let reader = |a: &Answer<'_>, n| read::modify(a, n);
        self.mutate(&request, &reader, m.account_id, m.order_id.0, &done)
            .await
    }

    /// `Order/cancel`; an unknown outcome is checked against the order before repeating.
    pub async fn cancel_order(&self, account_id: i64, order_id: i64) -> Result<(), OrderError> {
        let request = build::cancel(account_id, order_id)?;
        let done = |order: &Order| {
            matches!(
                order.status,
                api::status::CANCELLED | api::status::PENDING_CANCELLATION
            )
        };
        let reader = |a: &Answer<'_>, n| read::cancel(a, n);
        self.mutate(&request, &reader, account_id, order_id, &done)
            .await
    }

    /// Modify or cancel: on an unknown outcome read the order; `done` says whether the change
    /// already took effect; otherwise repeat on the backoff schedule.
    async fn mutate<F>(
        &self,
        request: &Request,
        reader: &F,
        account_id: i64,
        order_id: i64,
        done: &(dyn Fn(&Order) -> bool + Sync),
    ) -> Result<(), OrderError>
    where
        F: Fn(&Answer<'_>, u32) -> Result<(), OrderError>,
    {
        let ep = request.endpoint;
        let mut attempts = 0;
        let mut uncertain = false;
        loop {
            let failure = match self.call(request, &mut attempts, reader).await {
                Ok(()) => return Ok(()),
                Err(Stop::Ambiguous(f)) => f,
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
