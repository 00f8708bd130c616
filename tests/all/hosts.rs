//! Where credentials may go: the allow-list and https.

use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth, AuthError, AuthRequirement, JwtAuth};

use crate::schemes::{api, received};
use crate::support::{API_KEY, CountingProvider, SUBSCRIPTION_ID, client, middleware};

fn jwt_middleware(provider: &CountingProvider) -> AiutaAuthMiddleware {
    middleware(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap())
}

#[tokio::test]
async fn an_unmarked_request_to_another_host_passes_through_untouched() {
    let server = api().await;
    let auth = AiutaAuthMiddleware::builder(ApiKeyAuth::new(API_KEY).unwrap())
        .allow_host("127.0.0.1")
        .default_requirement(AuthRequirement::Mandatory)
        .build();
    // Same server, other host name: not on the allow-list.
    let url = format!(
        "http://localhost:{}/v1/sku_try_on_operations",
        server.address().port()
    );
    let response = client(auth).post(url).body("{}").send().await.unwrap();

    assert_eq!(response.status(), 200);
    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    for name in ["x-api-key", "authorization", "x-user-id"] {
        assert!(
            !got[0].headers.contains_key(name),
            "{name} leaked to another host"
        );
    }
}

#[tokio::test]
async fn a_marked_request_to_another_host_is_refused_and_not_sent() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(jwt_middleware(&provider));
    let url = format!(
        "http://localhost:{}/v1/sku_try_on_operations",
        server.address().port()
    );
    for requirement in [AuthRequirement::Mandatory, AuthRequirement::Optional] {
        let error = client
            .post(&url)
            .with_extension(requirement)
            .send()
            .await
            .unwrap_err();
        match AuthError::find(&error) {
            Some(AuthError::HostNotAllowed { host }) => assert_eq!(host, "localhost"),
            other => panic!("expected HostNotAllowed, got {other:?}"),
        }
    }
    assert_eq!(received(&server).await.len(), 0);
    assert_eq!(provider.calls(), 0, "a refused request costs no JWT");
}

#[tokio::test]
async fn the_default_allow_list_is_aiuta_and_plain_http_to_it_is_refused() {
    let provider = CountingProvider::new();
    let client = client(AiutaAuthMiddleware::new(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    // Nothing is sent: the transport check fails first, so no network is needed.
    let error = client
        .post("http://api.aiuta.com/v1/sku_try_on_operations")
        .body("{}")
        .send()
        .await
        .unwrap_err();
    match AuthError::find(&error) {
        Some(AuthError::InsecureTransport { host }) => assert_eq!(host, "api.aiuta.com"),
        other => panic!("expected InsecureTransport, got {other:?}"),
    }
    assert_eq!(provider.calls(), 0, "checks run before any JWT is fetched");

    // 127.0.0.1 is not on the default list.
    let error = client
        .get("http://127.0.0.1:9/v1/sku_items")
        .with_extension(AuthRequirement::Optional)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(
        AuthError::find(&error),
        Some(AuthError::HostNotAllowed { .. })
    ));
}

#[tokio::test]
async fn credentials_travel_over_plain_http_only_to_loopback() {
    let provider = CountingProvider::new();
    let auth =
        AiutaAuthMiddleware::builder(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap())
            .allow_host("shop.example.com")
            .build();
    let remote = client(auth);
    for requirement in [
        None,
        Some(AuthRequirement::Optional),
        Some(AuthRequirement::Mandatory),
    ] {
        let mut request = remote
            .post("http://shop.example.com/v1/sku_try_on_operations")
            .body("{}");
        if let Some(requirement) = requirement {
            request = request.with_extension(requirement);
        }
        let error = request.send().await.unwrap_err();
        assert!(
            matches!(
                AuthError::find(&error),
                Some(AuthError::InsecureTransport { .. })
            ),
            "{requirement:?}: {error:?}"
        );
    }
    assert_eq!(provider.calls(), 0);

    let server = api().await;
    let auth = AiutaAuthMiddleware::builder(ApiKeyAuth::new(API_KEY).unwrap())
        .allow_host("localhost")
        .build();
    let url = format!("http://localhost:{}/v1/sku_items", server.address().port());
    client(auth).get(url).send().await.unwrap();
    let got = received(&server).await;
    assert_eq!(got[0].headers["x-api-key"], API_KEY);
}
