//! Console logins: what a browser's cookie holds once the admin token was
//! typed into `/ui/login`. The cookie carries a random token of its own,
//! never the admin token, and the gateway keeps only its SHA-256, in
//! memory: a stolen cookie opens no JSON route, and a restart logs every
//! browser out. Each login has a form token of its own (`form_token.rs`).
//! `Access` makes the tokens and digests; this file keeps them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

use super::form_token::FormToken;

/// The cookie's name.
pub const COOKIE: &str = "mcp_mux_console";
/// How long a login lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most logins kept at once; past it the oldest is dropped, so that a
/// script logging in in a loop cannot grow the map without bound.
const MAX_LOGINS: usize = 1024;

/// The logins open now, by the digest of their token.
#[derive(Default)]
pub struct ConsoleLogins {
    logins: Mutex<HashMap<[u8; 32], Login>>,
}

struct Login {
    expires: Instant,
    form_token: FormToken,
}

impl ConsoleLogins {
    /// Opens the login whose token has SHA-256 `digest`, with a form token
    /// of its own.
    pub fn open(&self, digest: [u8; 32]) {
        let now = Instant::now();
        let mut logins = self.lock();
        logins.retain(|_, login| login.expires > now);
        if logins.len() >= MAX_LOGINS
            && let Some(oldest) = logins
                .iter()
                .min_by_key(|(_, login)| login.expires)
                .map(|(digest, _)| *digest)
        {
            logins.remove(&oldest);
        }
        logins.insert(
            digest,
            Login {
                expires: now + LIFETIME,
                form_token: FormToken::random(),
            },
        );
    }

    /// The form token of the open login whose token has SHA-256 `digest`;
    /// None when it is not open. Looked up by digest: timing can tell
    /// nothing about a token from a digest's hash.
    pub fn form_token(&self, digest: &[u8; 32]) -> Option<FormToken> {
        let mut logins = self.lock();
        match logins.get(digest) {
            Some(login) if login.expires > Instant::now() => Some(login.form_token.clone()),
            Some(_) => {
                logins.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Ends the login with SHA-256 `digest`, if it is one.
    pub fn close(&self, digest: &[u8; 32]) {
        self.lock().remove(digest);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Login>> {
        self.logins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The console cookie of a request, if it sent one.
pub fn cookie(request: &HttpRequest) -> Option<&str> {
    crate::routes::headers::request_cookie(request, COOKIE)
}

/// The `Set-Cookie` value that hands `token` to the browser: out of reach
/// of scripts, sent only to the console, and never on a request another
/// site starts (the first guard against forged forms).
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;

    use super::*;

    #[test]
    fn a_login_is_open_until_closed() {
        let logins = ConsoleLogins::default();
        logins.open([1; 32]);
        logins.open([2; 32]);
        let first = logins.form_token(&[1; 32]).expect("open");
        let second = logins.form_token(&[2; 32]).expect("open");
        assert!(first.matches(first.expose()));
        assert!(!first.matches(second.expose()), "each login has its own");
        assert!(logins.form_token(&[3; 32]).is_none());
        logins.close(&[1; 32]);
        assert!(logins.form_token(&[1; 32]).is_none());
    }

    #[test]
    fn logins_are_bounded() {
        let logins = ConsoleLogins::default();
        let digest = |n: usize| {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&n.to_le_bytes());
            digest
        };
        for n in 0..=MAX_LOGINS {
            logins.open(digest(n));
        }
        assert_eq!(logins.lock().len(), MAX_LOGINS);
        assert!(
            logins.form_token(&digest(MAX_LOGINS)).is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "a=1; mcp_mux_console=mmc_x ; b=2"))
            .to_http_request();
        assert_eq!(cookie(&request), Some("mmc_x"));
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "mcp_mux_console="))
            .to_http_request();
        assert_eq!(cookie(&request), None);
    }
}
