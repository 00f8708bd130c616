//! Secrets stay secret: no API key, JWT or JWT secret in any log event, span field or `Debug`
//! output, on every path including failures and 401 refreshes; credential header values are
//! marked sensitive.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use reqwest_aiuta_auth::{
    AiutaAuthMiddleware, ApiKeyAuth, AuthError, AuthRequirement, BoxError, Credential,
    HttpJwtProvider, JwtAuth, JwtParams,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::schemes::received;
use crate::support::{API_KEY, SUBSCRIPTION_ID, Terminal, jwt_expiring_in, middleware};

/// What the tracing subscriber wrote on one test's thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    /// Where events of this thread go; nowhere when `None`.
    static CAPTURE: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// Writes an event into the capture of the thread that emitted it.
struct ToThisThread(Option<Logs>);

impl io::Write for ToThisThread {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(logs) = &self.0 {
            logs.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct PerThread;

impl<'a> MakeWriter<'a> for PerThread {
    type Writer = ToThisThread;

    fn make_writer(&'a self) -> Self::Writer {
        ToThisThread(CAPTURE.with(|capture| capture.borrow().clone()))
    }
}

/// Stops the capture of the current thread when dropped.
pub struct Capturing(Option<Logs>);

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.with(|capture| *capture.borrow_mut() = self.0.take());
    }
}

/// Records every event at every level, with its spans' fields and each span's opening and
/// closing, emitted on the current thread until the guard drops. Tests that use it run on
/// tokio's current-thread runtime, so everything the client does happens on this thread.
///
/// One global subscriber routes each event to its thread's capture: per-test scoped
/// subscribers (`set_default`) would race on tracing's global interest cache and lose events.
pub fn capture_logs() -> (Logs, Capturing) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(FmtSpan::FULL)
            .with_writer(PerThread)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("capture_logs installs the test binary's only global subscriber");
    });
    let logs = Logs::default();
    let previous = CAPTURE.with(|capture| capture.replace(Some(logs.clone())));
    (logs, Capturing(previous))
}

const BACKEND_QUERY_SECRET: &str = "shop-backend-query-secret-5150";
const ERROR_BODY_SECRET: &str = "secret-in-an-error-body-8086";
const BAD_TOKEN_SECRET: &str = "secret-in-a-bad-token-6502";

/// The API: a try-on whose body says `refresh` gets a 401 once, `/v1/api_key_rejected` always
/// a 401, everything else a 200.
async fn api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/v1/sku_try_on_operations"))
        .and(body_string_contains("refresh"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/api_key_rejected"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

/// A JWT backend: a call whose parameters say `ok_` gets the next of `tokens`, `broken` a 500
/// whose body holds a secret, `newline` a token with a line break.
async fn backend(tokens: &[String]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string(ERROR_BODY_SECRET))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("newline"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "token": format!("a.{BAD_TOKEN_SECRET}\n.c") })),
        )
        .mount(&server)
        .await;
    for token in tokens {
        Mock::given(method("POST"))
            .and(body_string_contains("ok_"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({ "type": "jwt", "token": token })),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    server
}

/// Every way an error can be shown: `Display`, `Debug`, pretty `Debug`, and the `AuthError`.
fn describe(error: &reqwest_middleware::Error) -> String {
    let auth = AuthError::find(error).expect("an AuthError");
    format!("{error} {error:?} {error:#?} {auth} {auth:?}")
}

fn traced(auth: AiutaAuthMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(reqwest_tracing::TracingMiddleware::default())
        .with(auth)
        .build()
}

#[tokio::test]
async fn no_secret_appears_in_any_event_span_field_or_debug_output() {
    let (logs, _guard) = capture_logs();
    let aiuta = api().await;
    let tokens: Vec<String> = (0..4)
        .map(|n| jwt_expiring_in(Duration::from_secs(600), 9000 + n))
        .collect();
    let jwt_backend = backend(&tokens).await;
    let mut shown: Vec<String> = Vec::new();

    // The API-key scheme: mandatory, optional, and a 401 that is returned.
    let api_key = ApiKeyAuth::new(API_KEY).unwrap();
    let key_auth = middleware(api_key.clone());
    let key_client = traced(key_auth.clone());
    for (route, status) in [
        ("/v1/sku_try_on_operations", 200),
        ("/v1/sku_items", 200),
        ("/v1/api_key_rejected", 401),
    ] {
        let response = key_client
            .post(format!("{}{route}", aiuta.uri()))
            .body(r#"{"sku_id":"k"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{route}");
    }

    // The JWT scheme through an HTTP backend whose URL holds a secret of the shop's.
    let backend_url = format!("{}/aiuta_jwt?sig={BACKEND_QUERY_SECRET}", jwt_backend.uri());
    let provider = HttpJwtProvider::new(&backend_url).unwrap();
    let jwt_auth = JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())
        .fetch_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let jwt_client = traced(middleware(jwt_auth.clone()));
    let try_on = format!("{}/v1/sku_try_on_operations", aiuta.uri());
    let send = |body: &'static str| {
        jwt_client
            .post(&try_on)
            .with_extension(AuthRequirement::Mandatory)
            .body(body)
            .send()
    };
    assert_eq!(send(r#"{"sku_id":"ok_1"}"#).await.unwrap().status(), 200);
    assert_eq!(
        send(r#"{"sku_id":"ok_1"}"#).await.unwrap().status(),
        200,
        "cached"
    );
    // A 401, a new token, and the call once more.
    assert_eq!(
        send(r#"{"sku_id":"ok_refresh"}"#).await.unwrap().status(),
        200
    );
    shown.push(describe(&send(r#"{"sku_id":"broken"}"#).await.unwrap_err()));
    shown.push(describe(
        &send(r#"{"sku_id":"newline"}"#).await.unwrap_err(),
    ));
    let optional = jwt_client
        .get(format!("{}/v1/sku_items", aiuta.uri()))
        .send();
    assert_eq!(optional.await.unwrap().status(), 200);

    // A provider that fails, times out or panics, with the token it was about to hand out.
    let leaky_token = tokens[3].clone();
    let failing = move |params: JwtParams| {
        let token = leaky_token.clone();
        async move {
            match params.get("sku_id") {
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(token)
                }
                Some("panic") => panic!("provider gave up"),
                _ => Err(BoxError::from("the shop said no")),
            }
        }
    };
    let failing_auth = JwtAuth::builder(SUBSCRIPTION_ID, failing)
        .fetch_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let failing_client = traced(middleware(failing_auth.clone()));
    for body in [
        r#"{"sku_id":"no"}"#,
        r#"{"sku_id":"slow"}"#,
        r#"{"sku_id":"panic"}"#,
    ] {
        let error = failing_client
            .post(&try_on)
            .body(body)
            .send()
            .await
            .unwrap_err();
        shown.push(describe(&error));
    }

    // Refused before sending: bad credentials, a host off the list, plain http.
    for bad in [format!("{API_KEY}\n"), format!(" {API_KEY}")] {
        shown.push(format!("{:?}", ApiKeyAuth::new(bad).unwrap_err()));
    }
    let off_list = traced(AiutaAuthMiddleware::new(api_key.clone()));
    let refused = off_list
        .post(&try_on)
        .with_extension(AuthRequirement::Mandatory)
        .send()
        .await
        .unwrap_err();
    shown.push(describe(&refused));

    #[cfg(feature = "mint")]
    let minted = {
        use reqwest_aiuta_auth::mint::JwtMinter;
        let minter = JwtMinter::new("jwt-key-issuer", JWT_SECRET).unwrap();
        shown.push(format!("{minter:?}"));
        let minting = JwtAuth::new(SUBSCRIPTION_ID, minter).unwrap();
        let client = traced(middleware(minting));
        let response = client
            .post(&try_on)
            .body(r#"{"sku_id":"m"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let got = received(&aiuta).await;
        let bearer = got.last().unwrap().headers["authorization"]
            .to_str()
            .unwrap();
        vec![bearer.trim_start_matches("Bearer ").to_owned()]
    };
    #[cfg(not(feature = "mint"))]
    let minted: Vec<String> = Vec::new();

    // Debug of everything that holds a secret.
    shown.extend([
        format!("{api_key:?} {key_auth:?} {jwt_auth:?} {provider:?} {failing_auth:?}"),
        format!("{:?}", AiutaAuthMiddleware::builder(api_key.clone())),
        format!("{:?}", JwtAuth::builder(SUBSCRIPTION_ID, provider.clone())),
        format!("{:?}", Credential::api_key(API_KEY).unwrap()),
        format!("{:?}", Credential::bearer(tokens[0].clone()).unwrap()),
        format!("{:#?}", Credential::bearer(tokens[1].clone()).unwrap()),
    ]);

    // The secrets reached the API, so the checks below are about the logs, not about nothing.
    let sent = received(&aiuta).await;
    let bearers: Vec<&str> = sent
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .map(|v| v.to_str().unwrap().trim_start_matches("Bearer "))
        .collect();
    assert!(bearers.contains(&tokens[0].as_str()) && bearers.contains(&tokens[1].as_str()));
    assert!(
        sent.iter()
            .any(|r| r.headers.get("x-api-key").is_some_and(|v| v == API_KEY))
    );
    let text = logs.text();
    for expected in [
        "aiuta_jwt_fetch",
        "sending",
        "401",
        "JWT provider timed out",
    ] {
        assert!(
            text.contains(expected),
            "the logs lack {expected:?}:\n{text}"
        );
    }

    let mut secrets: Vec<String> = vec![
        API_KEY.to_owned(),
        JWT_SECRET.to_owned(),
        BACKEND_QUERY_SECRET.to_owned(),
        ERROR_BODY_SECRET.to_owned(),
        BAD_TOKEN_SECRET.to_owned(),
    ];
    for token in tokens.iter().chain(&minted) {
        secrets.push(token.clone());
        // The payload segment alone is unique to the token.
        secrets.push(token.split('.').nth(1).unwrap().to_owned());
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{secret:?} is in the logs:\n{text}"
        );
        for output in &shown {
            assert!(
                !output.contains(secret.as_str()),
                "{secret:?} is in {output}"
            );
        }
    }
}

/// The secret the `mint` path signs with.
const JWT_SECRET: &str = "jwt-secret-never-to-be-shown-31337";

#[tokio::test]
async fn credential_header_values_are_marked_sensitive_on_every_path() {
    let terminal = Terminal::answering(&[200, 200, 401, 200]);
    let key_client = terminal.client(middleware(ApiKeyAuth::new(API_KEY).unwrap()));
    let tokens = Arc::new(Mutex::new(0));
    let provider = {
        let tokens = tokens.clone();
        move |_: JwtParams| {
            let mut n = tokens.lock().unwrap();
            *n += 1;
            let token = jwt_expiring_in(Duration::from_secs(60), *n);
            async move { Ok::<_, BoxError>(token) }
        }
    };
    let jwt_client = terminal.client(middleware(JwtAuth::new(SUBSCRIPTION_ID, provider).unwrap()));
    let url = "http://127.0.0.1:9/v1/sku_try_on_operations";

    key_client.post(url).body("{}").send().await.unwrap();
    jwt_client.get(url).send().await.unwrap();
    // Mandatory: a 401 to the first token, then a second token.
    let response = jwt_client.post(url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(*tokens.lock().unwrap(), 2);

    let seen = terminal.seen();
    let expected = ["x-api-key", "x-user-id", "authorization", "authorization"];
    assert_eq!(seen.len(), expected.len());
    for (request, header) in seen.iter().zip(expected) {
        let value = request
            .headers
            .get(header)
            .unwrap_or_else(|| panic!("no {header}"));
        assert!(value.is_sensitive(), "{header} is not marked sensitive");
    }
    let formatted = format!("{:?}", seen[0].headers);
    assert!(
        !formatted.contains(API_KEY),
        "http's Debug hides sensitive values: {formatted}"
    );
}
