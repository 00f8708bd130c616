//! `JwtParams::from_request` on an arbitrary query string and body: no panic, and the string
//! view agrees with the JSON view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqwest_aiuta_auth::JwtParams;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the query ends and the body begins.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (query, body) = rest.split_at(usize::from(split).min(rest.len()));
    let mut url = reqwest::Url::parse("https://api.aiuta.com/v1/sku_try_on_operations").unwrap();
    url.set_query(Some(&String::from_utf8_lossy(query)));
    let mut request = reqwest::Request::new(http::Method::POST, url);
    *request.body_mut() = Some(reqwest::Body::from(body.to_vec()));

    let params = JwtParams::from_request(&request);
    assert_eq!(params.len(), params.iter().count());
    assert_eq!(params.is_empty(), params.len() == 0);
    let mut previous: Option<&str> = None;
    for (name, value) in params.iter() {
        assert!(previous.is_none_or(|p| p < name), "sorted, no duplicates");
        assert_eq!(params.get(name), Some(value));
        assert!(params.json().contains_key(name));
        previous = Some(name);
    }
    // A body that is a JSON object is read whole, its fields over the query's.
    if let Ok(fields) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        for (name, value) in &fields {
            assert_eq!(params.json().get(name), Some(value));
        }
    }
    serde_json::to_vec(&params).unwrap();
});
