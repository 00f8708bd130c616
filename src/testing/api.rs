//! The emulated Aiuta routes: which requests they match, and what they answer.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use wiremock::{Match, Request, Respond, ResponseTemplate};

use super::record::{CredentialHeader, Received};
use super::{Operation, State, TRY_ON_BASE_PATH, UNIFIED_BASE_PATH};
use crate::{AuthRequirement, JwtParams};

/// One of the two APIs whose try-on routes the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    /// `/digital-try-on/v1`
    TryOn,
    /// `/v1`, the unified API.
    Unified,
}

impl Api {
    fn base(self) -> &'static str {
        match self {
            Api::TryOn => TRY_ON_BASE_PATH,
            Api::Unified => UNIFIED_BASE_PATH,
        }
    }

    fn operations(self) -> &'static str {
        match self {
            Api::TryOn => "sku_images_operations",
            Api::Unified => "sku_try_on_operations",
        }
    }

    fn operation_prefix(self) -> &'static str {
        match self {
            Api::TryOn => "sku_images_op",
            Api::Unified => "sku_try_on_op",
        }
    }

    /// The most SKUs one try-on takes, per the API's schema.
    fn max_skus(self) -> usize {
        match self {
            Api::TryOn => 2,
            Api::Unified => 5,
        }
    }
}

/// A route the emulator serves. As a [`Match`], it matches the requests for that route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `POST uploaded_images` (multipart, field `image_data`).
    Upload(Api),
    /// `POST sku_images_operations` or `POST sku_try_on_operations`.
    StartTryOn(Api),
    /// `GET sku_images_operations/{id}` or `GET sku_try_on_operations/{id}`.
    PollTryOn(Api),
    /// `GET predefined_try_on_models`.
    Models(Api),
}

impl Endpoint {
    pub(super) const ALL: [Endpoint; 8] = [
        Endpoint::Upload(Api::TryOn),
        Endpoint::StartTryOn(Api::TryOn),
        Endpoint::PollTryOn(Api::TryOn),
        Endpoint::Models(Api::TryOn),
        Endpoint::Upload(Api::Unified),
        Endpoint::StartTryOn(Api::Unified),
        Endpoint::PollTryOn(Api::Unified),
        Endpoint::Models(Api::Unified),
    ];

    fn of(method: &Method, path: &str) -> Option<Endpoint> {
        let (api, route) = [Api::TryOn, Api::Unified].into_iter().find_map(|api| {
            let route = path.strip_prefix(api.base())?.strip_prefix('/')?;
            Some((api, route))
        })?;
        let endpoint = match (method, route.split_once('/')) {
            (&Method::POST, None) if route == "uploaded_images" => Endpoint::Upload(api),
            (&Method::POST, None) if route == api.operations() => Endpoint::StartTryOn(api),
            (&Method::GET, None) if route == "predefined_try_on_models" => Endpoint::Models(api),
            (&Method::GET, Some((operations, id)))
                if operations == api.operations() && !id.is_empty() && !id.contains('/') =>
            {
                Endpoint::PollTryOn(api)
            }
            _ => return None,
        };
        Some(endpoint)
    }
}

impl Match for Endpoint {
    fn matches(&self, request: &Request) -> bool {
        Endpoint::of(&request.method, request.url.path()) == Some(*self)
    }
}

/// Answers one [`Endpoint`]: checks the call's credential as Aiuta does, then serves it.
pub(super) struct Handler {
    pub(super) endpoint: Endpoint,
    pub(super) state: Arc<State>,
}

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let requirement = AuthRequirement::infer(&request.method, path);
        let params = call_params(request);
        let (status, body, rejection) =
            match self
                .state
                .scheme
                .check(requirement, &request.headers, &params)
            {
                Err(detail) => (
                    StatusCode::UNAUTHORIZED,
                    json!({ "detail": detail }),
                    Some(detail),
                ),
                Ok(()) => {
                    let (status, body) = self.serve(request);
                    (status, body, None)
                }
            };
        self.state.record(Received {
            method: request.method.clone(),
            path: path.to_owned(),
            requirement,
            credentials: CredentialHeader::present_in(&request.headers),
            params,
            status,
            rejection,
        });
        ResponseTemplate::new(status.as_u16()).set_body_json(body)
    }
}

impl Handler {
    fn serve(&self, request: &Request) -> (StatusCode, Value) {
        let state = &*self.state;
        match self.endpoint {
            Endpoint::Upload(_) => {
                if let Err(detail) = check_upload(request) {
                    return unprocessable(detail);
                }
                let id = state.next_id("user_image");
                (StatusCode::OK, state.image(&id, false))
            }
            Endpoint::StartTryOn(api) => {
                if let Err(detail) = check_try_on(&request.body, api.max_skus()) {
                    return unprocessable(detail);
                }
                let id = state.next_id(api.operation_prefix());
                let image_id = state.next_id("generated_image");
                state.log().operations.insert(
                    id.clone(),
                    Operation {
                        api,
                        polls: 0,
                        image_id,
                    },
                );
                let body = match api {
                    Api::TryOn => json!({ "operation_id": id, "details": null, "errors": [] }),
                    Api::Unified => json!({ "operation_id": id }),
                };
                (StatusCode::OK, body)
            }
            Endpoint::PollTryOn(api) => {
                let id = request.url.path().rsplit('/').next().unwrap_or_default();
                let (polls, image_id) = {
                    let mut log = state.log();
                    match log.operations.get_mut(id).filter(|op| op.api == api) {
                        None => {
                            let detail = json!({ "detail": "Operation not found" });
                            return (StatusCode::NOT_FOUND, detail);
                        }
                        Some(operation) => {
                            operation.polls += 1;
                            (operation.polls, operation.image_id.clone())
                        }
                    }
                };
                let done = polls > state.in_progress_polls;
                let images = match done {
                    true => vec![state.image(&image_id, api == Api::TryOn)],
                    false => Vec::new(),
                };
                let status = if done { "SUCCESS" } else { "IN_PROGRESS" };
                let body = json!({
                    "id": id,
                    "status": status,
                    "error": null,
                    "abort_reason": null,
                    "generated_images": images,
                });
                (StatusCode::OK, body)
            }
            Endpoint::Models(_) => (StatusCode::OK, state.models()),
        }
    }
}

/// Answers what no emulated route matches, as FastAPI does, and records it.
pub(super) struct NotFound {
    pub(super) state: Arc<State>,
}

impl Respond for NotFound {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        self.state.record(Received {
            method: request.method.clone(),
            path: path.to_owned(),
            requirement: AuthRequirement::infer(&request.method, path),
            credentials: CredentialHeader::present_in(&request.headers),
            params: call_params(request),
            status: StatusCode::NOT_FOUND,
            rejection: None,
        });
        ResponseTemplate::new(404).set_body_json(json!({ "detail": "Not Found" }))
    }
}

/// The parameters a JWT for this call is signed over: query pairs, then the top-level fields
/// of a JSON object body, as [`JwtParams::from_request`] reads them on the client.
pub(super) fn call_params(request: &Request) -> JwtParams {
    let mut json: Map<String, Value> = request
        .url
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
        .collect();
    if let Some(fields) = crate::params::json_object(&request.body) {
        json.extend(fields);
    }
    JwtParams::from(json)
}

/// One FastAPI validation error, in the shape of the API's `HTTPValidationError`.
fn invalid(loc: &[&str], msg: impl Into<String>, kind: &str) -> Value {
    json!({ "loc": loc, "msg": msg.into(), "type": kind })
}

fn unprocessable(detail: Value) -> (StatusCode, Value) {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "detail": [detail] }),
    )
}

/// A multipart body with an `image_data` part, which is all the upload route requires.
fn check_upload(request: &Request) -> Result<(), Value> {
    let multipart = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let needle: &[u8] = b"name=\"image_data\"";
    let has_image = request.body.windows(needle.len()).any(|w| w == needle);
    match multipart && has_image {
        true => Ok(()),
        false => Err(invalid(
            &["body", "image_data"],
            "Field required",
            "missing",
        )),
    }
}

/// The body of a try-on: `uploaded_image_id`, and `sku_id` or 1 to `max_skus` `sku_ids`.
fn check_try_on(body: &[u8], max_skus: usize) -> Result<(), Value> {
    let string = |loc: &[&str]| invalid(loc, "Input should be a valid string", "string_type");
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid(&["body"], "JSON decode error", "json_invalid"));
    };
    let Value::Object(fields) = parsed else {
        return Err(invalid(
            &["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        ));
    };
    match fields.get("uploaded_image_id") {
        Some(Value::String(_)) => {}
        None => {
            let loc = ["body", "uploaded_image_id"];
            return Err(invalid(&loc, "Field required", "missing"));
        }
        Some(_) => return Err(string(&["body", "uploaded_image_id"])),
    }
    let sku_id = match fields.get("sku_id") {
        None | Some(Value::Null) => false,
        Some(Value::String(_)) => true,
        Some(_) => return Err(string(&["body", "sku_id"])),
    };
    let sku_ids = match fields.get("sku_ids") {
        None | Some(Value::Null) => false,
        Some(Value::Array(ids)) if ids.is_empty() => {
            let msg = "List should have at least 1 item after validation";
            return Err(invalid(&["body", "sku_ids"], msg, "too_short"));
        }
        Some(Value::Array(ids)) if ids.len() > max_skus => {
            let msg = format!("List should have at most {max_skus} items after validation");
            return Err(invalid(&["body", "sku_ids"], msg, "too_long"));
        }
        Some(Value::Array(ids)) => {
            if let Some(index) = ids.iter().position(|id| !id.is_string()) {
                let index = index.to_string();
                return Err(string(&["body", "sku_ids", &index]));
            }
            true
        }
        Some(_) => {
            let msg = "Input should be a valid list";
            return Err(invalid(&["body", "sku_ids"], msg, "list_type"));
        }
    };
    if !(sku_id || sku_ids) {
        let msg = "Value error, Either 'sku_id' or 'sku_ids' must be specified";
        return Err(invalid(&["body"], msg, "value_error"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_match_only_their_routes() {
        let of = |method: Method, path: &str| Endpoint::of(&method, path);
        let try_on = "/digital-try-on/v1";
        assert_eq!(
            of(Method::GET, &format!("{try_on}/sku_images_operations/op_1")),
            Some(Endpoint::PollTryOn(Api::TryOn))
        );
        assert_eq!(
            of(Method::POST, "/v1/sku_try_on_operations"),
            Some(Endpoint::StartTryOn(Api::Unified))
        );
        assert_eq!(of(Method::POST, "/v1/sku_images_operations"), None);
        assert_eq!(
            of(Method::GET, &format!("{try_on}/sku_images_operations/")),
            None
        );
        assert_eq!(
            of(Method::GET, &format!("{try_on}/sku_images_operations/a/b")),
            None
        );
        assert_eq!(
            of(Method::DELETE, &format!("{try_on}/uploaded_images")),
            None
        );
        assert_eq!(
            of(Method::POST, "/digital-try-on/v1x/uploaded_images"),
            None
        );
    }

    #[test]
    fn try_on_bodies_are_validated_as_the_schema_says() {
        let kind =
            |body: &str, max| check_try_on(body.as_bytes(), max).map_err(|e| e["type"].clone());
        assert_eq!(kind(r#"{"uploaded_image_id":"i","sku_id":"s"}"#, 2), Ok(()));
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i","sku_ids":["a","b"]}"#, 2),
            Ok(())
        );
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i","sku_ids":["a","b","c"]}"#, 2),
            Err(json!("too_long"))
        );
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i","sku_ids":["a","b","c"]}"#, 5),
            Ok(())
        );
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i","sku_ids":[]}"#, 2),
            Err(json!("too_short"))
        );
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i","sku_ids":[1]}"#, 2),
            Err(json!("string_type"))
        );
        assert_eq!(
            kind(r#"{"uploaded_image_id":"i"}"#, 2),
            Err(json!("value_error"))
        );
        assert_eq!(kind(r#"{"sku_id":"s"}"#, 2), Err(json!("missing")));
        assert_eq!(kind(r#"[1]"#, 2), Err(json!("model_attributes_type")));
        assert_eq!(kind(r#"{"#, 2), Err(json!("json_invalid")));
    }
}
