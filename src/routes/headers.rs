//! The headers every answer carries, set in one place (the guard): no
//! answer is sniffed into another type, and every HTML page (the console,
//! Swagger UI under `/docs/`, where an operator may type the admin token)
//! is never framed by another site and never cached. A page that sets
//! stricter ones of its own (the console's policy) keeps them.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

/// Adds what `headers` lacks of the safe headers.
pub fn add_safe_headers(headers: &mut HeaderMap) {
    add(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        });
    if html {
        add(headers, header::X_FRAME_OPTIONS, "DENY");
        // Only what cannot break a page's own scripts and styles.
        add(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        );
        add(headers, header::CACHE_CONTROL, "no-store");
        // Not `no-referrer`: under it browsers send `Origin: null` with a
        // form, which the Origin check then refuses.
        add(headers, header::REFERRER_POLICY, "same-origin");
    }
}

fn add(headers: &mut HeaderMap, name: header::HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The value of the cookie `name` a request sent, if it sent one.
pub fn request_cookie<'a>(request: &'a actix_web::HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_gets_every_safe_header_and_keeps_its_own_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        add_safe_headers(&mut headers);
        assert_eq!(headers.get(header::X_FRAME_OPTIONS).expect("set"), "DENY");
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).expect("set"),
            "nosniff"
        );
        assert_eq!(headers.get(header::CACHE_CONTROL).expect("set"), "no-store");
        assert_eq!(
            headers.get(header::CONTENT_SECURITY_POLICY).expect("set"),
            "default-src 'none'; frame-ancestors 'none'"
        );

        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add_safe_headers(&mut json);
        assert_eq!(
            json.get(header::X_CONTENT_TYPE_OPTIONS).expect("set"),
            "nosniff"
        );
        assert!(
            !json.contains_key(header::CACHE_CONTROL),
            "JSON keeps its caching"
        );
    }
}
