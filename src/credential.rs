use std::fmt;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::jwt_cache::CachedToken;
use crate::{AuthError, AuthRequirement};

pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub(crate) const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// Where the middleware gets the credential for a request.
///
/// [`ApiKeyAuth`](crate::ApiKeyAuth) and [`JwtAuth`](crate::JwtAuth) implement Aiuta's two
/// schemes; implement it yourself to take credentials from somewhere else (a secret manager,
/// say).
///
/// ```
/// use reqwest_aiuta_auth::{AuthError, AuthRequirement, Credential, CredentialSource};
///
/// struct FromVault;
///
/// #[async_trait::async_trait]
/// impl CredentialSource for FromVault {
///     async fn credential(
///         &self,
///         _requirement: AuthRequirement,
///         _request: &reqwest::Request,
///     ) -> Result<Credential, AuthError> {
///         Credential::api_key("key-read-from-the-vault")
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync + 'static {
    /// The credential for `request`, which needs `requirement`.
    ///
    /// Runs after the middleware's host and transport checks, so it is only asked for requests
    /// that may carry a credential.
    async fn credential(
        &self,
        requirement: AuthRequirement,
        request: &reqwest::Request,
    ) -> Result<Credential, AuthError>;

    /// The API answered 401 to a request that carried `credential`.
    ///
    /// A source that caches credentials should forget this one here.
    fn rejected(&self, _credential: &Credential) {}
}

/// A credential, ready to be put on a request. Opaque: neither `Debug` nor anything else shows
/// the secret it holds.
///
/// ```
/// use reqwest_aiuta_auth::Credential;
///
/// let credential = Credential::api_key("sk_live_123").unwrap();
/// assert!(!format!("{credential:?}").contains("sk_live_123"));
/// assert!(Credential::api_key("line\nbreak").is_err());
/// ```
#[derive(Clone)]
pub struct Credential {
    pub(crate) kind: Kind,
    value: Option<HeaderValue>,
    /// The cache entry the JWT came from, so that a 401 can evict it.
    pub(crate) token: Option<Arc<CachedToken>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    None,
    ApiKey,
    Bearer,
    SubscriptionId,
}

impl Credential {
    /// An Aiuta API key, sent as `x-api-key`.
    pub fn api_key(key: impl Into<String>) -> Result<Self, AuthError> {
        let key = key.into();
        Ok(Self::header(
            Kind::ApiKey,
            header_value("API key", &key, "")?,
        ))
    }

    /// A JWT, sent as `Authorization: Bearer <jwt>`.
    pub fn bearer(jwt: impl Into<String>) -> Result<Self, AuthError> {
        let jwt = jwt.into();
        Ok(Self::header(
            Kind::Bearer,
            header_value("JWT", &jwt, "Bearer ")?,
        ))
    }

    /// An Aiuta subscription id, sent as `x-user-id` on optional calls of the JWT scheme.
    pub fn subscription_id(id: impl Into<String>) -> Result<Self, AuthError> {
        let id = id.into();
        let mut value = header_value("subscription id", &id, "")?;
        // The id is public, but nothing is lost by keeping it out of HTTP/2 header tables.
        value.set_sensitive(true);
        Ok(Self::header(Kind::SubscriptionId, value))
    }

    /// No credential: the request is sent as it is.
    ///
    /// ```
    /// use reqwest_aiuta_auth::Credential;
    ///
    /// assert!(Credential::none().is_none());
    /// assert_eq!(Credential::none().header_name(), None);
    /// ```
    pub fn none() -> Self {
        Credential {
            kind: Kind::None,
            value: None,
            token: None,
        }
    }

    /// Whether this is [`Credential::none`].
    pub fn is_none(&self) -> bool {
        self.kind == Kind::None
    }

    /// Whether this credential is a bearer token (the JWT scheme's mandatory level).
    pub fn is_bearer(&self) -> bool {
        self.kind == Kind::Bearer
    }

    /// The header this credential is sent in, if any.
    ///
    /// ```
    /// use reqwest_aiuta_auth::Credential;
    ///
    /// let bearer = Credential::bearer("aaa.bbb.ccc").unwrap();
    /// assert!(bearer.is_bearer());
    /// assert_eq!(bearer.header_name(), Some(http::header::AUTHORIZATION));
    /// let id = Credential::subscription_id("66ec1726e728c1405e5ebca2").unwrap();
    /// assert_eq!(id.header_name().unwrap(), "x-user-id");
    /// ```
    pub fn header_name(&self) -> Option<HeaderName> {
        match self.kind {
            Kind::None => None,
            Kind::ApiKey => Some(X_API_KEY),
            Kind::Bearer => Some(http::header::AUTHORIZATION),
            Kind::SubscriptionId => Some(X_USER_ID),
        }
    }

    fn header(kind: Kind, value: HeaderValue) -> Self {
        Credential {
            kind,
            value: Some(value),
            token: None,
        }
    }

    pub(crate) fn with_token(mut self, token: Arc<CachedToken>) -> Self {
        self.token = Some(token);
        self
    }

    /// Puts the credential on `headers` unless the caller set that header himself.
    /// Returns whether it was added.
    pub(crate) fn apply(&self, headers: &mut http::HeaderMap) -> bool {
        let (Some(name), Some(value)) = (self.header_name(), &self.value) else {
            return false;
        };
        match headers.entry(name) {
            http::header::Entry::Occupied(_) => false,
            http::header::Entry::Vacant(slot) => {
                slot.insert(value.clone());
                true
            }
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Credential");
        out.field("kind", &self.kind);
        if self.value.is_some() {
            out.field("value", &"[redacted]");
        }
        out.finish()
    }
}

/// Builds a sensitive header value of `prefix` + `secret`, refusing empty values, surrounding
/// white space and bytes that a header cannot carry.
pub(crate) fn header_value(
    what: &'static str,
    secret: &str,
    prefix: &str,
) -> Result<HeaderValue, AuthError> {
    let invalid = |reason| AuthError::InvalidCredential { what, reason };
    if secret.is_empty() {
        return Err(invalid("it is empty"));
    }
    if secret.trim() != secret {
        return Err(invalid("it starts or ends with white space"));
    }
    if secret
        .bytes()
        .any(|b| b.is_ascii_control() || !b.is_ascii())
    {
        return Err(invalid("it holds control or non-ASCII characters"));
    }
    let mut text = String::with_capacity(prefix.len() + secret.len());
    text.push_str(prefix);
    text.push_str(secret);
    let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .map_err(|_| invalid("it is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}
