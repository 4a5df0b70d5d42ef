//! A Server-Sent Events decoder (the `text/event-stream` format), fed with
//! whatever chunks the network delivers.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event stream line or event exceeded {limit} bytes")]
    TooLarge { limit: usize },
}

/// Incremental decoder: lines may end in LF, CRLF or CR and may be split
/// across chunks anywhere, including between the CR and LF of one line end.
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<std::time::Duration>,
    after_cr: bool,
    at_stream_start: bool,
    limit: usize,
}

impl SseDecoder {
    /// A decoder refusing any line or event larger than `limit` bytes, so a
    /// peer cannot make mcp-mux buffer without end.
    pub fn new(limit: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            after_cr: false,
            at_stream_start: true,
            limit,
        }
    }

    /// The last event id the stream set, dispatched or not: what a client
    /// sends as `Last-Event-ID` to resume.
    pub fn last_event_id(&self) -> Option<&str> {
        self.id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection time the stream asked for with `retry:`.
    pub fn retry(&self) -> Option<std::time::Duration> {
        self.retry
    }

    /// Prepares for a new connection of the same stream: a half-received
    /// line or event is dropped, the last event id and retry time are kept.
    pub fn reconnected(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.after_cr = false;
        self.at_stream_start = true;
    }

    /// Feeds one chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut events)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events)?;
                }
                _ => {
                    self.line.push(byte);
                    if self.line.len() > self.limit {
                        return Err(SseError::TooLarge { limit: self.limit });
                    }
                }
            }
            if self.data.len() > self.limit {
                return Err(SseError::TooLarge { limit: self.limit });
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw).into_owned();
        // Each invalid byte becomes a 3-byte U+FFFD: a line within the limit
        // as received may be past it once decoded.
        if line.len() > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        if self.at_stream_start {
            self.at_stream_start = false;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // An id containing NUL is ignored, as the format requires.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" => {
                if let Ok(millis) = value.parse::<u64>() {
                    self.retry = Some(std::time::Duration::from_millis(millis));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        events.push(SseEvent {
            event,
            id: self.id.clone(),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// One SSE event carrying one JSON-RPC message. No `id:`: streams are not
/// resumable, and an id would invite clients to try.
pub fn frame_message(message: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(message.len() + 24);
    event.extend_from_slice(b"event: message\n");
    // A line break would end the `data:` field and the rest of the message
    // would be read as other fields or a second event. JSON allows them as
    // whitespace and a backend's raw result keeps them, so each line gets a
    // `data:` field of its own; decoders join the lines with LF.
    let mut rest = message;
    loop {
        event.extend_from_slice(b"data: ");
        let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            event.extend_from_slice(rest);
            break;
        };
        event.extend_from_slice(&rest[..end]);
        event.push(b'\n');
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + if crlf { 2 } else { 1 }..];
    }
    event.extend_from_slice(b"\n\n");
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &str, piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new(1 << 20);
        let mut events = Vec::new();
        for chunk in input.as_bytes().chunks(piece) {
            events.extend(decoder.feed(chunk).expect("within limit"));
        }
        events
    }

    #[test]
    fn events_are_the_same_however_the_stream_is_cut() {
        let input = "\u{feff}: comment\r\nid: 1\r\ndata:\r\n\r\nevent: message\rid: 2\rdata: {\"a\":\rdata:  1}\r\rdata: last\n\n";
        let whole = decode_in_pieces(input, input.len());
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: None,
                    id: Some("1".into()),
                    data: String::new()
                },
                SseEvent {
                    event: Some("message".into()),
                    id: Some("2".into()),
                    data: "{\"a\":\n 1}".into()
                },
                SseEvent {
                    event: None,
                    id: Some("2".into()),
                    data: "last".into()
                },
            ]
        );
        for piece in 1..input.len() {
            assert_eq!(decode_in_pieces(input, piece), whole, "piece size {piece}");
        }
    }

    #[test]
    fn the_last_event_id_and_retry_are_kept_for_resumption() {
        let mut decoder = SseDecoder::new(1024);
        let events = decoder
            .feed(b"id: 41\nretry: 1500\n\nid: 42\ndata: x\n\n")
            .expect("within limit");
        assert_eq!(events.len(), 1, "an event without data is not dispatched");
        assert_eq!(decoder.last_event_id(), Some("42"));
        assert_eq!(
            decoder.retry(),
            Some(std::time::Duration::from_millis(1500))
        );
        decoder.feed(b"retry: soon\nid\n\n").expect("within limit");
        assert_eq!(decoder.last_event_id(), None, "an empty id resets it");
        assert_eq!(
            decoder.retry(),
            Some(std::time::Duration::from_millis(1500)),
            "a bad retry is ignored"
        );
    }

    #[test]
    fn a_reconnection_drops_the_half_event_and_keeps_the_id() {
        let mut decoder = SseDecoder::new(1024);
        decoder
            .feed(b"id: 7\ndata: {\"half\":")
            .expect("within limit");
        decoder.reconnected();
        let events = decoder.feed(b"data: whole\n\n").expect("within limit");
        assert_eq!(
            events,
            vec![SseEvent {
                event: None,
                id: Some("7".into()),
                data: "whole".into()
            }]
        );
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        assert_eq!(decode_in_pieces("data: half", 4), vec![]);
    }

    #[test]
    fn a_framed_message_is_one_event() {
        let message = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let framed = frame_message(message);
        assert_eq!(
            framed,
            [b"event: message\ndata: ".as_slice(), message, b"\n\n"].concat()
        );
        let events = SseDecoder::new(1024).feed(&framed).expect("within limit");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.as_bytes(), message);
    }

    #[test]
    fn a_message_with_line_breaks_is_framed_line_by_line() {
        // A backend's pretty-printed result, passed on as raw JSON.
        let message = "{\r\n  \"jsonrpc\": \"2.0\",\n\n  \"id\": 1,\r  \"result\": {}\n}\n";
        let events = SseDecoder::new(1024)
            .feed(&frame_message(message.as_bytes()))
            .expect("within limit");
        assert_eq!(
            events,
            vec![SseEvent {
                event: Some("message".into()),
                id: None,
                data: message.replace("\r\n", "\n").replace('\r', "\n"),
            }]
        );
        let value: serde_json::Value =
            serde_json::from_str(&events[0].data).expect("still the same JSON");
        assert_eq!(value["id"], 1);

        // The fuzzer's input: nothing but line breaks.
        let events = SseDecoder::new(1024)
            .feed(&frame_message(b"\r\n\r\n\n\r"))
            .expect("within limit");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "\n\n\n\n");
    }

    #[test]
    fn a_line_past_the_limit_once_decoded_is_an_error() {
        // 11 bytes as received, 21 once each invalid byte becomes U+FFFD.
        let mut decoder = SseDecoder::new(12);
        assert_eq!(
            decoder.feed(b"event:\xff\xff\xff\xff\xff\ndata: x\n\n"),
            Err(SseError::TooLarge { limit: 12 })
        );
        let mut decoder = SseDecoder::new(12);
        assert_eq!(
            decoder.feed(b"id: \xff\xff\xff\r\ndata: x\r\n\r\n"),
            Err(SseError::TooLarge { limit: 12 })
        );
        let mut decoder = SseDecoder::new(12);
        let events = decoder
            .feed(b"event:\xffx\ndata:\xff\n\n")
            .expect("within limit once decoded");
        assert_eq!(events[0].event.as_deref(), Some("\u{fffd}x"));
        assert_eq!(events[0].data, "\u{fffd}");
    }

    #[test]
    fn an_oversized_line_is_an_error() {
        let mut decoder = SseDecoder::new(8);
        assert_eq!(
            decoder.feed(b"data: 0123456789"),
            Err(SseError::TooLarge { limit: 8 })
        );
    }
}
