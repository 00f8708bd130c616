use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// The parameters of one call, which a JWT for that call is signed over.
///
/// Built from the request: first the URL's query pairs, then the top-level fields of a JSON
/// object body (a body field overrides a query pair of the same name). A body that is not a
/// JSON object (a multipart upload, raw bytes, a stream) contributes nothing and is never
/// consumed.
///
/// [`get`](Self::get), [`iter`](Self::iter), [`len`](Self::len) and
/// [`is_empty`](Self::is_empty) see the string form that Aiuta's SDKs pass to JWT callbacks:
/// strings as they are, numbers and booleans as JSON writes them, an array of scalars joined
/// with `,`, a nested object as compact JSON, and `null` left out. [`json`](Self::json) and
/// `Serialize` keep the original JSON values.
///
/// ```
/// use reqwest_aiuta_auth::JwtParams;
///
/// let request = reqwest::Client::new()
///     .post("https://api.aiuta.com/digital-try-on/v1/sku_images_operations?source=app")
///     .body(r#"{"uploaded_image_id":"img_1","sku_ids":["a","b"],"count":2,"note":null}"#)
///     .build()
///     .unwrap();
/// let params = JwtParams::from_request(&request);
/// assert_eq!(params.get("sku_ids"), Some("a,b"));
/// assert_eq!(params.get("count"), Some("2"));
/// assert_eq!(params.get("source"), Some("app"));
/// assert_eq!(params.get("note"), None);
/// assert_eq!(params.len(), 4);
/// assert_eq!(params.json()["count"], serde_json::json!(2));
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct JwtParams {
    json: Map<String, Value>,
    /// The string form, sorted by name, without `null` fields.
    strings: Vec<(String, String)>,
}

impl JwtParams {
    /// The parameters of `request`: its query pairs, then its JSON object body's fields.
    pub fn from_request(request: &reqwest::Request) -> Self {
        let mut json = Map::new();
        for (name, value) in request.url().query_pairs() {
            json.insert(name.into_owned(), Value::String(value.into_owned()));
        }
        if let Some(body) = request.body().and_then(|body| body.as_bytes())
            && let Some(fields) = json_object(body)
        {
            json.extend(fields);
        }
        Self::from(json)
    }

    /// The string form of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.strings
            .binary_search_by(|(key, _)| key.as_str().cmp(name))
            .ok()
            .map(|index| self.strings[index].1.as_str())
    }

    /// The parameters in their string form, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.strings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many parameters have a string form (`null` fields are not counted).
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether no parameter has a string form.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// The parameters with their original JSON values.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// A key that is the same for the same fields and values, in whatever order they came.
    pub(crate) fn canonical_key(&self) -> String {
        let mut fields: Vec<(&String, &Value)> = self.json.iter().collect();
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut key = String::with_capacity(64);
        for (name, value) in fields {
            // A JSON string cannot hold a raw control byte, so '\u{1}' separates unambiguously.
            key.push_str(&Value::String(name.clone()).to_string());
            key.push('\u{1}');
            key.push_str(&value.to_string());
            key.push('\u{1}');
        }
        key
    }
}

impl From<Map<String, Value>> for JwtParams {
    fn from(json: Map<String, Value>) -> Self {
        let mut strings: Vec<(String, String)> = json
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), string_form(value)?)))
            .collect();
        strings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        JwtParams { json, strings }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for JwtParams {
    /// Parameters from name and string value pairs, as a query string would give them.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let json: Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), Value::String(v.into())))
            .collect();
        Self::from(json)
    }
}

impl Serialize for JwtParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

/// The fields of `body` if it is a JSON object; `None` for anything else, without parsing a
/// body that cannot be one.
pub(crate) fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(body).ok()
}

fn string_form(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(is_scalar) => {
            let parts: Vec<String> = items.iter().filter_map(string_form).collect();
            Some(parts.join(","))
        }
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Some(value.to_string())
        }
    }
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}
