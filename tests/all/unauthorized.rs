//! What happens when the API answers 401.

use std::time::Duration;

use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth, JwtAuth};
use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::schemes::received;
use crate::support::{API_KEY, CountingProvider, SUBSCRIPTION_ID, client, middleware};

/// An API that answers `first` statuses in order, then 200.
async fn api_answering(first: &[u16]) -> MockServer {
    let server = MockServer::start().await;
    for &status in first {
        Mock::given(any())
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn url(server: &MockServer) -> String {
    format!("{}/v1/sku_try_on_operations", server.uri())
}

fn bearers(requests: &[wiremock::Request]) -> Vec<String> {
    let value = |r: &wiremock::Request| r.headers["authorization"].to_str().unwrap().to_owned();
    requests.iter().map(value).collect()
}

#[tokio::test]
async fn a_401_fetches_a_new_token_and_sends_once_more() {
    let server = api_answering(&[401]).await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let response = client
        .post(url(&server))
        .body(r#"{"sku_id":"s"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(provider.calls(), 2);
    let got = received(&server).await;
    assert_eq!(got.len(), 2);
    let tokens = bearers(&got);
    assert_ne!(tokens[0], tokens[1], "the rejected token was not reused");
    assert_eq!(
        got[1].body, br#"{"sku_id":"s"}"#,
        "the retry carries the same body"
    );
    assert_eq!(provider.last_params().get("sku_id"), Some("s"));
}

#[tokio::test]
async fn a_second_401_is_returned_and_that_token_is_dropped_too() {
    let server = api_answering(&[401, 401]).await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let response = client.post(url(&server)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(received(&server).await.len(), 2);
    assert_eq!(provider.calls(), 2);

    let response = client.post(url(&server)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        provider.calls(),
        3,
        "the second rejected token was not reused either"
    );
    let tokens = bearers(&received(&server).await);
    assert_eq!(tokens.len(), 3);
    assert_ne!(tokens[1], tokens[2]);
}

#[tokio::test]
async fn retry_unauthorized_false_sends_once_but_still_drops_the_token() {
    let server = api_answering(&[401]).await;
    let provider = CountingProvider::new();
    let auth =
        AiutaAuthMiddleware::builder(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap())
            .allow_host("127.0.0.1")
            .retry_unauthorized(false)
            .build();
    let client = client(auth);
    let response = client.post(url(&server)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(received(&server).await.len(), 1);
    client.post(url(&server)).body("{}").send().await.unwrap();
    assert_eq!(provider.calls(), 2);
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_and_its_401_returned() {
    let server = api_answering(&[401]).await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("{\"sku_id\":"), Ok("\"s\"}")];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = client.post(url(&server)).body(body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, br#"{"sku_id":"s"}"#);
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn an_api_key_401_is_never_retried() {
    let server = api_answering(&[401]).await;
    let client = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    let response = client.post(url(&server)).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn an_outer_retry_of_a_503_reuses_the_token() {
    let server = api_answering(&[503]).await;
    let provider = CountingProvider::new();
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
        .build_with_max_retries(3);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(middleware(
            JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
        ))
        .build();
    let response = client
        .post(url(&server))
        .body(r#"{"sku_id":"s"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = received(&server).await;
    assert_eq!(got.len(), 2);
    assert_eq!(provider.calls(), 1, "one fetch, not two");
    let tokens = bearers(&got);
    assert_eq!(tokens[0], tokens[1]);
}
