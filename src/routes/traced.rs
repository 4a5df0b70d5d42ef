//! What a request's access line needs of its trace: the handler that
//! traced it notes the trace, and the access log reads it after the span
//! has ended; and the W3C trace context headers a request carries.

use actix_web::http::header::HeaderName;
use actix_web::{HttpMessage, HttpRequest};

use crate::traces::{self, RequestTrace};

/// The trace a request's span belongs to, for its access line.
#[derive(Debug, Clone)]
pub struct TracedAs {
    pub trace_id: String,
}

/// Notes the trace a request is served in, for its access line.
pub fn note_trace(request: &HttpRequest, trace: Option<&RequestTrace>) {
    if let Some(trace) = trace {
        request.extensions_mut().insert(TracedAs {
            trace_id: trace.trace_id(),
        });
    }
}

/// A W3C trace context header of the request. Looked up by a constant
/// name: actix-web would allocate one for a name given as text.
pub fn trace_header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    const TRACEPARENT: HeaderName = HeaderName::from_static(traces::TRACEPARENT);
    const TRACESTATE: HeaderName = HeaderName::from_static(traces::TRACESTATE);
    let name = match name {
        traces::TRACEPARENT => &TRACEPARENT,
        traces::TRACESTATE => &TRACESTATE,
        _ => return None,
    };
    request.headers().get(name)?.to_str().ok()
}
