//! The session token: cached, shared by every task and thread, refreshed before it expires.
//!
//! The token itself is secret: it lives only inside a `HeaderValue` marked sensitive, never in
//! a `Debug` output, a log line or an error text.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

use super::retry::saturating_duration;

/// Lifetime assumed for a token that is not a JWT (the API's documented 24 h).
pub const DEFAULT_LIFETIME_S: f64 = 24.0 * 3600.0;
/// Share of the lifetime after which the token is refreshed with `Auth/validate`.
pub const REFRESH_AT: f64 = 0.9;

/// One logged-in session: the ready-made `Authorization` header and when to refresh it.
pub struct Session {
    /// `Bearer <token>`, marked sensitive.
    pub header: HeaderValue,
    /// Increases with every new token; a 401 on generation `g` re-logs in only if still `g`.
    pub generation: u64,
    refresh_at: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("generation", &self.generation)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Session {
    /// Whether the token has passed 90% of its lifetime.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.refresh_at
    }
}

/// The shared token cache (a forked child inherits it: the token stays valid there). The lock
/// that makes concurrent callers share one login belongs to a process: `client::Transport`.
#[derive(Default)]
pub struct TokenCache {
    current: RwLock<Option<Arc<Session>>>,
}

impl TokenCache {
    /// The current session, due or not.
    pub fn current(&self) -> Option<Arc<Session>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Store a new token; returns `None` if it cannot be a header value.
    pub fn store(&self, token: &str, now_unix: f64) -> Option<Arc<Session>> {
        let mut header = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
        header.set_sensitive(true);
        let refresh_in = refresh_delay(token, now_unix);
        let now = Instant::now();
        let refresh_at = now.checked_add(refresh_in).unwrap_or(now);
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = guard.as_ref().map_or(1, |s| s.generation + 1);
        let session = Arc::new(Session {
            header,
            generation,
            refresh_at,
        });
        *guard = Some(session.clone());
        Some(session)
    }

    /// Forget the session (after a failed validate or on close).
    pub fn clear(&self) {
        match self.current.write() {
            Ok(mut guard) => *guard = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }
}

/// How long until a token just received should be refreshed (90% of its lifetime).
pub fn refresh_delay(token: &str, now_unix: f64) -> Duration {
    let (lifetime, elapsed) = match jwt_times(token) {
        Some((exp, Some(iat))) if exp > iat => (exp - iat, now_unix - iat),
        Some((exp, _)) => (exp - now_unix, 0.0),
        None => (DEFAULT_LIFETIME_S, 0.0),
    };
    let seconds = REFRESH_AT * lifetime - elapsed.max(0.0);
    // `exp` comes from the network: any size, never a panic (cut to about 31 years).
    saturating_duration(if seconds.is_finite() { seconds } else { 0.0 })
}

/// `exp` and `iat` (seconds) of a JWT's payload; `None` when the token is not a JWT with `exp`.
pub fn jwt_times(token: &str) -> Option<(f64, Option<f64>)> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<f64>,
        iat: Option<f64>,
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64url_decode(payload)?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some((
        claims.exp.filter(|e| e.is_finite())?,
        claims.iat.filter(|i| i.is_finite()),
    ))
}

/// Decode unpadded (or padded) base64url.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'-' | b'+' => Some(62),
            b'_' | b'/' => Some(63),
            _ => None,
        }
    }
    let trimmed = text.trim_end_matches('=').as_bytes();
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::new();
        for chunk in data.chunks(3) {
            let mut n = 0u32;
            for (i, &b) in chunk.iter().enumerate() {
                n |= u32::from(b) << (16 - 8 * i);
            }
            for i in 0..=chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        s
    }

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"HS256"}"#),
            b64(payload.as_bytes())
        )
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n)
                .map(|i| i.wrapping_mul(37).wrapping_add(250))
                .collect();
            assert_eq!(base64url_decode(&b64(&data)).unwrap(), data);
        }
        assert!(base64url_decode("a").is_none());
        assert!(base64url_decode("ab$d").is_none());
    }

    #[test]
    fn jwt_exp_and_iat_are_read() {
        let t = jwt(r#"{"sub":"u","exp":1000086400,"iat":1000000000}"#);
        assert_eq!(
            jwt_times(&t),
            Some((1_000_086_400.0, Some(1_000_000_000.0)))
        );
        assert_eq!(jwt_times("opaque-token"), None);
        assert_eq!(jwt_times(&jwt(r#"{"sub":"u"}"#)), None);
        assert_eq!(jwt_times("a.b.c.d"), None);
    }

    #[test]
    fn a_token_that_claims_to_live_for_ever_does_not_panic() {
        let t = jwt(r#"{"exp":1e300,"iat":0}"#);
        assert!(refresh_delay(&t, 0.0) >= Duration::from_secs(1 << 29));
        assert!(TokenCache::default().store(&t, 0.0).is_some());
    }

    #[test]
    fn refresh_comes_at_ninety_percent_of_the_lifetime() {
        let t = jwt(r#"{"exp":1000,"iat":0}"#);
        assert_eq!(refresh_delay(&t, 0.0), Duration::from_secs(900));
        assert_eq!(refresh_delay(&t, 100.0), Duration::from_secs(800));
        assert_eq!(refresh_delay(&t, 950.0), Duration::ZERO);
        let no_iat = jwt(r#"{"exp":1100}"#);
        assert_eq!(refresh_delay(&no_iat, 100.0), Duration::from_secs(900));
        assert_eq!(
            refresh_delay("opaque", 0.0),
            Duration::from_secs_f64(0.9 * 86_400.0)
        );
    }

    #[test]
    fn the_cache_counts_generations_and_hides_the_token() {
        let cache = TokenCache::default();
        assert!(cache.current().is_none());
        let a = cache.store("secret-one", 0.0).unwrap();
        let b = cache.store("secret-two", 0.0).unwrap();
        assert_eq!((a.generation, b.generation), (1, 2));
        assert!(!b.due(Instant::now()));
        assert!(b.header.is_sensitive());
        assert!(!format!("{b:?}").contains("secret"));
        assert!(cache.store("bad\ntoken", 0.0).is_none());
        cache.clear();
        assert!(cache.current().is_none());
    }
}
