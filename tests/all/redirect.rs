//! Redirects: reqwest forwards `x-api-key` and `x-user-id` across origins; `same_origin()` does
//! not follow such a hop, and the middleware warns when a response came from another origin.

use reqwest_aiuta_auth::redirect::same_origin;
use reqwest_aiuta_auth::{ApiKeyAuth, AuthRequirement, JwtAuth};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use wiremock::matchers::{any, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::schemes::{api, received};
use crate::secrets::capture_logs;
use crate::support::{API_KEY, CountingProvider, SUBSCRIPTION_ID, middleware};

/// A server whose every answer is a 302 to `location`.
async fn redirecting_to(location: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(302).insert_header("location", location))
        .mount(&server)
        .await;
    server
}

fn client_with(
    http: reqwest::Client,
    source: impl reqwest_aiuta_auth::CredentialSource,
) -> ClientWithMiddleware {
    ClientBuilder::new(http).with(middleware(source)).build()
}

fn same_origin_client(source: impl reqwest_aiuta_auth::CredentialSource) -> ClientWithMiddleware {
    let http = reqwest::Client::builder()
        .redirect(same_origin())
        .build()
        .unwrap();
    client_with(http, source)
}

#[tokio::test]
async fn a_cross_origin_redirect_is_not_followed_and_no_credential_reaches_the_other_origin() {
    let other = api().await;
    let first = redirecting_to(&format!("{}/landing", other.uri())).await;
    let (logs, _guard) = capture_logs();

    let key_client = same_origin_client(ApiKeyAuth::new(API_KEY).unwrap());
    let jwt_client =
        same_origin_client(JwtAuth::new(SUBSCRIPTION_ID, CountingProvider::new()).unwrap());
    let calls = [
        (&key_client, AuthRequirement::Optional),
        (&jwt_client, AuthRequirement::Optional),
        (&jwt_client, AuthRequirement::Mandatory),
    ];
    for (client, requirement) in calls {
        let response = client
            .post(format!("{}/v1/sku_try_on_operations", first.uri()))
            .with_extension(requirement)
            .body(r#"{"uploaded_image_id":"img_1"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302, "the 3xx comes back to the caller");
        assert_eq!(response.url().port(), first.address().port().into());
    }

    assert!(
        received(&other).await.is_empty(),
        "nothing reached the other origin"
    );
    let sent = received(&first).await;
    assert_eq!(sent.len(), 3);
    let carried = |name: &str| sent.iter().filter(|r| r.headers.contains_key(name)).count();
    assert_eq!(
        [
            carried("x-api-key"),
            carried("x-user-id"),
            carried("authorization")
        ],
        [1, 1, 1],
        "the first origin got each credential once"
    );
    assert!(
        !logs.text().contains("WARN"),
        "nothing left the origin: {}",
        logs.text()
    );
}

/// Why the policy exists: reqwest's default policy takes `x-api-key` and `x-user-id` along.
#[tokio::test]
async fn without_the_policy_reqwest_forwards_custom_credential_headers_and_the_middleware_warns() {
    let other = api().await;
    let first = redirecting_to(&format!("{}/landing?hop=1", other.uri())).await;
    let (logs, _guard) = capture_logs();

    let key_client = client_with(reqwest::Client::new(), ApiKeyAuth::new(API_KEY).unwrap());
    let jwt_client = client_with(
        reqwest::Client::new(),
        JwtAuth::new(SUBSCRIPTION_ID, CountingProvider::new()).unwrap(),
    );
    for client in [&key_client, &jwt_client] {
        let response = client
            .get(format!("{}/v1/sku_items?private_query=1", first.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "the default policy followed the hop"
        );
    }

    let leaked = received(&other).await;
    assert_eq!(leaked.len(), 2);
    assert_eq!(leaked[0].headers.get("x-api-key").unwrap(), API_KEY);
    assert_eq!(leaked[1].headers.get("x-user-id").unwrap(), SUBSCRIPTION_ID);

    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{text}");
    let from = format!("sent_to=http://127.0.0.1:{}", first.address().port());
    let to = format!("answered_by=http://127.0.0.1:{}", other.address().port());
    for warning in warnings {
        assert!(
            warning.contains(&from) && warning.contains(&to),
            "{warning}"
        );
        assert!(
            !warning.contains("private_query") && !warning.contains("landing"),
            "{warning}"
        );
        assert!(!warning.contains(API_KEY), "{warning}");
    }
}

/// Answers `/hop/<n>/<last>` with a 302 to `/hop/<n+1>/<last>` until `n` reaches `last`.
struct Hops;

impl Respond for Hops {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut parts = request.url.path().rsplit('/');
        let last: u32 = parts.next().unwrap().parse().unwrap();
        let n: u32 = parts.next().unwrap().parse().unwrap();
        if n < last {
            ResponseTemplate::new(302).insert_header("location", format!("/hop/{}/{last}", n + 1))
        } else {
            ResponseTemplate::new(200)
        }
    }
}

#[tokio::test]
async fn ten_same_origin_redirects_are_followed_with_the_credential_and_an_eleventh_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/hop/"))
        .respond_with(Hops)
        .mount(&server)
        .await;
    let client = same_origin_client(ApiKeyAuth::new(API_KEY).unwrap());

    let response = client
        .get(format!("{}/hop/0/10", server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/hop/10/10");
    let sent = received(&server).await;
    assert_eq!(sent.len(), 11, "the request and its 10 redirects");
    assert!(
        sent.iter()
            .all(|r| r.headers.get("x-api-key").unwrap() == API_KEY)
    );

    server.reset().await;
    Mock::given(path_regex("^/hop/"))
        .respond_with(Hops)
        .mount(&server)
        .await;
    let error = client
        .get(format!("{}/hop/0/11", server.uri()))
        .send()
        .await
        .unwrap_err();
    let reqwest_middleware::Error::Reqwest(error) = error else {
        panic!("a reqwest error, got {error:?}");
    };
    assert!(error.is_redirect(), "{error:?}");
    assert_eq!(
        received(&server).await.len(),
        11,
        "the 11th redirect is not followed"
    );
}

#[tokio::test]
async fn a_redirect_to_another_scheme_port_or_host_name_is_not_followed() {
    let server = MockServer::start().await;
    let port = server.address().port();
    let other_port = api().await;
    let targets = [
        format!("https://127.0.0.1:{port}/tls"),
        format!("http://127.0.0.1:{}/port", other_port.address().port()),
        format!("http://localhost:{port}/name"),
    ];
    for (index, target) in targets.iter().enumerate() {
        Mock::given(path_regex(format!("^/to/{index}$")))
            .respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str()))
            .mount(&server)
            .await;
    }
    let client = same_origin_client(ApiKeyAuth::new(API_KEY).unwrap());
    for (index, target) in targets.iter().enumerate() {
        let response = client
            .get(format!("{}/to/{index}", server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307, "{target} was followed");
    }
    assert_eq!(
        received(&server).await.len(),
        3,
        "no hop came back to this server"
    );
    assert!(received(&other_port).await.is_empty());
}
