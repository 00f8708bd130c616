//! The Aiuta emulator (feature `testing`): the routes it answers, and the credentials it
//! accepts and refuses as Aiuta does.

use std::time::{Duration, SystemTime};

use reqwest_aiuta_auth::mint::JwtMinter;
use reqwest_aiuta_auth::testing::{AiutaEmulator, CredentialHeader, PLACEHOLDER_PNG};
use reqwest_aiuta_auth::{
    ApiKeyAuth, AuthError, AuthRequirement, HttpJwtProvider, JwtAuth, JwtParams,
};
use serde_json::{Value, json};

use crate::mint::params;
use crate::support::{API_KEY, SUBSCRIPTION_ID, client, middleware};

const ISSUER: &str = "test-jwt-key";
const SECRET: &str = "test-jwt-secret-0123456789";

fn try_on_body() -> Value {
    json!({"uploaded_image_id": "img_1", "sku_id": "sku_1"})
}

async fn jwt_emulator() -> AiutaEmulator {
    AiutaEmulator::jwt(SUBSCRIPTION_ID, ISSUER, SECRET)
        .start()
        .await
        .unwrap()
}

/// Sends `POST sku_images_operations` (mandatory) with `headers` and `body`, without the
/// middleware; returns the status and the JSON answer.
async fn start_try_on(
    emulator: &AiutaEmulator,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/sku_images_operations", emulator.try_on_url()))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Sends `GET predefined_try_on_models` (optional) with `headers`; returns the status.
async fn list_models(emulator: &AiutaEmulator, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new().get(format!(
        "{}/predefined_try_on_models",
        emulator.try_on_url()
    ));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

fn statuses(emulator: &AiutaEmulator) -> Vec<u16> {
    emulator
        .received()
        .iter()
        .map(|call| call.status.as_u16())
        .collect()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn api_key_scheme_accepts_the_key_and_rejects_a_wrong_or_missing_one() {
    let emulator = AiutaEmulator::api_key(API_KEY).start().await.unwrap();
    assert_eq!(list_models(&emulator, &[("x-api-key", API_KEY)]).await, 200);
    let (status, _) = start_try_on(&emulator, &[("x-api-key", API_KEY)], &try_on_body()).await;
    assert_eq!(status, 200);
    let (status, answer) =
        start_try_on(&emulator, &[("x-api-key", "another-key")], &try_on_body()).await;
    assert_eq!(status, 401);
    assert_eq!(answer["detail"], "Invalid API key");
    assert_eq!(list_models(&emulator, &[]).await, 401);
    // A subscription id is no API key.
    assert_eq!(
        list_models(&emulator, &[("x-user-id", SUBSCRIPTION_ID)]).await,
        401
    );

    let received = emulator.received();
    assert_eq!(statuses(&emulator), [200, 200, 401, 401, 401]);
    let requirements: Vec<_> = received.iter().map(|call| call.requirement).collect();
    use AuthRequirement::{Mandatory, Optional};
    assert_eq!(
        requirements,
        [Optional, Mandatory, Mandatory, Optional, Optional]
    );
    assert_eq!(received[2].rejection.as_deref(), Some("Invalid API key"));
    assert_eq!(
        received[3].rejection.as_deref(),
        Some("Missing x-api-key header")
    );
    assert!(received[0].carried(CredentialHeader::ApiKey));
    assert_eq!(received[4].credentials, [CredentialHeader::UserId]);
    assert_eq!(received[1].params, params(try_on_body()));
}

#[tokio::test]
async fn jwt_scheme_optional_calls_need_the_subscription_id_or_a_valid_token() {
    let emulator = jwt_emulator().await;
    let token = emulator
        .minter()
        .unwrap()
        .mint(&JwtParams::default())
        .unwrap();
    let foreign = JwtMinter::new(ISSUER, "another-secret")
        .unwrap()
        .mint(&JwtParams::default());
    let foreign = foreign.unwrap();
    assert_eq!(
        list_models(&emulator, &[("x-user-id", SUBSCRIPTION_ID)]).await,
        200
    );
    assert_eq!(
        list_models(&emulator, &[("authorization", &bearer(&token))]).await,
        200
    );
    assert_eq!(
        list_models(&emulator, &[("x-user-id", "66ec1726e728c1405e5ebca3")]).await,
        401
    );
    assert_eq!(list_models(&emulator, &[]).await, 401);
    assert_eq!(
        list_models(&emulator, &[("authorization", &bearer(&foreign))]).await,
        401
    );
    assert_eq!(list_models(&emulator, &[("x-api-key", API_KEY)]).await, 401);

    let rejections: Vec<_> = emulator
        .received()
        .into_iter()
        .map(|call| call.rejection)
        .collect();
    assert_eq!(
        rejections[2].as_deref(),
        Some("Unknown subscription id in x-user-id")
    );
    assert!(
        rejections[..2].iter().all(Option::is_none),
        "{rejections:?}"
    );
}

#[tokio::test]
async fn jwt_scheme_mandatory_call_needs_a_bearer_token() {
    let emulator = jwt_emulator().await;
    let (status, answer) =
        start_try_on(&emulator, &[("x-user-id", SUBSCRIPTION_ID)], &try_on_body()).await;
    assert_eq!(status, 401);
    assert!(
        answer["detail"].as_str().unwrap().contains("Bearer"),
        "{answer}"
    );
    let (status, _) =
        start_try_on(&emulator, &[("authorization", "Basic abc")], &try_on_body()).await;
    assert_eq!(status, 401);

    let token = emulator
        .minter()
        .unwrap()
        .mint(&params(try_on_body()))
        .unwrap();
    let (status, answer) = start_try_on(
        &emulator,
        &[("authorization", &bearer(&token))],
        &try_on_body(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["operation_id"]
            .as_str()
            .unwrap()
            .starts_with("sku_images_op-")
    );
    assert_eq!(statuses(&emulator), [401, 401, 200]);
}

#[tokio::test]
async fn token_signed_with_another_secret_is_rejected() {
    let emulator = jwt_emulator().await;
    let forged = JwtMinter::new(ISSUER, "another-secret").unwrap();
    let token = forged.mint(&params(try_on_body())).unwrap();
    let (status, answer) = start_try_on(
        &emulator,
        &[("authorization", &bearer(&token))],
        &try_on_body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        answer["detail"],
        "Invalid token: the signature does not match"
    );
}

#[tokio::test]
async fn token_from_another_issuer_is_rejected() {
    let emulator = jwt_emulator().await;
    let stranger = JwtMinter::new("another-jwt-key", SECRET).unwrap();
    let token = stranger.mint(&params(try_on_body())).unwrap();
    let (status, answer) = start_try_on(
        &emulator,
        &[("authorization", &bearer(&token))],
        &try_on_body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(answer["detail"], "Invalid token: unknown issuer");
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let emulator = jwt_emulator().await;
    let minter = emulator.minter().unwrap();
    let two_minutes_ago = SystemTime::now() - Duration::from_secs(120);
    let stale = minter
        .mint_at(&params(try_on_body()), two_minutes_ago)
        .unwrap();
    let (status, answer) = start_try_on(
        &emulator,
        &[("authorization", &bearer(&stale))],
        &try_on_body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(answer["detail"], "Token has expired");
    // The same call with a fresh token goes through: only the expiry was wrong.
    let fresh = minter.mint(&params(try_on_body())).unwrap();
    let (status, _) = start_try_on(
        &emulator,
        &[("authorization", &bearer(&fresh))],
        &try_on_body(),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn token_whose_parameters_differ_from_the_body_is_rejected() {
    let emulator = jwt_emulator().await;
    let minter = emulator.minter().unwrap();
    let body = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]});
    let cases = [
        (
            json!({"uploaded_image_id": "img_2", "sku_ids": ["a", "b"]}),
            Some("uploaded_image_id"),
        ),
        (
            json!({"uploaded_image_id": "img_1", "sku_ids": ["b", "a"]}),
            Some("sku_ids"),
        ),
        (
            json!({"uploaded_image_id": "img_1", "sku_id": "a"}),
            Some("sku_id"),
        ),
        (
            json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]}),
            None,
        ),
        // The string form Aiuta's iOS SDK signs: SKU ids joined with commas.
        (
            json!({"uploaded_image_id": "img_1", "sku_ids": "a,b"}),
            None,
        ),
    ];
    for (signed, differing) in cases {
        let token = minter.mint(&params(signed.clone())).unwrap();
        let (status, answer) =
            start_try_on(&emulator, &[("authorization", &bearer(&token))], &body).await;
        match differing {
            Some(name) => {
                assert_eq!(status, 401, "{signed}");
                let detail = answer["detail"].as_str().unwrap();
                assert!(detail.contains(name), "{signed}: {detail}");
            }
            None => assert_eq!(status, 200, "{signed}: {answer}"),
        }
    }
}

#[tokio::test]
async fn try_on_flow_through_the_middleware_in_the_jwt_scheme() {
    let emulator = jwt_emulator().await;
    let provider = HttpJwtProvider::new(&emulator.jwt_backend_url()).unwrap();
    let client = client(middleware(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap()));
    let base = emulator.try_on_url();

    let part = reqwest::multipart::Part::bytes(PLACEHOLDER_PNG)
        .file_name("photo.png")
        .mime_str("image/png")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("image_data", part);
    let upload = client
        .post(format!("{base}/uploaded_images"))
        .multipart(form)
        .send();
    let image: Value = upload.await.unwrap().json().await.unwrap();
    let image_id = image["id"].as_str().unwrap().to_owned();
    assert_eq!(image["owner_type"], "user");

    let body = json!({"uploaded_image_id": image_id, "sku_id": "sku_1"});
    let started = client
        .post(format!("{base}/sku_images_operations"))
        .json(&body)
        .send();
    let started: Value = started.await.unwrap().json().await.unwrap();
    assert_eq!(started["errors"], json!([]));
    let operation_id = started["operation_id"].as_str().unwrap();

    let mut answers = Vec::new();
    for _ in 0..2 {
        let poll = client
            .get(format!("{base}/sku_images_operations/{operation_id}"))
            .send();
        answers.push(poll.await.unwrap().json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["status"], "IN_PROGRESS");
    assert_eq!(answers[0]["generated_images"], json!([]));
    assert_eq!(answers[1]["status"], "SUCCESS");
    let image = &answers[1]["generated_images"][0];
    assert_eq!(image["url"], image["image_url"]);
    // The image URL is served by the emulator itself.
    let png = reqwest::get(image["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(png.bytes().await.unwrap(), PLACEHOLDER_PNG);

    assert_eq!(emulator.jwts_minted(), 1);
    assert_eq!(emulator.minted_params(), [params(body)]);
    let carried: Vec<_> = emulator
        .received()
        .into_iter()
        .map(|c| c.credentials)
        .collect();
    use CredentialHeader::{Authorization, UserId};
    assert_eq!(
        carried,
        [
            vec![UserId],
            vec![Authorization],
            vec![UserId],
            vec![UserId]
        ]
    );
    assert_eq!(statuses(&emulator), [200, 200, 200, 200]);
}

#[tokio::test]
async fn unified_api_try_on_in_the_api_key_scheme() {
    let emulator = AiutaEmulator::api_key(API_KEY)
        .in_progress_polls(0)
        .start()
        .await
        .unwrap();
    let client = client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    let base = emulator.unified_url();
    let body = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b", "c"]});
    let started = client
        .post(format!("{base}/sku_try_on_operations"))
        .json(&body)
        .send();
    let started: Value = started.await.unwrap().json().await.unwrap();
    let operation_id = started["operation_id"].as_str().unwrap();
    assert_eq!(started.as_object().unwrap().len(), 1, "{started}");

    let poll = client
        .get(format!("{base}/sku_try_on_operations/{operation_id}"))
        .send();
    let state: Value = poll.await.unwrap().json().await.unwrap();
    assert_eq!(state["status"], "SUCCESS");
    assert_eq!(state["id"], operation_id);
    assert!(
        state["generated_images"][0].get("image_url").is_none(),
        "{state}"
    );

    // An operation of the unified API is not one of the digital try-on API.
    let elsewhere = format!(
        "{}/sku_images_operations/{operation_id}",
        emulator.try_on_url()
    );
    assert_eq!(client.get(elsewhere).send().await.unwrap().status(), 404);
    // Three SKUs are too many for the digital try-on API (at most 2).
    let too_many = client.post(format!("{}/sku_images_operations", emulator.try_on_url()));
    let answer = too_many.json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 422);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["detail"][0]["type"], "too_long");
    let requirements: Vec<_> = emulator
        .received()
        .iter()
        .map(|call| call.requirement)
        .collect();
    use AuthRequirement::{Mandatory, Optional};
    assert_eq!(requirements, [Mandatory, Optional, Optional, Mandatory]);
}

#[tokio::test]
async fn invalid_bodies_get_422_but_only_after_auth() {
    let emulator = AiutaEmulator::api_key(API_KEY).start().await.unwrap();
    let no_sku = json!({"uploaded_image_id": "img_1"});
    let (status, answer) = start_try_on(&emulator, &[("x-api-key", API_KEY)], &no_sku).await;
    assert_eq!(status, 422);
    assert_eq!(answer["detail"][0]["type"], "value_error");
    let (status, _) = start_try_on(&emulator, &[("x-api-key", "wrong")], &no_sku).await;
    assert_eq!(status, 401);

    let not_multipart = reqwest::Client::new()
        .post(format!("{}/uploaded_images", emulator.try_on_url()))
        .header("x-api-key", API_KEY)
        .body(PLACEHOLDER_PNG)
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 422);
    let answer: Value = not_multipart.json().await.unwrap();
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "image_data"]));
}

#[tokio::test]
async fn unknown_routes_get_404_and_are_recorded() {
    let emulator = AiutaEmulator::api_key(API_KEY).start().await.unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/flat_lay_operations", emulator.unified_url()))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["detail"], "Not Found");
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/flat_lay_operations");
    assert_eq!(received[0].requirement, AuthRequirement::Mandatory);
}

#[tokio::test]
async fn jwt_backend_signs_query_and_body_merged_and_counts() {
    let emulator = jwt_emulator().await;
    let http = reqwest::Client::new();
    let url = format!("{}?uploaded_image_id=img_1", emulator.jwt_backend_url());
    let answer: Value = http
        .post(&url)
        .json(&json!({"sku_ids": ["a", "b"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["type"], "jwt");
    let token = answer["token"].as_str().unwrap();
    // A token for exactly those parameters opens the matching try-on.
    let body = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]});
    let (status, _) = start_try_on(&emulator, &[("authorization", &bearer(token))], &body).await;
    assert_eq!(status, 200);

    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let not_object = http.post(&url).body("[1, 2]").send().await.unwrap();
    assert_eq!(not_object.status(), 400);
    assert_eq!(emulator.jwts_minted(), 2);
    let minted = emulator.minted_params();
    assert_eq!(minted[0], params(body));
    assert_eq!(minted[1], params(json!({"uploaded_image_id": "img_1"})));

    let api_key_only = AiutaEmulator::api_key(API_KEY).start().await.unwrap();
    let none = http
        .post(api_key_only.jwt_backend_url())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    assert_eq!(api_key_only.jwts_minted(), 0);
}

#[tokio::test]
async fn start_rejects_an_unusable_configuration() {
    let invalid = |result: Result<AiutaEmulator, AuthError>| match result {
        Err(AuthError::InvalidCredential { what, .. }) => what,
        other => panic!("expected InvalidCredential, got {other:?}"),
    };
    assert_eq!(invalid(AiutaEmulator::api_key("").start().await), "API key");
    assert_eq!(
        invalid(AiutaEmulator::api_key("a\nb").start().await),
        "API key"
    );
    let no_id = AiutaEmulator::jwt("", ISSUER, SECRET).start().await;
    assert_eq!(invalid(no_id), "subscription id");
    assert_eq!(
        invalid(
            AiutaEmulator::jwt(SUBSCRIPTION_ID, "", SECRET)
                .start()
                .await
        ),
        "JWT issuer"
    );
    assert_eq!(
        invalid(
            AiutaEmulator::jwt(SUBSCRIPTION_ID, ISSUER, "")
                .start()
                .await
        ),
        "JWT secret"
    );
}

#[tokio::test]
async fn debug_output_never_shows_a_secret() {
    let builder = AiutaEmulator::api_key(API_KEY);
    let api_key_emulator = AiutaEmulator::api_key(API_KEY).start().await.unwrap();
    list_models(&api_key_emulator, &[("x-api-key", API_KEY)]).await;
    let jwt_builder = AiutaEmulator::jwt(SUBSCRIPTION_ID, ISSUER, SECRET);
    let emulator = jwt_emulator().await;
    let token = emulator
        .minter()
        .unwrap()
        .mint(&params(try_on_body()))
        .unwrap();
    start_try_on(
        &emulator,
        &[("authorization", &bearer(&token))],
        &try_on_body(),
    )
    .await;

    let shown = format!(
        "{builder:?} {api_key_emulator:?} {:?} {jwt_builder:?} {emulator:?} {:?} {:?}",
        api_key_emulator.received(),
        emulator.received(),
        emulator.minter(),
    );
    for secret in [API_KEY, SECRET, token.as_str()] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains(ISSUER) && shown.contains(SUBSCRIPTION_ID),
        "{shown}"
    );
}
