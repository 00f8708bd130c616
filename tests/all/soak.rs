//! A bounded soak: 20,000 requests, 64 in flight, over loopback, across the three paths (API key,
//! JWT optional, JWT mandatory over ~1,000 parameter sets with a provider that fails 1% of the
//! time). Ignored by default; `.ci/run` runs it with `--ignored soak`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use reqwest_aiuta_auth::{ApiKeyAuth, AuthError, BoxError, JwtAuth, JwtParams, JwtProvider};
use reqwest_middleware::ClientWithMiddleware;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{API_KEY, SUBSCRIPTION_ID, client, jwt_with, middleware, unix_now};

const REQUESTS: usize = 20_000;
const IN_FLIGHT: usize = 64;
const PARAMETER_SETS: usize = 1_000;
const MAX_CACHED: usize = 1_024;
/// Every this many provider calls, one fails.
const FAIL_EVERY: usize = 100;

/// The API's side: checks that each request carries the credential its path needs, and for a
/// bearer token that the token was signed over that request's parameters.
#[derive(Clone, Default)]
struct CheckingApi {
    ok: Arc<AtomicUsize>,
    bad: Arc<AtomicUsize>,
}

impl CheckingApi {
    fn credential_is_right(request: &Request) -> bool {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        let path = request.url.path();
        if path.starts_with("/keyed/") {
            return header("x-api-key") == Some(API_KEY) && header("authorization").is_none();
        }
        if request.method == http::Method::GET {
            return header("x-user-id") == Some(SUBSCRIPTION_ID) && header("x-api-key").is_none();
        }
        let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let Some(claims) = token
            .split('.')
            .nth(1)
            .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        else {
            return false;
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return false;
        };
        claims["sku_id"] == body["sku_id"]
            && claims["uploaded_image_id"] == body["uploaded_image_id"]
    }
}

impl Respond for CheckingApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if Self::credential_is_right(request) {
            self.ok.fetch_add(1, Ordering::Relaxed);
            ResponseTemplate::new(200)
        } else {
            self.bad.fetch_add(1, Ordering::Relaxed);
            ResponseTemplate::new(400)
        }
    }
}

/// Signs (well, shapes) a token over the call's parameters; every `FAIL_EVERY`th call fails.
#[derive(Clone, Default)]
struct FlakyProvider {
    calls: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
    /// Successful fetches per `sku_id`.
    fetched: Arc<Mutex<HashMap<String, usize>>>,
}

#[async_trait::async_trait]
impl JwtProvider for FlakyProvider {
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Let concurrent calls for the same parameters pile up on this fetch.
        tokio::time::sleep(Duration::from_millis(2)).await;
        if call.is_multiple_of(FAIL_EVERY) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err("the shop's backend is having a bad moment".into());
        }
        let sku = params.get("sku_id").unwrap_or_default().to_owned();
        let mut claims = params.json().clone();
        claims.insert("exp".into(), (unix_now() + 3_600).into());
        *self.fetched.lock().unwrap().entry(sku).or_default() += 1;
        Ok(jwt_with(claims.into()))
    }
}

enum Outcome {
    Ok,
    Typed,
    Untyped(String),
    Status(u16),
}

async fn one(
    i: usize,
    uri: &str,
    keyed: &ClientWithMiddleware,
    jwt: &ClientWithMiddleware,
) -> Outcome {
    let result = match i % 3 {
        0 => keyed.get(format!("{uri}/keyed/{i}")).send().await,
        1 => {
            jwt.get(format!(
                "{uri}/digital-try-on/v1/sku_images_operations/op_{i}"
            ))
            .send()
            .await
        }
        _ => {
            // Neighbours share a parameter set, so that calls for it are in flight together;
            // each set comes back three times over the run.
            let set = (i / 8) % PARAMETER_SETS;
            let body = format!(r#"{{"uploaded_image_id":"img_{set}","sku_id":"sku_{set}"}}"#);
            jwt.post(format!("{uri}/digital-try-on/v1/sku_images_operations"))
                .body(body)
                .send()
                .await
        }
    };
    match result {
        Ok(response) if response.status() == 200 => Outcome::Ok,
        Ok(response) => Outcome::Status(response.status().as_u16()),
        Err(error) if AuthError::find(&error).is_some() => Outcome::Typed,
        Err(error) => Outcome::Untyped(error.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of 20,000 requests; run with `cargo test --test all -- --ignored soak`"]
async fn soak_20000_requests_never_sends_one_without_its_credential() {
    let api = CheckingApi::default();
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(api.clone())
        .mount(&server)
        .await;
    let uri = server.uri();

    let provider = FlakyProvider::default();
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .max_cached(MAX_CACHED)
        .build()
        .unwrap();
    let keyed = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    let jwt = client(middleware(auth.clone()));

    let run = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let (uri, keyed, jwt) = (uri.clone(), keyed.clone(), jwt.clone());
            tokio::spawn(async move { one(i, &uri, &keyed, &jwt).await })
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>();
    let outcomes = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the soak finished within 10 minutes");

    let (mut ok, mut typed) = (0, 0);
    for outcome in outcomes {
        match outcome.unwrap() {
            Outcome::Ok => ok += 1,
            Outcome::Typed => typed += 1,
            Outcome::Untyped(error) => panic!("an untyped failure: {error}"),
            Outcome::Status(status) => panic!("the API answered {status}"),
        }
    }
    assert_eq!(
        api.bad.load(Ordering::SeqCst),
        0,
        "sent without the right credential"
    );
    assert_eq!(
        api.ok.load(Ordering::SeqCst),
        ok,
        "every success reached the API"
    );
    assert_eq!(ok + typed, REQUESTS);

    let calls = provider.calls.load(Ordering::SeqCst);
    let failures = provider.failures.load(Ordering::SeqCst);
    let fetched = provider.fetched.lock().unwrap().clone();
    assert!(
        failures > 0 && typed >= failures,
        "{failures} provider failures, {typed} typed"
    );
    assert_eq!(
        fetched.len(),
        PARAMETER_SETS,
        "every parameter set got a token"
    );
    let refetched: Vec<_> = fetched.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        refetched.is_empty(),
        "fetched more than once: {refetched:?}"
    );
    assert_eq!(calls, PARAMETER_SETS + failures, "no duplicate fetch");
    let cached = auth.cached_tokens().await;
    assert!(cached as usize <= MAX_CACHED, "{cached} tokens cached");
    assert_eq!(cached as usize, PARAMETER_SETS);
    eprintln!(
        "soak: {REQUESTS} requests, {ok} ok, {typed} refused (typed), {calls} provider calls, \
         {failures} provider failures, {cached} tokens cached"
    );
}
