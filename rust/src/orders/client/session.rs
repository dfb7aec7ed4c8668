//! The session: one token shared by every task and thread, logged in on first use, refreshed
//! with `Auth/validate` after 90% of its lifetime, logged in again after a 401. Logging in and
//! refreshing happen under the process's refresh lock, so concurrent callers share one log-in.

use std::sync::Arc;
use std::time::Instant;

use super::super::api;
use super::super::auth::Session;
use super::super::build;
use super::super::clock;
use super::super::error::OrderError;
use super::super::read::{self, unavailable, Answer};
use super::transport::{auth_failure, settle, Stop};
use super::Client;

impl Client {
    /// A session that is not due: the cached one, a refreshed one, or a fresh log-in.
    pub(super) async fn session(&self) -> Result<Arc<Session>, OrderError> {
        if let Some(s) = self.tokens.current() {
            if !s.due(Instant::now()) {
                return Ok(s);
            }
        }
        let transport = self.transport().map_err(|what| {
            OrderError::Unavailable(unavailable(api::LOGIN_KEY, &what, None, 0, false))
        })?;
        let _guard = transport.refresh_lock.lock().await;
        match self.tokens.current() {
            Some(s) if !s.due(Instant::now()) => Ok(s),
            Some(s) => match self.validate(&s).await {
                Ok(fresh) => Ok(fresh),
                Err(_) => self.login().await,
            },
            None => self.login().await,
        }
    }

    /// After a 401 on the session of `stale_generation`: a new one (another task's fresh
    /// log-in if it came meanwhile).
    pub(super) async fn relogin(&self, stale_generation: u64) -> Result<Arc<Session>, OrderError> {
        let transport = self.transport().map_err(|what| {
            OrderError::Unavailable(unavailable(api::LOGIN_KEY, &what, None, 0, false))
        })?;
        let _guard = transport.refresh_lock.lock().await;
        if let Some(s) = self.tokens.current() {
            if s.generation != stale_generation && !s.due(Instant::now()) {
                return Ok(s);
            }
        }
        self.login().await
    }

    /// `Auth/loginKey`; call with the refresh lock held.
    async fn login(&self) -> Result<Arc<Session>, OrderError> {
        let ep = api::LOGIN_KEY;
        let request = build::login(&self.settings.username, &self.settings.api_key)?;
        let mut attempts = 0;
        let reader = |a: &Answer<'_>, n| read::answer::<api::LoginResponse>(ep, a, n);
        let token = match self.exchange(&request, None, &mut attempts, &reader).await {
            Ok(r) => r.token,
            Err(Stop::Unauthorized) => {
                return Err(auth_failure(
                    ep,
                    "login refused (HTTP 401)",
                    Some(401),
                    attempts,
                ))
            }
            Err(e) => return Err(settle(ep, e, attempts)),
        };
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            auth_failure(
                ep,
                "login answered success without a token",
                Some(200),
                attempts,
            )
        })?;
        self.tokens.store(&token, clock::unix_now()).ok_or_else(|| {
            auth_failure(ep, "login answered an unusable token", Some(200), attempts)
        })
    }

    /// `Auth/validate` with the current token; call with the refresh lock held.
    async fn validate(&self, session: &Session) -> Result<Arc<Session>, OrderError> {
        let ep = api::VALIDATE;
        let mut attempts = 0;
        let reader = |a: &Answer<'_>, n| read::answer::<api::ValidateResponse>(ep, a, n);
        let answer = self
            .exchange(
                &build::validate(),
                Some(&session.header),
                &mut attempts,
                &reader,
            )
            .await;
        let token = match answer {
            Ok(r) => r.new_token,
            Err(Stop::Unauthorized) => {
                return Err(auth_failure(
                    ep,
                    "session expired (HTTP 401)",
                    Some(401),
                    attempts,
                ))
            }
            Err(e) => return Err(settle(ep, e, attempts)),
        };
        match token.filter(|t| !t.is_empty()) {
            Some(t) => self.tokens.store(&t, clock::unix_now()).ok_or_else(|| {
                auth_failure(
                    ep,
                    "validate answered an unusable token",
                    Some(200),
                    attempts,
                )
            }),
            None => Err(auth_failure(
                ep,
                "validate answered no token",
                Some(200),
                attempts,
            )),
        }
    }
}
