//! An event stream cut into chunks where the network might cut it, fed to
//! `SseDecoder` with a small size limit.
//!
//! Input: byte 0 picks the limit, byte 1 how many chunk lengths follow, then
//! those lengths (one byte each), then the stream. Whatever is left after the
//! last length is one more chunk.
//!
//! Invariants: no panic; the events, the last event id and the retry time do
//! not depend on where the stream is cut; an over-long line or event is an
//! error wherever it is cut; no event exceeds the limit; and a message framed
//! by `frame_message` decodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_mux::mcp::sse::{SseDecoder, SseError, SseEvent, frame_message};

/// Everything a decoder tells its caller after reading a stream.
#[derive(Debug, PartialEq)]
struct Decoded {
    events: Vec<SseEvent>,
    error: Option<SseError>,
    last_event_id: Option<String>,
    retry: Option<std::time::Duration>,
}

fn decode<'a>(limit: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = SseDecoder::new(limit);
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        match decoder.feed(chunk) {
            Ok(more) => events.extend(more),
            Err(e) => {
                // Callers drop the stream on the first error.
                error = Some(e);
                break;
            }
        }
    }
    Decoded {
        events,
        error,
        last_event_id: decoder.last_event_id().map(str::to_owned),
        retry: decoder.retry(),
    }
}

fuzz_target!(|data: &[u8]| {
    let [limit_byte, count, rest @ ..] = data else {
        return;
    };
    let limit = 8 + usize::from(*limit_byte) * 2;
    let count = usize::from(*count % 32).min(rest.len());
    let (lengths, stream) = rest.split_at(count);

    let mut chunks = Vec::new();
    let mut remaining = stream;
    for &length in lengths {
        let (chunk, tail) = remaining.split_at(usize::from(length).min(remaining.len()));
        chunks.push(chunk);
        remaining = tail;
    }
    chunks.push(remaining);

    let whole = decode(limit, [stream]);
    let cut = decode(limit, chunks.iter().copied());
    let unlimited = decode(usize::MAX, [stream]);
    assert_eq!(unlimited.error, None);

    for event in whole.events.iter().chain(&cut.events) {
        assert!(event.data.len() <= limit, "data past the limit");
        assert!(event.id.as_ref().is_none_or(|id| id.len() <= limit));
        assert!(event.event.as_ref().is_none_or(|name| name.len() <= limit));
    }
    match &whole.error {
        None => {
            assert_eq!(cut, whole, "the cut stream decodes differently");
            assert_eq!(whole.events, unlimited.events, "the limit changed events");
        }
        Some(error) => {
            // One chunk's events are lost with its error, so the cut stream
            // may have delivered some: those the stream really holds.
            assert_eq!(cut.error.as_ref(), Some(error), "the cut stream passed");
            assert!(
                unlimited.events.starts_with(&cut.events),
                "the cut stream made up events"
            );
        }
    }

    if let Ok(message) = std::str::from_utf8(stream) {
        let framed = decode(usize::MAX, [frame_message(stream).as_slice()]);
        let expected = message.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(
            framed.events,
            vec![SseEvent {
                event: Some("message".to_owned()),
                id: None,
                data: expected,
            }],
            "a framed message did not decode to itself"
        );
    }
});
