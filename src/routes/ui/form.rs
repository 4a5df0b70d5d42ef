//! Reading a console form (`application/x-www-form-urlencoded`) under the
//! same size and time limits as every other body, in the guard, once the
//! caller passed: no console handler reads a body itself, so none can
//! forget the form token. The handler takes the checked [`Form`].

use std::future::{Ready, ready};

use actix_web::dev::{self, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::form_token::{FIELD, FormCheck};
use super::refusal::{PageError, refusal_page};
use crate::routes::body::{read_limited, refuse_unread};
use crate::routes::error::ApiError;
use crate::routes::route::{Route, RouteKind};

/// A console form is a few names and a token or two.
const FORM_BODY_LIMIT: usize = 64 * 1024;

fn wrong_form_token() -> ApiError {
    ApiError::Forbidden {
        reason: "the console form's token is missing or wrong; reload the page and send the form again",
    }
}

/// A form's fields, in the order sent (a checkbox list repeats its name),
/// without its form token.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| value)
    }

    /// Every field, as sent.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Reads the form of a console route that takes one (a POST to a route
/// that answers POST) and checks its form token against what the guard
/// expects ([`FormCheck`], in the request's extensions; none is a
/// refusal). The form is left in the extensions for the handler; any
/// other request passes as it came.
pub async fn read_console_form(
    route: Route,
    request: ServiceRequest,
) -> Result<ServiceRequest, ServiceResponse> {
    let console = matches!(route.kind(), RouteKind::Console | RouteKind::ConsoleLogin);
    let takes_form = console
        && request.method() == Method::POST
        && route.methods().any(|method| method == "POST");
    if !takes_form {
        return Ok(request);
    }
    let (request, mut payload) = request.into_parts();
    let body = match read_limited(&request, &mut payload, FORM_BODY_LIMIT).await {
        Ok(body) => body,
        Err(error) => {
            let refused = refuse_unread(refusal_page(&ApiError::from(error)), payload);
            return Err(ServiceResponse::new(request, refused));
        }
    };
    let mut token = None;
    let mut fields = Vec::new();
    for (name, value) in url::form_urlencoded::parse(&body) {
        if name == FIELD {
            token.get_or_insert(value.into_owned());
        } else {
            fields.push((name.into_owned(), value.into_owned()));
        }
    }
    let check = request.extensions().get::<FormCheck>().cloned();
    let passes = match check {
        Some(FormCheck::NotNeeded) => true,
        Some(FormCheck::Token(expected)) => token.is_some_and(|token| expected.matches(&token)),
        None => false,
    };
    if !passes {
        let refused = refusal_page(&wrong_form_token());
        return Err(ServiceResponse::new(request, refused));
    }
    request.extensions_mut().insert(Form(fields));
    Ok(ServiceRequest::from_parts(request, dev::Payload::None))
}

impl FromRequest for Form {
    type Error = PageError;
    type Future = Ready<Result<Form, PageError>>;

    /// The form the guard read and checked; a route the guard read none
    /// for gets a refusal, never an unchecked form.
    fn from_request(request: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        ready(
            request
                .extensions_mut()
                .remove::<Form>()
                .ok_or_else(|| PageError::from(wrong_form_token())),
        )
    }
}

/// The hidden field with the form token that a form on the page must
/// carry (empty for a script with the admin token).
pub fn form_token_field(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<FormCheck>()
        .map(FormCheck::hidden_field)
        .unwrap_or_default()
}
