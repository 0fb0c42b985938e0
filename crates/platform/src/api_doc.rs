//! The error answers of the API description (OpenAPI 3.1, built by utoipa
//! from the handlers' own types): one type per status, listed in a route's
//! `#[utoipa::path(responses(...))]` next to its success answer, so that a
//! route documents exactly the statuses it can give, each with the one
//! error shape ([`crate::error::ErrorBody`]).

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses, ToSchema,
    openapi::{
        ContentBuilder, HeaderBuilder, RefOr,
        response::{Response, ResponseBuilder},
        schema::{ObjectBuilder, Type},
    },
};

use crate::error::{ErrorBody, RETRY_AFTER_SECONDS};

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                ErrorBody::name(),
            ))))
            .build(),
    )
}

macro_rules! error_answers {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([($status.to_owned(), RefOr::T(error_response($description).build()))])
                }
            }
        )+
    };
}

error_answers! {
    /// 400: a field or the body is invalid.
    Invalid = "400", "A field is invalid (named in `field`) or the body is not valid JSON.";
    /// 401: no usable session.
    Unauthenticated = "401", "No valid session of the site: sign in there.";
    /// 403: a session without the route's permission.
    Forbidden = "403", "The session lacks the permission this route declares (named in the message); the refusal is audited.";
    /// 404: the thing named in the path does not exist.
    NotFound = "404", "Nothing of that id.";
    /// 409: the change conflicts with what is stored.
    Conflict = "409", "The change conflicts with what is stored (a duplicate key, a rule such as the last super_admin).";
    /// 413: the body is over the route's limit.
    TooLarge = "413", "The body is larger than the route takes.";
    /// 415: a media type or encoding the route does not read.
    WrongMediaType = "415", "A media type or a Content-Encoding the route does not read.";
    /// 422: the data breaks a rule of the database.
    Unprocessable = "422", "The data breaks a rule of the database (a check, a required value).";
}

/// 503: the database is away; retry after the seconds in `Retry-After`.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .examples([RETRY_AFTER_SECONDS]),
            )
            .description(Some("Seconds to wait before retrying."))
            .build();
        let response = error_response(
            "A dependency (the database) is unavailable; retrying later may succeed.",
        )
        .header("Retry-After", retry_after)
        .build();
        BTreeMap::from([("503".to_owned(), RefOr::T(response))])
    }
}

/// Documents `alias` as the same operation as `path` (a second path a route
/// is served at), with an operation id of its own, as OpenAPI requires.
pub fn alias(doc: &mut utoipa::openapi::OpenApi, path: &str, alias: &str) {
    let Some(mut item) = doc.paths.paths.get(path).cloned() else {
        return;
    };
    for operation in [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
        &mut item.head,
    ]
    .into_iter()
    .flatten()
    {
        operation.operation_id = operation
            .operation_id
            .take()
            .map(|id| format!("{id}_alias"));
        operation.description = Some(format!(
            "The same as `{path}`. {}",
            operation.description.take().unwrap_or_default()
        ));
    }
    doc.paths.paths.insert(alias.to_owned(), item);
}
