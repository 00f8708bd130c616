use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use tracing::Instrument;

use crate::claims::{check_compact_jws, unverified_expiry};
use crate::credential::X_USER_ID;
use crate::jwt_cache::{CachedToken, RawKey, TokenCache};
use crate::{AuthError, AuthRequirement, Credential, CredentialSource, JwtParams, JwtProvider};

/// How long before its `exp` a cached JWT stops serving new calls. Aiuta's example tokens live
/// 60 s; 15 s leaves room for clock skew between the backend and Aiuta and for a slow upload.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(15);

/// How long a JWT fetch may take before the calls waiting on it fail.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How many JWTs are kept at most. Each is bound to one call's parameters, so this is roughly
/// the number of distinct try-ons a service starts within a token's lifetime; a few MiB at most.
pub const DEFAULT_MAX_CACHED: usize = 10_000;

/// Aiuta's JWT scheme: `Authorization: Bearer <jwt>` on mandatory calls, the JWT fetched from the
/// customer's backend and bound to the call's parameters; `x-user-id: <subscription id>` on
/// optional calls, without asking the backend.
///
/// By default a JWT is reused for calls with the same parameters until
/// [`DEFAULT_REFRESH_MARGIN`] before it expires, concurrent calls with the same parameters share
/// one fetch, and a JWT the API rejects with 401 is dropped. Cloning is cheap and shares the
/// cache.
///
/// ```
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, HttpJwtProvider, JwtAuth};
///
/// let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?;
/// let auth = JwtAuth::new("66ec1726e728c1405e5ebca2", provider)?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(AiutaAuthMiddleware::new(auth))
///     .build();
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct JwtAuth {
    inner: Arc<Inner>,
}

struct Inner {
    subscription: Credential,
    provider: Box<dyn JwtProvider>,
    cache: Option<TokenCache>,
    refresh_margin: Duration,
    fetch_timeout: Duration,
}

impl JwtAuth {
    /// The JWT scheme with the default cache settings.
    pub fn new(
        subscription_id: impl Into<String>,
        provider: impl JwtProvider,
    ) -> Result<Self, AuthError> {
        Self::builder(subscription_id, provider).build()
    }

    /// Starts configuring the JWT scheme.
    ///
    /// ```
    /// use std::time::Duration;
    /// use reqwest_aiuta_auth::{HttpJwtProvider, JwtAuth};
    ///
    /// let auth = JwtAuth::builder(
    ///     "66ec1726e728c1405e5ebca2",
    ///     HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?,
    /// )
    /// .refresh_margin(Duration::from_secs(20))
    /// .fetch_timeout(Duration::from_secs(3))
    /// .build()?;
    /// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
    /// ```
    pub fn builder(
        subscription_id: impl Into<String>,
        provider: impl JwtProvider,
    ) -> JwtAuthBuilder {
        JwtAuthBuilder {
            subscription_id: subscription_id.into(),
            provider: Box::new(provider),
            cache: true,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_cached: DEFAULT_MAX_CACHED,
        }
    }

    /// How many cached JWTs could serve a call now (0 with the cache off).
    ///
    /// Keep a clone of the `JwtAuth` you give the middleware to watch its cache:
    ///
    /// ```
    /// # async fn run() -> Result<(), reqwest_aiuta_auth::AuthError> {
    /// use reqwest_aiuta_auth::{AiutaAuthMiddleware, HttpJwtProvider, JwtAuth};
    ///
    /// let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?;
    /// let auth = JwtAuth::new("66ec1726e728c1405e5ebca2", provider)?;
    /// let middleware = AiutaAuthMiddleware::new(auth.clone());
    /// assert_eq!(auth.cached_tokens().await, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cached_tokens(&self) -> u64 {
        match &self.inner.cache {
            Some(cache) => cache.len().await,
            None => 0,
        }
    }

    /// The credential for `request` if it is ready without waiting (a subscription id, a JWT
    /// found under the request's raw bytes, or none when the caller set the header himself);
    /// `None` when a JWT must be looked up by parameters or fetched.
    pub(crate) fn ready_credential(
        &self,
        requirement: AuthRequirement,
        request: &reqwest::Request,
    ) -> Option<Credential> {
        match requirement {
            AuthRequirement::Optional if request.headers().contains_key(X_USER_ID) => {
                Some(Credential::none())
            }
            AuthRequirement::Optional => Some(self.inner.subscription.clone()),
            AuthRequirement::Mandatory
                if request.headers().contains_key(http::header::AUTHORIZATION) =>
            {
                Some(Credential::none())
            }
            AuthRequirement::Mandatory => {
                let token = self.inner.cache.as_ref()?.get_raw(RawKey::of(request))?;
                Some(token.credential())
            }
        }
    }

    /// The credential for a mandatory call that found no token under its raw bytes.
    async fn fetch_for(&self, request: &reqwest::Request) -> Result<Credential, AuthError> {
        let inner = &*self.inner;
        let Some(cache) = &inner.cache else {
            let params = JwtParams::from_request(request);
            return Ok(inner.fetch(&params).await?.credential());
        };
        let raw = RawKey::of(request);
        let params = JwtParams::from_request(request);
        let key: Arc<str> = params.canonical_key().into();
        // The fetch owns what it needs, so that it can outlive the call that started it.
        let fetch = || {
            let inner = Arc::clone(&self.inner);
            let params = params.clone();
            async move { inner.fetch(&params).await }
        };
        let token = cache.get_or_fetch(key, fetch).await?;
        cache.alias_raw(raw, &token);
        Ok(token.credential())
    }
}

impl Inner {
    /// One provider call, bounded by the fetch timeout, its answer checked.
    async fn fetch(&self, params: &JwtParams) -> Result<Arc<CachedToken>, AuthError> {
        let call = AssertUnwindSafe(self.provider.fetch_jwt(params)).catch_unwind();
        let span = tracing::debug_span!("aiuta_jwt_fetch", params = params.len());
        let jwt = match tokio::time::timeout(self.fetch_timeout, call)
            .instrument(span)
            .await
        {
            Err(_elapsed) => {
                tracing::warn!(timeout = ?self.fetch_timeout, "JWT provider timed out");
                return Err(AuthError::JwtTimeout {
                    timeout: self.fetch_timeout,
                });
            }
            Ok(Err(_panic)) => {
                tracing::warn!("JWT provider panicked");
                return Err(AuthError::provider("the JWT provider panicked", None));
            }
            Ok(Ok(Err(error))) => {
                tracing::debug!("JWT provider failed");
                return Err(match error.downcast::<AuthError>() {
                    Ok(auth) => *auth,
                    Err(other) => {
                        AuthError::provider("the JWT provider returned an error", Some(other))
                    }
                });
            }
            Ok(Ok(Ok(jwt))) => jwt,
        };
        check_compact_jws(&jwt)?;
        let fresh_until = self.fresh_until(unverified_expiry(&jwt));
        tracing::debug!(reusable = fresh_until.is_some(), "JWT fetched");
        Ok(Arc::new(CachedToken::new(
            Credential::bearer(jwt)?,
            fresh_until,
        )))
    }

    /// Maps the token's wall-clock `exp`, less the margin, onto tokio's clock.
    fn fresh_until(&self, exp: Option<SystemTime>) -> Option<tokio::time::Instant> {
        self.cache.as_ref()?;
        let left = exp?.duration_since(SystemTime::now()).ok()?;
        let usable = left.checked_sub(self.refresh_margin)?;
        (!usable.is_zero()).then(|| tokio::time::Instant::now() + usable)
    }
}

#[async_trait::async_trait]
impl CredentialSource for JwtAuth {
    async fn credential(
        &self,
        requirement: AuthRequirement,
        request: &reqwest::Request,
    ) -> Result<Credential, AuthError> {
        match self.ready_credential(requirement, request) {
            Some(credential) => Ok(credential),
            // Boxed: the fetch path's future is large, and a ready answer should not allocate it.
            None => Box::pin(self.fetch_for(request)).await,
        }
    }

    fn rejected(&self, credential: &Credential) {
        if let Some(token) = &credential.token {
            tracing::debug!("JWT rejected by the API; dropping it");
            token.revoke();
        }
    }
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("cache", &self.inner.cache.is_some())
            .field("refresh_margin", &self.inner.refresh_margin)
            .field("fetch_timeout", &self.inner.fetch_timeout)
            .finish_non_exhaustive()
    }
}

/// Configures [`JwtAuth`]; made by [`JwtAuth::builder`].
///
/// ```
/// use std::time::Duration;
/// use reqwest_aiuta_auth::{AuthError, HttpJwtProvider, JwtAuth};
///
/// let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?;
/// let auth = JwtAuth::builder("66ec1726e728c1405e5ebca2", provider)
///     .max_cached(1_000)
///     .build()?;
///
/// // Settings that cannot work are refused here, not at the first request.
/// let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?;
/// let zero = JwtAuth::builder("66ec1726e728c1405e5ebca2", provider)
///     .fetch_timeout(Duration::ZERO)
///     .build();
/// assert!(matches!(zero, Err(AuthError::InvalidConfig { .. })));
/// # Ok::<(), AuthError>(())
/// ```
#[must_use]
pub struct JwtAuthBuilder {
    subscription_id: String,
    provider: Box<dyn JwtProvider>,
    cache: bool,
    refresh_margin: Duration,
    fetch_timeout: Duration,
    max_cached: usize,
}

impl JwtAuthBuilder {
    /// Whether to reuse JWTs for calls with the same parameters (default `true`). Off, every
    /// mandatory call fetches its own JWT, as Aiuta's iOS and web SDKs do.
    pub fn cache(mut self, enabled: bool) -> Self {
        self.cache = enabled;
        self
    }

    /// How long before its `exp` a JWT stops serving new calls (default
    /// [`DEFAULT_REFRESH_MARGIN`]).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// How long one provider call may take (default [`DEFAULT_FETCH_TIMEOUT`]); past it, the
    /// calls waiting on it fail with [`AuthError::JwtTimeout`] and are not sent.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// How many JWTs the cache keeps at most (default [`DEFAULT_MAX_CACHED`]); those that
    /// expired go first.
    pub fn max_cached(mut self, entries: usize) -> Self {
        self.max_cached = entries;
        self
    }

    /// Checks the settings and builds the scheme.
    pub fn build(self) -> Result<JwtAuth, AuthError> {
        if self.fetch_timeout.is_zero() {
            return Err(AuthError::config(
                "fetch_timeout",
                "must be greater than zero",
            ));
        }
        if self.cache && self.max_cached == 0 {
            return Err(AuthError::config(
                "max_cached",
                "must be at least 1 (turn the cache off with cache(false))",
            ));
        }
        let cache = self.cache.then(|| TokenCache::new(self.max_cached));
        Ok(JwtAuth {
            inner: Arc::new(Inner {
                subscription: Credential::subscription_id(self.subscription_id)?,
                provider: self.provider,
                cache,
                refresh_margin: self.refresh_margin,
                fetch_timeout: self.fetch_timeout,
            }),
        })
    }
}

impl fmt::Debug for JwtAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthBuilder")
            .field("cache", &self.cache)
            .field("refresh_margin", &self.refresh_margin)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("max_cached", &self.max_cached)
            .finish_non_exhaustive()
    }
}
