use std::any::Any;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::redirect::SentTo;
use crate::{ApiKeyAuth, AuthError, AuthRequirement, Credential, CredentialSource, JwtAuth};

/// The host credentials go to unless more are allowed with
/// [`AiutaAuthMiddlewareBuilder::allow_host`].
pub const DEFAULT_ALLOWED_HOST: &str = "api.aiuta.com";

/// Puts Aiuta credentials on the requests that go through a `reqwest-middleware` chain.
///
/// For each request to an allowed host it decides the [`AuthRequirement`] (the request's
/// extension, else the builder's default, else what Aiuta's routes imply), checks that the
/// credential would travel over https (or to loopback), asks the [`CredentialSource`] for the
/// credential and sets its header, unless the caller set that header himself. A request that
/// cannot get the credential it needs is not sent: the client returns an error that
/// [`AuthError::find`] recognises.
///
/// When the API answers 401 to a bearer token, the source is told, a new token is fetched and
/// the request is sent once more, if its body could be cloned.
///
/// Cloning is cheap: the state is shared.
///
/// ```
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth, AuthRequirement};
///
/// let auth = AiutaAuthMiddleware::builder(ApiKeyAuth::new("my-aiuta-api-key")?)
///     .allow_host("api.dev.aiuta.com")
///     .default_requirement(AuthRequirement::Optional)
///     .build();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(auth)
///     .build();
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct AiutaAuthMiddleware {
    inner: Arc<Inner>,
}

struct Inner {
    source: Box<dyn CredentialSource>,
    ready: Ready,
    allowed_hosts: Box<[String]>,
    default_requirement: Option<AuthRequirement>,
    retry_unauthorized: bool,
}

impl AiutaAuthMiddleware {
    /// The middleware with the default settings: credentials only for `api.aiuta.com`, the
    /// requirement inferred from the route, one retry after a 401 to a bearer token.
    pub fn new(source: impl CredentialSource) -> Self {
        Self::builder(source).build()
    }

    /// Starts configuring the middleware.
    pub fn builder(source: impl CredentialSource) -> AiutaAuthMiddlewareBuilder {
        AiutaAuthMiddlewareBuilder {
            ready: Ready::of(&source),
            source: Box::new(source),
            allowed_hosts: vec![DEFAULT_ALLOWED_HOST.to_owned()],
            default_requirement: None,
            retry_unauthorized: true,
        }
    }

    /// The requirement for `request` and the allow-list entry its host matched, `None` when it
    /// passes through untouched, or why it must not be sent.
    fn requirement(
        &self,
        request: &reqwest::Request,
        extensions: &Extensions,
    ) -> Result<Option<(AuthRequirement, &str)>, AuthError> {
        let explicit = extensions.get::<AuthRequirement>().copied();
        let url = request.url();
        let host = url.host_str().unwrap_or_default();
        let Some(allowed) = self
            .inner
            .allowed_hosts
            .iter()
            .find(|allowed| *allowed == host)
        else {
            return match explicit {
                None => Ok(None),
                Some(_) => Err(AuthError::HostNotAllowed {
                    host: host.to_owned(),
                }),
            };
        };
        if url.scheme() != "https" && !is_loopback(url) {
            return Err(AuthError::InsecureTransport {
                host: host.to_owned(),
            });
        }
        let inferred = || AuthRequirement::infer(request.method(), url.path());
        let requirement = explicit
            .or(self.inner.default_requirement)
            .unwrap_or_else(inferred);
        Ok(Some((requirement, allowed)))
    }
}

#[async_trait::async_trait]
impl Middleware for AiutaAuthMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let (requirement, allowed_host) = match self.requirement(&request, extensions) {
            Ok(Some(found)) => found,
            Ok(None) => return next.run(request, extensions).await,
            Err(error) => {
                tracing::debug!(%error, "request refused before sending");
                return Err(error.into_middleware_error());
            }
        };
        let source = &*self.inner.source;
        let credential = match self.inner.ready.credential(requirement, &request) {
            Some(credential) => credential,
            None => source
                .credential(requirement, &request)
                .await
                .map_err(AuthError::into_middleware_error)?,
        };
        // Boxed, to keep this future under the size the allocator serves from its fast path.
        let retry = match credential.is_bearer() && self.inner.retry_unauthorized {
            true => request.try_clone().map(Box::new),
            false => None,
        };
        let applied = credential.apply(request.headers_mut());
        tracing::debug!(?requirement, credential = ?credential.kind, applied, "sending");

        let sent_to = SentTo::of(request.url(), allowed_host);
        let response = next.clone().run(request, extensions).await?;
        if let Some(sent_to) = &sent_to {
            sent_to.check(&response);
        }
        if response.status() != StatusCode::UNAUTHORIZED || !applied {
            return Ok(response);
        }
        source.rejected(&credential);
        let Some(retry) = retry else {
            tracing::debug!(credential = ?credential.kind, "401; not retried");
            return Ok(response);
        };
        // The 401's connection goes back to the pool before the retry needs one.
        drop(response);
        // Boxed: a rare path, whose state would otherwise weigh on every request's future.
        Box::pin(self.send_again(requirement, retry, sent_to, extensions, next)).await
    }
}

impl AiutaAuthMiddleware {
    /// Sends `retry` once more, with a credential fetched after the API answered 401.
    async fn send_again(
        &self,
        requirement: AuthRequirement,
        retry: Box<reqwest::Request>,
        sent_to: Option<SentTo<'_>>,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        tracing::debug!("401 to a bearer token; retrying once with a new one");
        let mut retry = *retry;
        let source = &*self.inner.source;
        let credential = source
            .credential(requirement, &retry)
            .await
            .map_err(AuthError::into_middleware_error)?;
        let applied = credential.apply(retry.headers_mut());
        let response = next.run(retry, extensions).await?;
        if let Some(sent_to) = &sent_to {
            sent_to.check(&response);
        }
        if response.status() == StatusCode::UNAUTHORIZED && applied {
            source.rejected(&credential);
        }
        Ok(response)
    }
}

impl fmt::Debug for AiutaAuthMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiutaAuthMiddleware")
            .field("allowed_hosts", &self.inner.allowed_hosts)
            .field("default_requirement", &self.inner.default_requirement)
            .field("retry_unauthorized", &self.inner.retry_unauthorized)
            .finish_non_exhaustive()
    }
}

/// Configures [`AiutaAuthMiddleware`]; made by [`AiutaAuthMiddleware::builder`].
///
/// ```
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, AuthRequirement, HttpJwtProvider, JwtAuth};
///
/// let jwt = JwtAuth::new(
///     "66ec1726e728c1405e5ebca2",
///     HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?,
/// )?;
/// let auth = AiutaAuthMiddleware::builder(jwt)
///     .allow_host("api.preprod.aiuta.com")
///     .retry_unauthorized(false)
///     .build();
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
#[must_use]
pub struct AiutaAuthMiddlewareBuilder {
    source: Box<dyn CredentialSource>,
    ready: Ready,
    allowed_hosts: Vec<String>,
    default_requirement: Option<AuthRequirement>,
    retry_unauthorized: bool,
}

impl AiutaAuthMiddlewareBuilder {
    /// Adds `host` to the hosts that credentials may go to (the list starts with
    /// [`DEFAULT_ALLOWED_HOST`]).
    ///
    /// Give a host name or IP address; a scheme, port or path around it is ignored, so
    /// `"https://api.dev.aiuta.com/v1"` allows `api.dev.aiuta.com` on any port.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        let host = normalize_host(&host.into());
        if !host.is_empty() && !self.allowed_hosts.contains(&host) {
            self.allowed_hosts.push(host);
        }
        self
    }

    /// The requirement for requests that carry no [`AuthRequirement`] extension, instead of
    /// inferring it from the route.
    pub fn default_requirement(mut self, requirement: AuthRequirement) -> Self {
        self.default_requirement = Some(requirement);
        self
    }

    /// Whether a request whose bearer token got a 401 is sent once more with a new token
    /// (default `true`).
    pub fn retry_unauthorized(mut self, enabled: bool) -> Self {
        self.retry_unauthorized = enabled;
        self
    }

    /// Builds the middleware.
    pub fn build(self) -> AiutaAuthMiddleware {
        AiutaAuthMiddleware {
            inner: Arc::new(Inner {
                source: self.source,
                ready: self.ready,
                allowed_hosts: self.allowed_hosts.into_boxed_slice(),
                default_requirement: self.default_requirement,
                retry_unauthorized: self.retry_unauthorized,
            }),
        }
    }
}

impl fmt::Debug for AiutaAuthMiddlewareBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiutaAuthMiddlewareBuilder")
            .field("allowed_hosts", &self.allowed_hosts)
            .field("default_requirement", &self.default_requirement)
            .field("retry_unauthorized", &self.retry_unauthorized)
            .finish_non_exhaustive()
    }
}

/// The crate's own sources, whose credential is often ready at once (an API key, a subscription
/// id, a cached JWT): the middleware takes it directly, without boxing a future through
/// [`CredentialSource::credential`], which gives the same answer.
enum Ready {
    ApiKey(ApiKeyAuth),
    Jwt(JwtAuth),
    Other,
}

impl Ready {
    fn of(source: &dyn Any) -> Self {
        if let Some(api_key) = source.downcast_ref::<ApiKeyAuth>() {
            Ready::ApiKey(api_key.clone())
        } else if let Some(jwt) = source.downcast_ref::<JwtAuth>() {
            Ready::Jwt(jwt.clone())
        } else {
            Ready::Other
        }
    }

    fn credential(
        &self,
        requirement: AuthRequirement,
        request: &reqwest::Request,
    ) -> Option<Credential> {
        match self {
            Ready::ApiKey(api_key) => Some(api_key.ready_credential(request)),
            Ready::Jwt(jwt) => jwt.ready_credential(requirement, request),
            Ready::Other => None,
        }
    }
}

/// The host as `Url::host_str` spells it: lower case, IPv6 in brackets, no scheme, port, path
/// or trailing dot.
fn normalize_host(input: &str) -> String {
    let input = input.trim();
    let rest = input.split_once("://").map_or(input, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else if authority.matches(':').count() > 1 {
        authority // a bare IPv6 address
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]"),
        Err(_) => host,
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("API.Aiuta.com."), "api.aiuta.com");
        assert_eq!(
            normalize_host("https://api.dev.aiuta.com:8443/v1"),
            "api.dev.aiuta.com"
        );
        assert_eq!(normalize_host("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(normalize_host("::1"), "[::1]");
        assert_eq!(normalize_host("[0:0::1]:80"), "[::1]");
    }

    #[test]
    fn loopback_hosts() {
        for url in ["http://localhost/", "http://127.0.0.2:9/", "http://[::1]/"] {
            assert!(is_loopback(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://api.aiuta.com/",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback(&url.parse().unwrap()), "{url}");
        }
    }
}
