//! What the benchmarks share: the request paths they time, the "by hand" chains they compare
//! against, a terminal middleware that answers without the network, and token makers.

// Each bench binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Extensions, HeaderName, HeaderValue, Method};
use reqwest::{Request, Response, ResponseBuilderExt, Url};
use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth, JwtAuth, JwtParams};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next, RequestBuilder};

pub const API_KEY: &str = "bench-api-key-5f2d8c31a9e04b7f";
pub const SUBSCRIPTION_ID: &str = "66ec1726e728c1405e5ebca2";

/// A start-try-on body of about 200 bytes, the shape of Aiuta's `sku_images_operations` call.
pub const TRY_ON_BODY: &str = concat!(
    r#"{"uploaded_image_id":"img_8f14e45fceea167a5a36dedd4bea2543","sku_id":"sku_7b0a91c2","#,
    r#""sku_catalog_name":"spring-collection-2025","background":"studio-grey","#,
    r#""image_count":2,"aspect_ratio":"3:4","seed":1234567}"#
);

const START_TRY_ON: &str = "/digital-try-on/v1/sku_images_operations";
const POLL_TRY_ON: &str = "/digital-try-on/v1/sku_images_operations/op_5b1e";
const PRODUCT_IMAGE: &str = "/images/sku_7b0a91c2.jpg";

/// Whether the run was asked for a first look (`-- --quick`, as criterion spells it).
pub fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// Whether criterion was started only to list, smoke-test or profile the benchmarks, when the
/// summary passes that follow it would be in the way.
pub fn listing_or_testing() -> bool {
    std::env::args().any(|arg| matches!(arg.as_str(), "--list" | "--test" | "--profile-time"))
}

/// A compact JWS whose `exp` is an hour away, so that the cache keeps it; `tag` makes it unique.
pub fn jwt(tag: u64) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(3600);
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = format!(r#"{{"sub":"{SUBSCRIPTION_ID}","exp":{}}}"#, exp.as_secs());
    let payload = URL_SAFE_NO_PAD.encode(claims);
    let signature = URL_SAFE_NO_PAD.encode(format!("signature-{tag:016x}"));
    format!("{header}.{payload}.{signature}")
}

/// A provider that answers at once, always with the same token.
pub fn instant_provider(
    token: String,
) -> impl Fn(JwtParams) -> Ready<Result<String, Infallible>> + Send + Sync + 'static {
    move |_params| ready(Ok(token.clone()))
}

/// The last link of a chain: answers 200 at once, from the request's URL as a server would,
/// never touching the network.
pub struct Answer;

#[async_trait::async_trait]
impl Middleware for Answer {
    async fn handle(
        &self,
        request: Request,
        _extensions: &mut Extensions,
        _next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        std::hint::black_box(request.headers().len());
        let answer = http::Response::builder()
            .url(request.url().clone())
            .body(reqwest::Body::from(""))
            .unwrap();
        Ok(Response::from(answer))
    }
}

/// The baseline: the header a caller would set himself, or nothing (for calls that need none).
pub struct ByHand(pub Option<(HeaderName, HeaderValue)>);

#[async_trait::async_trait]
impl Middleware for ByHand {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if let Some((name, value)) = &self.0 {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        next.run(request, extensions).await
    }
}

/// The kinds of request whose cost the benchmarks compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// API-key scheme, a poll (`x-api-key`).
    ApiKey,
    /// JWT scheme, an optional call (`x-user-id`).
    JwtOptional,
    /// JWT scheme, a try-on start with a ~200-byte body, its token cached (`Authorization`).
    JwtMandatory,
    /// The same with `retry_unauthorized(false)`: no copy of the request kept for a retry.
    JwtMandatoryNoRetry,
    /// A request without an `AuthRequirement` to a host off the allow-list: passes untouched.
    OffList,
}

impl Path {
    pub const ALL: [Path; 5] = [
        Path::ApiKey,
        Path::JwtOptional,
        Path::JwtMandatory,
        Path::JwtMandatoryNoRetry,
        Path::OffList,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Path::ApiKey => "api_key",
            Path::JwtOptional => "jwt_optional",
            Path::JwtMandatory => "jwt_mandatory_cached",
            Path::JwtMandatoryNoRetry => "jwt_mandatory_no_retry",
            Path::OffList => "off_list_host",
        }
    }

    /// The middleware for this path; `extra_host` is allowed besides `api.aiuta.com` (for a
    /// loopback server), except on the off-list path, whose host must stay off the list.
    pub fn middleware(self, extra_host: Option<&str>, token: &str) -> AiutaAuthMiddleware {
        let jwt = || JwtAuth::new(SUBSCRIPTION_ID, instant_provider(token.to_owned())).unwrap();
        let builder = match self {
            Path::ApiKey => AiutaAuthMiddleware::builder(ApiKeyAuth::new(API_KEY).unwrap()),
            Path::JwtOptional | Path::JwtMandatory | Path::OffList => {
                AiutaAuthMiddleware::builder(jwt())
            }
            Path::JwtMandatoryNoRetry => {
                AiutaAuthMiddleware::builder(jwt()).retry_unauthorized(false)
            }
        };
        match (self, extra_host) {
            (Path::OffList, _) | (_, None) => builder.build(),
            (_, Some(host)) => builder.allow_host(host).build(),
        }
    }

    /// The header a caller would set by hand on this path.
    pub fn by_hand(self, token: &str) -> ByHand {
        let header = |name, value: String| {
            let mut value = HeaderValue::try_from(value).unwrap();
            value.set_sensitive(true);
            Some((name, value))
        };
        ByHand(match self {
            Path::ApiKey => header(HeaderName::from_static("x-api-key"), API_KEY.into()),
            Path::JwtOptional => {
                header(HeaderName::from_static("x-user-id"), SUBSCRIPTION_ID.into())
            }
            Path::JwtMandatory | Path::JwtMandatoryNoRetry => {
                header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            }
            Path::OffList => None,
        })
    }

    /// The URL of this path's request; `base` is the scheme and authority of the API.
    pub fn url(self, base: &str) -> Url {
        let url = match self {
            Path::ApiKey | Path::JwtOptional => format!("{base}{POLL_TRY_ON}"),
            Path::JwtMandatory | Path::JwtMandatoryNoRetry => format!("{base}{START_TRY_ON}"),
            Path::OffList => format!("{base}{PRODUCT_IMAGE}"),
        };
        url.parse().unwrap()
    }

    /// The request, unmarked: its requirement comes from Aiuta's routes.
    pub fn request(self, client: &ClientWithMiddleware, url: &Url) -> RequestBuilder {
        match self {
            Path::JwtMandatory | Path::JwtMandatoryNoRetry => client
                .request(Method::POST, url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(TRY_ON_BODY),
            Path::ApiKey | Path::JwtOptional | Path::OffList => {
                client.request(Method::GET, url.clone())
            }
        }
    }
}

/// `client` with `middleware` in front of `last`.
pub fn chain(
    client: reqwest::Client,
    middleware: impl Middleware,
    last: Option<Answer>,
) -> ClientWithMiddleware {
    let builder = ClientBuilder::new(client).with(middleware);
    match last {
        Some(answer) => builder.with(answer).build(),
        None => builder.build(),
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// The verdict on a goal, from the medians over rounds and from the fastest rounds: on a shared
/// box the load of other processes slows every round (the baseline's too) by up to twice, and
/// the fastest rounds are the ones it disturbed least.
pub fn verdict(median_met: bool, fastest_met: bool) -> &'static str {
    match (median_met, fastest_met) {
        (true, _) => "met",
        (false, true) => "met in the fastest rounds",
        (false, false) => "MISSED",
    }
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// What `AIUTA_BENCH_PROFILE=<path>/<by_hand|middleware>:<requests>` asks for: one chain, sent
/// that many requests, for a profiler to watch.
pub struct ProfileSpec {
    pub name: String,
    pub path: Path,
    pub middleware: bool,
    pub requests: u64,
}

impl ProfileSpec {
    /// Parses the variable's value; panics with the expected form when it does not fit.
    pub fn parse(spec: &str) -> Self {
        let usage = "AIUTA_BENCH_PROFILE=<path>/<by_hand|middleware>:<requests>";
        let (name, count) = spec.rsplit_once(':').expect(usage);
        let (path, variant) = name.split_once('/').expect(usage);
        let path = Path::ALL
            .into_iter()
            .find(|p| p.name() == path)
            .expect(usage);
        let middleware = match variant {
            "by_hand" => false,
            "middleware" => true,
            _ => panic!("{usage}"),
        };
        ProfileSpec {
            name: name.to_owned(),
            path,
            middleware,
            requests: count.parse().expect(usage),
        }
    }
}
