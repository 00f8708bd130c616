//! Bad input: property tests for the parameter extraction (`JwtParams::from_request`) and the
//! unverified claim reader (`unverified_expiry`). Arbitrary bytes, deep nesting, huge numbers,
//! invalid UTF-8 and odd base64 padding never panic, and every valid input gets the documented
//! result.

use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use reqwest_aiuta_auth::{JwtParams, unverified_expiry};
use serde_json::{Map, Value};

const URL: &str = "https://api.aiuta.com/digital-try-on/v1/sku_images_operations";
/// The claim reader refuses tokens longer than this (documented on `unverified_expiry`).
const MAX_JWT_LEN: usize = 16 * 1024;

fn request(query: Option<&str>, body: Option<Vec<u8>>) -> reqwest::Request {
    let mut url = reqwest::Url::parse(URL).unwrap();
    url.set_query(query);
    let mut request = reqwest::Request::new(http::Method::POST, url);
    *request.body_mut() = body.map(reqwest::Body::from);
    request
}

fn request_with_pairs(pairs: &[(String, String)], body: Option<Vec<u8>>) -> reqwest::Request {
    let mut url = reqwest::Url::parse(URL).unwrap();
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    let mut request = request(None, body);
    *request.url_mut() = url;
    request
}

/// The string form `JwtParams` documents: strings as they are, numbers and booleans as JSON
/// writes them, an array of scalars joined with `,`, anything else as compact JSON, `null` left
/// out.
fn documented_string_form(value: &Value) -> Option<String> {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(scalar) => {
            let parts: Vec<String> = items.iter().filter_map(documented_string_form).collect();
            Some(parts.join(","))
        }
        other => Some(other.to_string()),
    }
}

/// Checks everything `JwtParams` promises about its string view against its JSON view.
fn assert_consistent(params: &JwtParams) {
    let expected: Vec<(String, String)> = params
        .json()
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), documented_string_form(v)?)))
        .collect();
    let got: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(got, expected, "iter() is the string form, sorted by name");
    assert_eq!(params.len(), expected.len());
    assert_eq!(params.is_empty(), expected.is_empty());
    for (name, value) in &expected {
        assert_eq!(params.get(name), Some(value.as_str()));
    }
}

/// Query pairs, the last of a name winning, as JSON strings.
fn query_map(url: &reqwest::Url) -> Map<String, Value> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

/// JSON values whose text form reads back as the same value: floats are multiples of 1/1024, so
/// their shortest decimal form parses back exactly.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 1024.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any::<String>(), json_value(), 0..8)
        .prop_map(|fields| fields.into_iter().collect())
}

proptest! {
    #[test]
    fn extraction_never_panics_on_arbitrary_query_and_body(
        query in proptest::option::of(any::<String>()),
        body in proptest::option::of(prop::collection::vec(any::<u8>(), 0..2048)),
    ) {
        let request = request(query.as_deref(), body.clone());
        let params = JwtParams::from_request(&request);
        assert_consistent(&params);
        let mut expected = query_map(request.url());
        if let Some(Ok(fields)) = body.map(|b| serde_json::from_slice::<Map<String, Value>>(&b)) {
            expected.extend(fields);
        }
        prop_assert_eq!(params.json(), &expected);
    }

    #[test]
    fn a_json_object_body_round_trips_through_json(fields in json_object()) {
        let body = serde_json::to_vec(&fields).unwrap();
        let params = JwtParams::from_request(&request(None, Some(body)));
        prop_assert_eq!(params.json(), &fields);
        assert_consistent(&params);
        // Serialize gives the same object back.
        prop_assert_eq!(serde_json::to_value(&params).unwrap(), Value::Object(fields));
    }

    #[test]
    fn query_pairs_round_trip_and_body_fields_override_them(
        pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..8),
        fields in json_object(),
    ) {
        let body = serde_json::to_vec(&fields).unwrap();
        let params = JwtParams::from_request(&request_with_pairs(&pairs, Some(body)));
        let mut expected: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        expected.extend(fields);
        prop_assert_eq!(params.json(), &expected);
        assert_consistent(&params);
    }

    #[test]
    fn a_body_that_is_not_a_json_object_contributes_nothing(
        pairs in prop::collection::vec(("[a-z]{1,8}", any::<String>()), 0..4),
        body in prop_oneof![
            // Anything that does not start with `{` (after white space).
            prop::collection::vec(any::<u8>(), 0..512)
                .prop_filter("not an object", |b| b.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{')),
            json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(|v| v.to_string().into_bytes()),
            // An object with invalid UTF-8 (stray continuation bytes) inside a string.
            prop::collection::vec(0x80u8..=0xbf, 1..16).prop_map(|bad| {
                let mut body = br#"{"sku_id":""#.to_vec();
                body.extend(bad);
                body.extend(br#""}"#);
                body
            }),
        ],
    ) {
        let request = request_with_pairs(&pairs, Some(body));
        let params = JwtParams::from_request(&request);
        prop_assert_eq!(params.json(), &query_map(request.url()));
    }

    #[test]
    fn deep_nesting_and_huge_numbers_do_not_panic(
        depth in 1usize..20_000,
        digits in 1usize..600,
        shape in 0u8..3,
    ) {
        let body = match shape {
            0 => format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth)),
            1 => format!(r#"{{"a":{}1{}}}"#, r#"{"b":"#.repeat(depth), "}".repeat(depth)),
            _ => format!(r#"{{"n":{}}}"#, "9".repeat(digits)),
        };
        let params = JwtParams::from_request(&request(None, Some(body.into_bytes())));
        assert_consistent(&params);
        match shape {
            // serde_json nests at most 128 levels; shallower bodies are read whole.
            0 | 1 if depth < 100 => prop_assert!(params.json().contains_key("a")),
            0 | 1 if depth > 200 => prop_assert!(params.is_empty()),
            // Numbers past f64's range are refused as a whole; the others are read.
            2 if digits < 300 => prop_assert!(params.json()["n"].is_number()),
            2 if digits > 310 => prop_assert!(params.is_empty()),
            _ => {}
        }
    }
}

/// A compact JWS with `payload` (raw bytes) as its payload segment, optionally `=`-padded.
fn token(header: &[u8], payload: &[u8], padded: bool) -> String {
    let engine = if padded { &URL_SAFE } else { &URL_SAFE_NO_PAD };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        engine.encode(header),
        engine.encode(payload)
    )
}

fn at(seconds: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

proptest! {
    #[test]
    fn the_claim_reader_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = unverified_expiry(&text);
    }

    #[test]
    fn the_claim_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = unverified_expiry(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_claim_reader_never_panics_on_jws_shaped_noise(
        segments in prop::collection::vec("[A-Za-z0-9_=-]{0,64}", 1..5),
    ) {
        let _ = unverified_expiry(&segments.join("."));
    }

    #[test]
    fn a_generated_exp_comes_back(
        exp in 0u64..(1u64 << 40),
        quarter in 0u64..4,
        claims in json_object(),
        header in json_object(),
        padded in any::<bool>(),
    ) {
        let mut payload = claims;
        payload.insert("exp".into(), exp.into());
        let jwt = token(header_bytes(&header).as_bytes(), &serde_json::to_vec(&payload).unwrap(), padded);
        prop_assume!(jwt.len() <= MAX_JWT_LEN);
        prop_assert_eq!(unverified_expiry(&jwt), at(exp));

        // A fractional exp keeps its fraction.
        payload.insert("exp".into(), (exp as f64 + quarter as f64 / 4.0).into());
        let jwt = token(b"{}", &serde_json::to_vec(&payload).unwrap(), padded);
        prop_assume!(jwt.len() <= MAX_JWT_LEN);
        let expected = at(exp).map(|t| t + Duration::from_millis(250 * quarter));
        prop_assert_eq!(unverified_expiry(&jwt), expected);
    }

    #[test]
    fn a_payload_without_a_usable_exp_gives_none(
        claims in json_object(),
        bad_exp in prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            any::<String>().prop_map(|s| Some(Value::String(s))),
            (1i64..i64::MAX).prop_map(|n| Some(Value::from(-n))),
            any::<bool>().prop_map(|b| Some(Value::Bool(b))),
            Just(Some(Value::Array(vec![Value::from(1)]))),
        ],
    ) {
        let mut payload = claims;
        payload.remove("exp");
        if let Some(bad) = bad_exp {
            payload.insert("exp".into(), bad);
        }
        let jwt = token(b"{}", &serde_json::to_vec(&payload).unwrap(), false);
        prop_assume!(jwt.len() <= MAX_JWT_LEN);
        prop_assert_eq!(unverified_expiry(&jwt), None);
    }

    #[test]
    fn odd_padding_never_gives_a_wrong_exp(exp in 0u64..(1u64 << 40), padding in 1usize..=3) {
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let canonical = (4 - payload.len() % 4) % 4;
        let jwt = format!("e30.{payload}{}.c2ln", "=".repeat(padding));
        // Up to the canonical amount of padding is accepted, more is not base64url.
        let expected = if padding <= canonical { at(exp) } else { None };
        prop_assert_eq!(unverified_expiry(&jwt), expected, "{}", jwt);
    }

    #[test]
    fn a_payload_that_is_not_a_json_object_gives_none(
        garbage in prop::collection::vec(any::<u8>(), 1..256),
    ) {
        // Bytes that are not a JSON object (invalid UTF-8 included) carry no exp.
        prop_assume!(serde_json::from_slice::<Map<String, Value>>(&garbage).is_err());
        prop_assert_eq!(unverified_expiry(&token(b"{}", &garbage, false)), None);
    }

    #[test]
    fn deep_nesting_and_huge_numbers_in_the_payload_do_not_panic(
        depth in 1usize..5_000,
        digits in 1usize..400,
    ) {
        let nested = format!(r#"{{"x":{}{},"exp":5}}"#, "[".repeat(depth), "]".repeat(depth));
        let jwt = token(b"{}", nested.as_bytes(), false);
        let got = unverified_expiry(&jwt);
        if depth < 100 && jwt.len() <= MAX_JWT_LEN {
            prop_assert_eq!(got, at(5));
        } else if depth > 200 {
            prop_assert_eq!(got, None);
        }

        let huge = format!(r#"{{"exp":{}}}"#, "9".repeat(digits));
        let got = unverified_expiry(&token(b"{}", huge.as_bytes(), false));
        if digits <= 18 {
            prop_assert_eq!(got, at("9".repeat(digits).parse().unwrap()));
        } else {
            // Past u64, or past what `SystemTime` holds: no expiry rather than a wrong one.
            prop_assert_eq!(got, None);
        }
    }
}

fn header_bytes(header: &Map<String, Value>) -> String {
    Value::Object(header.clone()).to_string()
}

#[test]
fn the_claim_reader_refuses_tokens_past_its_size_cap_without_reading_them() {
    let with_filler = |n: usize| {
        let payload = format!(r#"{{"exp":7,"p":"{}"}}"#, "x".repeat(n));
        token(b"{}", payload.as_bytes(), false)
    };
    // The most filler that keeps the token within the cap.
    let (mut fits, mut too_long) = (0, MAX_JWT_LEN);
    while too_long - fits > 1 {
        let middle = (fits + too_long) / 2;
        if with_filler(middle).len() <= MAX_JWT_LEN {
            fits = middle;
        } else {
            too_long = middle;
        }
    }
    let largest = with_filler(fits);
    assert!(largest.len() <= MAX_JWT_LEN && largest.len() > MAX_JWT_LEN - 4);
    assert_eq!(unverified_expiry(&largest), at(7));
    let over = with_filler(too_long);
    assert!(over.len() > MAX_JWT_LEN);
    assert_eq!(unverified_expiry(&over), None);
}

/// Runs `work` on its own thread and fails if it takes longer than a (very generous) deadline:
/// these are the inputs that would expose work that grows faster than the input.
fn within_deadline(what: &str, work: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} took more than 30 s"));
}

#[test]
fn the_worst_inputs_are_handled_in_bounded_time() {
    const MIB: usize = 1024 * 1024;
    let bodies = [
        ("1 MiB of nesting", format!(r#"{{"a":{}"#, "[".repeat(MIB))),
        ("1 MiB number", format!(r#"{{"n":{}}}"#, "9".repeat(MIB))),
        (
            "100,000 fields",
            format!(
                "{{{}}}",
                (0..100_000)
                    .map(|i| format!(r#""k{i}":[{i},"v"]"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
    ];
    for (what, body) in bodies {
        within_deadline(what, move || {
            let params = JwtParams::from_request(&request(None, Some(body.into_bytes())));
            assert!(params.len() <= 100_000);
        });
    }
    let query = "a=1&".repeat(MIB / 4);
    within_deadline("1 MiB query", move || {
        let params = JwtParams::from_request(&request(Some(&query), None));
        assert_eq!(params.get("a"), Some("1"));
    });
    within_deadline("a 1 MiB token", || {
        let jwt = format!("{}.{}.{}", "a".repeat(MIB), "b".repeat(MIB), "c");
        assert_eq!(unverified_expiry(&jwt), None);
    });
}

/// Found by `a_json_object_body_round_trips_through_json`: without serde_json's exact float
/// parsing, this float came out one unit lower, and the JWT would have been signed over a
/// value the call does not carry.
#[test]
fn a_float_in_the_body_reaches_the_parameters_exactly() {
    let body = br#"{"scale":904607.6103515625}"#.to_vec();
    let params = JwtParams::from_request(&request(None, Some(body)));
    assert_eq!(params.json()["scale"].as_f64(), Some(904_607.610_351_562_5));
    assert_eq!(params.get("scale"), Some("904607.6103515625"));
}
