//! The emulated customer JWT backend: Aiuta's documented `/aiuta_jwt` endpoint, in Rust.

use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use super::State;
use crate::JwtParams;

/// Signs the query arguments and JSON body it receives, merged, and answers
/// `{"type": "jwt", "token": "<jwt>"}`.
pub(super) struct Backend {
    pub(super) state: Arc<State>,
}

impl Respond for Backend {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let answer = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
        if request.method != Method::GET && request.method != Method::POST {
            return answer(405, json!({ "detail": "Method Not Allowed" }));
        }
        let Some(minter) = &self.state.minter else {
            let detail = "this emulator plays the API-key scheme: it has no JWT backend";
            return answer(404, json!({ "detail": detail }));
        };
        let mut fields: Map<String, Value> = request
            .url
            .query_pairs()
            .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
            .collect();
        if !request.body.trim_ascii().is_empty() {
            let Some(body) = crate::params::json_object(&request.body) else {
                return answer(400, json!({ "detail": "The body must be a JSON object" }));
            };
            fields.extend(body);
        }
        let params = JwtParams::from(fields);
        match minter.mint(&params) {
            Ok(token) => {
                self.state.log().minted.push(params);
                answer(200, json!({ "type": "jwt", "token": token }))
            }
            Err(error) => answer(500, json!({ "detail": error.to_string() })),
        }
    }
}
