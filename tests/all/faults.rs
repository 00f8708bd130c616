//! Faults: a JWT backend or an API that misbehaves, calls dropped while their token is being
//! fetched, a provider that panics. In every case the request that needed a credential is
//! either sent with it or not sent at all, and the caller gets a typed error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest_aiuta_auth::{
    ApiKeyAuth, AuthError, AuthRequirement, BoxError, HttpJwtProvider, JwtAuth, JwtParams,
    JwtProvider,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::schemes::{api, received};
use crate::support::{
    API_KEY, CountingProvider, SUBSCRIPTION_ID, Terminal, client, jwt_expiring_in, middleware,
};

const TRY_ON: &str = "/digital-try-on/v1/sku_images_operations";
const BODY: &str = r#"{"uploaded_image_id":"img_1","sku_id":"sku_1"}"#;

/// A JWT backend on loopback that answers every call with `answer`.
async fn jwt_backend(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

/// Sends one mandatory try-on through a JWT scheme whose backend is `backend_url`, with
/// `fetch_timeout`; returns the error and asserts that the API got nothing.
async fn try_on_fails_unsent(backend_url: &str, fetch_timeout: Duration) -> AuthError {
    let aiuta = api().await;
    let provider = HttpJwtProvider::new(backend_url).unwrap();
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider)
        .fetch_timeout(fetch_timeout)
        .build()
        .unwrap();
    let error = client(middleware(auth))
        .post(format!("{}{TRY_ON}", aiuta.uri()))
        .body(BODY)
        .send()
        .await
        .expect_err("the call must fail");
    assert!(received(&aiuta).await.is_empty(), "the API got a request");
    AuthError::find(&error).expect("a typed error").clone()
}

async fn backend_answering(answer: ResponseTemplate) -> AuthError {
    let backend = jwt_backend(answer).await;
    try_on_fails_unsent(
        &format!("{}/aiuta_jwt", backend.uri()),
        Duration::from_secs(10),
    )
    .await
}

fn reason(error: &AuthError) -> &str {
    match error {
        AuthError::JwtProvider { reason, .. } => reason,
        other => panic!("expected a JwtProvider error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_jwt_backend_that_refuses_connections_fails_the_call_unsent() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/aiuta_jwt");
    let error = try_on_fails_unsent(&url, Duration::from_secs(10)).await;
    assert!(reason(&error).contains("could not be reached"), "{error:?}");
}

#[tokio::test]
async fn a_jwt_backend_answering_500_503_or_429_fails_the_call_unsent() {
    for status in [500, 503, 429] {
        let answer = ResponseTemplate::new(status).set_body_string(r#"{"token":"a.b.c"}"#);
        let error = backend_answering(answer).await;
        assert!(reason(&error).contains(&status.to_string()), "{error:?}");
    }
}

#[tokio::test]
async fn a_jwt_backend_answer_that_is_not_json_fails_the_call_unsent() {
    let broken_json = backend_answering(
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string(r#"{"type":"jwt","token":"#),
    )
    .await;
    assert!(
        reason(&broken_json).contains("not valid JSON"),
        "{broken_json:?}"
    );

    let html = backend_answering(
        ResponseTemplate::new(200).set_body_string("<html><body>Bad gateway</body></html>"),
    )
    .await;
    assert!(matches!(html, AuthError::InvalidJwt { .. }), "{html:?}");

    let binary =
        backend_answering(ResponseTemplate::new(200).set_body_bytes([0xff, 0xfe, 0x00])).await;
    assert!(reason(&binary).contains("not UTF-8"), "{binary:?}");
}

#[tokio::test]
async fn an_empty_token_fails_the_call_unsent() {
    for body in [r#"{"type":"jwt","token":""}"#, r#"{"type":"jwt"}"#, ""] {
        let error = backend_answering(ResponseTemplate::new(200).set_body_string(body)).await;
        assert!(
            matches!(
                error,
                AuthError::InvalidJwt { .. } | AuthError::JwtProvider { .. }
            ),
            "{body:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_token_with_a_line_break_fails_the_call_unsent() {
    let token = jwt_expiring_in(Duration::from_secs(60), 1);
    for bad in [
        format!("{token}\nx-injected: 1"),
        format!("{token}\r\n"),
        token.replacen('.', ".\n", 1),
    ] {
        let answer = ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"type": "jwt", "token": bad}));
        let error = backend_answering(answer).await;
        assert!(
            matches!(error, AuthError::InvalidJwt { .. }),
            "{bad:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_stalled_jwt_backend_times_out_at_the_fetch_timeout_and_the_call_is_not_sent() {
    let token = jwt_expiring_in(Duration::from_secs(60), 1);
    let backend = jwt_backend(
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"token": token}))
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let error = try_on_fails_unsent(&format!("{}/aiuta_jwt", backend.uri()), timeout).await;
    assert!(
        matches!(error, AuthError::JwtTimeout { timeout: t } if t == timeout),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the call waited for the stalled backend"
    );
}

#[tokio::test]
async fn a_jwt_backend_answer_of_several_megabytes_is_refused_unsent() {
    let huge = format!(r#"{{"token":"{}"}}"#, "a".repeat(8 * 1024 * 1024));
    let error = backend_answering(ResponseTemplate::new(200).set_body_string(huge)).await;
    assert!(reason(&error).contains("over 64 KiB"), "{error:?}");
}

/// A backend that answers with a chunked body that never ends: the read must stop at the cap,
/// well before the fetch timeout, and close the connection.
#[tokio::test]
async fn an_endless_jwt_backend_answer_is_cut_off_at_the_size_cap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/aiuta_jwt", listener.local_addr().unwrap());
    const BOUND: usize = 256 * 1024 * 1024;
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 4096];
        let _ = socket.read(&mut head).await.unwrap();
        let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let mut written = 0;
        while written < BOUND {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return written;
            }
            written += chunk.len();
        }
        written
    });
    let started = Instant::now();
    let error = try_on_fails_unsent(&url, Duration::from_secs(60)).await;
    assert!(reason(&error).contains("over 64 KiB"), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let written = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the client hung up")
        .unwrap();
    assert!(written < BOUND, "the client read all {written} bytes");
}

/// An API that answers each request with the next of `statuses` (then 200), recording them.
async fn api_answering(statuses: &[u16]) -> MockServer {
    let server = MockServer::start().await;
    for status in statuses {
        Mock::given(any())
            .respond_with(ResponseTemplate::new(*status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

fn headers(requests: &[wiremock::Request], name: &str) -> Vec<Option<String>> {
    requests
        .iter()
        .map(|r| r.headers.get(name).map(|v| v.to_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn an_api_answering_401_every_time_gets_one_retry_with_a_new_token_then_the_401() {
    let aiuta = api_answering(&[401, 401, 401, 401]).await;
    let provider = CountingProvider::new();
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let response = client(middleware(auth))
        .post(format!("{}{TRY_ON}", aiuta.uri()))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(provider.calls(), 2);
    let bearers = headers(&received(&aiuta).await, "authorization");
    assert_eq!(bearers.len(), 2, "sent once, retried once");
    assert!(
        bearers
            .iter()
            .all(|b| b.as_deref().is_some_and(|b| b.starts_with("Bearer ")))
    );
    assert_ne!(bearers[0], bearers[1], "the retry carries a new token");

    let keyed = api_answering(&[401, 401]).await;
    let response = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()))
        .post(format!("{}{TRY_ON}", keyed.uri()))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let keys = headers(&received(&keyed).await, "x-api-key");
    assert_eq!(
        keys,
        [Some(API_KEY.to_owned())],
        "an API key is not retried"
    );
}

#[tokio::test]
async fn an_api_answering_401_then_200_succeeds_with_the_second_token() {
    let aiuta = api_answering(&[401]).await;
    let provider = CountingProvider::new();
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let client = client(middleware(auth));
    let send = || {
        client
            .post(format!("{}{TRY_ON}", aiuta.uri()))
            .body(BODY)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(provider.calls(), 2, "the second token is cached and reused");
    let bearers = headers(&received(&aiuta).await, "authorization");
    assert_eq!(bearers.len(), 3);
    assert!(bearers.iter().all(Option::is_some));
    assert_ne!(
        bearers[0], bearers[1],
        "the rejected token is not sent again"
    );
    assert_eq!(bearers[1], bearers[2]);
}

/// A listener that takes each connection, reads the request head, and resets the connection
/// (`SO_LINGER` 0) instead of answering. Returns the heads it read.
async fn resetting_api() -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut heads = Vec::new();
        // Bounded: each test sends two requests.
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            heads.push(String::from_utf8_lossy(&head).into_owned());
            socket.set_zero_linger().unwrap();
            drop(socket);
        }
        heads
    });
    (uri, task)
}

#[tokio::test]
async fn a_connection_reset_mid_request_is_a_transport_error_after_sending_with_the_credential() {
    let (uri, server) = resetting_api().await;
    let provider = CountingProvider::new();
    let jwt = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let keyed = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    for client in [&jwt, &keyed] {
        let error = client
            .post(format!("{uri}{TRY_ON}"))
            .body(BODY)
            .send()
            .await
            .expect_err("the connection was reset");
        assert!(
            AuthError::find(&error).is_none(),
            "not an auth error: {error:?}"
        );
        assert!(
            matches!(error, reqwest_middleware::Error::Reqwest(_)),
            "{error:?}"
        );
    }
    assert_eq!(provider.calls(), 1, "a reset is not a 401: no new token");
    let heads = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    let heads: Vec<String> = heads.iter().map(|h| h.to_ascii_lowercase()).collect();
    assert!(
        heads[0].contains("\r\nauthorization: bearer "),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].contains(&format!("\r\nx-api-key: {}", API_KEY.to_ascii_lowercase())),
        "{}",
        heads[1]
    );
}

/// A tiny deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// A provider that takes `delay` and holds `alive` while it works, so that a fetch future left
/// behind somewhere shows in the Arc's strong count.
#[derive(Clone)]
struct SlowProvider {
    inner: CountingProvider,
    alive: Arc<()>,
}

#[async_trait::async_trait]
impl JwtProvider for SlowProvider {
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        let _alive = self.alive.clone();
        self.inner.fetch_jwt(params).await
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_half_of_100_waiters_mid_fetch_leaves_the_rest_served_and_nothing_behind() {
    const FETCH: Duration = Duration::from_secs(1);
    let provider = SlowProvider {
        inner: CountingProvider::new().delay(FETCH),
        alive: Arc::new(()),
    };
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let terminal = Terminal::default();
    let client = terminal.client(middleware(auth.clone()));
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    // Every other call, the first one (which starts the fetch) included, is dropped at a random
    // point before the fetch can end: the calls start within 200 ms, and are dropped at most
    // 700 ms after their start.
    let mut random = XorShift(0x5eed_1234_abcd_9876);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for index in 0..100 {
        let call = {
            let client = client.clone();
            async move {
                client
                    .post(format!("http://127.0.0.1:9{TRY_ON}"))
                    .with_extension(AuthRequirement::Mandatory)
                    .body(BODY)
                    .send()
                    .await
            }
        };
        if index % 2 == 0 {
            let drop_at = Duration::from_millis(random.below(700));
            dropped.push(tokio::spawn(tokio::time::timeout(drop_at, call)));
        } else {
            kept.push(tokio::spawn(call));
        }
        // Spread the calls' starts over the first fifth of the fetch.
        tokio::time::sleep(Duration::from_millis(random.below(3))).await;
    }

    let dropped = tokio::time::timeout(Duration::from_secs(60), join_all(dropped))
        .await
        .expect("the dropped calls ended");
    for outcome in dropped {
        assert!(outcome.unwrap().is_err(), "a dropped call finished first");
    }
    let kept = tokio::time::timeout(Duration::from_secs(60), join_all(kept))
        .await
        .expect("the kept calls are not stuck");
    for outcome in kept {
        assert_eq!(outcome.unwrap().unwrap().status(), 200);
    }

    assert_eq!(
        provider.inner.calls(),
        1,
        "the fetch went on for the calls still waiting"
    );
    let seen = terminal.header("authorization");
    assert_eq!(seen.len(), 50, "exactly the kept calls were sent");
    assert!(seen.iter().all(Option::is_some), "each with its token");
    assert_eq!(auth.cached_tokens().await, 1, "one entry for the one key");
    assert_eq!(
        Arc::strong_count(&provider.alive),
        2,
        "no fetch is left running (the test's and the scheme's provider hold one each)"
    );
    let tasks_after = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        tasks_after <= tasks_before,
        "{tasks_after} tasks alive, {tasks_before} before"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_every_waiter_cancels_the_fetch_and_the_next_call_fetches_anew() {
    let provider = SlowProvider {
        inner: CountingProvider::new().delay(Duration::from_secs(1)),
        alive: Arc::new(()),
    };
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let terminal = Terminal::default();
    let client = terminal.client(middleware(auth.clone()));
    let send = || {
        client
            .post(format!("http://127.0.0.1:9{TRY_ON}"))
            .body(BODY)
            .send()
    };
    let given_up =
        join_all((0..10).map(|_| tokio::time::timeout(Duration::from_millis(500), send())));
    for outcome in given_up.await {
        assert!(outcome.is_err(), "the call gave up before the fetch ended");
    }
    assert_eq!(provider.inner.calls(), 1);
    assert_eq!(
        Arc::strong_count(&provider.alive),
        2,
        "the fetch nobody waits for is dropped"
    );
    assert_eq!(auth.cached_tokens().await, 0);

    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(provider.inner.calls(), 2, "the next call fetched anew");
    assert_eq!(terminal.header("authorization").len(), 1);
    assert_eq!(auth.cached_tokens().await, 1);
}

/// Panics on its first call, after `delay`, then answers.
#[derive(Clone)]
struct PanicsOnce {
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

impl PanicsOnce {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl JwtProvider for PanicsOnce {
    async fn fetch_jwt(&self, _params: &JwtParams) -> Result<String, BoxError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if call == 0 {
            panic!("the provider fell over");
        }
        Ok(jwt_expiring_in(Duration::from_secs(60), call))
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_provider_fails_its_waiters_and_poisons_nothing() {
    let provider = PanicsOnce {
        calls: Arc::new(AtomicUsize::new(0)),
        delay: Duration::from_millis(100),
    };
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let terminal = Terminal::default();
    let client = terminal.client(middleware(auth.clone()));
    let send = || {
        client
            .post(format!("http://127.0.0.1:9{TRY_ON}"))
            .body(BODY)
            .send()
    };

    let waiting = join_all((0..10).map(|_| send())).await;
    for outcome in waiting {
        let error = outcome.expect_err("the provider panicked");
        let found = AuthError::find(&error).expect("a typed error");
        assert!(matches!(found, AuthError::JwtProvider { .. }), "{found:?}");
    }
    assert_eq!(provider.calls(), 1, "one shared fetch");
    assert!(terminal.seen().is_empty(), "nothing sent without a token");

    let after = join_all((0..10).map(|_| send())).await;
    for outcome in after {
        assert_eq!(outcome.unwrap().status(), 200);
    }
    assert_eq!(provider.calls(), 2);
    assert_eq!(terminal.header("authorization").len(), 10);
    assert_eq!(auth.cached_tokens().await, 1);
}
