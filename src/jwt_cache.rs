//! The JWT cache: one token per set of call parameters, fetched once however many calls want it.
//!
//! Two maps sit in front of the provider:
//! - `by_params`, keyed by the canonical form of the parameters, owns the tokens; concurrent
//!   calls for a key that is not there share one fetch (`in_flight`), which goes on when the call
//!   that started it is dropped, and is dropped itself only with the last call waiting for it;
//! - `by_raw`, a fixed table indexed by a hash of the request's raw query and body bytes, lets a
//!   repeated call find its token without parsing its JSON body, and without a lock.
//!
//! Freshness is judged here, on tokio's clock, so that tests can drive it; moka's own expiry only
//! frees memory and makes expired tokens the first to go.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use moka::Expiry;
use moka::ops::compute::Op;
use tokio::time::Instant;

use crate::{AuthError, Credential};

/// A fetched JWT and what the cache knows of it.
pub(crate) struct CachedToken {
    /// The bearer credential, without a link back to this entry.
    credential: Credential,
    /// Until when the token may serve new calls; `None` when it may not be reused at all.
    fresh_until: Option<Instant>,
    fetched_at: Instant,
    /// Set when the API rejected the token; it then serves no one.
    revoked: AtomicBool,
}

impl CachedToken {
    pub(crate) fn new(credential: Credential, fresh_until: Option<Instant>) -> Self {
        CachedToken {
            credential,
            fresh_until,
            fetched_at: Instant::now(),
            revoked: AtomicBool::new(false),
        }
    }

    pub(crate) fn credential(self: &Arc<Self>) -> Credential {
        self.credential.clone().with_token(Arc::clone(self))
    }

    fn is_fresh(&self, now: Instant) -> bool {
        !self.revoked.load(Ordering::Acquire) && self.fresh_until.is_some_and(|until| now < until)
    }

    pub(crate) fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    fn time_to_live(&self) -> Duration {
        self.fresh_until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }
}

/// A raw-bytes alias of a cached token: the hash of the request's query and body, and the bytes
/// themselves to rule out collisions. The token is owned by `by_params`: once it is dropped
/// there, the alias serves no one.
struct RawAlias {
    hash: u64,
    query: Box<str>,
    body: Option<Box<[u8]>>,
    token: Weak<CachedToken>,
}

/// The raw parts of a request that determine its parameters.
#[derive(Clone, Copy)]
pub(crate) struct RawKey<'a> {
    pub(crate) query: &'a str,
    pub(crate) body: Option<&'a [u8]>,
}

impl RawKey<'_> {
    pub(crate) fn of(request: &reqwest::Request) -> RawKey<'_> {
        RawKey {
            query: request.url().query().unwrap_or_default(),
            body: request.body().and_then(|body| body.as_bytes()),
        }
    }
}

impl RawAlias {
    fn matches(&self, hash: u64, raw: RawKey<'_>) -> bool {
        self.hash == hash && *self.query == *raw.query && self.body.as_deref() == raw.body
    }
}

/// Lets moka drop a token's entries once the token can no longer serve new calls.
struct UntilStale;

impl Expiry<Arc<str>, Arc<CachedToken>> for UntilStale {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        token: &Arc<CachedToken>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(token.time_to_live())
    }
}

/// The most slots `by_raw` has (it is allocated whole, 8 bytes a slot). Past it, calls whose
/// hashes collide fall back to parsing their parameters.
const MAX_RAW_SLOTS: usize = 1 << 16;

/// How often a call looks again when it keeps finding tokens that other calls left stale.
const MAX_LOOKUPS: usize = 3;

/// A fetch under way, shared by the calls that wait for it.
type SharedFetch = Shared<BoxFuture<'static, Result<Arc<CachedToken>, AuthError>>>;

type InFlight = Mutex<HashMap<Arc<str>, SharedFetch>>;

pub(crate) struct TokenCache {
    by_params: moka::future::Cache<Arc<str>, Arc<CachedToken>>,
    /// One alias per slot, the slot chosen by the low bits of the raw hash; a new alias takes the
    /// place of the one there. Bounded by construction, read without a lock.
    by_raw: Box<[ArcSwapOption<RawAlias>]>,
    /// foldhash rather than SipHash: a hit hashes the whole body, and a collision costs only a
    /// miss (the alias compares the bytes), so speed matters more than flooding resistance.
    raw_hasher: foldhash::fast::RandomState,
    /// The fetch under way for each key that has one. Only ever locked for a lookup or an
    /// insertion, never across an await.
    in_flight: Arc<InFlight>,
}

impl TokenCache {
    pub(crate) fn new(max_cached: usize) -> Self {
        let capacity = max_cached as u64;
        TokenCache {
            by_params: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilStale)
                .build(),
            by_raw: (0..max_cached.clamp(1, MAX_RAW_SLOTS).next_power_of_two())
                .map(|_| ArcSwapOption::empty())
                .collect(),
            raw_hasher: foldhash::fast::RandomState::default(),
            in_flight: Arc::default(),
        }
    }

    fn raw_hash(&self, raw: RawKey<'_>) -> u64 {
        let mut hasher = self.raw_hasher.build_hasher();
        raw.query.hash(&mut hasher);
        raw.body.hash(&mut hasher);
        hasher.finish()
    }

    /// A fresh token for a request whose raw parts are `raw`, if one is cached: no parsing, no
    /// allocation, no lock.
    pub(crate) fn get_raw(&self, raw: RawKey<'_>) -> Option<Arc<CachedToken>> {
        let hash = self.raw_hash(raw);
        let slot = self.raw_slot(hash).load();
        let alias = slot.as_ref().filter(|alias| alias.matches(hash, raw))?;
        let token = alias.token.upgrade()?;
        token.is_fresh(Instant::now()).then_some(token)
    }

    fn raw_slot(&self, hash: u64) -> &ArcSwapOption<RawAlias> {
        // The table's length is a power of two.
        &self.by_raw[hash as usize & (self.by_raw.len() - 1)]
    }

    /// Remembers that requests with raw parts `raw` are served by `token`.
    pub(crate) fn alias_raw(&self, raw: RawKey<'_>, token: &Arc<CachedToken>) {
        if !token.is_fresh(Instant::now()) {
            return;
        }
        let hash = self.raw_hash(raw);
        let alias = RawAlias {
            hash,
            query: raw.query.into(),
            body: raw.body.map(Into::into),
            token: Arc::downgrade(token),
        };
        self.raw_slot(hash).store(Some(Arc::new(alias)));
    }

    /// The token for `key`: a fresh cached one, or the result of one `fetch` shared by every
    /// concurrent call for the same key.
    ///
    /// A token that cannot be reused serves only the calls that were waiting for its fetch.
    pub(crate) async fn get_or_fetch<F>(
        &self,
        key: Arc<str>,
        fetch: impl Fn() -> F,
    ) -> Result<Arc<CachedToken>, AuthError>
    where
        F: Future<Output = Result<Arc<CachedToken>, AuthError>> + Send + 'static,
    {
        let started = Instant::now();
        for _ in 0..MAX_LOOKUPS {
            if let Some(token) = self.by_params.get(&key).await {
                if token.is_fresh(Instant::now()) {
                    return Ok(token);
                }
                self.evict(&key, &token).await;
            }
            let Some(shared) = self.join_or_start(&key, &fetch) else {
                continue; // a token was stored since the lookup above
            };
            let token = Waiter::new(&self.in_flight, &key, shared).wait().await?;
            // A token that cannot be reused was never stored, so there is nothing to evict.
            if token.is_fresh(Instant::now()) || token.fetched_at >= started {
                return Ok(token);
            }
            // A token fetched before this call began, and stale by now: look again.
        }
        fetch().await
    }

    /// The fetch under way for `key`, or a new one; `None` when a token for `key` was stored
    /// since the caller looked.
    fn join_or_start<F>(&self, key: &Arc<str>, fetch: &impl Fn() -> F) -> Option<SharedFetch>
    where
        F: Future<Output = Result<Arc<CachedToken>, AuthError>> + Send + 'static,
    {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = in_flight.get(key) {
            return Some(shared.clone());
        }
        // A fetch stores its token before it leaves `in_flight`, so no token is missed here.
        if self.by_params.contains_key(key) {
            return None;
        }
        let (by_params, registry, key_owned) = (
            self.by_params.clone(),
            Arc::clone(&self.in_flight),
            key.clone(),
        );
        let call = fetch();
        let shared = async move {
            let result = call.await;
            if let Ok(token) = &result
                && token.is_fresh(Instant::now())
            {
                by_params.insert(key_owned.clone(), token.clone()).await;
            }
            let mut in_flight = registry.lock().unwrap_or_else(PoisonError::into_inner);
            in_flight.remove(&key_owned);
            result
        }
        .boxed()
        .shared();
        in_flight.insert(key.clone(), shared.clone());
        Some(shared)
    }

    /// Removes `token` from under `key`, unless another token has replaced it already.
    async fn evict(&self, key: &Arc<str>, token: &Arc<CachedToken>) {
        self.by_params
            .entry_by_ref(key)
            .and_compute_with(|entry| {
                let same = entry.is_some_and(|e| Arc::ptr_eq(e.value(), token));
                std::future::ready(if same { Op::Remove } else { Op::Nop })
            })
            .await;
    }

    /// How many tokens could serve a call now, after the pending evictions have run.
    ///
    /// Counted by walking the cache: moka's own count lags until its timer wheel sweeps
    /// expired entries, about a second later.
    pub(crate) async fn len(&self) -> u64 {
        self.by_params.run_pending_tasks().await;
        let now = Instant::now();
        self.by_params
            .iter()
            .filter(|(_, token)| token.is_fresh(now))
            .count() as u64
    }
}

/// One call's share of a fetch under way.
///
/// Dropped before the fetch ends (its call was cancelled), the last waiter takes the fetch out
/// of `in_flight`, which drops it: no fetch runs on for no one, and no entry is left behind.
struct Waiter<'a> {
    in_flight: &'a InFlight,
    key: &'a Arc<str>,
    fetch: Option<SharedFetch>,
}

impl<'a> Waiter<'a> {
    fn new(in_flight: &'a InFlight, key: &'a Arc<str>, fetch: SharedFetch) -> Self {
        Waiter {
            in_flight,
            key,
            fetch: Some(fetch),
        }
    }

    async fn wait(mut self) -> Result<Arc<CachedToken>, AuthError> {
        let Some(fetch) = self.fetch.as_mut() else {
            unreachable!("a waiter is made with its fetch")
        };
        let result = fetch.await;
        self.fetch = None;
        result
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Some(fetch) = self.fetch.take() else {
            return;
        };
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Handles are cloned and dropped under the lock, so the count is exact: when only
        // `in_flight` and this waiter hold the fetch, no call is left to finish it.
        let last = fetch.strong_count() == Some(2)
            && in_flight
                .get(self.key)
                .is_some_and(|entry| entry.ptr_eq(&fetch));
        if last {
            in_flight.remove(self.key);
        }
        // In this order: the handle goes while the lock is held.
        drop(fetch);
        drop(in_flight);
    }
}
