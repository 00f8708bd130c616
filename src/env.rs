//! Configuring the middleware from environment variables.

use std::env::VarError;

use crate::{AiutaAuthMiddleware, ApiKeyAuth, AuthError, HttpJwtProvider, JwtAuth};

const API_KEY: &str = "AIUTA_API_KEY";
const SUBSCRIPTION_ID: &str = "AIUTA_SUBSCRIPTION_ID";
const JWT_URL: &str = "AIUTA_JWT_URL";
const API_URL: &str = "AIUTA_API_URL";

impl AiutaAuthMiddleware {
    /// The middleware that the environment describes.
    ///
    /// - `AIUTA_API_KEY` set: the API-key scheme with that key.
    /// - otherwise `AIUTA_SUBSCRIPTION_ID` and `AIUTA_JWT_URL` set: the JWT scheme, with an
    ///   [`HttpJwtProvider`] posting to that URL.
    /// - `AIUTA_API_URL` (optional), such as `https://api.dev.aiuta.com`: its host is allowed
    ///   too, beside [`DEFAULT_ALLOWED_HOST`](crate::DEFAULT_ALLOWED_HOST).
    ///
    /// A variable set to the empty string counts as not set. A missing or unusable variable is
    /// [`AuthError::InvalidConfig`] whose `setting` is the variable's name.
    ///
    /// ```no_run
    /// use reqwest_aiuta_auth::{AiutaAuthMiddleware, AuthError};
    ///
    /// match AiutaAuthMiddleware::from_env() {
    ///     Ok(auth) => println!("configured: {auth:?}"),
    ///     Err(AuthError::InvalidConfig { setting, problem }) => eprintln!("{setting} {problem}"),
    ///     Err(other) => eprintln!("{other}"),
    /// }
    /// ```
    pub fn from_env() -> Result<Self, AuthError> {
        from_lookup(|name| std::env::var(name))
    }
}

/// [`AiutaAuthMiddleware::from_env`] over any lookup with the signature of `std::env::var`, so
/// that tests need not touch the process environment.
pub(crate) fn from_lookup(
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<AiutaAuthMiddleware, AuthError> {
    let var = |name: &'static str| match lookup(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(AuthError::config(name, "is not valid UTF-8")),
    };
    let in_var = |name: &'static str| {
        move |error: AuthError| AuthError::config(name, format!("is unusable: {error}"))
    };

    let mut builder = if let Some(key) = var(API_KEY)? {
        AiutaAuthMiddleware::builder(ApiKeyAuth::new(key).map_err(in_var(API_KEY))?)
    } else {
        let subscription_id = var(SUBSCRIPTION_ID)?;
        let jwt_url = var(JWT_URL)?;
        let (subscription_id, jwt_url) = match (subscription_id, jwt_url) {
            (Some(id), Some(url)) => (id, url),
            (None, None) => {
                return Err(AuthError::config(
                    API_KEY,
                    format!("is not set, nor are {SUBSCRIPTION_ID} and {JWT_URL} (JWT scheme)"),
                ));
            }
            (Some(_), None) => {
                return Err(AuthError::config(
                    JWT_URL,
                    format!("is not set; the JWT scheme needs it beside {SUBSCRIPTION_ID}"),
                ));
            }
            (None, Some(_)) => {
                return Err(AuthError::config(
                    SUBSCRIPTION_ID,
                    format!("is not set; the JWT scheme needs it beside {JWT_URL}"),
                ));
            }
        };
        let provider = HttpJwtProvider::new(&jwt_url).map_err(in_var(JWT_URL))?;
        let auth = JwtAuth::new(subscription_id, provider).map_err(in_var(SUBSCRIPTION_ID))?;
        AiutaAuthMiddleware::builder(auth)
    };
    if let Some(api_url) = var(API_URL)? {
        let url = url::Url::parse(&api_url)
            .map_err(|e| AuthError::config(API_URL, format!("is not a URL ({e})")))?;
        let host = url
            .host_str()
            .ok_or_else(|| AuthError::config(API_URL, "has no host"))?;
        builder = builder.allow_host(host);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<AiutaAuthMiddleware, AuthError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(|name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    fn setting(result: Result<AiutaAuthMiddleware, AuthError>) -> &'static str {
        match result {
            Err(AuthError::InvalidConfig { setting, .. }) => setting,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_missing_variable() {
        assert_eq!(setting(from(&[])), API_KEY);
        assert_eq!(setting(from(&[(API_KEY, "")])), API_KEY);
        assert_eq!(setting(from(&[(SUBSCRIPTION_ID, "sub_1")])), JWT_URL);
        assert_eq!(
            setting(from(&[(JWT_URL, "https://shop.example.com/jwt")])),
            SUBSCRIPTION_ID
        );
        let error = from(&[]).unwrap_err().to_string();
        assert!(
            error.contains(SUBSCRIPTION_ID) && error.contains(JWT_URL),
            "{error}"
        );
    }

    #[test]
    fn unusable_values_name_their_variable_without_showing_them() {
        let bad_key = from(&[(API_KEY, " key-with-spaces ")]);
        let message = format!("{bad_key:?}");
        assert!(!message.contains("key-with-spaces"), "{message}");
        assert_eq!(setting(bad_key), API_KEY);
        let bad_url = [(SUBSCRIPTION_ID, "sub_1"), (JWT_URL, "not a url")];
        assert_eq!(setting(from(&bad_url)), JWT_URL);
        let bad_id = [
            (SUBSCRIPTION_ID, "sub\n1"),
            (JWT_URL, "https://shop.example.com/jwt"),
        ];
        assert_eq!(setting(from(&bad_id)), SUBSCRIPTION_ID);
        assert_eq!(setting(from(&[(API_KEY, "k"), (API_URL, "nope")])), API_URL);
        let not_unicode = from_lookup(|_| Err(VarError::NotUnicode(OsString::from("x"))));
        assert_eq!(setting(not_unicode), API_KEY);
    }

    #[test]
    fn picks_the_scheme_and_allows_the_api_host() {
        let jwt = [
            (SUBSCRIPTION_ID, "sub_1"),
            (JWT_URL, "https://shop.example.com/jwt"),
        ];
        assert!(from(&jwt).is_ok());
        let both = [(API_KEY, "k"), (SUBSCRIPTION_ID, "sub_1")];
        assert!(
            from(&both).is_ok(),
            "the API key wins over an incomplete JWT setup"
        );
        let dev = from(&[(API_KEY, "k"), (API_URL, "https://api.dev.aiuta.com/v1")]).unwrap();
        let debug = format!("{dev:?}");
        assert!(debug.contains("\"api.dev.aiuta.com\""), "{debug}");
        assert!(debug.contains("\"api.aiuta.com\""), "{debug}");
    }
}
