//! The OpenAPI 3 document, made from the routes themselves: every handler
//! carries a `#[utoipa::path]`, and the router and the document are split
//! from one `OpenApiRouter` (see `app::router`), so a route cannot be served
//! without being described.
//!
//! What every route of a kind shares (the bearer requirement and 401 of
//! `/api`, the 429 of rate-limited routes, the 503 of routes that need the
//! database) is added here in one place rather than on each handler.
//!
//! `GET /api/openapi.json` itself needs no token: it describes shapes, not
//! data, and client generators and API testers must read it before they hold
//! a token. It is rate limited like the rest of `/api`.

use std::sync::Arc;

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Extension,
};
use utoipa::{
    openapi::{
        path::Operation,
        schema::Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder,
    },
    OpenApi as _,
};

use crate::error::ErrorResponse;

pub const DOCUMENT_PATH: &str = "/api/openapi.json";
const BEARER: &str = "bearer";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tiktok-webhook",
        description = "Receives TikTok Shop webhooks and serves what they said. \
            Every error body is {\"success\":false,\"error\":{code,message,request_id}}."
    ),
    components(schemas(ErrorResponse))
)]
struct Base;

/// The document as served: built once per router.
#[derive(Clone)]
pub struct Document(Arc<String>);

impl Document {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The base document (title, shared schemas) the routes are added to.
pub fn base() -> OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// Adds what routes share, then renders the document.
pub fn finish(mut doc: OpenApi) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            shared_answers(path, operation);
        }
    }
    let json = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    Document(Arc::new(json))
}

fn shared_answers(path: &str, operation: &mut Operation) {
    let api = path.starts_with("/api/");
    if api && path != DOCUMENT_PATH {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        add(
            operation,
            "401",
            "`unauthorized`: no valid bearer token",
            false,
        );
        add(
            operation,
            "503",
            "`store_unavailable`: the database is not reachable",
            true,
        );
    }
    if api || path == "/webhook/tiktok" {
        add(operation, "429", "`rate_limited`: see `Retry-After`", true);
    }
    if path == "/webhook/tiktok" {
        add(
            operation,
            "503",
            "`store_unavailable`: TikTok retries",
            true,
        );
    }
}

fn add(operation: &mut Operation, status: &str, description: &str, retry_after: bool) {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorResponse"))))
            .build(),
    );
    if retry_after {
        let seconds = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("seconds to wait"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(response.build()));
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "this document", content_type = "application/json", body = Object))
)]
pub async fn document(Extension(doc): Extension<Document>) -> Response {
    let mut response = doc.as_str().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
