//! The JWT cache: sharing, reuse until the margin, bounds, failures and dropped callers.
//! The chain ends in a terminal middleware, so tokio's clock can be paused and driven.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::join_all;
use reqwest_aiuta_auth::{AuthError, BoxError, JwtAuth, JwtParams};
use reqwest_middleware::ClientWithMiddleware;

use crate::support::{CountingProvider, SUBSCRIPTION_ID, Terminal, jwt_expiring_in, middleware};

const URL: &str = "http://127.0.0.1:9/digital-try-on/v1/sku_images_operations";
const BODY: &str = r#"{"uploaded_image_id":"img_1","sku_id":"sku_1"}"#;

fn setup(auth: JwtAuth) -> (Terminal, ClientWithMiddleware) {
    let terminal = Terminal::default();
    let client = terminal.client(middleware(auth));
    (terminal, client)
}

async fn start_try_on(
    client: &ClientWithMiddleware,
    body: &str,
) -> reqwest_middleware::Result<u16> {
    let response = client.post(URL).body(body.to_owned()).send().await?;
    Ok(response.status().as_u16())
}

#[tokio::test(start_paused = true)]
async fn concurrent_identical_calls_wait_for_one_shared_fetch() {
    let provider = CountingProvider::new().delay(Duration::from_millis(100));
    let (terminal, client) = setup(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap());
    let calls = (0..50).map(|_| start_try_on(&client, BODY));
    for result in join_all(calls).await {
        assert_eq!(result.unwrap(), 200);
    }
    assert_eq!(provider.calls(), 1);
    let tokens = terminal.header("authorization");
    assert_eq!(tokens.len(), 50);
    assert!(tokens.iter().all(|t| t.is_some() && *t == tokens[0]));
}

#[tokio::test(start_paused = true)]
async fn distinct_parameters_get_one_fetch_each() {
    let provider = CountingProvider::new().delay(Duration::from_millis(10));
    let (terminal, client) = setup(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap());
    let bodies: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"sku_id":"sku_{i}"}}"#))
        .collect();
    for _round in 0..3 {
        let calls = bodies.iter().map(|body| start_try_on(&client, body));
        join_all(calls)
            .await
            .into_iter()
            .for_each(|r| assert_eq!(r.unwrap(), 200));
    }
    assert_eq!(provider.calls(), 10);
    let mut skus: Vec<String> = provider
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.get("sku_id").unwrap().to_owned())
        .collect();
    skus.sort();
    skus.dedup();
    assert_eq!(skus.len(), 10);
    assert_eq!(terminal.seen().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn a_token_is_reused_until_the_refresh_margin_before_its_expiry() {
    // Tokens live 60 s (whole seconds, so 59-60 s here); with a 15 s margin they serve ~44 s.
    let provider = CountingProvider::new();
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .refresh_margin(Duration::from_secs(15))
        .build()
        .unwrap();
    let (terminal, client) = setup(auth);
    start_try_on(&client, BODY).await.unwrap();
    tokio::time::advance(Duration::from_secs(43)).await;
    start_try_on(&client, BODY).await.unwrap();
    assert_eq!(provider.calls(), 1, "still fresh at 43 s");
    tokio::time::advance(Duration::from_secs(3)).await;
    start_try_on(&client, BODY).await.unwrap();
    assert_eq!(provider.calls(), 2, "stale at 46 s");
    let tokens = terminal.header("authorization");
    assert_eq!(tokens[0], tokens[1]);
    assert_ne!(tokens[1], tokens[2]);
}

#[tokio::test(start_paused = true)]
async fn a_token_without_exp_serves_its_waiters_and_is_not_kept() {
    let provider = CountingProvider::new()
        .lifetime(None)
        .delay(Duration::from_millis(50));
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let (terminal, client) = setup(auth.clone());
    join_all((0..5).map(|_| start_try_on(&client, BODY))).await;
    assert_eq!(provider.calls(), 1, "concurrent callers shared the fetch");
    start_try_on(&client, BODY).await.unwrap();
    start_try_on(&client, BODY).await.unwrap();
    assert_eq!(provider.calls(), 3, "each later call fetched again");
    let tokens = terminal.header("authorization");
    assert!(tokens[..5].iter().all(|t| *t == tokens[0]));
    assert_ne!(tokens[5], tokens[6]);
    assert_eq!(auth.cached_tokens().await, 0);
}

#[tokio::test(start_paused = true)]
async fn with_the_cache_off_every_call_fetches() {
    let provider = CountingProvider::new().delay(Duration::from_millis(10));
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .cache(false)
        .build()
        .unwrap();
    let (_terminal, client) = setup(auth.clone());
    join_all((0..4).map(|_| start_try_on(&client, BODY))).await;
    start_try_on(&client, BODY).await.unwrap();
    assert_eq!(provider.calls(), 5);
    assert_eq!(auth.cached_tokens().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_is_not_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = move |_: JwtParams| {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match call {
                0 => Err(BoxError::from("backend hiccup")),
                n => Ok(jwt_expiring_in(Duration::from_secs(60), n)),
            }
        }
    };
    let (terminal, client) = setup(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap());
    let error = start_try_on(&client, BODY).await.unwrap_err();
    assert!(matches!(
        AuthError::find(&error),
        Some(AuthError::JwtProvider { .. })
    ));
    assert_eq!(terminal.seen().len(), 0, "not sent without its credential");
    assert_eq!(start_try_on(&client, BODY).await.unwrap(), 200);
    assert_eq!(start_try_on(&client, BODY).await.unwrap(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_provider_times_out_every_waiter_and_nothing_is_sent() {
    let provider = CountingProvider::new().delay(Duration::from_secs(30));
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (terminal, client) = setup(auth);
    let started = tokio::time::Instant::now();
    let results = join_all((0..3).map(|_| start_try_on(&client, BODY))).await;
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(
            AuthError::find(&error),
            Some(AuthError::JwtTimeout { timeout }) if *timeout == Duration::from_secs(2)
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed at the timeout, not later"
    );
    assert_eq!(provider.calls(), 1);
    assert!(terminal.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_leading_call_leaves_the_others_served() {
    let provider = CountingProvider::new().delay(Duration::from_secs(1));
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap();
    let (terminal, client) = setup(auth.clone());
    let leader = tokio::spawn({
        let client = client.clone();
        async move { start_try_on(&client, BODY).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(provider.calls(), 1, "the leader is fetching");
    let followers: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { start_try_on(&client, BODY).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    let results = tokio::time::timeout(Duration::from_secs(30), join_all(followers))
        .await
        .expect("the followers are not stuck");
    for result in results {
        assert_eq!(result.unwrap().unwrap(), 200);
    }
    assert!(provider.calls() <= 2, "{} fetches", provider.calls());
    assert_eq!(terminal.seen().len(), 5);
    start_try_on(&client, BODY).await.unwrap();
    assert!(
        provider.calls() <= 2,
        "the key is not stuck: the next call hits the cache"
    );
    assert_eq!(auth.cached_tokens().await, 1);
}

#[tokio::test(start_paused = true)]
async fn the_cache_keeps_at_most_max_cached_tokens() {
    let provider = CountingProvider::new();
    let auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .max_cached(8)
        .build()
        .unwrap();
    let (_terminal, client) = setup(auth.clone());
    for i in 0..200 {
        start_try_on(&client, &format!(r#"{{"sku_id":"sku_{i}"}}"#))
            .await
            .unwrap();
    }
    assert_eq!(provider.calls(), 200);
    let cached = auth.cached_tokens().await;
    assert!((1..=8).contains(&cached), "{cached} tokens cached");
}

#[tokio::test(start_paused = true)]
async fn a_cached_token_is_served_while_another_key_is_being_fetched() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = move |params: JwtParams| {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        let slow = params.get("sku_id") == Some("slow");
        async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Ok::<_, BoxError>(jwt_expiring_in(Duration::from_secs(60), call))
        }
    };
    let (_terminal, client) = setup(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap());
    start_try_on(&client, r#"{"sku_id":"fast"}"#).await.unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { start_try_on(&client, r#"{"sku_id":"slow"}"#).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let fast = tokio::time::timeout(
        Duration::from_secs(1),
        start_try_on(&client, r#"{"sku_id":"fast"}"#),
    );
    assert_eq!(
        fast.await.expect("not held up by the slow fetch").unwrap(),
        200
    );
    assert!(!slow.is_finished());
    assert_eq!(slow.await.unwrap().unwrap(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
