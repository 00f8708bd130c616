//! A redirect policy that keeps credentials on the origin they were meant for.
//!
//! reqwest follows redirects inside the client, below every middleware. When a hop leaves the
//! origin it drops `Authorization` and cookies, but it forwards every other header, so
//! `x-api-key` and `x-user-id` would reach whatever host a redirect names. [`same_origin`] stops
//! such a hop instead: the 3xx response comes back to the caller, and nothing is sent to the other
//! origin.
//!
//! ```
//! use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth, redirect};
//!
//! let http = reqwest::Client::builder()
//!     .redirect(redirect::same_origin())
//!     .build()
//!     .expect("a client");
//! let client = reqwest_middleware::ClientBuilder::new(http)
//!     .with(AiutaAuthMiddleware::new(ApiKeyAuth::new("my-aiuta-api-key")?))
//!     .build();
//! # Ok::<(), reqwest_aiuta_auth::AuthError>(())
//! ```

use std::fmt;

use reqwest::Url;
use reqwest::redirect::Policy;

/// How many redirects [`same_origin`] follows in one chain: reqwest's own default.
pub const MAX_REDIRECTS: usize = 10;

/// A redirect policy that follows at most [`MAX_REDIRECTS`] redirects, and only those that stay
/// on the origin (scheme, host and port) of the request.
///
/// A redirect to another origin is not followed: the client returns its 3xx response, so the
/// caller sees where the API wanted to send him and no credential header goes there. One more
/// redirect than the limit fails the request with a reqwest error for which
/// [`reqwest::Error::is_redirect`] is true, as reqwest's default policy does.
///
/// ```
/// use reqwest_aiuta_auth::redirect;
///
/// let client = reqwest::Client::builder()
///     .redirect(redirect::same_origin())
///     .build()
///     .expect("a client");
/// ```
pub fn same_origin() -> Policy {
    Policy::custom(|attempt| {
        // `previous` holds the request's URL and every URL followed since: this is redirect
        // number `previous.len()`.
        let previous = attempt.previous();
        if previous.len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        match previous.first() {
            Some(first) if is_same_origin(first, attempt.url()) => attempt.follow(),
            first => {
                tracing::debug!(
                    from = first.map(|url| tracing::field::display(OriginOf(url))),
                    to = %OriginOf(attempt.url()),
                    "cross-origin redirect not followed"
                );
                attempt.stop()
            }
        }
    })
}

/// Whether `a` and `b` share scheme, host and port (the port a scheme implies counts as given).
pub(crate) fn is_same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Displays a URL's origin, `scheme://host:port`: never its path, query or user info, which
/// may carry something private.
pub(crate) struct OriginOf<'a>(pub(crate) &'a Url);

impl fmt::Display for OriginOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        let host = url.host_str().unwrap_or_default();
        write_origin(f, url.scheme(), host, url.port_or_known_default())
    }
}

fn write_origin(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    host: &str,
    port: Option<u16>,
) -> fmt::Result {
    write!(f, "{scheme}://{host}")?;
    match port {
        Some(port) => write!(f, ":{port}"),
        None => Ok(()),
    }
}

/// The origin a request carrying a credential was sent to, kept for a look at its response
/// after the request itself has gone down the chain.
///
/// The host is borrowed from the middleware's allow-list entry that the request's host
/// matched, so keeping it costs no allocation and no second search.
pub(crate) struct SentTo<'a> {
    scheme: &'static str,
    host: &'a str,
    port: Option<u16>,
}

impl<'a> SentTo<'a> {
    /// `url`'s origin, if its scheme is http or https; `host` is `url`'s host, borrowed from
    /// the allow-list entry it matched.
    pub(crate) fn of(url: &Url, host: &'a str) -> Option<Self> {
        let scheme = match url.scheme() {
            "https" => "https",
            "http" => "http",
            _ => return None,
        };
        Some(SentTo {
            scheme,
            host,
            port: url.port_or_known_default(),
        })
    }

    /// Warns when `response` came from another origin: a redirect took the request, and its
    /// credential headers other than `Authorization`, somewhere else.
    pub(crate) fn check(&self, response: &reqwest::Response) {
        let url = response.url();
        let same = url.scheme() == self.scheme
            && url.host_str() == Some(self.host)
            && url.port_or_known_default() == self.port;
        if !same {
            tracing::warn!(
                sent_to = %self,
                answered_by = %OriginOf(url),
                "a redirect took a request with Aiuta credentials to another origin; \
                 build the client with reqwest_aiuta_auth::redirect::same_origin()"
            );
        }
    }
}

impl fmt::Display for SentTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_origin(f, self.scheme, self.host, self.port)
    }
}

/// The error a chain of more than [`MAX_REDIRECTS`] redirects fails with.
#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let url = |s: &str| Url::parse(s).unwrap();
        let api = url("https://api.aiuta.com/v1/a?x=1");
        assert!(is_same_origin(
            &api,
            &url("https://api.aiuta.com:443/other")
        ));
        assert!(!is_same_origin(&api, &url("http://api.aiuta.com/v1/a")));
        assert!(!is_same_origin(
            &api,
            &url("https://api.aiuta.com:8443/v1/a")
        ));
        assert!(!is_same_origin(&api, &url("https://evil.example/v1/a")));
        let shown = OriginOf(&url("http://user:pw@127.0.0.1:8080/p?key=secret")).to_string();
        assert_eq!(shown, "http://127.0.0.1:8080");
        assert_eq!(OriginOf(&api).to_string(), "https://api.aiuta.com:443");
    }
}
