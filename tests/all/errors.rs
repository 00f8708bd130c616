//! Provider failures, bad tokens, and finding the AuthError through other middlewares.

use std::time::Duration;

use reqwest_aiuta_auth::{AuthError, AuthRequirement, BoxError, JwtAuth, JwtParams};
use reqwest_middleware::ClientBuilder;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::{RetryTransientMiddleware, Retryable, RetryableStrategy};

use crate::schemes::{api, received};
use crate::support::{SUBSCRIPTION_ID, client, middleware};

fn answering(answer: Result<&'static str, &'static str>) -> JwtAuth {
    let provider =
        move |_: JwtParams| async move { answer.map(str::to_owned).map_err(BoxError::from) };
    JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap()
}

#[tokio::test]
async fn a_failing_or_invalid_provider_answer_fails_the_request_unsent() {
    let server = api().await;
    let url = format!("{}/v1/sku_try_on_operations", server.uri());
    let provider_failed = |e: &AuthError| matches!(e, AuthError::JwtProvider { .. });
    let invalid_jwt = |e: &AuthError| matches!(e, AuthError::InvalidJwt { .. });
    let cases = [
        (
            Err("backend down"),
            provider_failed as fn(&AuthError) -> bool,
        ),
        (Ok(""), invalid_jwt),
        (Ok("not-a-jwt"), invalid_jwt),
        (Ok("only.two"), invalid_jwt),
        (Ok("a.b.c\r\nx-evil: 1"), invalid_jwt),
        (Ok("a.b.c.d"), invalid_jwt),
    ];
    for (answer, expected) in cases {
        let error = client(middleware(answering(answer)))
            .post(&url)
            .body("{}")
            .send()
            .await
            .unwrap_err();
        let found = AuthError::find(&error).expect("an AuthError");
        assert!(expected(found), "{answer:?} gave {found:?}");
    }
    assert_eq!(received(&server).await.len(), 0);
}

#[tokio::test]
async fn an_auth_error_from_the_provider_reaches_the_caller_as_it_is() {
    let provider = |_: JwtParams| async {
        Err::<String, _>(AuthError::JwtTimeout {
            timeout: Duration::from_secs(3),
        })
    };
    let auth = JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap();
    let error = client(middleware(auth))
        .post("http://127.0.0.1:9/v1/sku_try_on_operations")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        AuthError::find(&error),
        Some(AuthError::JwtTimeout { timeout }) if *timeout == Duration::from_secs(3)
    ));
}

#[tokio::test]
async fn the_error_is_a_middleware_error_reachable_by_downcast_and_by_source() {
    let error = client(middleware(answering(Err("down"))))
        .post("http://127.0.0.1:9/v1/sku_try_on_operations")
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Middleware(inner) = &error else {
        panic!("expected a middleware error, got {error:?}");
    };
    assert!(inner.downcast_ref::<AuthError>().is_some());
    let mut source = std::error::Error::source(&error);
    let mut found = false;
    while let Some(current) = source {
        found |= current.is::<AuthError>();
        source = current.source();
    }
    assert!(found, "walking source() reaches the AuthError");
}

/// Retries every middleware error, so that reqwest-retry wraps the last one.
struct RetryEverything;

impl RetryableStrategy for RetryEverything {
    fn handle(&self, result: &reqwest_middleware::Result<reqwest::Response>) -> Option<Retryable> {
        match result {
            Err(_) => Some(Retryable::Transient),
            Ok(_) => None,
        }
    }
}

#[tokio::test]
async fn find_sees_through_reqwest_retry_with_and_without_retries() {
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(2))
        .build_with_max_retries(2);
    let url = "http://127.0.0.1:9/v1/sku_try_on_operations";

    // The default strategy gives up at once on a middleware error: wrapped without retries.
    let fatal = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(middleware(answering(Err("down"))))
        .build();
    let error = fatal.post(url).send().await.unwrap_err();
    assert!(
        matches!(AuthError::find(&error), Some(AuthError::JwtProvider { .. })),
        "{error:?}"
    );

    // Retried twice, then wrapped in reqwest-retry's "failed after 2 retries".
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = move |_: JwtParams| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, BoxError>("not-a-jwt".to_owned()) }
    };
    let retried = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy_and_strategy(
            policy,
            RetryEverything,
        ))
        .with(middleware(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap()))
        .build();
    let error = retried.post(url).send().await.unwrap_err();
    assert!(error.to_string().contains("retries"), "{error}");
    assert!(
        matches!(AuthError::find(&error), Some(AuthError::InvalidJwt { .. })),
        "{error:?}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn works_in_a_chain_with_reqwest_tracing() {
    let server = api().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_tracing::TracingMiddleware::default())
        .with(middleware(answering(Ok("aaa.bbb.ccc"))))
        .build();
    let response = client
        .post(format!("{}/v1/sku_try_on_operations", server.uri()))
        .with_extension(AuthRequirement::Mandatory)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = received(&server).await;
    assert_eq!(got[0].headers["authorization"], "Bearer aaa.bbb.ccc");
}
