//! The whole try-on flow, authenticated by this crate, in one command:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! With no Aiuta variables set, it runs against a local Aiuta emulator
//! (`reqwest_aiuta_auth::testing`), once per scheme: upload a photo (an optional call), start a
//! try-on (mandatory), poll it until it succeeds (optional). In the JWT scheme the tokens are
//! real HS256 JWTs, fetched through `HttpJwtProvider` from the emulated customer backend. It
//! prints what each call carried, redacted, and exits non-zero if any step misbehaves.
//!
//! With `AIUTA_API_KEY` (or `AIUTA_SUBSCRIPTION_ID` and `AIUTA_JWT_URL`) set, it runs the same
//! flow against the real API, configured by `AiutaAuthMiddleware::from_env`. It then also needs
//! `AIUTA_PHOTO` (the path of a photo of a person, JPEG or PNG) and `AIUTA_SKU_ID` (a product of
//! your catalog); `AIUTA_API_URL` (such as `https://api.dev.aiuta.com`) changes the host.

use std::collections::HashSet;
use std::error::Error;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Extensions;
use reqwest_aiuta_auth::testing::{AiutaEmulator, CredentialHeader, PLACEHOLDER_PNG};
use reqwest_aiuta_auth::{
    AiutaAuthMiddleware, ApiKeyAuth, AuthRequirement, HttpJwtProvider, JwtAuth,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use serde_json::{Value, json};

type BoxResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

// Made-up credentials of the emulated subscriptions.
const API_KEY: &str = "test-api-key-0123456789";
const SUBSCRIPTION_ID: &str = "66ec1726e728c1405e5ebca2";
const JWT_ISSUER: &str = "test-jwt-key";
const JWT_SECRET: &str = "test-jwt-secret-never-use-me";
const SKU_ID: &str = "sku_1";

/// The real API's host, unless `AIUTA_API_URL` names another.
const DEFAULT_API_URL: &str = "https://api.aiuta.com";

/// The emulator answers at once; a real try-on takes seconds, so the real API is polled gently.
const EMULATOR_POLL_INTERVAL: Duration = Duration::from_millis(20);
const REAL_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// Polls before giving up: three minutes against the real API.
const MAX_POLLS: u32 = 60;
/// No call of the flow may hang the example.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a credential the transcript shows: enough to tell keys apart, not to use one.
const SHOWN_PREFIX: usize = 4;

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = if real_api_configured() {
        real_api().await
    } else {
        emulated().await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nquickstart FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn real_api_configured() -> bool {
    ["AIUTA_API_KEY", "AIUTA_SUBSCRIPTION_ID", "AIUTA_JWT_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

async fn emulated() -> BoxResult<()> {
    println!(
        "Aiuta try-on on a local emulator: upload (optional), start (mandatory), poll (optional)"
    );

    let emulator = AiutaEmulator::api_key(API_KEY).start().await?;
    println!("\nAPI-key scheme, API at {}", emulator.try_on_url());
    let auth = AiutaAuthMiddleware::builder(ApiKeyAuth::new(API_KEY)?)
        .allow_host("127.0.0.1")
        .build();
    try_on_emulator(&emulator, auth, |call| {
        call.credentials == [CredentialHeader::ApiKey]
    })
    .await?;

    let emulator = AiutaEmulator::jwt(SUBSCRIPTION_ID, JWT_ISSUER, JWT_SECRET)
        .start()
        .await?;
    println!("\nJWT scheme, API at {}", emulator.try_on_url());
    println!("  JWT backend at {}", emulator.jwt_backend_url());
    let provider = HttpJwtProvider::new(&emulator.jwt_backend_url())?;
    let auth = AiutaAuthMiddleware::builder(JwtAuth::new(SUBSCRIPTION_ID, provider)?)
        .allow_host("127.0.0.1")
        .build();
    let (uploaded_image_id, transcript) =
        try_on_emulator(&emulator, auth, |call| match call.requirement {
            AuthRequirement::Mandatory => call.credentials == [CredentialHeader::Authorization],
            AuthRequirement::Optional => call.credentials == [CredentialHeader::UserId],
        })
        .await?;

    let fetched = transcript.distinct_bearers();
    println!("\nJWTs fetched from the backend: {fetched}");
    let expected: reqwest_aiuta_auth::JwtParams = [
        ("uploaded_image_id", uploaded_image_id.as_str()),
        ("sku_id", SKU_ID),
    ]
    .into_iter()
    .collect();
    ensure(
        fetched == 1 && emulator.jwts_minted() == 1,
        format!(
            "one JWT should serve the one mandatory call, the backend minted {}",
            emulator.jwts_minted()
        ),
    )?;
    ensure(
        emulator.minted_params() == [expected],
        "the JWT should be signed over the try-on's uploaded_image_id and sku_id",
    )?;
    println!("All calls authenticated as Aiuta expects.");
    Ok(())
}

async fn real_api() -> BoxResult<()> {
    let auth = AiutaAuthMiddleware::from_env()?;
    let photo_path = required_var("AIUTA_PHOTO")?;
    let sku_id = required_var("AIUTA_SKU_ID")?;
    let photo = std::fs::read(&photo_path)
        .map_err(|e| format!("AIUTA_PHOTO: cannot read {photo_path}: {e}"))?;
    let mime = match photo_path
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        _ => "image/jpeg",
    };
    let api_url = std::env::var("AIUTA_API_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let try_on_url = format!("{}/digital-try-on/v1", api_url.trim_end_matches('/'));
    println!("Aiuta try-on on the real API at {try_on_url}");
    let transcript = Transcript::default();
    let client = traced_client(auth, &transcript);
    TryOn::new(&client, &transcript, try_on_url, REAL_POLL_INTERVAL)
        .run(&photo, mime, &sku_id)
        .await?;
    println!(
        "\nJWTs fetched from the backend: {}",
        transcript.distinct_bearers()
    );
    Ok(())
}

fn required_var(name: &str) -> BoxResult<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("{name} is not set; the real-API mode needs it").into()),
    }
}

fn traced_client(auth: AiutaAuthMiddleware, transcript: &Transcript) -> ClientWithMiddleware {
    // A redirect to another origin would carry x-api-key or x-user-id along: refuse it.
    let http = reqwest::Client::builder()
        .redirect(reqwest_aiuta_auth::redirect::same_origin())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a client with a timeout builds");
    // The transcript comes after the auth middleware, so it sees the headers that were sent.
    ClientBuilder::new(http)
        .with(auth)
        .with(transcript.clone())
        .build()
}

/// The three calls of a try-on, each printed with what it carried.
struct TryOn<'a> {
    client: &'a ClientWithMiddleware,
    transcript: &'a Transcript,
    base: String,
    poll_interval: Duration,
}

impl<'a> TryOn<'a> {
    fn new(
        client: &'a ClientWithMiddleware,
        transcript: &'a Transcript,
        base: String,
        poll_interval: Duration,
    ) -> Self {
        TryOn {
            client,
            transcript,
            base,
            poll_interval,
        }
    }

    /// Runs the flow and returns the uploaded image's id.
    async fn run(&self, photo: &[u8], mime: &str, sku_id: &str) -> BoxResult<String> {
        let part = reqwest::multipart::Part::bytes(photo.to_vec())
            .file_name("photo")
            .mime_str(mime)?;
        let form = reqwest::multipart::Form::new().part("image_data", part);
        let upload = self
            .client
            .post(format!("{}/uploaded_images", self.base))
            .multipart(form);
        let image = self.call(upload).await?;
        let image_id = string_field(&image, "id")?;
        self.transcript
            .print(&format!("image {}", short(&image_id)));

        let start = self
            .client
            .post(format!("{}/sku_images_operations", self.base))
            .json(&json!({ "uploaded_image_id": image_id, "sku_id": sku_id }));
        let operation = self.call(start).await?;
        let operation_id = string_field(&operation, "operation_id")?;
        self.transcript
            .print(&format!("operation {}", short(&operation_id)));

        for _ in 0..MAX_POLLS {
            let poll = self.client.get(format!(
                "{}/sku_images_operations/{operation_id}",
                self.base
            ));
            let state = self.call(poll).await?;
            let status = string_field(&state, "status")?;
            let images = state["generated_images"].as_array().map_or(0, Vec::len);
            match status.as_str() {
                "SUCCESS" if images > 0 => {
                    self.transcript
                        .print(&format!("SUCCESS, {images} generated image(s)"));
                    return Ok(image_id);
                }
                "SUCCESS" => return Err("the try-on succeeded without an image".into()),
                "FAILED" | "CANCELLED" | "ABORTED" => {
                    let why = &state["abort_reason"];
                    self.transcript.print(&status);
                    return Err(
                        format!("the try-on ended {status} ({why}, {})", state["error"]).into(),
                    );
                }
                _ => self.transcript.print(&status),
            }
            tokio::time::sleep(self.poll_interval).await;
        }
        Err(format!("the try-on did not finish within {MAX_POLLS} polls").into())
    }

    /// Sends `request` and returns its JSON answer; any status but 200 is an error.
    async fn call(&self, request: reqwest_middleware::RequestBuilder) -> BoxResult<Value> {
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != reqwest::StatusCode::OK {
            self.transcript.print("");
            return Err(format!("the API answered {status}: {body}").into());
        }
        Ok(body)
    }
}

fn string_field(body: &Value, name: &str) -> BoxResult<String> {
    match body.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        _ => Err(format!("the answer has no {name}: {body}").into()),
    }
}

/// An id shortened for the transcript: its kind (the part before the first `-`) and its last
/// characters, as in `sku_images_op-…0002`.
fn short(id: &str) -> String {
    const LONG: usize = 24;
    const TAIL: usize = 4;
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= LONG {
        return id.to_owned();
    }
    let kind_end = chars
        .iter()
        .position(|c| *c == '-')
        .filter(|end| *end < LONG - TAIL);
    let head: String = chars[..kind_end.map_or(LONG / 2, |end| end + 1)]
        .iter()
        .collect();
    let tail: String = chars[chars.len() - TAIL..].iter().collect();
    format!("{head}…{tail}")
}

/// Fails the example with `message` unless `condition` holds.
fn ensure(condition: bool, message: impl Into<String>) -> BoxResult<()> {
    match condition {
        true => Ok(()),
        false => Err(message.into().into()),
    }
}

/// Runs the try-on flow on `emulator` through `auth`, then checks the emulator's record of it
/// with `expected`. Returns the uploaded image's id and what the client sent.
async fn try_on_emulator(
    emulator: &AiutaEmulator,
    auth: AiutaAuthMiddleware,
    expected: impl Fn(&reqwest_aiuta_auth::testing::Received) -> bool,
) -> BoxResult<(String, Transcript)> {
    let transcript = Transcript::default();
    let client = traced_client(auth, &transcript);
    let flow = TryOn::new(
        &client,
        &transcript,
        emulator.try_on_url(),
        EMULATOR_POLL_INTERVAL,
    );
    let uploaded_image_id = flow.run(PLACEHOLDER_PNG, "image/png", SKU_ID).await?;
    check_emulator_saw(emulator, &transcript, expected)?;
    Ok((uploaded_image_id, transcript))
}

/// Checks the emulator's own record of the flow: the same calls the client sent, every one
/// accepted, each carrying the credential header `expected` asks for.
fn check_emulator_saw(
    emulator: &AiutaEmulator,
    transcript: &Transcript,
    expected: impl Fn(&reqwest_aiuta_auth::testing::Received) -> bool,
) -> BoxResult<()> {
    let received = emulator.received();
    ensure(
        received.len() == transcript.len(),
        format!(
            "the client sent {} calls, the emulator got {}",
            transcript.len(),
            received.len()
        ),
    )?;
    for call in &received {
        ensure(
            call.status == reqwest::StatusCode::OK,
            format!(
                "{} {} got {} ({:?})",
                call.method, call.path, call.status, call.rejection
            ),
        )?;
        ensure(
            expected(call),
            format!(
                "{} {} carried {:?}",
                call.method, call.path, call.credentials
            ),
        )?;
    }
    Ok(())
}

/// What one call carried, as the transcript shows it.
struct Line {
    method: String,
    path: String,
    requirement: AuthRequirement,
    credential: String,
    status: u16,
}

/// The last middleware of the chain: notes each call with its credential header, redacted.
#[derive(Clone, Default)]
struct Transcript {
    pending: Arc<Mutex<Vec<Line>>>,
    calls: Arc<Mutex<usize>>,
    /// Hashes, never the tokens: enough to count how many distinct JWTs were sent.
    bearers: Arc<Mutex<HashSet<u64>>>,
}

impl Transcript {
    /// Prints the calls noted since the last print; `note` goes after the last one.
    fn print(&self, note: &str) {
        let lines: Vec<Line> = std::mem::take(&mut *self.pending.lock().unwrap());
        let count = lines.len();
        for (index, line) in lines.into_iter().enumerate() {
            let note = if index + 1 == count { note } else { "" };
            let requirement = match line.requirement {
                AuthRequirement::Mandatory => "mandatory",
                AuthRequirement::Optional => "optional",
            };
            let text = format!(
                "  {:<4} {:<42}  {:<9}  {:<37}  {}  {}",
                line.method, line.path, requirement, line.credential, line.status, note
            );
            println!("{}", text.trim_end());
        }
    }

    fn len(&self) -> usize {
        *self.calls.lock().unwrap()
    }

    fn distinct_bearers(&self) -> usize {
        self.bearers.lock().unwrap().len()
    }

    /// The credential header of `headers`, its value cut to a few characters.
    fn credential(&self, headers: &http::HeaderMap) -> String {
        for header in CredentialHeader::ALL {
            let Some(value) = headers.get(header.name()) else {
                continue;
            };
            let value = value.to_str().unwrap_or("?");
            let (scheme, secret) = match value.strip_prefix("Bearer ") {
                Some(token) => {
                    let mut hasher = DefaultHasher::new();
                    token.hash(&mut hasher);
                    self.bearers.lock().unwrap().insert(hasher.finish());
                    ("Bearer ", token)
                }
                None => ("", value),
            };
            let shown: String = secret.chars().take(SHOWN_PREFIX).collect();
            return format!("{}: {scheme}{shown}…[redacted]", header.name());
        }
        "(no credential)".to_owned()
    }
}

#[async_trait::async_trait]
impl Middleware for Transcript {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let method = request.method().clone();
        let path = request.url().path();
        // The same rule the auth middleware applied: the request's extension, else the route.
        let requirement = extensions
            .get::<AuthRequirement>()
            .copied()
            .unwrap_or_else(|| AuthRequirement::infer(&method, path));
        let shown_path = path.split('/').map(short).collect::<Vec<_>>().join("/");
        let shown_path = shown_path
            .strip_prefix("/digital-try-on/v1")
            .unwrap_or(&shown_path)
            .to_owned();
        let credential = self.credential(request.headers());
        let response = next.run(request, extensions).await?;
        *self.calls.lock().unwrap() += 1;
        self.pending.lock().unwrap().push(Line {
            method: method.to_string(),
            path: shown_path,
            requirement,
            credential,
            status: response.status().as_u16(),
        });
        Ok(response)
    }
}
