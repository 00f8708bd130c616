//! JwtMinter (feature `mint`): the claims it signs, and an independent verifier (PyJWT) that
//! accepts its tokens.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest_aiuta_auth::mint::{DEFAULT_LIFETIME, JwtMinter};
use reqwest_aiuta_auth::testing::AiutaEmulator;
use reqwest_aiuta_auth::{AuthError, JwtAuth, JwtParams};
use serde_json::{Map, Value, json};

use crate::support::{SUBSCRIPTION_ID, client, middleware, unix_now};

const ISSUER: &str = "test-jwt-key";
const SECRET: &str = "test-jwt-secret-0123456789";

pub fn params(json: Value) -> JwtParams {
    match json {
        Value::Object(fields) => JwtParams::from(fields),
        other => panic!("not an object: {other}"),
    }
}

/// The claims of `token` once jsonwebtoken has checked its HS256 signature with `secret`.
fn verified_claims(
    token: &str,
    secret: &str,
) -> Result<Map<String, Value>, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    let key = DecodingKey::from_secret(secret.as_bytes())?;
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map(|data| data.claims)
}

fn number(claims: &Map<String, Value>, name: &str) -> u64 {
    claims[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not a whole number: {claims:?}"))
}

#[test]
fn minted_token_carries_the_parameters_and_the_registered_claims() {
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    let signed = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"], "count": 2});
    let before = unix_now();
    let token = minter.mint(&params(signed.clone())).unwrap();
    let after = unix_now();

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let claims = verified_claims(&token, SECRET).unwrap();
    assert_eq!(claims["iss"], ISSUER);
    let iat = number(&claims, "iat");
    assert!(
        (before..=after).contains(&iat),
        "iat {iat} not in {before}..={after}"
    );
    assert_eq!(number(&claims, "exp"), iat + DEFAULT_LIFETIME.as_secs());
    for (name, value) in signed.as_object().unwrap() {
        assert_eq!(&claims[name], value, "{name}");
    }
    assert_eq!(claims.len(), 6, "{claims:?}");
}

#[test]
fn registered_claims_win_over_parameters_of_the_same_name() {
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    let hostile = json!({"iss": "someone-else", "iat": 0, "exp": 99_999_999_999u64, "sku_id": "s"});
    let claims = verified_claims(&minter.mint(&params(hostile)).unwrap(), SECRET).unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sku_id"], "s");
    let iat = number(&claims, "iat");
    assert!(iat > 0);
    assert_eq!(number(&claims, "exp"), iat + 60);
}

#[test]
fn lifetime_and_issue_time_set_iat_and_exp() {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let cases = [
        (Duration::from_secs(30), 30),
        (Duration::from_millis(1_500), 2),
        (Duration::ZERO, 0),
    ];
    for (lifetime, seconds) in cases {
        let minter = JwtMinter::new(ISSUER, SECRET).unwrap().lifetime(lifetime);
        let token = minter.mint_at(&JwtParams::default(), at).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap();
        let claims: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(number(&claims, "iat"), 1_700_000_000, "{lifetime:?}");
        assert_eq!(
            number(&claims, "exp"),
            1_700_000_000 + seconds,
            "{lifetime:?}"
        );
    }
    // A token issued long ago is expired for a verifier.
    let stale = JwtMinter::new(ISSUER, SECRET)
        .unwrap()
        .mint_at(
            &JwtParams::default(),
            SystemTime::now() - Duration::from_secs(3600),
        )
        .unwrap();
    let error = verified_claims(&stale, SECRET).unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
    let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    assert!(matches!(
        minter.mint_at(&JwtParams::default(), before_1970),
        Err(AuthError::JwtProvider { .. })
    ));
}

#[test]
fn a_token_verifies_only_with_its_own_secret() {
    let token = JwtMinter::new(ISSUER, SECRET)
        .unwrap()
        .mint(&JwtParams::default())
        .unwrap();
    let error = verified_claims(&token, "another-secret").unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
}

#[test]
fn new_rejects_an_empty_issuer_or_secret() {
    assert!(matches!(
        JwtMinter::new("", SECRET),
        Err(AuthError::InvalidCredential {
            what: "JWT issuer",
            ..
        })
    ));
    assert!(matches!(
        JwtMinter::new(ISSUER, ""),
        Err(AuthError::InvalidCredential {
            what: "JWT secret",
            ..
        })
    ));
}

#[test]
fn debug_shows_the_issuer_but_never_the_secret() {
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    let debug = format!("{minter:?}");
    assert!(debug.contains(ISSUER), "{debug}");
    assert!(!debug.contains(SECRET), "{debug}");
}

#[tokio::test]
async fn minter_is_a_jwt_provider_whose_tokens_the_api_accepts() {
    let emulator = AiutaEmulator::jwt(SUBSCRIPTION_ID, ISSUER, SECRET)
        .start()
        .await
        .unwrap();
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    let auth = JwtAuth::new(SUBSCRIPTION_ID, minter).unwrap();
    let response = client(middleware(auth))
        .post(format!("{}/sku_images_operations", emulator.try_on_url()))
        .json(&json!({"uploaded_image_id": "img_1", "sku_id": "sku_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.received()[0].rejection, None);
    // Signed in-process: the emulated backend was never asked.
    assert_eq!(emulator.jwts_minted(), 0);
}

/// Runs `tests/interop/verify_jwt.py <mode>` with `stdin`; returns its exit code, stdout and
/// stderr. Fails the test, saying how to fix it, when python3 or PyJWT is missing.
fn pyjwt(mode: &str, secret: &str, stdin: &str) -> (i32, String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(root.join("tests/interop/verify_jwt.py"))
        .arg(mode)
        .env("JWT_SECRET", secret)
        .env("JWT_ISSUER", ISSUER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): the interop test needs python3 with PyJWT (.ci/run installs it)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().expect("verify_jwt.py was killed");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_ne!(code, 3, "{stderr}");
    (code, String::from_utf8(output.stdout).unwrap(), stderr)
}

#[test]
fn pyjwt_verifies_a_minted_token() {
    let minter = JwtMinter::new(ISSUER, SECRET).unwrap();
    let signed = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"], "count": 2});
    let token = minter.mint(&params(signed.clone())).unwrap();

    let (code, stdout, stderr) = pyjwt("verify", SECRET, &token);
    assert_eq!(code, 0, "PyJWT rejected the token: {stderr}");
    let decoded: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(decoded["header"]["alg"], "HS256");
    let claims = decoded["claims"].as_object().unwrap();
    let mut expected = signed.as_object().unwrap().clone();
    let iat = number(claims, "iat");
    expected.insert("iss".into(), json!(ISSUER));
    expected.insert("iat".into(), json!(iat));
    expected.insert("exp".into(), json!(iat + 60));
    assert_eq!(claims, &expected);

    let (code, _, stderr) = pyjwt("verify", "another-secret", &token);
    assert_eq!(
        code, 1,
        "PyJWT should reject a token checked with another secret"
    );
    assert!(stderr.contains("InvalidSignatureError"), "{stderr}");
}

#[tokio::test]
async fn the_emulator_accepts_what_pyjwt_signs_over_the_call() {
    let emulator = AiutaEmulator::jwt(SUBSCRIPTION_ID, ISSUER, SECRET)
        .start()
        .await
        .unwrap();
    let body = json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"]});
    let sign = |claims: Value| {
        let (code, token, stderr) = pyjwt("sign", SECRET, &claims.to_string());
        assert_eq!(code, 0, "{stderr}");
        token
    };
    let exp = unix_now() + 60;
    // As Aiuta's iOS SDK signs: the list of SKU ids joined with commas.
    let joined = sign(json!({"uploaded_image_id": "img_1", "sku_ids": "a,b", "exp": exp}));
    let other_photo = sign(json!({"uploaded_image_id": "img_2", "sku_ids": "a,b", "exp": exp}));
    let http = reqwest::Client::new();
    for token in [&joined, &other_photo] {
        http.post(format!("{}/sku_images_operations", emulator.try_on_url()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let statuses: Vec<u16> = emulator
        .received()
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(statuses, [200, 401]);
}
