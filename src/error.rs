use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

/// The error type that [`JwtProvider`](crate::JwtProvider) implementations return.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The message that wraps every [`AuthError`] inside a `reqwest_middleware::Error`.
const CONTEXT: &str = "Aiuta authentication failed";

/// Why the middleware refused to send a request, or why a credential could not be built.
///
/// None of the variants carries a secret: neither `Display` nor `Debug` ever shows an API key,
/// a JWT or a JWT secret.
///
/// A request that fails inside the middleware comes back from the client as
/// [`reqwest_middleware::Error::Middleware`]; [`AuthError::find`] gets the `AuthError` back.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A credential (or subscription id) is empty, or is not a valid HTTP header value.
    #[error("invalid {what}: {reason}")]
    InvalidCredential {
        /// What was being built: "API key", "JWT", "subscription id", ...
        what: &'static str,
        /// Why it was refused. Never the value itself.
        reason: &'static str,
    },
    /// A credential would travel over plain `http` to a host that is not loopback.
    #[error("refusing to send a credential over plain http to {host}; use https")]
    InsecureTransport {
        /// The request's host.
        host: String,
    },
    /// A request marked with an [`AuthRequirement`](crate::AuthRequirement) goes to a host that
    /// is not on the middleware's allow-list.
    #[error("host {host} is not on the allow-list of the Aiuta auth middleware")]
    HostNotAllowed {
        /// The request's host.
        host: String,
    },
    /// The JWT provider, or the JWT backend behind it, failed.
    #[error("the JWT provider failed: {reason}")]
    JwtProvider {
        /// A short description of the failure (an HTTP status, say). Never a token.
        reason: String,
        /// The provider's own error, when it gave one.
        #[source]
        source: Option<Arc<dyn StdError + Send + Sync>>,
    },
    /// The JWT provider did not answer within the fetch timeout.
    #[error("the JWT provider did not answer within {timeout:?}")]
    JwtTimeout {
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The JWT provider returned something that is not a compact JWS (`header.payload.signature`).
    #[error("the JWT provider returned an invalid JWT: {reason}")]
    InvalidJwt {
        /// What is wrong with it. Never the token itself.
        reason: &'static str,
    },
    /// A setting is out of range, or the environment does not configure the middleware.
    #[error("invalid configuration: {setting} {problem}")]
    InvalidConfig {
        /// The setting or environment variable at fault.
        setting: &'static str,
        /// What is wrong with it, as a predicate ("is not set", "must be greater than zero").
        problem: String,
    },
}

impl AuthError {
    /// Finds the `AuthError` inside a client error, also when an outer middleware (such as
    /// `reqwest-retry`) has wrapped it once more.
    ///
    /// ```
    /// # async fn run(client: reqwest_middleware::ClientWithMiddleware) {
    /// use reqwest_aiuta_auth::AuthError;
    ///
    /// match client.get("https://api.aiuta.com/v1/sku_items").send().await {
    ///     Ok(response) => println!("status {}", response.status()),
    ///     Err(error) => match AuthError::find(&error) {
    ///         Some(AuthError::JwtTimeout { .. }) => println!("the JWT backend is slow"),
    ///         Some(other) => println!("not sent: {other}"),
    ///         None => println!("transport error: {error}"),
    ///     },
    /// }
    /// # }
    /// ```
    pub fn find(error: &reqwest_middleware::Error) -> Option<&AuthError> {
        if let reqwest_middleware::Error::Middleware(inner) = error
            && let Some(found) = inner.downcast_ref::<AuthError>()
        {
            return Some(found);
        }
        // Transparent wrappers (reqwest-middleware's and reqwest-retry's errors) skip themselves
        // in `source()`, but `into_middleware_error` puts a context layer above the AuthError,
        // so the AuthError itself is always some wrapper's source.
        let mut next: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(current) = next {
            if let Some(found) = current.downcast_ref::<AuthError>() {
                return Some(found);
            }
            next = current.source();
        }
        None
    }

    pub(crate) fn config(setting: &'static str, problem: impl Into<String>) -> Self {
        AuthError::InvalidConfig {
            setting,
            problem: problem.into(),
        }
    }

    pub(crate) fn provider(reason: impl Into<String>, source: Option<BoxError>) -> Self {
        AuthError::JwtProvider {
            reason: reason.into(),
            source: source.map(Arc::from),
        }
    }

    /// Wraps the error the way the middleware returns it, keeping it reachable both by
    /// downcasting and by walking `source()`.
    pub(crate) fn into_middleware_error(self) -> reqwest_middleware::Error {
        reqwest_middleware::Error::Middleware(anyhow::Error::new(self).context(CONTEXT))
    }
}
