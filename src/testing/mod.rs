//! A local Aiuta emulator, to test code built on this crate without an Aiuta account.
//!
//! [`AiutaEmulator`] starts a [`wiremock`] server on 127.0.0.1 that plays two parts:
//!
//! - **the Aiuta API**: the try-on routes of the digital try-on API (under
//!   [`TRY_ON_BASE_PATH`]: upload an image, start a try-on, poll it, list the predefined models)
//!   and of the unified API (under [`UNIFIED_BASE_PATH`]), with bodies shaped as Aiuta's OpenAPI
//!   describes them. It checks each call's credential as Aiuta does and answers 401 with a JSON
//!   `detail` when it would not do; it records every call (see [`Received`]).
//! - **the customer's JWT backend** (JWT scheme only): at [`JWT_BACKEND_PATH`], it signs what it
//!   is sent with a [`JwtMinter`] and counts the tokens it minted.
//!
//! What it checks:
//!
//! | scheme | optional call | mandatory call (a `POST` that starts an operation) |
//! | --- | --- | --- |
//! | API key | `x-api-key` equals the key | `x-api-key` equals the key |
//! | JWT | `x-user-id` equals the subscription id, or a valid bearer token | `Authorization: Bearer` with a valid token whose every signed parameter equals the call's |
//!
//! A token is valid when its HS256 signature matches the JWT secret, its `iss` is the issuer and
//! its `exp` has not passed. Beyond `iss`, `iat` and `exp`, each claim must equal the call's
//! parameter of that name (its query pair or top-level JSON body field), as a JSON value or in
//! the string form that [`JwtParams`] gives (`"a,b"` for `["a","b"]`).
//!
//! A new operation answers `IN_PROGRESS` to its first poll (see
//! [`AiutaEmulatorBuilder::in_progress_polls`]), then `SUCCESS` with one generated image. Image
//! URLs point at the emulator itself, which serves [`PLACEHOLDER_PNG`] there. Image and SKU ids
//! are not looked up: any id will do.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reqwest_aiuta_auth::testing::{AiutaEmulator, CredentialHeader};
//! use reqwest_aiuta_auth::{AiutaAuthMiddleware, HttpJwtProvider, JwtAuth};
//!
//! let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret").start().await?;
//! let provider = HttpJwtProvider::new(&emulator.jwt_backend_url())?;
//! let auth = AiutaAuthMiddleware::builder(JwtAuth::new("sub_1", provider)?)
//!     .allow_host("127.0.0.1")
//!     .build();
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(auth)
//!     .build();
//!
//! let started = client
//!     .post(format!("{}/sku_images_operations", emulator.try_on_url()))
//!     .json(&serde_json::json!({ "uploaded_image_id": "img_1", "sku_id": "sku_1" }))
//!     .send()
//!     .await?;
//! assert_eq!(started.status(), 200);
//! assert_eq!(emulator.jwts_minted(), 1);
//! assert!(emulator.received()[0].carried(CredentialHeader::Authorization));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use self::auth::Scheme;
use crate::credential::header_value;
use crate::mint::{DEFAULT_LIFETIME, JwtMinter};
use crate::{AuthError, JwtParams};

mod api;
mod auth;
mod backend;
mod record;

pub use record::{CredentialHeader, Received};

/// How many polls of a new operation answer `IN_PROGRESS` before one answers `SUCCESS`: one, so
/// that a client's poll loop goes round at least twice.
pub const DEFAULT_IN_PROGRESS_POLLS: u32 = 1;

/// Where the emulated customer JWT backend listens, as in Aiuta's documentation.
pub const JWT_BACKEND_PATH: &str = "/aiuta_jwt";

/// The base path of the digital try-on API, as on `api.aiuta.com`.
pub const TRY_ON_BASE_PATH: &str = "/digital-try-on/v1";

/// The base path of the unified API, as on `api.aiuta.com`.
pub const UNIFIED_BASE_PATH: &str = "/v1";

/// A 1×1 PNG: what the emulator serves for every image URL it hands out, and a photo small
/// enough to upload in a test.
pub const PLACEHOLDER_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xb8, 0xd0, 0x93, 0x07,
    0x00, 0x03, 0xfa, 0x01, 0xcb, 0x36, 0x15, 0x25, 0x58, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Where the emulator serves [`PLACEHOLDER_PNG`] for the image URLs it hands out.
const IMAGES_PATH: &str = "/emulated_images";

/// A running Aiuta emulator on 127.0.0.1; it stops when dropped.
///
/// Start one with [`AiutaEmulator::api_key`] or [`AiutaEmulator::jwt`], then
/// [`start`](AiutaEmulatorBuilder::start). Point the client at [`try_on_url`](Self::try_on_url)
/// or [`unified_url`](Self::unified_url), and allow the host `127.0.0.1` on the middleware
/// ([`AiutaAuthMiddlewareBuilder::allow_host`](crate::AiutaAuthMiddlewareBuilder::allow_host)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use reqwest_aiuta_auth::testing::AiutaEmulator;
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth};
///
/// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
/// let auth = AiutaAuthMiddleware::builder(ApiKeyAuth::new("test-api-key")?)
///     .allow_host("127.0.0.1")
///     .build();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(auth)
///     .build();
///
/// let models = client
///     .get(format!("{}/predefined_try_on_models", emulator.try_on_url()))
///     .send()
///     .await?;
/// assert_eq!(models.status(), 200);
/// assert_eq!(emulator.received().len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct AiutaEmulator {
    server: MockServer,
    state: Arc<State>,
}

impl AiutaEmulator {
    /// An emulator for a subscription on the API-key scheme: every call must carry
    /// `x-api-key: <key>`. It has no JWT backend.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
    /// let models = reqwest::Client::new()
    ///     .get(format!("{}/predefined_try_on_models", emulator.try_on_url()))
    ///     .header("x-api-key", "test-api-key")
    ///     .send()
    ///     .await?;
    /// assert_eq!(models.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn api_key(key: impl Into<String>) -> AiutaEmulatorBuilder {
        AiutaEmulatorBuilder::new(Scheme::ApiKey {
            key: SecretString::from(key.into()),
        })
    }

    /// An emulator for a subscription on the JWT scheme, whose JWT key (the tokens' `iss`) is
    /// `issuer` and whose JWT secret is `secret`; its JWT backend signs with both.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret").start().await?;
    /// let models = reqwest::Client::new()
    ///     .get(format!("{}/predefined_try_on_models", emulator.try_on_url()))
    ///     .header("x-user-id", "sub_1")
    ///     .send()
    ///     .await?;
    /// assert_eq!(models.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwt(
        subscription_id: impl Into<String>,
        issuer: impl Into<String>,
        secret: impl Into<String>,
    ) -> AiutaEmulatorBuilder {
        AiutaEmulatorBuilder::new(Scheme::Jwt {
            subscription_id: subscription_id.into(),
            issuer: issuer.into(),
            secret: SecretString::from(secret.into()),
        })
    }

    /// The emulator's base URL, such as `http://127.0.0.1:41234`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
    /// assert_eq!(emulator.uri(), format!("http://{}", emulator.address()));
    /// assert!(emulator.address().ip().is_loopback());
    /// # Ok(())
    /// # }
    /// ```
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The emulator's address on 127.0.0.1 (see [`uri`](Self::uri) for an example).
    pub fn address(&self) -> SocketAddr {
        *self.server.address()
    }

    /// The base URL of the emulated digital try-on API: [`uri`](Self::uri) +
    /// [`TRY_ON_BASE_PATH`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
    /// let upload = format!("{}/uploaded_images", emulator.try_on_url());
    /// assert!(upload.ends_with("/digital-try-on/v1/uploaded_images"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_on_url(&self) -> String {
        format!("{}{TRY_ON_BASE_PATH}", self.uri())
    }

    /// The base URL of the emulated unified API: [`uri`](Self::uri) + [`UNIFIED_BASE_PATH`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
    /// let started = reqwest::Client::new()
    ///     .post(format!("{}/sku_try_on_operations", emulator.unified_url()))
    ///     .header("x-api-key", "test-api-key")
    ///     .json(&serde_json::json!({ "uploaded_image_id": "img_1", "sku_ids": ["a", "b"] }))
    ///     .send()
    ///     .await?;
    /// assert_eq!(started.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn unified_url(&self) -> String {
        format!("{}{UNIFIED_BASE_PATH}", self.uri())
    }

    /// The URL of the emulated customer JWT backend, for
    /// [`HttpJwtProvider::new`](crate::HttpJwtProvider::new). On the API-key scheme it answers
    /// 404.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    /// use reqwest_aiuta_auth::{HttpJwtProvider, JwtAuth};
    ///
    /// let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret").start().await?;
    /// let provider = HttpJwtProvider::new(&emulator.jwt_backend_url())?;
    /// let auth = JwtAuth::new("sub_1", provider)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwt_backend_url(&self) -> String {
        format!("{}{JWT_BACKEND_PATH}", self.uri())
    }

    /// Every call the emulated API received so far, in order (the JWT backend's are not
    /// included; see [`minted_params`](Self::minted_params)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
    /// let poll = format!("{}/sku_images_operations/op_1", emulator.try_on_url());
    /// reqwest::Client::new().get(poll).header("x-api-key", "nope").send().await?;
    ///
    /// let call = &emulator.received()[0];
    /// assert_eq!(call.path, "/digital-try-on/v1/sku_images_operations/op_1");
    /// assert_eq!(call.status, 401);
    /// assert_eq!(call.rejection.as_deref(), Some("Invalid API key"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn received(&self) -> Vec<Received> {
        self.state.log().received.clone()
    }

    /// How many JWTs the emulated JWT backend has minted (see
    /// [`minted_params`](Self::minted_params) for an example).
    pub fn jwts_minted(&self) -> usize {
        self.state.log().minted.len()
    }

    /// The parameters of each JWT the emulated JWT backend minted, in order; there are
    /// [`jwts_minted`](Self::jwts_minted) of them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret").start().await?;
    /// let answer: serde_json::Value = reqwest::Client::new()
    ///     .post(emulator.jwt_backend_url())
    ///     .json(&serde_json::json!({ "uploaded_image_id": "img_1" }))
    ///     .send()
    ///     .await?
    ///     .json()
    ///     .await?;
    /// assert_eq!(answer["type"], "jwt");
    /// assert_eq!(emulator.jwts_minted(), 1);
    /// assert_eq!(emulator.minted_params()[0].get("uploaded_image_id"), Some("img_1"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn minted_params(&self) -> Vec<JwtParams> {
        self.state.log().minted.clone()
    }

    /// A minter whose tokens this emulator accepts (JWT scheme only): to build tokens by hand
    /// in a test, expired ones among them (see
    /// [`JwtMinter::mint_at`](crate::mint::JwtMinter::mint_at)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::{Duration, SystemTime};
    /// use reqwest_aiuta_auth::testing::AiutaEmulator;
    ///
    /// let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret").start().await?;
    /// let body = serde_json::json!({ "uploaded_image_id": "img_1", "sku_id": "sku_1" });
    /// let params = reqwest_aiuta_auth::JwtParams::from(body.as_object().unwrap().clone());
    /// let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// let stale = emulator.minter().unwrap().mint_at(&params, an_hour_ago)?;
    /// let answer = reqwest::Client::new()
    ///     .post(format!("{}/sku_images_operations", emulator.try_on_url()))
    ///     .bearer_auth(stale)
    ///     .json(&body)
    ///     .send()
    ///     .await?;
    /// assert_eq!(answer.status(), 401);
    /// # Ok(())
    /// # }
    /// ```
    pub fn minter(&self) -> Option<&JwtMinter> {
        self.state.minter.as_ref()
    }
}

impl fmt::Debug for AiutaEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiutaEmulator")
            .field("uri", &self.uri())
            .field("scheme", &self.state.scheme)
            .field("in_progress_polls", &self.state.in_progress_polls)
            .finish_non_exhaustive()
    }
}

/// Configures an [`AiutaEmulator`]; made by [`AiutaEmulator::api_key`] or [`AiutaEmulator::jwt`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), reqwest_aiuta_auth::AuthError> {
/// use std::time::Duration;
/// use reqwest_aiuta_auth::testing::AiutaEmulator;
///
/// let emulator = AiutaEmulator::jwt("sub_1", "my-jwt-key", "my-jwt-secret")
///     .in_progress_polls(3)
///     .token_lifetime(Duration::from_secs(5))
///     .start()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct AiutaEmulatorBuilder {
    scheme: Scheme,
    in_progress_polls: u32,
    token_lifetime: Duration,
}

impl AiutaEmulatorBuilder {
    fn new(scheme: Scheme) -> Self {
        AiutaEmulatorBuilder {
            scheme,
            in_progress_polls: DEFAULT_IN_PROGRESS_POLLS,
            token_lifetime: DEFAULT_LIFETIME,
        }
    }

    /// How many polls of a new operation answer `IN_PROGRESS` before one answers `SUCCESS`
    /// (default [`DEFAULT_IN_PROGRESS_POLLS`]; 0 succeeds at the first poll).
    pub fn in_progress_polls(mut self, polls: u32) -> Self {
        self.in_progress_polls = polls;
        self
    }

    /// How long the JWTs of the emulated JWT backend live (default
    /// [`mint::DEFAULT_LIFETIME`](crate::mint::DEFAULT_LIFETIME)).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Checks the configuration and starts the emulator on a free port of 127.0.0.1.
    ///
    /// An empty key, subscription id, issuer or secret, or a key or subscription id that is not
    /// a valid header value, is [`AuthError::InvalidCredential`].
    pub async fn start(self) -> Result<AiutaEmulator, AuthError> {
        use secrecy::ExposeSecret;

        let minter = match &self.scheme {
            Scheme::ApiKey { key } => {
                header_value("API key", key.expose_secret(), "")?;
                None
            }
            Scheme::Jwt {
                subscription_id,
                issuer,
                secret,
            } => {
                header_value("subscription id", subscription_id, "")?;
                let minter = JwtMinter::new(issuer.clone(), secret.expose_secret())?;
                Some(minter.lifetime(self.token_lifetime))
            }
        };
        let scheme = self.scheme;
        // Our own records replace wiremock's, which would keep every credential it was sent.
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let state = Arc::new(State {
            scheme,
            minter,
            in_progress_polls: self.in_progress_polls,
            base_uri: server.uri(),
            log: Mutex::default(),
        });
        for endpoint in api::Endpoint::ALL {
            Mock::given(endpoint)
                .respond_with(api::Handler {
                    endpoint,
                    state: Arc::clone(&state),
                })
                .mount(&server)
                .await;
        }
        Mock::given(path(JWT_BACKEND_PATH))
            .respond_with(backend::Backend {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!("^{IMAGES_PATH}/[^/]+$")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(PLACEHOLDER_PNG, "image/png"))
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(api::NotFound {
                state: Arc::clone(&state),
            })
            .with_priority(u8::MAX)
            .mount(&server)
            .await;
        Ok(AiutaEmulator { server, state })
    }
}

impl fmt::Debug for AiutaEmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("AiutaEmulatorBuilder");
        match &self.scheme {
            Scheme::ApiKey { .. } => out.field("api_key", &"[redacted]"),
            Scheme::Jwt {
                subscription_id,
                issuer,
                ..
            } => out
                .field("subscription_id", subscription_id)
                .field("issuer", issuer)
                .field("secret", &"[redacted]"),
        };
        out.field("in_progress_polls", &self.in_progress_polls)
            .field("token_lifetime", &self.token_lifetime)
            .finish()
    }
}

/// What the emulator's routes share.
struct State {
    scheme: auth::Scheme,
    /// The JWT backend's signer; `None` on the API-key scheme.
    minter: Option<JwtMinter>,
    in_progress_polls: u32,
    base_uri: String,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    minted: Vec<JwtParams>,
    operations: HashMap<String, Operation>,
    serial: u64,
}

/// A try-on operation the emulator started.
struct Operation {
    api: api::Api,
    polls: u32,
    image_id: String,
}

impl State {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A panicking test thread must not take every later assertion down with it.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, call: Received) {
        self.log().received.push(call);
    }

    /// A fresh id shaped like Aiuta's: a prefix, then a UUID.
    fn next_id(&self, prefix: &str) -> String {
        let mut log = self.log();
        log.serial += 1;
        format!("{prefix}-00000000-0000-4000-8000-{:012x}", log.serial)
    }

    /// An `AiutaImage` (or, `generated`, a `GeneratedSkuImage`, which adds `image_url`).
    fn image(&self, id: &str, generated: bool) -> Value {
        let url = format!("{}{IMAGES_PATH}/{id}.png", self.base_uri);
        let mut image = json!({ "id": id, "owner_type": "user", "url": url, "expires_at": null });
        if generated {
            image["image_url"] = Value::String(url);
        }
        image
    }

    /// The predefined models, as in the API's example answer.
    fn models(&self) -> Value {
        let model = |id: &str| {
            let url = format!("{}{IMAGES_PATH}/{id}.png", self.base_uri);
            json!({ "id": id, "owner_type": "aiuta", "url": url, "metadata": null })
        };
        json!([
            { "category": "woman", "models": [model("model_woman_00")] },
            { "category": "man", "models": [model("model_man_00")] },
        ])
    }
}
