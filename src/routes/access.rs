//! Who may reach what. Every request: its `Host` and any `Origin` must be on
//! the allow-lists (loopback by default), against DNS rebinding. Management
//! routes: the admin token, when one is set. The session token, which a
//! session may require on its MCP endpoint, is checked there (`routes::mcp`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError, web};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::mcp;

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
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "[set]"))
            .field("hosts", &self.hosts)
            .field("origins", &self.origins)
            .finish()
    }
}

impl Access {
    pub fn new(admin_token: Option<SecretString>, hosts: &[String], origins: &[String]) -> Self {
        Access {
            admin_token,
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
        let name = host_name(host);
        is_loopback_name(&name) || self.hosts.contains(&name)
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

    fn check_admin(&self, request: &ServiceRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token else {
            return Ok(());
        };
        match bearer_token(request.request()) {
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
}

/// The Host and Origin checks for every route, and the admin token for the
/// management routes. A refusal on an MCP endpoint is a JSON-RPC error.
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(access) = request.app_data::<web::Data<Access>>().cloned() else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let path = request.path();
    let is_mcp = path.starts_with("/session/") && path.ends_with("/mcp");
    let refused = check_host_and_origin(&access, request.request()).and_then(|()| {
        if is_management(path) {
            access.check_admin(&request)
        } else {
            Ok(())
        }
    });
    match refused {
        Ok(()) => Ok(next.call(request).await?.map_into_boxed_body()),
        Err(error) if is_mcp => Ok(request.into_response(mcp::refusal_response(error))),
        Err(error) => Ok(request.into_response(error.error_response())),
    }
}

fn check_host_and_origin(access: &Access, request: &HttpRequest) -> Result<(), ApiError> {
    // HTTP/1.1 requires Host; actix gives the URI authority of HTTP/2 here too.
    if let Some(host) = request.headers().get(header::HOST)
        && !host.to_str().is_ok_and(|host| access.host_allowed(host))
    {
        return Err(ApiError::Forbidden {
            reason: "Host not allowed",
        });
    }
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !origin
            .to_str()
            .is_ok_and(|origin| access.origin_allowed(origin))
    {
        return Err(ApiError::Forbidden {
            reason: "Origin not allowed",
        });
    }
    Ok(())
}

/// Routes that create, show or delete sessions, or show the registry.
fn is_management(path: &str) -> bool {
    match path.strip_prefix("/session/") {
        Some(rest) => !rest.ends_with("/mcp"),
        None => matches!(path, "/create-session" | "/registry"),
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
    use aes_gcm::aead::rand_core::RngCore;
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aes_gcm::aead::OsRng.fill_bytes(&mut bytes);
    format!(
        "mmx_{}",
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

/// The host of a `Host` header value: lowercase, without port or brackets.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
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
        let access = Access::new(None, &["Mux.Example.com".into()], &[]);
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
        for refused in ["evil.example", "mux.example.com.evil", "10.0.0.1:8000", ""] {
            assert!(!access.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn origins_are_loopback_or_listed() {
        let access = Access::new(None, &[], &["https://app.example.com/".into()]);
        assert!(access.origin_allowed("http://localhost:3000"));
        assert!(access.origin_allowed("https://app.example.com"));
        assert!(!access.origin_allowed("https://app.example.com.evil"));
        assert!(!access.origin_allowed("null"));
    }

    #[test]
    fn management_routes_are_the_non_mcp_ones() {
        assert!(is_management("/create-session"));
        assert!(is_management("/registry"));
        assert!(is_management("/session/abc"));
        assert!(is_management("/session/abc/audit"));
        assert!(!is_management("/session/abc/mcp"));
        assert!(!is_management("/healthz"));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("a-long-admin-token", "a-long-admin-token"));
        assert!(!same_secret("a-long-admin-token", "a-long-admin-tokeN"));
        assert!(!same_secret("", "a-long-admin-token"));
    }
}
