//! What the test modules share: clients, JWTs, counting providers, a terminal middleware.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Extensions;
use reqwest_aiuta_auth::{AiutaAuthMiddleware, BoxError, CredentialSource, JwtParams, JwtProvider};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

pub const API_KEY: &str = "test-api-key-0123456789";
pub const SUBSCRIPTION_ID: &str = "66ec1726e728c1405e5ebca2";

/// A middleware for tests on 127.0.0.1, with `source` as its credential source.
pub fn middleware(source: impl CredentialSource) -> AiutaAuthMiddleware {
    AiutaAuthMiddleware::builder(source)
        .allow_host("127.0.0.1")
        .build()
}

/// A client with `middleware` as its only middleware.
pub fn client(middleware: AiutaAuthMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// An unsigned but well-formed compact JWS carrying `claims`.
pub fn jwt_with(claims: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT that expires `lifetime` from now, with a serial number so every token is distinct.
pub fn jwt_expiring_in(lifetime: Duration, serial: usize) -> String {
    jwt_with(serde_json::json!({ "exp": unix_now() + lifetime.as_secs(), "n": serial }))
}

/// A provider that counts its calls, records the parameters it got, and answers after `delay`
/// (on tokio's clock) with a token that lives `lifetime` (no `exp` when `None`).
#[derive(Clone)]
pub struct CountingProvider {
    pub calls: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<JwtParams>>>,
    pub delay: Duration,
    pub lifetime: Option<Duration>,
}

impl CountingProvider {
    pub fn new() -> Self {
        CountingProvider {
            calls: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(Mutex::new(Vec::new())),
            delay: Duration::ZERO,
            lifetime: Some(Duration::from_secs(60)),
        }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.lifetime = lifetime;
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn last_params(&self) -> JwtParams {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the provider was called")
    }
}

#[async_trait::async_trait]
impl JwtProvider for CountingProvider {
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        let serial = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(params.clone());
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(match self.lifetime {
            Some(lifetime) => jwt_expiring_in(lifetime, serial),
            None => jwt_with(serde_json::json!({ "n": serial })),
        })
    }
}

/// What a [`Terminal`] middleware saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: http::Method,
    pub url: reqwest::Url,
    pub headers: http::HeaderMap,
}

/// The last middleware of a chain: records each request and answers at once, with the statuses
/// queued in `statuses` (200 once they run out). No network, so tests can pause tokio's clock.
#[derive(Clone, Default)]
pub struct Terminal {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub statuses: Arc<Mutex<Vec<u16>>>,
}

impl Terminal {
    pub fn answering(statuses: &[u16]) -> Self {
        let terminal = Terminal::default();
        terminal
            .statuses
            .lock()
            .unwrap()
            .extend(statuses.iter().rev());
        terminal
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The values of `header` on every request seen, `None` where it was absent.
    pub fn header(&self, header: &str) -> Vec<Option<String>> {
        self.seen()
            .iter()
            .map(|s| {
                s.headers
                    .get(header)
                    .map(|v| v.to_str().unwrap().to_owned())
            })
            .collect()
    }

    /// A client whose chain is `middleware` then this terminal.
    pub fn client(&self, middleware: AiutaAuthMiddleware) -> ClientWithMiddleware {
        ClientBuilder::new(reqwest::Client::new())
            .with(middleware)
            .with(self.clone())
            .build()
    }
}

#[async_trait::async_trait]
impl Middleware for Terminal {
    async fn handle(
        &self,
        request: reqwest::Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.seen.lock().unwrap().push(Seen {
            method: request.method().clone(),
            url: request.url().clone(),
            headers: request.headers().clone(),
        });
        let status = self.statuses.lock().unwrap().pop().unwrap_or(200);
        let response = http::Response::builder()
            .status(status)
            .body(Vec::<u8>::new())
            .unwrap();
        Ok(reqwest::Response::from(response))
    }
}
