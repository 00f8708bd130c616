//! Which requirement a request gets: its extension, the builder's default, or Aiuta's routes.

use http::Method;
use reqwest_aiuta_auth::{AiutaAuthMiddleware, AuthError, AuthRequirement, JwtAuth};
use reqwest_middleware::{ClientBuilder, Extension};

use crate::schemes::{api, received};
use crate::support::{CountingProvider, SUBSCRIPTION_ID, client, middleware};

use AuthRequirement::{Mandatory, Optional};

/// Every route of Aiuta's three APIs (try-on, unified, studio), with the level it needs.
const ROUTES: &[(&str, &str, AuthRequirement)] = &[
    // digital try-on
    ("POST", "/digital-try-on/v1/uploaded_images", Optional),
    ("GET", "/digital-try-on/v1/uploaded_images/img_1", Optional),
    (
        "DELETE",
        "/digital-try-on/v1/uploaded_images/img_1",
        Optional,
    ),
    (
        "DELETE",
        "/digital-try-on/v1/generated_images/gen_1",
        Optional,
    ),
    (
        "POST",
        "/digital-try-on/v1/sku_images_operations",
        Mandatory,
    ),
    (
        "GET",
        "/digital-try-on/v1/sku_images_operations/op_1",
        Optional,
    ),
    (
        "GET",
        "/digital-try-on/v1/predefined_try_on_models",
        Optional,
    ),
    // unified
    ("POST", "/v1/uploaded_images", Optional),
    ("GET", "/v1/uploaded_images/img_1", Optional),
    ("DELETE", "/v1/uploaded_images/img_1", Optional),
    ("DELETE", "/v1/generated_images/gen_1", Optional),
    ("GET", "/v1/sku_items", Optional),
    ("POST", "/v1/sku_items", Optional),
    ("GET", "/v1/sku_items/sku_1", Optional),
    ("DELETE", "/v1/sku_items/sku_1", Optional),
    ("PATCH", "/v1/sku_items/sku_1/capabilities", Optional),
    ("PATCH", "/v1/sku_items/sku_1/merchandising", Optional),
    ("GET", "/v1/recommendations/outfits/sku_1", Optional),
    ("POST", "/v1/flat_lay_operations", Mandatory),
    ("GET", "/v1/flat_lay_operations/op_1", Optional),
    ("POST", "/v1/sku_try_on_operations", Mandatory),
    ("GET", "/v1/sku_try_on_operations/op_1", Optional),
    ("GET", "/v1/predefined_try_on_models", Optional),
    // studio
    ("POST", "/studio/v1/uploaded_images", Optional),
    ("GET", "/studio/v1/uploaded_images/img_1", Optional),
    ("DELETE", "/studio/v1/uploaded_images/img_1", Optional),
    ("DELETE", "/studio/v1/generated_images/gen_1", Optional),
    ("POST", "/studio/v1/flat_lay_operations", Mandatory),
    ("GET", "/studio/v1/flat_lay_operations/op_1", Optional),
    ("GET", "/studio/v1/on_figure_model_presets", Optional),
    ("POST", "/studio/v1/on_figure_operations", Mandatory),
    (
        "POST",
        "/studio/v1/on_figure_operations/regenerate",
        Mandatory,
    ),
    ("GET", "/studio/v1/on_figure_operations/op_1", Optional),
];

#[test]
fn every_aiuta_route_infers_its_level() {
    for &(method, path, expected) in ROUTES {
        let method: Method = method.parse().unwrap();
        assert_eq!(
            AuthRequirement::infer(&method, path),
            expected,
            "{method} {path}"
        );
    }
    assert_eq!(
        AuthRequirement::infer(&Method::POST, "/v1/sku_try_on_operations/"),
        Mandatory
    );
    assert_eq!(
        AuthRequirement::infer(&Method::POST, "/v1/_operations"),
        Optional
    );
    assert_eq!(
        AuthRequirement::infer(&Method::POST, "/v1/regenerate"),
        Optional
    );
    assert_eq!(
        AuthRequirement::infer(&Method::PUT, "/v1/sku_try_on_operations"),
        Optional
    );
}

#[tokio::test]
async fn unmarked_requests_get_the_header_their_route_implies() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    for &(method, path, _) in ROUTES {
        let method: Method = method.parse().unwrap();
        let url = format!("{}{path}", server.uri());
        client.request(method, url).body("{}").send().await.unwrap();
    }

    let got = received(&server).await;
    assert_eq!(got.len(), ROUTES.len());
    for (request, &(method, path, expected)) in got.iter().zip(ROUTES) {
        assert_eq!(
            (request.method.as_str(), request.url.path()),
            (method, path)
        );
        let bearer = request.headers.contains_key("authorization");
        let user_id = request.headers.contains_key("x-user-id");
        match expected {
            Mandatory => assert!(bearer && !user_id, "{method} {path}"),
            Optional => assert!(user_id && !bearer, "{method} {path}"),
        }
    }
    assert_eq!(
        provider.calls(),
        1,
        "every mandatory call had the same parameters: one JWT"
    );
}

#[tokio::test]
async fn the_default_requirement_replaces_inference_and_an_extension_beats_both() {
    let server = api().await;
    let provider = CountingProvider::new();
    let auth =
        AiutaAuthMiddleware::builder(JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap())
            .allow_host("127.0.0.1")
            .default_requirement(Mandatory)
            .build();
    let client = client(auth);
    let poll = format!("{}/v1/sku_try_on_operations/op_1", server.uri());
    client.get(&poll).send().await.unwrap();
    client
        .get(&poll)
        .with_extension(Optional)
        .send()
        .await
        .unwrap();

    let got = received(&server).await;
    assert!(
        got[0].headers.contains_key("authorization"),
        "default: mandatory"
    );
    assert!(!got[0].headers.contains_key("x-user-id"));
    assert!(
        got[1].headers.contains_key("x-user-id"),
        "extension: optional"
    );
    assert!(!got[1].headers.contains_key("authorization"));
}

#[tokio::test]
async fn an_extension_set_for_every_request_counts_as_explicit() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with_init(Extension(Optional))
        .with(middleware(
            JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
        ))
        .build();
    client
        .post(format!("{}/v1/sku_try_on_operations", server.uri()))
        .body("{}")
        .send()
        .await
        .unwrap();
    let got = received(&server).await;
    assert!(
        got[0].headers.contains_key("x-user-id"),
        "optional, though the route says mandatory"
    );
    assert_eq!(provider.calls(), 0);

    // Explicit, so a request to another host is refused rather than passed through.
    let other_host = format!("http://localhost:{}/v1/sku_items", server.address().port());
    let error = client.get(other_host).send().await.unwrap_err();
    assert!(matches!(
        AuthError::find(&error),
        Some(AuthError::HostNotAllowed { .. })
    ));
    assert_eq!(received(&server).await.len(), 1);
}
