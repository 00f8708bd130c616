use http::Method;

/// How much authentication an Aiuta call needs.
///
/// Put it on a request with `with_extension`, or on every request of a client with
/// `with_init(reqwest_middleware::Extension(..))`. A request without one gets the middleware's
/// [`default_requirement`](crate::AiutaAuthMiddlewareBuilder::default_requirement), or, when none
/// was set, the level that Aiuta's routes imply (see [`AuthRequirement::infer`]).
///
/// ```
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
/// use reqwest_aiuta_auth::AuthRequirement;
///
/// client
///     .post("https://api.aiuta.com/digital-try-on/v1/sku_images_operations")
///     .with_extension(AuthRequirement::Mandatory)
///     .body(r#"{"uploaded_image_id":"img_1","sku_id":"sku_1"}"#)
///     .send()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthRequirement {
    /// The call starts paid work and must carry a secret: the API key, or a JWT bound to the
    /// call's parameters.
    Mandatory,
    /// The call may carry a public identifier instead: the API key, or the subscription id.
    Optional,
}

impl AuthRequirement {
    /// The level Aiuta's routes imply for a call.
    ///
    /// A `POST` whose path ends in a segment `*_operations`, or in `*_operations/regenerate`,
    /// starts paid generation and is [`Mandatory`](Self::Mandatory); every other call is
    /// [`Optional`](Self::Optional).
    ///
    /// ```
    /// use http::Method;
    /// use reqwest_aiuta_auth::AuthRequirement;
    ///
    /// let start = "/digital-try-on/v1/sku_images_operations";
    /// let poll = "/digital-try-on/v1/sku_images_operations/op_1";
    /// assert_eq!(AuthRequirement::infer(&Method::POST, start), AuthRequirement::Mandatory);
    /// assert_eq!(AuthRequirement::infer(&Method::GET, poll), AuthRequirement::Optional);
    /// ```
    pub fn infer(method: &Method, path: &str) -> Self {
        if *method != Method::POST {
            return AuthRequirement::Optional;
        }
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let last = segments.next().unwrap_or_default();
        let creates = is_operations(last)
            || (last == "regenerate" && segments.next().is_some_and(is_operations));
        if creates {
            AuthRequirement::Mandatory
        } else {
            AuthRequirement::Optional
        }
    }
}

fn is_operations(segment: &str) -> bool {
    segment.len() > "_operations".len() && segment.ends_with("_operations")
}
