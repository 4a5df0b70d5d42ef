//! Form tokens: every console form carries one in a hidden field, and the
//! guard refuses a form without the right one. A page on another origin
//! (another port of the same host, which `SameSite` cookies do not tell
//! apart) cannot read a console page, so it cannot learn the token. A
//! login's forms carry a random token made with the login; forms shown
//! without a login (an open console, the login form) carry one made once
//! per process.

use std::fmt;
use std::sync::OnceLock;

use crate::routes::secrets::{random_token, same_secret};

/// The name of the hidden field.
pub const FIELD: &str = "form_token";

/// A form token. Not a secret to its own page, but never logged.
#[derive(Clone)]
pub struct FormToken(String);

impl fmt::Debug for FormToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FormToken([redacted])")
    }
}

impl FormToken {
    /// A new random token.
    pub fn random() -> FormToken {
        FormToken(random_token("mmf_"))
    }

    /// The token of forms shown without a login, made once per process.
    pub fn process() -> &'static FormToken {
        static PROCESS: OnceLock<FormToken> = OnceLock::new();
        PROCESS.get_or_init(FormToken::random)
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        same_secret(presented, &self.0)
    }

    /// The token itself, for the page that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hidden field that carries it. The token is URL-safe base64:
    /// nothing in it needs escaping.
    pub fn hidden_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"{FIELD}\" value=\"{}\">",
            self.0
        )
    }
}

/// What the guard expects of a console form, kept in the request's
/// extensions: a page renders its forms with it, and a form is refused
/// unless it passes it.
#[derive(Debug, Clone)]
pub enum FormCheck {
    /// The form must carry this token.
    Token(FormToken),
    /// A script with the admin token as a header: no browser sends that by
    /// itself, so nothing is forged.
    NotNeeded,
}

impl FormCheck {
    /// The hidden field a form on the page gets, if any.
    pub fn hidden_field(&self) -> String {
        match self {
            FormCheck::Token(token) => token.hidden_field(),
            FormCheck::NotNeeded => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_itself_only_and_never_prints() {
        let token = FormToken::random();
        assert!(token.matches(&token.0));
        assert!(!token.matches(&FormToken::random().0));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains(&token.0));
        assert!(FormToken::process().matches(&FormToken::process().0));
    }
}
