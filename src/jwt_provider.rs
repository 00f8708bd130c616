use std::fmt;
use std::future::Future;

use crate::claims::check_compact_jws;
use crate::{AuthError, BoxError, JwtParams};

/// Fetches the JWT for one mandatory call from the customer's backend.
///
/// [`HttpJwtProvider`] does it over HTTP; any async closure
/// `Fn(JwtParams) -> impl Future<Output = Result<String, E>>` is a provider too:
///
/// ```
/// use reqwest_aiuta_auth::{JwtAuth, JwtParams};
///
/// let provider = |params: JwtParams| async move {
///     // Ask your backend to sign `params` here.
///     Ok::<_, std::io::Error>(format!("eyJhbGciOiJIUzI1NiJ9.e30.{}", params.len()))
/// };
/// let auth = JwtAuth::new("66ec1726e728c1405e5ebca2", provider)?;
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
///
/// An error returned here fails the calls that waited on this fetch; an [`AuthError`] boxed into
/// the [`BoxError`] reaches the caller as it is, anything else as [`AuthError::JwtProvider`].
#[async_trait::async_trait]
pub trait JwtProvider: Send + Sync + 'static {
    /// A JWT signed over `params`, in compact form (`header.payload.signature`).
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError>;
}

#[async_trait::async_trait]
impl<F, Fut, E> JwtProvider for F
where
    F: Fn(JwtParams) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send,
    E: Into<BoxError>,
{
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        self(params.clone()).await.map_err(Into::into)
    }
}

/// The most a JWT backend's answer may weigh; a larger one is an error, not a read without end.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A [`JwtProvider`] that asks the customer's backend over HTTP.
///
/// It `POST`s the call's [`JwtParams`] as a JSON object to the backend and reads the token from
/// its answer: Aiuta's documented `{"type": "jwt", "token": "<jwt>"}`, any JSON object with a
/// `token` field, or a plain-text body that is itself a compact JWS.
///
/// Errors name the status and a reason but never the backend's URL (its query could hold a
/// secret of yours) nor its body.
///
/// A non-2xx answer, an unreadable one, one over 64 KiB or one without a token is
/// [`AuthError::JwtProvider`] (with the status and a short reason, never the body); a token that
/// is not a compact JWS is [`AuthError::InvalidJwt`].
///
/// ```
/// use std::time::Duration;
/// use reqwest_aiuta_auth::{HttpJwtProvider, JwtAuth};
///
/// let backend = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
/// let provider = HttpJwtProvider::new("https://shop.example.com/aiuta_jwt")?.with_client(backend);
/// let auth = JwtAuth::new("66ec1726e728c1405e5ebca2", provider)?;
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct HttpJwtProvider {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl HttpJwtProvider {
    /// A provider that posts to `url`, which must be an absolute `http` or `https` URL.
    pub fn new(url: &str) -> Result<Self, AuthError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| AuthError::config("JWT backend URL", format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AuthError::config(
                "JWT backend URL",
                "must be http or https",
            ));
        }
        Ok(HttpJwtProvider {
            url,
            client: reqwest::Client::new(),
        })
    }

    /// Sends through `client`, so that TLS, proxies and timeouts are the caller's.
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    async fn read_answer(&self, mut response: reqwest::Response) -> Result<Vec<u8>, AuthError> {
        let unreadable = |e: reqwest::Error| {
            AuthError::provider(
                "the JWT backend's answer could not be read",
                Some(e.without_url().into()),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(AuthError::provider(
                "the JWT backend's answer is over 64 KiB",
                None,
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreadable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(AuthError::provider(
                    "the JWT backend's answer is over 64 KiB",
                    None,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl JwtProvider for HttpJwtProvider {
    async fn fetch_jwt(&self, params: &JwtParams) -> Result<String, BoxError> {
        let body = serde_json::to_vec(params)?;
        let response = self
            .client
            .post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, text/plain")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                AuthError::provider(
                    "the JWT backend could not be reached",
                    Some(e.without_url().into()),
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(
                AuthError::provider(format!("the JWT backend answered {status}"), None).into(),
            );
        }
        let answer = self.read_answer(response).await?;
        Ok(token_from_answer(&answer)?)
    }
}

/// Takes the token out of a JWT backend's answer.
fn token_from_answer(answer: &[u8]) -> Result<String, AuthError> {
    let no_token = || AuthError::provider("the JWT backend's answer holds no token", None);
    let text = std::str::from_utf8(answer)
        .map_err(|_| AuthError::provider("the JWT backend's answer is not UTF-8", None))?
        .trim();
    let token = if text.starts_with('{') {
        let fields = crate::params::json_object(text.as_bytes()).ok_or_else(|| {
            AuthError::provider("the JWT backend's answer is not valid JSON", None)
        })?;
        match fields.get("token") {
            Some(serde_json::Value::String(token)) => token.clone(),
            _ => return Err(no_token()),
        }
    } else if text.is_empty() {
        return Err(no_token());
    } else {
        text.to_owned()
    };
    check_compact_jws(&token)?;
    Ok(token)
}

impl fmt::Debug for HttpJwtProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query string could carry a secret of the customer's; show the rest.
        let host = self.url.host_str().unwrap_or_default();
        let endpoint = format!("{}://{}{}", self.url.scheme(), host, self.url.path());
        f.debug_struct("HttpJwtProvider")
            .field("endpoint", &endpoint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_shapes() {
        let jwt = "aaa.bbb.ccc";
        let documented = format!(r#"{{"type":"jwt","token":"{jwt}"}}"#);
        assert_eq!(token_from_answer(documented.as_bytes()).unwrap(), jwt);
        assert_eq!(token_from_answer(b" aaa.bbb.ccc\n").unwrap(), jwt);
        assert!(matches!(
            token_from_answer(br#"{"type":"jwt"}"#),
            Err(AuthError::JwtProvider { .. })
        ));
        assert!(matches!(
            token_from_answer(br#"{"token":"nope"}"#),
            Err(AuthError::InvalidJwt { .. })
        ));
        assert!(matches!(
            token_from_answer(b"{oops"),
            Err(AuthError::JwtProvider { .. })
        ));
        assert!(matches!(
            token_from_answer(b""),
            Err(AuthError::JwtProvider { .. })
        ));
    }
}
