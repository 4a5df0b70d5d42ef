//! DNS-rebinding protection: a browser page from another site must not reach
//! a gateway bound to loopback, so a present `Origin` must be a loopback origin.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::error::ApiError;

/// Refuses a request whose `Origin` header names a non-loopback origin (or
/// is not an origin at all, `null` included). Requests without one pass:
/// they do not come from a browser page.
pub fn check_origin(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = origin
        .to_str()
        .ok()
        .and_then(|origin| url::Url::parse(origin).ok())
        .is_some_and(|url| match url.host() {
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            reason: "Origin not allowed",
        })
    }
}
