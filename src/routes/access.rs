//! Who may reach what. Every request: its `Host` (and the authority of an
//! absolute-form target) and any `Origin`, each parsed strictly, must be on
//! the allow-lists (loopback by default), against DNS rebinding.
//! Management routes: the admin token, when one is set, with wrong tokens
//! slowed down per address (`throttle.rs`). The console (`/ui`): the admin
//! token, or a console login made with it; its forms come from its own
//! origin with their form token. A session's own token or its owner's
//! sign-in is checked in `session_access.rs`, users' tokens on the
//! management routes in `sign_in.rs`; both use the issuers held here.

use actix_web::HttpRequest;
use actix_web::http::header;
use secrecy::{ExposeSecret, SecretString};

use super::error::ApiError;
use super::rate_limit::retry_after_secs;
pub use super::secrets::{random_token, same_secret, token_digest};
use super::throttle::Throttle;
use super::ui::form_token::{FormCheck, FormToken};
use super::ui::logins::{self, ConsoleLogins};
use crate::identity::HostSignIn;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

const ADMIN_CHALLENGE: &str = "Bearer realm=\"mcp-mux admin\"";

/// Shortest admin token accepted: a guessable one would protect nothing.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The access rules, from the settings.
pub struct Access {
    admin_token: Option<SecretString>,
    /// Hosts allowed besides loopback names and addresses, lowercase,
    /// without a port.
    hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) allowed besides loopback ones.
    origins: Vec<String>,
    /// Where clients reach the gateway, when it is not the address they
    /// connect to (behind a proxy, say): session URLs are built on it.
    public_url: Option<url::Url>,
    /// The origin of `public_url`: the console's forms may come from it.
    public_origin: Option<Origin>,
    console_logins: ConsoleLogins,
    /// Wrong admin tokens (and refused users' tokens) by address.
    throttle: Throttle,
    /// The issuers whose users may sign in, when the operator set any.
    sign_in: Option<Arc<HostSignIn>>,
}

/// Who the guard let into a console page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleCaller {
    /// No admin token is set: the loopback rule alone applies.
    Open,
    /// A script with `Authorization: Bearer <admin token>`.
    Bearer,
    /// A browser with a console login.
    Login,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "[set]"))
            .field("hosts", &self.hosts)
            .field("origins", &self.origins)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Access {
    pub fn new(
        admin_token: Option<SecretString>,
        hosts: &[String],
        origins: &[String],
        public_url: Option<url::Url>,
    ) -> Self {
        let public_origin = public_url
            .as_ref()
            .and_then(|url| parse_origin(&url.origin().ascii_serialization()));
        Access {
            admin_token,
            public_url,
            public_origin,
            console_logins: ConsoleLogins::default(),
            throttle: Throttle::default(),
            sign_in: None,
            hosts: hosts
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .collect(),
            origins: origins
                .iter()
                .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Takes the tokens of `sign_in`'s issuers.
    pub fn with_sign_in(mut self, sign_in: Option<Arc<HostSignIn>>) -> Self {
        self.sign_in = sign_in;
        self
    }

    /// The trusted issuers, when hosts may sign in.
    pub fn sign_in(&self) -> Option<&HostSignIn> {
        self.sign_in.as_deref()
    }

    /// Whether `presented` is the admin token (compared in constant time).
    pub fn is_admin_token(&self, presented: &str) -> bool {
        self.admin_token
            .as_ref()
            .is_some_and(|expected| same_secret(presented, expected.expose_secret()))
    }

    /// 429 while the request's address must wait after wrong tokens.
    pub fn check_not_throttled(&self, request: &HttpRequest) -> Result<(), ApiError> {
        match client_address(request).and_then(|ip| self.throttle.wait(ip, Instant::now())) {
            Some(wait) => Err(ApiError::TooManyRequests {
                retry_after: retry_after_secs(wait),
                what: "refused tokens from this address",
            }),
            None => Ok(()),
        }
    }

    /// Counts a refused token against the request's address.
    pub fn note_wrong_token(&self, request: &HttpRequest) {
        if let Some(ip) = client_address(request) {
            self.throttle.fail(ip, Instant::now());
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        host_name(host).is_some_and(|name| is_loopback_name(&name) || self.hosts.contains(&name))
    }

    /// A present `Origin`: parsed strictly (an `http` or `https` origin
    /// whose host passes as a `Host` would), then loopback or listed.
    fn origin_allowed(&self, origin: &str) -> bool {
        parse_origin(origin).is_some_and(|parsed| {
            is_loopback_name(&parsed.host) || self.origins.contains(&origin.to_ascii_lowercase())
        })
    }

    /// The admin token, when one is set.
    pub fn check_admin(&self, request: &HttpRequest) -> Result<(), ApiError> {
        if self.admin_token.is_none() {
            return Ok(());
        }
        match bearer_token(request) {
            None => Err(admin_token_missing()),
            Some(presented) => self.check_admin_token(request, presented),
        }
    }

    /// A presented admin token, unless its address must wait after wrong
    /// ones: then it is not even looked at, so that the refusal tells a
    /// right guess from a wrong one no sooner than the wait allows.
    fn check_admin_token(&self, request: &HttpRequest, presented: &str) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token else {
            return Ok(());
        };
        let address = client_address(request);
        if let Some(wait) = address.and_then(|ip| self.throttle.wait(ip, Instant::now())) {
            return Err(ApiError::TooManyRequests {
                retry_after: retry_after_secs(wait),
                what: "wrong admin tokens from this address",
            });
        }
        if same_secret(presented, expected.expose_secret()) {
            if let Some(ip) = address {
                self.throttle.succeed(ip);
            }
            Ok(())
        } else {
            if let Some(ip) = address {
                self.throttle.fail(ip, Instant::now());
            }
            Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE.into(),
                message: "the admin token is wrong".into(),
            })
        }
    }

    /// A console page: the admin token, or a console login, when an admin
    /// token is set; and what its forms must carry. A browser's form must
    /// also pass [`Self::check_console_form`].
    pub fn check_console(
        &self,
        request: &HttpRequest,
    ) -> Result<(ConsoleCaller, FormCheck), ApiError> {
        if self.admin_token.is_none() {
            self.check_console_form(request)?;
            return Ok((
                ConsoleCaller::Open,
                FormCheck::Token(FormToken::process().clone()),
            ));
        }
        if bearer_token(request).is_some() {
            // A browser never sends this header by itself: no form check.
            return self
                .check_admin(request)
                .map(|()| (ConsoleCaller::Bearer, FormCheck::NotNeeded));
        }
        let cookie = logins::cookie(request);
        match cookie.and_then(|token| self.console_logins.form_token(&token_digest(token))) {
            Some(form_token) => {
                self.check_console_form(request)?;
                Ok((ConsoleCaller::Login, FormCheck::Token(form_token)))
            }
            None if cookie.is_some() => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE.into(),
                message: "the console login has expired; log in again".into(),
            }),
            None => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE.into(),
                message: "this page needs a console login or Authorization: Bearer <admin token>"
                    .into(),
            }),
        }
    }

    /// What the login form and the logout button must carry: the form
    /// token of the login being ended, or else the one of forms shown
    /// without a login. Logging out of no open login ends nothing.
    pub fn login_form_check(&self, request: &HttpRequest, logging_out: bool) -> FormCheck {
        if !logging_out {
            return FormCheck::Token(FormToken::process().clone());
        }
        let login = logins::cookie(request)
            .and_then(|token| self.console_logins.form_token(&token_digest(token)));
        login.map_or(FormCheck::NotNeeded, FormCheck::Token)
    }

    /// A browser's form (any method but GET and HEAD) must come from the
    /// console's own origin: scheme, host and port. `SameSite=Strict` does
    /// not tell the ports of one host apart, and every loopback origin
    /// passes the allow-list, so a page on another port of the same host
    /// would pass both. Browsers send `Origin` on every form POST; the form
    /// token (`ui::form_token`) is checked once the form is read.
    pub fn check_console_form(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let reads = matches!(
            *request.method(),
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        );
        if reads {
            return Ok(());
        }
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            return Err(ApiError::Forbidden {
                reason: "a console form must carry an Origin header; send it from the console",
            });
        };
        let origin = origin.to_str().ok().and_then(parse_origin);
        if origin.is_some_and(|origin| self.is_own_origin(request, &origin)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                reason: "a console form must come from the console's own origin",
            })
        }
    }

    /// Whether `origin` is where the console is served: plain HTTP on the
    /// `Host` the request came to (the gateway serves no TLS itself), or
    /// the public URL's origin (behind an HTTPS proxy, say).
    fn is_own_origin(&self, request: &HttpRequest, origin: &Origin) -> bool {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        let on_host = host
            .and_then(|host| parse_authority(host.trim()))
            .is_some_and(|(name, port)| {
                *origin
                    == Origin {
                        scheme: "http",
                        host: name,
                        port: port.unwrap_or(80),
                    }
            });
        on_host || self.public_origin.as_ref() == Some(origin)
    }

    /// Opens a console login for the admin token typed into the login
    /// form: the token for the cookie, or None when no admin token is set
    /// (the console needs no login then). Wrong tokens are slowed down as
    /// on every route that takes the admin token.
    pub fn log_in_to_console(
        &self,
        request: &HttpRequest,
        presented: &str,
    ) -> Result<Option<String>, ApiError> {
        if self.admin_token.is_none() {
            return Ok(None);
        }
        self.check_admin_token(request, presented.trim())?;
        let token = random_token("mmc_");
        self.console_logins.open(token_digest(&token));
        Ok(Some(token))
    }

    /// Ends the console login of a request's cookie, if any.
    pub fn log_out_of_console(&self, request: &HttpRequest) {
        if let Some(token) = logins::cookie(request) {
            self.console_logins.close(&token_digest(token));
        }
    }

    /// Whether an admin token is set (and the console asks for a login).
    pub fn needs_login(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whether clients reach the gateway over HTTPS: cookies are then
    /// `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }

    /// The `Host` header (exactly one), the authority of an absolute-form
    /// request target, and any `Origin`, against the allow-lists.
    pub fn check_host_and_origin(&self, request: &HttpRequest) -> Result<(), ApiError> {
        self.check_host(request)?;
        let mut origins = request.headers().get_all(header::ORIGIN);
        if let Some(origin) = origins.next()
            && (origins.next().is_some()
                || !origin
                    .to_str()
                    .is_ok_and(|origin| self.origin_allowed(origin)))
        {
            return Err(ApiError::Forbidden {
                reason: "Origin not allowed",
            });
        }
        Ok(())
    }

    /// The `Host` header (exactly one) and the authority of an
    /// absolute-form request target, against the allow-list.
    pub fn check_host(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let host_refused = || ApiError::Forbidden {
            reason: "Host not allowed",
        };
        let mut hosts = request.headers().get_all(header::HOST);
        // HTTP/1.1 requires Host; actix gives the URI authority of HTTP/2 here too.
        if let Some(host) = hosts.next()
            && (hosts.next().is_some() || !host.to_str().is_ok_and(|host| self.host_allowed(host)))
        {
            return Err(host_refused());
        }
        // `GET http://elsewhere/registry HTTP/1.1`: the target's authority
        // stands in for Host (RFC 9112, section 3.2.2).
        if let Some(authority) = request.uri().authority()
            && !self.host_allowed(authority.as_str())
        {
            return Err(host_refused());
        }
        Ok(())
    }

    /// The URL of a path as clients should reach it: under the configured
    /// public URL, or else on the `Host` the request came to (already on the
    /// allow-list). Forwarded headers are not trusted: any client may send
    /// them.
    pub fn public_url(&self, request: &HttpRequest, path: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{}{path}", base.as_str().trim_end_matches('/')),
            None => {
                let host = request
                    .headers()
                    .get(header::HOST)
                    .and_then(|host| host.to_str().ok())
                    .or_else(|| request.uri().authority().map(|a| a.as_str()))
                    .unwrap_or("localhost");
                format!("http://{host}{path}")
            }
        }
    }
}

/// The 401 of a management route asked without the admin token.
pub(super) fn admin_token_missing() -> ApiError {
    ApiError::Unauthorized {
        challenge: ADMIN_CHALLENGE.into(),
        message: "this route needs Authorization: Bearer <admin token>".into(),
    }
}

/// A new session token: 256 random bits, URL-safe, with a prefix that makes
/// a leaked one easy to recognise and search for.
pub fn new_session_token() -> String {
    random_token("mmx_")
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The host of a `Host` value, lowercase, without port or brackets; see
/// [`parse_authority`].
fn host_name(host: &str) -> Option<String> {
    parse_authority(host.trim()).map(|(name, _)| name)
}

/// A `Host` value (`name[:port]` or `[ipv6][:port]`) as its host, lowercase
/// and without brackets (an IPv6 address spelt canonically), and its port
/// if it has one; None for anything else, such as `[::1]evil.com`, an empty
/// or oversized port, a user (`a@b`), a path, or characters no host name
/// has. Names are compared as written: `127.1` or `0x7f.1` are no loopback
/// address.
fn parse_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.to_ascii_lowercase();
    let port = |port: &str| {
        (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            .then(|| port.parse::<u16>().ok())
            .flatten()
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        let address = address.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            after => Some(port(after.strip_prefix(':')?)?),
        };
        return Some((address.to_string(), port));
    }
    let (name, port) = match authority.split_once(':') {
        Some((name, digits)) => (name, Some(port(digits)?)),
        None => (authority.as_str(), None),
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| (name.to_owned(), port))
}

/// An `Origin` value (RFC 6454): a scheme, a host and a port, no more.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: &'static str,
    host: String,
    /// The scheme's default when none is written.
    port: u16,
}

/// An `Origin` value, parsed as strictly as `Host`: `http` or `https`,
/// `://`, then what [`parse_authority`] takes. `null`, a user, a path
/// (even `/`), a query and any other scheme are None.
fn parse_origin(origin: &str) -> Option<Origin> {
    let (scheme, authority) = origin.split_once("://")?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else if scheme.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else {
        return None;
    };
    let (host, port) = parse_authority(authority)?;
    Some(Origin {
        scheme,
        host,
        port: port.unwrap_or(default_port),
    })
}

/// The address a request came from, as the socket says: forwarded headers
/// are not trusted (any client may send them).
fn client_address(request: &HttpRequest) -> Option<IpAddr> {
    request.peer_addr().map(|peer| peer.ip())
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_without_port_and_loopback_always_passes() {
        let access = Access::new(None, &["Mux.Example.com".into()], &[], None);
        for allowed in [
            "localhost:8000",
            "127.0.0.1",
            "127.0.0.2:9",
            "[::1]:8000",
            "mux.example.com",
            "MUX.example.com:443",
        ] {
            assert!(access.host_allowed(allowed), "{allowed}");
        }
        for refused in [
            "evil.example",
            "mux.example.com.evil",
            "10.0.0.1:8000",
            "",
            "[::1]evil.com",
            "[::1]:80evil",
            "[::1",
            "[evil.com]",
            "localhost:",
            "localhost:80:80",
            "localhost@evil.com",
            "evil.com#localhost",
            "::1",
        ] {
            assert!(!access.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn origins_are_loopback_or_listed() {
        let access = Access::new(None, &[], &["https://app.example.com/".into()], None);
        assert!(access.origin_allowed("http://localhost:3000"));
        assert!(access.origin_allowed("https://app.example.com"));
        assert!(!access.origin_allowed("https://app.example.com.evil"));
        assert!(!access.origin_allowed("null"));
        for refused in [
            "http://a@localhost:3000",
            "http://localhost:3000/",
            "http://localhost:3000/x",
            "http://127.1",
            "http://0x7f.1",
            "http://2130706433",
            "http://[::1]x",
            "http://localhost:",
            "http://localhost:65536",
            "file://localhost",
            "https://app.example.com/",
        ] {
            assert!(!access.origin_allowed(refused), "{refused}");
        }
        assert!(access.origin_allowed("HTTP://[::1]:8000"));
    }

    #[test]
    fn an_origin_is_a_scheme_a_host_and_a_port_with_the_default_filled_in() {
        let origin = |scheme, host: &str, port| Origin {
            scheme,
            host: host.to_owned(),
            port,
        };
        assert_eq!(
            parse_origin("http://LocalHost"),
            Some(origin("http", "localhost", 80))
        );
        assert_eq!(
            parse_origin("https://[0:0:0:0:0:0:0:1]:8443"),
            Some(origin("https", "::1", 8443))
        );
        assert_eq!(parse_origin("http://127.0.0.1:8000/"), None);
    }

    #[test]
    fn a_console_form_comes_from_the_host_it_was_sent_to_or_the_public_url() {
        let access = Access::new(
            None,
            &[],
            &[],
            Some(url::Url::parse("https://mux.example.com/").expect("a URL")),
        );
        let to = |host: &str| {
            actix_web::test::TestRequest::default()
                .insert_header((header::HOST, host))
                .to_http_request()
        };
        let own = |request: &HttpRequest, origin: &str| {
            access.is_own_origin(request, &parse_origin(origin).expect("an origin"))
        };
        let request = to("127.0.0.1:8000");
        assert!(own(&request, "http://127.0.0.1:8000"));
        assert!(own(&request, "https://mux.example.com"));
        assert!(!own(&request, "http://127.0.0.1:8001"));
        assert!(!own(&request, "https://127.0.0.1:8000"));
        assert!(!own(&request, "http://localhost:8000"));
        let request = to("localhost");
        assert!(own(&request, "http://localhost:80"));
        assert!(!own(&request, "https://localhost"));
        let request = to("[::1]:8000");
        assert!(own(&request, "http://[0::1]:8000"));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("a-long-admin-token", "a-long-admin-token"));
        assert!(!same_secret("a-long-admin-token", "a-long-admin-tokeN"));
        assert!(!same_secret("", "a-long-admin-token"));
    }
}
