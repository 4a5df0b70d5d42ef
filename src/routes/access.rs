//! Who may reach what. Every request: its `Host` (and the authority of an
//! absolute-form target) and any `Origin` must be on the allow-lists
//! (loopback by default), against DNS rebinding. Management routes: the
//! admin token, when one is set. The console (`/ui`): the admin token, or
//! a console login made with it, and an `Origin` on its forms. The session
//! token, which a session may require on its MCP endpoint, is checked there
//! (`routes::mcp`).

use actix_web::HttpRequest;
use actix_web::http::header;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::rate_limit::charge_session_rate;
use super::session_id::SessionPath;
use super::ui::logins::{self, ConsoleLogins};
use crate::mux::{Mux, Session};
use std::sync::Arc;

const ADMIN_CHALLENGE: &str = "Bearer realm=\"mcp-mux admin\"";
const SESSION_CHALLENGE: &str = "Bearer realm=\"mcp-mux session\"";

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
    console_logins: ConsoleLogins,
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
        Access {
            admin_token,
            public_url,
            console_logins: ConsoleLogins::default(),
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

    fn host_allowed(&self, host: &str) -> bool {
        host_name(host).is_some_and(|name| is_loopback_name(&name) || self.hosts.contains(&name))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let parsed = url::Url::parse(origin).ok();
        let loopback = parsed.as_ref().is_some_and(|url| match url.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        });
        loopback || {
            let origin = origin.trim_end_matches('/').to_ascii_lowercase();
            self.origins.contains(&origin)
        }
    }

    /// The admin token, when one is set.
    pub fn check_admin(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token else {
            return Ok(());
        };
        match bearer_token(request) {
            None => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE,
                message: "this route needs Authorization: Bearer <admin token>",
            }),
            Some(presented) if same_secret(presented, expected.expose_secret()) => Ok(()),
            Some(_) => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE,
                message: "the admin token is wrong",
            }),
        }
    }

    /// A console page: the admin token, or a console login, when an admin
    /// token is set. A browser's form must also pass [`Self::check_console_form`].
    pub fn check_console(&self, request: &HttpRequest) -> Result<ConsoleCaller, ApiError> {
        if self.admin_token.is_none() {
            self.check_console_form(request)?;
            return Ok(ConsoleCaller::Open);
        }
        if bearer_token(request).is_some() {
            // A browser never sends this header by itself: no form check.
            return self.check_admin(request).map(|()| ConsoleCaller::Bearer);
        }
        match logins::cookie(request) {
            Some(token) if self.console_logins.is_open(&token_digest(token)) => {
                self.check_console_form(request)?;
                Ok(ConsoleCaller::Login)
            }
            Some(_) => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE,
                message: "the console login has expired; log in again",
            }),
            None => Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE,
                message: "this page needs a console login or Authorization: Bearer <admin token>",
            }),
        }
    }

    /// A browser's form (any method but GET and HEAD) must say where it
    /// comes from: with the `Origin` on the allow-list (checked before this)
    /// and the cookie `SameSite=Strict`, another site cannot forge one.
    /// Browsers send `Origin` on every form POST.
    pub fn check_console_form(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let reads = matches!(
            *request.method(),
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        );
        if reads || request.headers().contains_key(header::ORIGIN) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                reason: "a console form must carry an Origin header; send it from the console",
            })
        }
    }

    /// Opens a console login for the admin token typed into the login
    /// form: the token for the cookie, or None when no admin token is set
    /// (the console needs no login then).
    pub fn log_in_to_console(&self, presented: &str) -> Result<Option<String>, ApiError> {
        let Some(expected) = &self.admin_token else {
            return Ok(None);
        };
        if same_secret(presented.trim(), expected.expose_secret()) {
            let token = random_token("mmc_");
            self.console_logins.open(token_digest(&token));
            Ok(Some(token))
        } else {
            Err(ApiError::Unauthorized {
                challenge: ADMIN_CHALLENGE,
                message: "the admin token is wrong",
            })
        }
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
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !origin
                .to_str()
                .is_ok_and(|origin| self.origin_allowed(origin))
        {
            return Err(ApiError::Forbidden {
                reason: "Origin not allowed",
            });
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

/// Checks the bearer token a session requires on its MCP endpoint, if it
/// requires one (`digest` is the stored SHA-256 of it).
pub fn check_session_token(
    request: &HttpRequest,
    digest: Option<&[u8; 32]>,
) -> Result<(), ApiError> {
    let Some(digest) = digest else {
        return Ok(());
    };
    match bearer_token(request) {
        None => Err(ApiError::Unauthorized {
            challenge: SESSION_CHALLENGE,
            message: "this session needs Authorization: Bearer <session token>",
        }),
        Some(presented) if bool::from(token_digest(presented).ct_eq(digest)) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized {
            challenge: SESSION_CHALLENGE,
            message: "the session token is wrong",
        }),
    }
}

/// A new session token: 256 random bits, URL-safe, with a prefix that makes
/// a leaked one easy to recognise and search for.
pub fn new_session_token() -> String {
    random_token("mmx_")
}

/// 256 random bits, URL-safe, after `prefix`.
pub fn random_token(prefix: &str) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
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

/// SHA-256 of a token: what the store keeps of a session token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two secrets in constant time: their digests, so that neither
/// the contents nor the length of the expected one leaks through timing.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    token_digest(presented)
        .ct_eq(&token_digest(expected))
        .into()
}

/// The host of a `Host` value (`name[:port]` or `[ipv6][:port]`),
/// lowercase, without port or brackets; None for anything else, such as
/// `[::1]evil.com`, an empty port, or characters no host name has.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let is_port = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return (port_ok && address.parse::<std::net::Ipv6Addr>().is_ok())
            .then(|| address.to_owned());
    }
    let name = match host.split_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return None,
        None => host.as_str(),
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| name.to_owned())
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The session a path names, if the request may use it: with its token,
/// when it requires one, and within its rate. The token is checked first:
/// requests without it must not use up the holder's rate.
pub async fn usable_session(
    request: &HttpRequest,
    path: SessionPath<'_>,
    mux: &Mux,
) -> Result<Arc<Session>, ApiError> {
    let session = mux
        .session(path.id)
        .await?
        .ok_or_else(|| path.not_found())?;
    check_session_token(request, session.token_digest.as_ref())?;
    charge_session_rate(request, &session, 1)?;
    Ok(session)
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
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("a-long-admin-token", "a-long-admin-token"));
        assert!(!same_secret("a-long-admin-token", "a-long-admin-tokeN"));
        assert!(!same_secret("", "a-long-admin-token"));
    }
}
