//! The scheme table: which header each scheme puts on mandatory and optional calls.

use reqwest_aiuta_auth::{
    AiutaAuthMiddleware, ApiKeyAuth, AuthError, AuthRequirement, Credential, JwtAuth,
};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    API_KEY, CountingProvider, SUBSCRIPTION_ID, Terminal, client, jwt_expiring_in, middleware,
};

pub async fn api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

pub async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn api_key_goes_on_mandatory_and_optional_calls() {
    let server = api().await;
    let client = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    for requirement in [AuthRequirement::Mandatory, AuthRequirement::Optional] {
        client
            .post(format!(
                "{}/digital-try-on/v1/sku_images_operations",
                server.uri()
            ))
            .with_extension(requirement)
            .body(r#"{"uploaded_image_id":"img"}"#)
            .send()
            .await
            .unwrap();
    }
    let got = received(&server).await;
    assert_eq!(got.len(), 2);
    for request in &got {
        assert_eq!(header(request, "x-api-key"), Some(API_KEY));
        assert_eq!(header(request, "authorization"), None);
        assert_eq!(header(request, "x-user-id"), None);
    }
}

#[tokio::test]
async fn jwt_mandatory_call_carries_a_bearer_token_from_the_provider() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    client
        .post(format!(
            "{}/digital-try-on/v1/sku_images_operations",
            server.uri()
        ))
        .with_extension(AuthRequirement::Mandatory)
        .body(r#"{"uploaded_image_id":"img_1","sku_id":"sku_1"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(provider.calls(), 1);
    let params = provider.last_params();
    assert_eq!(params.get("uploaded_image_id"), Some("img_1"));
    assert_eq!(params.get("sku_id"), Some("sku_1"));
    let got = received(&server).await;
    let bearer = header(&got[0], "authorization").expect("a bearer token");
    let token = bearer.strip_prefix("Bearer ").expect("the Bearer scheme");
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(header(&got[0], "x-user-id"), None);
    assert_eq!(header(&got[0], "x-api-key"), None);
}

#[tokio::test]
async fn jwt_optional_call_carries_the_subscription_id_without_asking_the_provider() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    client
        .get(format!(
            "{}/digital-try-on/v1/sku_images_operations/op_1",
            server.uri()
        ))
        .with_extension(AuthRequirement::Optional)
        .send()
        .await
        .unwrap();

    assert_eq!(provider.calls(), 0);
    let got = received(&server).await;
    assert_eq!(header(&got[0], "x-user-id"), Some(SUBSCRIPTION_ID));
    assert_eq!(header(&got[0], "authorization"), None);
}

#[tokio::test]
async fn a_header_set_by_the_caller_is_neither_overwritten_nor_duplicated() {
    let server = api().await;
    let client = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    client
        .get(format!("{}/v1/sku_items", server.uri()))
        .header("x-api-key", "callers-own-key")
        .send()
        .await
        .unwrap();

    let provider = CountingProvider::new();
    let jwt_client = client_with_jwt(&provider);
    jwt_client
        .get(format!(
            "{}/digital-try-on/v1/predefined_try_on_models",
            server.uri()
        ))
        .header("x-user-id", "callers-own-id")
        .send()
        .await
        .unwrap();

    let got = received(&server).await;
    let keys: Vec<_> = got[0].headers.get_all("x-api-key").iter().collect();
    assert_eq!(keys, ["callers-own-key"]);
    let ids: Vec<_> = got[1].headers.get_all("x-user-id").iter().collect();
    assert_eq!(ids, ["callers-own-id"]);
}

#[tokio::test]
async fn no_jwt_is_fetched_for_a_request_that_already_has_authorization() {
    let server = api().await;
    let provider = CountingProvider::new();
    let own = format!(
        "Bearer {}",
        jwt_expiring_in(std::time::Duration::from_secs(60), 99)
    );
    client_with_jwt(&provider)
        .post(format!("{}/v1/sku_try_on_operations", server.uri()))
        .with_extension(AuthRequirement::Mandatory)
        .header("authorization", &own)
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(provider.calls(), 0);
    let got = received(&server).await;
    let values: Vec<_> = got[0].headers.get_all("authorization").iter().collect();
    assert_eq!(values, [own.as_str()]);
}

fn client_with_jwt(provider: &CountingProvider) -> reqwest_middleware::ClientWithMiddleware {
    client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ))
}

#[tokio::test]
async fn credential_header_values_are_marked_sensitive() {
    let terminal = Terminal::default();
    let provider = CountingProvider::new();
    let jwt = terminal.client(middleware(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap()));
    let key = terminal.client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    let url = "http://127.0.0.1:9/v1/sku_try_on_operations";
    jwt.post(url).body("{}").send().await.unwrap();
    jwt.get(url).send().await.unwrap();
    key.get(url).send().await.unwrap();

    let seen = terminal.seen();
    assert!(seen[0].headers["authorization"].is_sensitive());
    assert!(seen[1].headers["x-user-id"].is_sensitive());
    assert!(seen[2].headers["x-api-key"].is_sensitive());
}

#[test]
fn debug_output_never_shows_a_secret() {
    let token = jwt_expiring_in(std::time::Duration::from_secs(60), 7);
    let api_key = ApiKeyAuth::new(API_KEY).unwrap();
    let jwt = JwtAuth::new(SUBSCRIPTION_ID, CountingProvider::new()).unwrap();
    let outputs = [
        format!("{api_key:?}"),
        format!("{jwt:?}"),
        format!("{:?}", Credential::api_key(API_KEY).unwrap()),
        format!("{:?}", Credential::bearer(token.clone()).unwrap()),
        format!("{:?}", AiutaAuthMiddleware::new(api_key.clone())),
        format!("{:?}", AiutaAuthMiddleware::builder(jwt)),
        format!("{:?}", AuthError::InvalidJwt { reason: "x" }),
    ];
    for output in outputs {
        assert!(!output.contains(API_KEY), "{output}");
        assert!(!output.contains(&token), "{output}");
        assert!(
            !output.contains(token.split('.').nth(1).unwrap()),
            "{output}"
        );
    }
}

#[test]
fn bad_credentials_are_refused_at_construction() {
    let provider = CountingProvider::new;
    for bad in ["", " key", "key\n", "a\rb", "tab\there", "ключ"] {
        let error = ApiKeyAuth::new(bad).unwrap_err();
        assert!(
            matches!(
                error,
                AuthError::InvalidCredential {
                    what: "API key",
                    ..
                }
            ),
            "{bad:?}"
        );
        let error = JwtAuth::new(bad, provider()).unwrap_err();
        assert!(
            matches!(error, AuthError::InvalidCredential { .. }),
            "{bad:?}"
        );
        assert!(Credential::bearer(bad).is_err(), "{bad:?}");
        if !bad.is_empty() {
            assert!(!error.to_string().contains(bad.trim()), "{error}");
        }
    }
    let zero = JwtAuth::builder(SUBSCRIPTION_ID, provider())
        .fetch_timeout(std::time::Duration::ZERO)
        .build();
    assert!(matches!(
        zero,
        Err(AuthError::InvalidConfig {
            setting: "fetch_timeout",
            ..
        })
    ));
    let empty_cache = JwtAuth::builder(SUBSCRIPTION_ID, provider())
        .max_cached(0)
        .build();
    assert!(matches!(
        empty_cache,
        Err(AuthError::InvalidConfig {
            setting: "max_cached",
            ..
        })
    ));
    assert!(
        JwtAuth::builder(SUBSCRIPTION_ID, provider())
            .cache(false)
            .max_cached(0)
            .build()
            .is_ok()
    );
}
