use std::fmt;

use crate::credential::X_API_KEY;
use crate::{AuthError, AuthRequirement, Credential, CredentialSource};

/// Aiuta's API-key scheme: `x-api-key: <key>` on every call, mandatory or optional.
///
/// The key is static and meant for server-side integrations. It is checked once, here, and its
/// header value is kept marked sensitive; `Debug` never shows it.
///
/// ```
/// use reqwest_aiuta_auth::{AiutaAuthMiddleware, ApiKeyAuth};
///
/// let auth = AiutaAuthMiddleware::new(ApiKeyAuth::new("my-aiuta-api-key")?);
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(auth)
///     .build();
/// # Ok::<(), reqwest_aiuta_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct ApiKeyAuth {
    credential: Credential,
}

impl ApiKeyAuth {
    /// Checks the key (not empty, no white space around it, a valid header value).
    pub fn new(api_key: impl Into<String>) -> Result<Self, AuthError> {
        Ok(ApiKeyAuth {
            credential: Credential::api_key(api_key)?,
        })
    }

    /// The credential for `request`, always ready: none if the caller set the key himself.
    pub(crate) fn ready_credential(&self, request: &reqwest::Request) -> Credential {
        if request.headers().contains_key(X_API_KEY) {
            return Credential::none();
        }
        self.credential.clone()
    }
}

#[async_trait::async_trait]
impl CredentialSource for ApiKeyAuth {
    async fn credential(
        &self,
        _requirement: AuthRequirement,
        request: &reqwest::Request,
    ) -> Result<Credential, AuthError> {
        Ok(self.ready_credential(request))
    }
}

impl fmt::Debug for ApiKeyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("api_key", &"[redacted]")
            .finish()
    }
}
