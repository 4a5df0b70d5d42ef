//! Serving a request within its trace: the span ends with the answer's
//! status, and the trace is noted for the access line, which is written
//! after the span has ended; and the W3C trace context headers a request
//! carries.

use actix_web::http::header::HeaderName;
use actix_web::{HttpMessage, HttpRequest};

use crate::traces::{self, RequestTrace};

/// The trace a request's span belongs to, for its access line.
#[derive(Debug, Clone)]
pub struct TracedAs {
    pub trace_id: String,
}

/// Serves `work` within `trace` (noted for the access line), and ends the
/// trace's span with the HTTP status `status_of` reads off the answer.
pub async fn serve_traced<T>(
    request: &HttpRequest,
    trace: Option<RequestTrace>,
    work: impl Future<Output = T>,
    status_of: impl FnOnce(&T) -> u16,
) -> T {
    if let Some(trace) = &trace {
        request.extensions_mut().insert(TracedAs {
            trace_id: trace.trace_id(),
        });
    }
    let answered = traces::within(trace.as_ref(), work).await;
    if let Some(trace) = trace {
        trace.finish(status_of(&answered));
    }
    answered
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
