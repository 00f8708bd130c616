//! What the emulator keeps of each call it received.

use http::{HeaderMap, Method, StatusCode};

use crate::{AuthRequirement, JwtParams};

/// A header that carries an Aiuta credential. The emulator records which of them a call
/// carried, never their values.
///
/// ```
/// use reqwest_aiuta_auth::testing::CredentialHeader;
///
/// assert_eq!(CredentialHeader::ApiKey.name(), "x-api-key");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialHeader {
    /// `x-api-key`: the API key (API-key scheme, every call).
    ApiKey,
    /// `authorization`: a bearer JWT (JWT scheme, mandatory calls), or any other scheme.
    Authorization,
    /// `x-user-id`: the subscription id (JWT scheme, optional calls).
    UserId,
}

impl CredentialHeader {
    /// Every credential header, in the order [`Received::credentials`] lists them.
    pub const ALL: [CredentialHeader; 3] = [
        CredentialHeader::ApiKey,
        CredentialHeader::Authorization,
        CredentialHeader::UserId,
    ];

    /// The header's name, in lower case as HTTP/2 writes it.
    pub fn name(self) -> &'static str {
        match self {
            CredentialHeader::ApiKey => "x-api-key",
            CredentialHeader::Authorization => "authorization",
            CredentialHeader::UserId => "x-user-id",
        }
    }

    pub(super) fn present_in(headers: &HeaderMap) -> Vec<CredentialHeader> {
        Self::ALL
            .into_iter()
            .filter(|header| headers.contains_key(header.name()))
            .collect()
    }
}

/// One call that reached the emulated Aiuta API, as [`AiutaEmulator::received`] reports it.
///
/// It holds no secret: which credential headers were present, not what they held.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use reqwest_aiuta_auth::AuthRequirement;
/// use reqwest_aiuta_auth::testing::{AiutaEmulator, CredentialHeader};
///
/// let emulator = AiutaEmulator::api_key("test-api-key").start().await?;
/// let models = format!("{}/predefined_try_on_models", emulator.try_on_url());
/// reqwest::Client::new().get(models).send().await?;
///
/// let call = &emulator.received()[0];
/// assert_eq!(call.path, "/digital-try-on/v1/predefined_try_on_models");
/// assert_eq!(call.requirement, AuthRequirement::Optional);
/// assert!(call.credentials.is_empty());
/// assert_eq!(call.status, 401);
/// assert!(!call.carried(CredentialHeader::ApiKey));
/// # Ok(())
/// # }
/// ```
///
/// [`AiutaEmulator::received`]: super::AiutaEmulator::received
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Received {
    /// The call's method.
    pub method: Method,
    /// The call's path, without the query string.
    pub path: String,
    /// The level Aiuta applies to the call (see [`AuthRequirement::infer`]).
    pub requirement: AuthRequirement,
    /// The credential headers the call carried, in the order of [`CredentialHeader::ALL`].
    pub credentials: Vec<CredentialHeader>,
    /// The call's parameters: its query pairs and the top-level fields of a JSON object body.
    pub params: JwtParams,
    /// The status the emulator answered.
    pub status: StatusCode,
    /// Why the emulator answered 401 (the `detail` of its body); `None` for any other status.
    pub rejection: Option<String>,
}

impl Received {
    /// Whether the call carried `header`.
    pub fn carried(&self, header: CredentialHeader) -> bool {
        self.credentials.contains(&header)
    }
}
