//! The parameters a JWT is bound to: what the provider gets for each kind of request.

use reqwest_aiuta_auth::{JwtAuth, JwtParams};
use serde_json::json;

use crate::schemes::{api, received};
use crate::support::{CountingProvider, SUBSCRIPTION_ID, client, middleware};

/// Sends `request` (a mandatory call) and returns the parameters the provider got.
async fn params_for(
    build: impl FnOnce(
        &reqwest_middleware::ClientWithMiddleware,
        String,
    ) -> reqwest_middleware::RequestBuilder,
) -> (JwtParams, Vec<wiremock::Request>) {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let url = format!("{}/digital-try-on/v1/sku_images_operations", server.uri());
    build(&client, url).send().await.unwrap();
    assert_eq!(provider.calls(), 1);
    (provider.last_params(), received(&server).await)
}

#[tokio::test]
async fn query_pairs_then_body_fields_with_the_body_winning() {
    let (params, _) = params_for(|client, url| {
        client
            .post(format!("{url}?sku_id=from_query&source=app%20store"))
            .body(r#"{"sku_id":"from_body","uploaded_image_id":"img_1"}"#)
    })
    .await;
    assert_eq!(params.get("sku_id"), Some("from_body"));
    assert_eq!(params.get("source"), Some("app store"));
    assert_eq!(params.get("uploaded_image_id"), Some("img_1"));
    assert_eq!(params.len(), 3);
    let names: Vec<_> = params.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["sku_id", "source", "uploaded_image_id"]);
}

#[tokio::test]
async fn string_forms_of_json_values() {
    let body = json!({
        "sku_ids": ["a", "b"],
        "mixed": [1, true, "x"],
        "count": 2,
        "ratio": 0.5,
        "hd": false,
        "gone": null,
        "options": {"style": "casual", "n": [1, 2]},
        "objects": [{"a": 1}],
    });
    let (params, _) = params_for(|client, url| client.post(url).json(&body)).await;
    assert_eq!(params.get("sku_ids"), Some("a,b"));
    assert_eq!(params.get("mixed"), Some("1,true,x"));
    assert_eq!(params.get("count"), Some("2"));
    assert_eq!(params.get("ratio"), Some("0.5"));
    assert_eq!(params.get("hd"), Some("false"));
    assert_eq!(params.get("gone"), None);
    assert_eq!(
        params.get("options"),
        Some(r#"{"n":[1,2],"style":"casual"}"#)
    );
    assert_eq!(params.get("objects"), Some(r#"[{"a":1}]"#));
    assert_eq!(params.len(), 7, "null is not counted");
    assert!(!params.is_empty());
    // json() and Serialize keep the original values, null included.
    assert_eq!(params.json().get("gone"), Some(&json!(null)));
    assert_eq!(params.json()["count"], json!(2));
    assert_eq!(serde_json::to_value(&params).unwrap(), body);
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_contributes_nothing_and_is_sent_intact() {
    let raw = "uploaded_image_id=img_1&not=json";
    let (params, got) = params_for(|client, url| client.post(format!("{url}?q=1")).body(raw)).await;
    assert_eq!(params.iter().collect::<Vec<_>>(), [("q", "1")]);
    assert_eq!(got[0].body, raw.as_bytes());

    let (params, got) = params_for(|client, url| client.post(url).body("[1,2,3]")).await;
    assert!(params.is_empty());
    assert_eq!(got[0].body, b"[1,2,3]");

    let photo = vec![0xFFu8, 0xD8, 0xFF, 0x00, 0x7B];
    let form = reqwest::multipart::Form::new().part(
        "image_data",
        reqwest::multipart::Part::bytes(photo.clone()).file_name("me.jpg"),
    );
    let (params, got) = params_for(|client, url| client.post(url).multipart(form)).await;
    assert!(params.is_empty());
    let body = &got[0].body;
    assert!(
        body.windows(photo.len()).any(|w| w == photo),
        "the upload arrived whole"
    );

    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("{\"a\":"), Ok("1}")];
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let (params, got) =
        params_for(|client, url| client.post(format!("{url}?p=2")).body(stream)).await;
    assert_eq!(
        params.iter().collect::<Vec<_>>(),
        [("p", "2")],
        "a stream is never read"
    );
    assert_eq!(got[0].body, b"{\"a\":1}");
}

#[tokio::test]
async fn the_same_fields_in_another_order_share_one_token() {
    let server = api().await;
    let provider = CountingProvider::new();
    let client = client(middleware(
        JwtAuth::new(SUBSCRIPTION_ID, provider.clone()).unwrap(),
    ));
    let url = format!("{}/v1/sku_try_on_operations", server.uri());
    for body in [r#"{"a":1,"b":"x"}"#, r#"{ "b": "x", "a": 1 }"#] {
        client.post(&url).body(body).send().await.unwrap();
    }
    client.post(format!("{url}?a=1&b=x")).send().await.unwrap();
    let got = received(&server).await;
    assert_eq!(
        got[0].headers["authorization"],
        got[1].headers["authorization"]
    );
    // `a` is the number 1 in the body but the string "1" in a query: another token.
    assert_ne!(
        got[0].headers["authorization"],
        got[2].headers["authorization"]
    );
    assert_eq!(provider.calls(), 2);
}

#[test]
fn params_from_pairs_and_from_json() {
    let params: JwtParams = [("sku_id", "s"), ("uploaded_image_id", "i")]
        .into_iter()
        .collect();
    assert_eq!(params.get("sku_id"), Some("s"));
    assert_eq!(params.len(), 2);
    let map = json!({"b": [1, 2], "a": null}).as_object().unwrap().clone();
    let params = JwtParams::from(map);
    assert_eq!(params.get("b"), Some("1,2"));
    assert_eq!(params.len(), 1);
    assert_eq!(params.json().len(), 2);
}
