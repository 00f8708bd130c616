//! The emulator's side of Aiuta's auth: which credential a call must carry, and whether the
//! one it carried will do.

use std::fmt;

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::mint::REGISTERED_CLAIMS;
use crate::{AuthRequirement, JwtParams};

/// Seconds of grace after a token's `exp`: none, as PyJWT (which Aiuta's backend example uses)
/// grants by default, so an expired token fails at once.
const EXPIRY_LEEWAY_SECS: u64 = 0;

/// The subscription the emulator plays, and its secrets.
pub(super) enum Scheme {
    ApiKey {
        key: SecretString,
    },
    Jwt {
        subscription_id: String,
        issuer: String,
        secret: SecretString,
    },
}

impl Scheme {
    /// `Ok` when the credential that `headers` carry will do for a call at `requirement` with
    /// parameters `call`; otherwise why not, as the `detail` of a 401. Never a credential's value.
    pub(super) fn check(
        &self,
        requirement: AuthRequirement,
        headers: &HeaderMap,
        call: &JwtParams,
    ) -> Result<(), String> {
        match self {
            Scheme::ApiKey { key } => match headers.get("x-api-key") {
                None => Err("Missing x-api-key header".into()),
                Some(sent) if sent.as_bytes() == key.expose_secret().as_bytes() => Ok(()),
                Some(_) => Err("Invalid API key".into()),
            },
            Scheme::Jwt {
                subscription_id,
                issuer,
                secret,
            } => {
                let bearer = bearer_token(headers)?;
                match requirement {
                    AuthRequirement::Optional => {
                        if let Some(token) = bearer {
                            return verify(token, issuer, secret).map(|_claims| ());
                        }
                        match headers.get("x-user-id") {
                            None => Err("Missing x-user-id header or bearer token".into()),
                            Some(id) if id.as_bytes() == subscription_id.as_bytes() => Ok(()),
                            Some(_) => Err("Unknown subscription id in x-user-id".into()),
                        }
                    }
                    AuthRequirement::Mandatory => {
                        let token =
                            bearer.ok_or("This call needs an Authorization: Bearer token")?;
                        let claims = verify(token, issuer, secret)?;
                        match unmatched_parameter(&claims, call) {
                            None => Ok(()),
                            Some(name) => Err(format!(
                                "Invalid token: it was signed for another {name} than this call's"
                            )),
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Debug for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::ApiKey { .. } => f
                .debug_struct("ApiKey")
                .field("key", &"[redacted]")
                .finish(),
            Scheme::Jwt {
                subscription_id,
                issuer,
                ..
            } => f
                .debug_struct("Jwt")
                .field("subscription_id", subscription_id)
                .field("issuer", issuer)
                .field("secret", &"[redacted]")
                .finish(),
        }
    }
}

/// The token of an `Authorization: Bearer` header, `None` without the header.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, String> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match token {
        Some(token) => Ok(Some(token)),
        None => Err("The Authorization header is not a bearer token".into()),
    }
}

/// The claims of `token` once its HS256 signature, issuer and expiry are checked.
fn verify(token: &str, issuer: &str, secret: &SecretString) -> Result<Map<String, Value>, String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = EXPIRY_LEEWAY_SECS;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    // An `aud` field is one more call parameter here, not an audience.
    validation.validate_aud = false;
    let key = DecodingKey::from_secret(secret.expose_secret().as_bytes())
        .map_err(|_| "Invalid token".to_owned())?;
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::ExpiredSignature => "Token has expired".into(),
            ErrorKind::InvalidSignature => "Invalid token: the signature does not match".into(),
            ErrorKind::InvalidIssuer => "Invalid token: unknown issuer".into(),
            ErrorKind::InvalidAlgorithm => "Invalid token: it must be signed with HS256".into(),
            ErrorKind::MissingRequiredClaim(claim) => format!("Invalid token: no {claim} claim"),
            _ => "Invalid token".into(),
        }),
    }
}

/// The first signed parameter (other than the registered claims) that the call does not carry
/// with the same value. A string claim also matches the string form of the call's field, which
/// is how Aiuta's SDKs sign a list of SKU ids.
fn unmatched_parameter<'c>(claims: &'c Map<String, Value>, call: &JwtParams) -> Option<&'c str> {
    claims
        .iter()
        .filter(|(name, _)| !REGISTERED_CLAIMS.contains(&name.as_str()))
        .find(|(name, signed)| {
            let same_json = call.json().get(name.as_str()) == Some(signed);
            let same_text = signed
                .as_str()
                .is_some_and(|text| call.get(name) == Some(text));
            !(same_json || same_text)
        })
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: Value) -> JwtParams {
        let Value::Object(map) = json else {
            unreachable!()
        };
        JwtParams::from(map)
    }

    #[test]
    fn signed_parameters_match_by_value_or_string_form() {
        let call = params(
            serde_json::json!({"uploaded_image_id": "img_1", "sku_ids": ["a", "b"], "n": 2}),
        );
        let claims = |json: Value| params(json).json().clone();
        let ok = claims(
            serde_json::json!({"uploaded_image_id": "img_1", "sku_ids": "a,b", "n": "2", "iss": "x", "exp": 1}),
        );
        assert_eq!(unmatched_parameter(&ok, &call), None);
        let as_json = claims(serde_json::json!({"sku_ids": ["a", "b"], "n": 2}));
        assert_eq!(unmatched_parameter(&as_json, &call), None);
        let other_order = claims(serde_json::json!({"sku_ids": ["b", "a"]}));
        assert_eq!(unmatched_parameter(&other_order, &call), Some("sku_ids"));
        let absent = claims(serde_json::json!({"sku_id": "a"}));
        assert_eq!(unmatched_parameter(&absent, &call), Some("sku_id"));
    }
}
