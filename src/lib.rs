//! Authenticates calls to the [Aiuta](https://aiuta.com) virtual try-on API from any
//! `reqwest-middleware` chain.
//!
//! Add an [`AiutaAuthMiddleware`] to the client with a [`CredentialSource`]: [`ApiKeyAuth`] for
//! Aiuta's API-key scheme, [`JwtAuth`] for its JWT scheme. Each request may carry an
//! [`AuthRequirement`] extension; the middleware puts the credential that requirement calls for
//! on the request, or refuses to send it.
//!
//! ```
//! use reqwest_aiuta_auth::{AiutaAuthMiddleware, AuthRequirement, HttpJwtProvider, JwtAuth};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?;
//! let auth = AiutaAuthMiddleware::new(JwtAuth::new("66ec1726e728c1405e5ebca2", provider)?);
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(auth)
//!     .build();
//!
//! client
//!     .post("https://api.aiuta.com/digital-try-on/v1/sku_images_operations")
//!     .with_extension(AuthRequirement::Mandatory)
//!     .body(r#"{"uploaded_image_id":"img_1","sku_id":"sku_1"}"#)
//!     .send()
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::todo,
    clippy::dbg_macro,
    clippy::await_holding_lock
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api_key;
mod claims;
mod credential;
mod env;
mod error;
mod jwt_auth;
mod jwt_cache;
mod jwt_provider;
mod middleware;
mod params;
pub mod redirect;
mod requirement;

#[cfg(feature = "mint")]
#[cfg_attr(docsrs, doc(cfg(feature = "mint")))]
pub mod mint;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use api_key::ApiKeyAuth;
pub use claims::unverified_expiry;
pub use credential::{Credential, CredentialSource};
pub use error::{AuthError, BoxError};
pub use jwt_auth::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_CACHED, DEFAULT_REFRESH_MARGIN, JwtAuth, JwtAuthBuilder,
};
pub use jwt_provider::{HttpJwtProvider, JwtProvider};
pub use middleware::{AiutaAuthMiddleware, AiutaAuthMiddlewareBuilder, DEFAULT_ALLOWED_HOST};
pub use params::JwtParams;
pub use requirement::AuthRequirement;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
