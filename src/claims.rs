//! Reading a JWT without verifying it: the crate never holds the secret that signed it, it only
//! needs to know the token's shape and when it expires.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::AuthError;

/// Tokens longer than this are refused: a JWT over a few call parameters is well under 1 KiB,
/// and the bound keeps the work done on a hostile token small.
pub(crate) const MAX_JWT_LEN: usize = 16 * 1024;

/// base64url that accepts the segment with or without `=` padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks that `token` is a compact JWS: three non-empty base64url segments joined by dots.
pub(crate) fn check_compact_jws(token: &str) -> Result<(), AuthError> {
    let invalid = |reason| Err(AuthError::InvalidJwt { reason });
    if token.is_empty() {
        return invalid("it is empty");
    }
    if token.len() > MAX_JWT_LEN {
        return invalid("it is longer than 16 KiB");
    }
    let mut segments = 0;
    for segment in token.split('.') {
        segments += 1;
        if segment.is_empty() {
            return invalid("a segment is empty");
        }
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if !segment.trim_end_matches('=').bytes().all(base64url) {
            return invalid("a segment is not base64url");
        }
    }
    if segments != 3 {
        return invalid("it does not have three dot-separated segments");
    }
    Ok(())
}

/// The `exp` claim of a JWT, read without verifying the signature.
///
/// `None` when the token is not a compact JWS, its payload is not a JSON object, or `exp` is
/// missing, negative or not a number. The work done is bounded by the token's length, which is
/// capped at 16 KiB.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// // {"alg":"HS256"} . {"exp":1700000000} . signature
/// let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln";
/// let exp = reqwest_aiuta_auth::unverified_expiry(jwt);
/// assert_eq!(exp, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
/// assert_eq!(reqwest_aiuta_auth::unverified_expiry("not a jwt"), None);
/// ```
pub fn unverified_expiry(jwt: &str) -> Option<SystemTime> {
    check_compact_jws(jwt).ok()?;
    let payload = jwt.split('.').nth(1)?;
    let bytes = BASE64URL.decode(payload).ok()?;
    // A derived struct would also accept a JSON array (`[1]` as `exp: 1`); a payload must be an
    // object.
    let claims = crate::params::json_object(&bytes)?;
    let serde_json::Value::Number(exp) = claims.get("exp")? else {
        return None;
    };
    let seconds = match exp.as_u64() {
        Some(whole) => Duration::from_secs(whole),
        None => Duration::try_from_secs_f64(exp.as_f64()?).ok()?,
    };
    SystemTime::UNIX_EPOCH.checked_add(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn compact_jws_shape() {
        assert!(check_compact_jws("a.b.c").is_ok());
        assert!(check_compact_jws("a-_.b=.c").is_ok());
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c\n",
            "a b.c.d",
            "a.b.c+",
            "Bearer a.b.c",
        ] {
            assert!(
                matches!(check_compact_jws(bad), Err(AuthError::InvalidJwt { .. })),
                "{bad:?}"
            );
        }
        assert!(check_compact_jws(&"a".repeat(MAX_JWT_LEN + 1)).is_err());
    }

    #[test]
    fn expiry_forms() {
        let token = |payload: &str| format!("{}.{}.sig", encode("{}"), encode(payload));
        let at = |secs| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(unverified_expiry(&token(r#"{"exp":10}"#)), at(10));
        assert_eq!(
            unverified_expiry(&token(r#"{"exp":10.9}"#)),
            at(10).map(|t| t + Duration::from_millis(900))
        );
        assert_eq!(unverified_expiry(&token(r#"{"exp":-1}"#)), None);
        assert_eq!(unverified_expiry(&token(r#"{"exp":"10"}"#)), None);
        assert_eq!(unverified_expiry(&token(r#"{"iat":10}"#)), None);
        assert_eq!(unverified_expiry(&token(r#"[1]"#)), None);
        assert_eq!(unverified_expiry(&token(r#"{"exp":1e400}"#)), None);
    }
}
