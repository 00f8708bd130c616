//! HttpJwtProvider against a JWT backend on loopback.

use reqwest_aiuta_auth::{AuthError, HttpJwtProvider, JwtAuth, JwtParams, JwtProvider};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::schemes::{api, received};
use crate::support::{SUBSCRIPTION_ID, client, jwt_expiring_in, middleware};

async fn backend(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/aiuta_jwt"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn provider_for(server: &MockServer) -> HttpJwtProvider {
    HttpJwtProvider::new(&format!("{}/aiuta_jwt", server.uri())).unwrap()
}

fn params() -> JwtParams {
    JwtParams::from(
        json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]})
            .as_object()
            .unwrap()
            .clone(),
    )
}

#[tokio::test]
async fn reads_each_answer_shape_and_the_api_gets_that_token() {
    let token = jwt_expiring_in(std::time::Duration::from_secs(60), 1);
    let shapes = [
        ResponseTemplate::new(200).set_body_json(json!({"type": "jwt", "token": token})),
        ResponseTemplate::new(200).set_body_json(json!({"token": token, "expires_in": 60})),
        ResponseTemplate::new(200).set_body_string(format!("{token}\n")),
    ];
    for shape in shapes {
        let jwt_backend = backend(shape).await;
        let aiuta = api().await;
        let auth = JwtAuth::new(SUBSCRIPTION_ID, provider_for(&jwt_backend)).unwrap();
        client(middleware(auth))
            .post(format!(
                "{}/digital-try-on/v1/sku_images_operations",
                aiuta.uri()
            ))
            .body(r#"{"uploaded_image_id":"img_1","sku_ids":["a","b"]}"#)
            .send()
            .await
            .unwrap();
        let got = received(&aiuta).await;
        assert_eq!(
            got[0].headers["authorization"],
            format!("Bearer {token}").as_str()
        );
        let asked = received(&jwt_backend).await;
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].headers["content-type"], "application/json");
        let sent: serde_json::Value = serde_json::from_slice(&asked[0].body).unwrap();
        assert_eq!(
            sent,
            json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]})
        );
    }
}

#[tokio::test]
async fn posts_the_parameters_as_json_through_the_given_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/aiuta_jwt"))
        .and(header("x-shop", "42"))
        .and(body_json(
            json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "h.p.s"})))
        .expect(1)
        .mount(&server)
        .await;
    let mut headers = http::HeaderMap::new();
    headers.insert("x-shop", "42".parse().unwrap());
    let own = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let token = provider_for(&server)
        .with_client(own)
        .fetch_jwt(&params())
        .await
        .unwrap();
    assert_eq!(token, "h.p.s");
}

#[tokio::test]
async fn failures_are_typed_and_never_echo_the_body() {
    let secret_body = "internal-secret-stack-trace";
    let cases = [
        (
            ResponseTemplate::new(500).set_body_string(secret_body),
            "500",
        ),
        (
            ResponseTemplate::new(403).set_body_string(secret_body),
            "403",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"type": "jwt"})),
            "no token",
        ),
        (
            ResponseTemplate::new(200).set_body_string("{broken json"),
            "not valid JSON",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"token": 42})),
            "no token",
        ),
        (ResponseTemplate::new(200).set_body_string(""), "no token"),
    ];
    for (answer, reason) in cases {
        let server = backend(answer).await;
        let error = provider_for(&server)
            .fetch_jwt(&params())
            .await
            .unwrap_err();
        let error = error.downcast::<AuthError>().expect("an AuthError");
        assert!(matches!(*error, AuthError::JwtProvider { .. }), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains(reason), "{shown}");
        assert!(!shown.contains(secret_body), "{shown}");
    }
    let server =
        backend(ResponseTemplate::new(200).set_body_json(json!({"token": "opaque-token"}))).await;
    let error = provider_for(&server)
        .fetch_jwt(&params())
        .await
        .unwrap_err();
    let error = error.downcast::<AuthError>().unwrap();
    assert!(matches!(*error, AuthError::InvalidJwt { .. }), "{error:?}");
    assert!(!error.to_string().contains("opaque-token"));
}

#[tokio::test]
async fn an_unreachable_backend_is_a_provider_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = HttpJwtProvider::new(&format!("http://127.0.0.1:{port}/aiuta_jwt")).unwrap();
    let error = provider.fetch_jwt(&params()).await.unwrap_err();
    let error = error.downcast::<AuthError>().unwrap();
    assert!(matches!(*error, AuthError::JwtProvider { .. }), "{error:?}");
}

#[test]
fn a_bad_backend_url_is_refused_at_construction() {
    for bad in ["", "not a url", "/aiuta_jwt", "ftp://shop.example.com/jwt"] {
        let error = HttpJwtProvider::new(bad).unwrap_err();
        assert!(
            matches!(error, AuthError::InvalidConfig { .. }),
            "{bad:?}: {error:?}"
        );
    }
    let debug = format!(
        "{:?}",
        HttpJwtProvider::new("https://shop.example.com/jwt?key=hush").unwrap()
    );
    assert!(
        debug.contains("shop.example.com/jwt") && !debug.contains("hush"),
        "{debug}"
    );
}

#[tokio::test]
async fn a_transport_error_does_not_show_the_backend_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/aiuta_jwt?shop_secret=hush");
    let error = HttpJwtProvider::new(&url)
        .unwrap()
        .fetch_jwt(&params())
        .await
        .unwrap_err();
    let mut shown = format!("{error} {error:?}");
    let mut source = error.source();
    while let Some(cause) = source {
        shown.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!shown.contains("hush"), "{shown}");
}
