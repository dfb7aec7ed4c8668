//! The read-only calls: accounts, contracts (cached), orders by customTag or by id. Each is
//! build -> `fetch` (send, repeated as reads may be) -> read.

use std::sync::Arc;

use super::super::api::{Account, Contract, Order};
use super::super::build;
use super::super::clock;
use super::super::error::OrderError;
use super::super::read::{self, Answer};
use super::{Client, RECONCILE_CLOCK_ALLOWANCE_S};

impl Client {
    /// `Account/search`.
    pub async fn accounts(&self, only_active: bool) -> Result<Vec<Account>, OrderError> {
        let reader = |a: &Answer<'_>, n| read::accounts(a, n);
        self.fetch(&build::accounts(only_active)?, &reader).await
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
            let reader = |a: &Answer<'_>, n| read::contract_by_id(a, key, n);
            self.fetch(&build::contract_by_id(key)?, &reader).await?
        } else {
            let reader = |a: &Answer<'_>, n| read::contract_search(a, key, n);
            self.fetch(&build::contract_search(key)?, &reader).await?
        };
        let contract = Arc::new(found.ok_or_else(|| OrderError::unknown_contract(key))?);
        if let Ok(mut map) = self.contracts.write() {
            map.insert(key.to_owned(), contract.clone());
            map.insert(contract.id.clone(), contract.clone());
        }
        Ok(contract)
    }

    /// The contract cached under `key` (as resolved, or trimmed), without I/O: an order
    /// shadow reads what the serving side resolved.
    pub fn cached_contract(&self, key: &str) -> Option<Arc<Contract>> {
        let map = self.contracts.read().ok()?;
        map.get(key).or_else(|| map.get(key.trim())).cloned()
    }

    /// The contract id of an order this client placed or read for a modify, without I/O.
    pub fn cached_order_contract(&self, order_id: i64) -> Option<String> {
        self.order_contracts
            .lock()
            .ok()
            .and_then(|guard| guard.0.get(&order_id).cloned())
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
    pub(super) async fn search_tag(
        &self,
        account_id: i64,
        tag: &str,
        since: Option<f64>,
    ) -> Result<Option<Order>, OrderError> {
        let mut start = clock::unix_now() - self.settings.reconcile_lookback_s.max(0.0);
        if let Some(began) = since {
            start = start.max(began - RECONCILE_CLOCK_ALLOWANCE_S);
        }
        let reader = |a: &Answer<'_>, n| read::search_by_tag(a, tag, n);
        self.fetch(&build::search_by_tag(account_id, start)?, &reader)
            .await
    }

    /// One order by id (`None` when the broker has no such order).
    pub async fn get_order(
        &self,
        account_id: i64,
        order_id: i64,
    ) -> Result<Option<Order>, OrderError> {
        let reader = |a: &Answer<'_>, n| read::search_by_id(a, order_id, n);
        self.fetch(&build::search_by_id(account_id, order_id)?, &reader)
            .await
    }
}
