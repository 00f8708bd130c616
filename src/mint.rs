//! The server-side half of Aiuta's JWT scheme: signing a JWT over one call's parameters, as the
//! customer's backend does.
//!
//! Aiuta documents that backend only in Python; [`JwtMinter`] is the same thing for a Rust
//! backend. It holds the subscription's "JWT key" (the issuer) and "JWT secret", so it belongs
//! on a server, never in an app.
//!
//! ```
//! use reqwest_aiuta_auth::JwtParams;
//! use reqwest_aiuta_auth::mint::JwtMinter;
//!
//! let minter = JwtMinter::new("my-jwt-key", "my-jwt-secret")?;
//! // In an HTTP handler: parse the request into parameters, check quotas, then sign.
//! let params: JwtParams = [("uploaded_image_id", "img_1"), ("sku_id", "sku_1")]
//!     .into_iter()
//!     .collect();
//! let token = minter.mint(&params)?;
//! let answer = serde_json::json!({ "type": "jwt", "token": token });
//! # assert_eq!(answer["token"].as_str().unwrap().split('.').count(), 3);
//! # Ok::<(), reqwest_aiuta_auth::AuthError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::{AuthError, BoxError, JwtParams, JwtProvider};

/// How long a minted JWT lives unless [`JwtMinter::lifetime`] says otherwise: the 60 seconds of
/// Aiuta's documented backend, enough for one call, too short to be worth stealing.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The claims the minter sets itself. They win over parameters of the same name, so a caller
/// cannot extend a token's life or change its issuer by sending an `exp` or `iss` field.
pub(crate) const REGISTERED_CLAIMS: [&str; 3] = ["iss", "iat", "exp"];

/// Signs Aiuta JWTs (HS256) with a subscription's JWT secret.
///
/// The payload is the parameters' JSON values ([`JwtParams::json`]) plus `iss` (the issuer),
/// `iat` (now, in whole seconds since the Unix epoch) and `exp` (`iat` plus the
/// [lifetime](Self::lifetime)). Those three win over parameters of the same name.
///
/// It is also a [`JwtProvider`], for a service that holds the JWT secret itself and so needs
/// no round trip to a backend:
///
/// ```
/// use reqwest_aiuta_auth::mint::JwtMinter;
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, JwtAuth};
///
/// let minter = JwtMinter::new("my-jwt-key", "my-jwt-secret")?;
/// let auth = AiutaAuthMiddleware::new(JwtAuth::new("66ec1726e728c1405e5ebca2", minter)?);
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
///
/// The secret is kept in a [`secrecy`] type and `Debug` never shows it; the issuer, which every
/// token carries in clear, is shown.
#[derive(Clone)]
pub struct JwtMinter {
    issuer: String,
    secret: SecretString,
    lifetime: Duration,
}

impl JwtMinter {
    /// A minter for the subscription whose JWT key is `issuer` and whose JWT secret is `secret`.
    ///
    /// An empty issuer or secret is [`AuthError::InvalidCredential`].
    ///
    /// ```
    /// use reqwest_aiuta_auth::AuthError;
    /// use reqwest_aiuta_auth::mint::JwtMinter;
    ///
    /// let error = JwtMinter::new("my-jwt-key", "").unwrap_err();
    /// assert!(matches!(error, AuthError::InvalidCredential { what: "JWT secret", .. }));
    /// ```
    pub fn new(issuer: impl Into<String>, secret: impl Into<String>) -> Result<Self, AuthError> {
        let issuer = issuer.into();
        let secret = SecretString::from(secret.into());
        let empty = |what| AuthError::InvalidCredential {
            what,
            reason: "it is empty",
        };
        if issuer.is_empty() {
            return Err(empty("JWT issuer"));
        }
        if secret.expose_secret().is_empty() {
            return Err(empty("JWT secret"));
        }
        Ok(JwtMinter {
            issuer,
            secret,
            lifetime: DEFAULT_LIFETIME,
        })
    }

    /// How long the tokens live (default [`DEFAULT_LIFETIME`]). `exp` is a whole number of
    /// seconds, so a fraction of a second rounds the lifetime up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use reqwest_aiuta_auth::mint::JwtMinter;
    ///
    /// let minter = JwtMinter::new("my-jwt-key", "my-jwt-secret")?.lifetime(Duration::from_secs(30));
    /// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
    /// ```
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The issuer (`iss`) the tokens carry.
    ///
    /// ```
    /// use reqwest_aiuta_auth::mint::JwtMinter;
    ///
    /// assert_eq!(JwtMinter::new("my-jwt-key", "my-jwt-secret")?.issuer(), "my-jwt-key");
    /// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A JWT signed over `params`, issued now.
    ///
    /// ```
    /// use reqwest_aiuta_auth::JwtParams;
    /// use reqwest_aiuta_auth::mint::JwtMinter;
    ///
    /// let minter = JwtMinter::new("my-jwt-key", "my-jwt-secret")?;
    /// let params: JwtParams = [("uploaded_image_id", "img_1")].into_iter().collect();
    /// let token = minter.mint(&params)?;
    /// let exp = reqwest_aiuta_auth::unverified_expiry(&token).unwrap();
    /// assert!(exp > std::time::SystemTime::now());
    /// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
    /// ```
    pub fn mint(&self, params: &JwtParams) -> Result<String, AuthError> {
        self.mint_at(params, SystemTime::now())
    }

    /// A JWT signed over `params` as if issued at `issued_at`: for tests that need a token that
    /// has already expired, or clocks that disagree.
    ///
    /// A time before the Unix epoch is [`AuthError::JwtProvider`].
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use reqwest_aiuta_auth::JwtParams;
    /// use reqwest_aiuta_auth::mint::JwtMinter;
    ///
    /// let minter = JwtMinter::new("my-jwt-key", "my-jwt-secret")?;
    /// let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// let stale = minter.mint_at(&JwtParams::default(), an_hour_ago)?;
    /// assert!(reqwest_aiuta_auth::unverified_expiry(&stale).unwrap() < SystemTime::now());
    /// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
    /// ```
    pub fn mint_at(&self, params: &JwtParams, issued_at: SystemTime) -> Result<String, AuthError> {
        let iat = issued_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| AuthError::provider("cannot mint a JWT issued before 1970", None))?
            .as_secs();
        let lifetime = self.lifetime.as_secs() + u64::from(self.lifetime.subsec_nanos() > 0);
        let mut claims: Map<String, Value> = params.json().clone();
        let registered = [
            Value::from(self.issuer.as_str()),
            Value::from(iat),
            Value::from(iat.saturating_add(lifetime)),
        ];
        for (name, value) in REGISTERED_CLAIMS.into_iter().zip(registered) {
            claims.insert(name.to_owned(), value);
        }
        let key = EncodingKey::from_secret(self.secret.expose_secret().as_bytes())
            .map_err(|e| AuthError::provider("the JWT secret is unusable", Some(e.into())))?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
            .map_err(|e| AuthError::provider("signing the JWT failed", Some(e.into())))
    }
}

#[async_trait::async_trait]
impl JwtProvider for JwtMinter {
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        Ok(self.mint(params)?)
    }
}

impl fmt::Debug for JwtMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtMinter")
            .field("issuer", &self.issuer)
            .field("secret", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}
