//! The gateway's OpenAPI document, served at `GET /openapi.json`.
//!
//! It is made from the code: every route is registered through `utoipa_axum`'s
//! [`OpenApiRouter`](utoipa_axum::router::OpenApiRouter) from its handler's
//! `#[utoipa::path]`, so a route cannot be served without being described, and the bodies
//! are the types the handlers return (`utoipa::ToSchema`). This module holds what the
//! routes share: the document's head, the two ways into the admin API, and the error
//! answers every route behind a front door can give.

use std::collections::BTreeMap;

use klarna_types::contract::{ApiError, ErrorCode, PaymentFigures};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{IntoResponses, Modify, OpenApi};

/// The admin API's bearer token (`admin_token` in the secret store).
pub const ADMIN_TOKEN: &str = "admin_token";
/// The admin API's other way in: a call signed by the Odoo addon with the shared secret.
pub const ODOO_SIGNATURE: &str = "odoo_signature";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Klarna gateway",
        description = "The backend between Odoo, the Klarna checkout widget and Klarna: the widget API \
(CORS, for configured storefronts), Klarna's webhooks and callbacks, the admin API (for Odoo's \
buttons and operators) and health. Amounts are integers in minor units. Every error is a JSON \
`ApiError` with a stable `code`; `docs/gateway-api.md` says when each code is used.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(ApiError, ErrorCode, PaymentFigures)),
    modifiers(&Security),
    tags(
        (name = "widget", description = "Called by the checkout widget in the shopper's browser"),
        (name = "webhooks", description = "Called by Klarna"),
        (name = "admin", description = "Called by Odoo's addon and by operators"),
        (name = "health", description = "For load balancers, service managers and `klarna-gateway doctor`"),
    )
)]
struct Head;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token `klarna-gateway init` printed (the secret store's `admin_token`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ODOO_SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Klarna-Gateway-Signature",
                "How the Odoo addon calls: HMAC-SHA256 with the shared secret over the timestamp, \
nonce, method, path with query, Idempotency-Key and body, with the headers \
X-Klarna-Gateway-Timestamp (unix seconds, within 300 s) and X-Klarna-Gateway-Nonce (16 to 64 \
letters, digits and dashes, used once). See docs/gateway-api.md.",
            ))),
        );
    }
}

/// The document: the head above with every route the routers registered.
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = Head::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.merge(routes);
    doc
}

/// An error answer: an [`ApiError`] body, `description` naming the codes it carries.
pub fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
}

fn answers(list: &[(&str, Response)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, response)| ((*status).to_owned(), RefOr::T(response.clone())))
        .collect()
}

fn rate_limited() -> Response {
    let mut response =
        error("`rate_limited`: too many requests from this address; wait `Retry-After` seconds");
    let seconds = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before asking again"))
        .build();
    response
        .headers
        .insert("Retry-After".to_owned(), seconds.into());
    response
}

/// What the listener answers any request with, whatever its route.
fn listener() -> Vec<(&'static str, Response)> {
    vec![
        (
            "408",
            error("`body_timeout`: the body did not arrive within the listener's body timeout"),
        ),
        (
            "500",
            error(
                "`internal`: a fault of the gateway's (its log has the detail, under the response's X-Request-Id)",
            ),
        ),
        (
            "503",
            error(
                "`overloaded`: too many connections or requests in flight; or, where the route calls Klarna, `klarna_unavailable`: Klarna did not answer after retries",
            ),
        ),
    ]
}

/// The errors every widget route can answer: its own, its front door's and the listener's.
pub struct WidgetErrors;

impl IntoResponses for WidgetErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut list = listener();
        list.push((
            "400",
            error("`invalid_request`: a field is missing, malformed or not part of the contract (`field` names it)"),
        ));
        list.push((
            "413",
            error("`too_large`: the body is larger than the widget API takes (16 KiB)"),
        ));
        list.push((
            "422",
            error("`order_not_payable`: the order breaks Klarna's rules (`field`, `fields`)"),
        ));
        list.push((
            "502",
            error("`klarna_error`: Klarna answered with an error; `odoo_unavailable`: Odoo could not be read"),
        ));
        list.push((
            "403",
            error("`origin_not_allowed`: the page's origin is not a configured storefront (`allowed_origins`)"),
        ));
        list.push(("429", rate_limited()));
        answers(&list)
    }
}

/// The errors of the webhooks' front door and listener.
pub struct WebhookDoor;

impl IntoResponses for WebhookDoor {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut list = listener();
        list.push((
            "403",
            error("`forbidden`: the address is not on the webhook allow-list; `blocked`: it is blocked after repeated verification failures"),
        ));
        list.push((
            "413",
            error("`too_large`: the body is larger than a webhook may be"),
        ));
        list.push((
            "415",
            error("`content_type`: the body is not `application/json`"),
        ));
        answers(&list)
    }
}

/// The errors of Klarna's classic callbacks (the URL's token lets them in), besides the
/// webhooks' door.
pub struct CallbackErrors;

impl IntoResponses for CallbackErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut answers = WebhookDoor::responses();
        for (status, description) in [
            (
                "400",
                "Refused before it was stored: `malformed_json`, `wrong_shape`, `stale_event`",
            ),
            (
                "404",
                "`not_found`: the token is wrong (the route does not exist for whoever does not know it)",
            ),
        ] {
            answers.insert(status.to_owned(), error(description).into());
        }
        answers
    }
}

/// The errors of the admin API's front door, its two ways in, and the listener.
pub struct AdminDoor;

impl IntoResponses for AdminDoor {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut list = listener();
        list.push((
            "401",
            error("`unauthorized`: no admin token, a wrong one, or an Odoo signature refused (the message says why)"),
        ));
        list.push((
            "403",
            error("`blocked`: the address is blocked after repeated refusals"),
        ));
        list.push(("429", rate_limited()));
        answers(&list)
    }
}

/// The errors of routes outside any door: only the listener's.
pub struct Listener;

impl IntoResponses for Listener {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&listener())
    }
}

/// Anything the router itself refuses before a handler runs, in the same shape as every
/// other error: an unknown route, a method the route does not take, a body over its limit,
/// a path parameter of the wrong type. The one place a plain-text refusal of axum's or
/// tower-http's becomes an [`ApiError`].
pub async fn json_refusals(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this route does not take this method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::TooLarge,
            "the body is larger than this route takes".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::ContentType,
            "the body is not application/json".to_owned(),
        ),
        s if s.is_client_error() => {
            // axum's own words on a malformed path or query: they quote only the caller's
            // own input.
            let text = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap_or_default();
            (
                ErrorCode::InvalidRequest,
                String::from_utf8_lossy(&text).into_owned(),
            )
        }
        _ => (ErrorCode::Internal, "internal error".to_owned()),
    };
    let mut answer = (status, axum::Json(ApiError::new(code, message, None))).into_response();
    if let Some(allow) = allow {
        // What the route does take.
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}
