//! Reading a console form (`application/x-www-form-urlencoded`) under the
//! same size and time limits as every other body.

use actix_web::{HttpRequest, HttpResponse, web};

use super::refusal::refusal_page;
use crate::routes::body::{read_limited, refuse_unread};
use crate::routes::error::ApiError;

/// A console form is a few names and a token or two.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// A form's fields, in the order sent (a checkbox list repeats its name).
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads the form, or answers the refusal page (closing the connection
    /// when the body was left unread).
    pub async fn read(
        request: &HttpRequest,
        mut payload: web::Payload,
    ) -> Result<Form, HttpResponse> {
        match read_limited(request, &mut payload, FORM_BODY_LIMIT).await {
            Ok(body) => Ok(Form(
                url::form_urlencoded::parse(&body)
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect(),
            )),
            Err(error) => Err(refuse_unread(refusal_page(&ApiError::from(error)), payload)),
        }
    }

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
