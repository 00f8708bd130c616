//! `unverified_expiry` on arbitrary text, and on well-formed tokens around an arbitrary payload:
//! no panic, and an expiry only when the payload is a JSON object with a usable `exp`.
#![no_main]

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use reqwest_aiuta_auth::unverified_expiry;

fuzz_target!(|data: &[u8]| {
    let _ = unverified_expiry(&String::from_utf8_lossy(data));

    let jwt = format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(data));
    let got = unverified_expiry(&jwt);
    let expected = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data)
        .ok()
        .filter(|_| jwt.len() <= 16 * 1024)
        .and_then(|claims| match claims.get("exp")? {
            serde_json::Value::Number(exp) => Some(exp.clone()),
            _ => None,
        })
        .and_then(|exp| {
            let seconds = match exp.as_u64() {
                Some(whole) => Duration::from_secs(whole),
                None => Duration::try_from_secs_f64(exp.as_f64()?).ok()?,
            };
            SystemTime::UNIX_EPOCH.checked_add(seconds)
        });
    assert_eq!(got, expected);
});
