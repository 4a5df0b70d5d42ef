//! The text log format: tracing-subscriber's `Full` format, in which every
//! request's access line is written here, in the same words. `Full` paints
//! each field name through its styles even with ANSI off, and formats the
//! whole timestamp anew each line: together 3 % of a call's instructions,
//! for the one line every call writes. Every other line, and
//! every line to a terminal (in colour), is `Full`'s own.

use std::cell::Cell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as FullTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::ACCESS_LINE_TARGET;

/// tracing-subscriber's text format, the access line written directly.
#[derive(Default)]
pub struct TextFormat {
    full: Format<Full, FullTime>,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || !is_access_line(meta) {
            return self.full.format_event(context, writer, event);
        }
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_word(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = context.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = PlainFields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(writer)
    }
}

/// The access line: its target and its `elapsed_ms`, which no other line
/// of that target has.
fn is_access_line(meta: &Metadata<'_>) -> bool {
    meta.target() == ACCESS_LINE_TARGET && meta.fields().field("elapsed_ms").is_some()
}

/// The level as `Full` writes it without colour: five characters wide.
fn level_word(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

thread_local! {
    /// The second last written on this thread, and its text up to the
    /// seconds: made again once a second, not every line.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// `2026-12-06T16:17:00.123456Z `, as `Full` writes the time (UTC,
/// microseconds), and the space after it.
fn write_timestamp(writer: &mut impl Write, now: SystemTime) -> fmt::Result {
    let Ok(since_epoch) = now.duration_since(UNIX_EPOCH) else {
        return writer.write_str("<unknown time> ");
    };
    let second = since_epoch.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != second {
        let Some(time) = i64::try_from(second)
            .ok()
            .and_then(|second| chrono::DateTime::from_timestamp(second, 0))
        else {
            return writer.write_str("<unknown time> ");
        };
        let mut written = String::with_capacity(19);
        write!(written, "{}", time.format("%Y-%m-%dT%H:%M:%S"))?;
        // Past the year 9999 the text is longer: written as it is, not kept.
        let Ok(fixed) = <[u8; 19]>::try_from(written.as_bytes()) else {
            return write!(writer, "{written}.{:06}Z ", since_epoch.subsec_micros());
        };
        text = fixed;
        SECOND.set((second, text));
    }
    // The text was made from a `&str` of ASCII digits and punctuation.
    let seconds = std::str::from_utf8(&text).map_err(|_| fmt::Error)?;
    write!(writer, "{seconds}.{:06}Z ", since_epoch.subsec_micros())
}

/// Fields as `Full`'s default visitor writes them without colour: the
/// message as it is, then `name=value` with each value's `Debug` (a string
/// quoted and escaped), separated by spaces.
struct PlainFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for PlainFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        self.result = self.result.and_then(|()| match name {
            "message" => write!(self.writer, "{value:?}"),
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.writer, "{name}={value:?}")
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::test_sink::Sink;

    /// Every access line `Full` and `TextFormat` write for the same events,
    /// each line's time cut off (and checked to be a time).
    fn both_ways(events: impl Fn()) -> (Vec<String>, Vec<String>) {
        let written = |ours: bool| {
            let lines = Sink::default();
            let builder = tracing_subscriber::fmt()
                .with_writer(lines.clone())
                .with_ansi(false)
                .with_max_level(Level::TRACE);
            if ours {
                tracing::subscriber::with_default(
                    builder.event_format(TextFormat::default()).finish(),
                    &events,
                );
            } else {
                tracing::subscriber::with_default(builder.finish(), &events);
            }
            lines
                .written()
                .0
                .lines()
                .map(|line| {
                    let (time, rest) = line.split_at(28);
                    assert!(is_time(time), "{line}");
                    rest.to_owned()
                })
                .collect::<Vec<_>>()
        };
        (written(false), written(true))
    }

    fn is_time(text: &str) -> bool {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.6fZ ").is_ok()
            && text.len() == 28
    }

    fn access_lines() {
        let method = "POST";
        let pattern = "/session/{id}/mcp";
        let session = Some(tracing::field::display("0b7c2f8e…"));
        let subject: Option<String> = Some("ann\n INFO forged \u{1b}[31m\"x\"".into());
        let trace_id = Some(tracing::field::display("4bf92f3577b34da6a3ce929d0e0e4736"));
        tracing::info!(target: ACCESS_LINE_TARGET, %method, route = %pattern, session, subject, status = 200u16, elapsed_ms = %"0.12", trace_id, "request");
        let none: Option<String> = None;
        let no_id: Option<tracing::field::DisplayValue<&str>> = None;
        tracing::debug!(target: ACCESS_LINE_TARGET, %method, route = %"-", session = no_id, subject = none, status = 404u16, elapsed_ms = %"1.50", trace_id = no_id, "request");
        let span = tracing::info_span!("request", trace_id = "abc", r#type = 3);
        let _entered = span.enter();
        let inner = tracing::debug_span!("inner");
        let _inner = inner.enter();
        tracing::warn!(target: ACCESS_LINE_TARGET, %method, route = %pattern, status = 502u16, elapsed_ms = %"3.00", r#type = "x", "request");
    }

    #[test]
    fn the_access_line_is_written_as_full_writes_it() {
        let (full, ours) = both_ways(access_lines);
        assert_eq!(full.len(), 3, "{full:?}");
        assert_eq!(ours, full);
        assert!(
            full[0].contains(r#"subject="ann\n INFO forged \u{1b}[31m\"x\"""#),
            "a user's value stays escaped: {}",
            full[0]
        );
    }

    #[test]
    fn other_lines_are_full_s_own() {
        let (full, ours) = both_ways(|| {
            tracing::info!(target: ACCESS_LINE_TARGET, status = 200u16, "no elapsed_ms");
            tracing::info!(elapsed_ms = 1, "another target");
            let error = std::io::Error::other("cause");
            tracing::warn!(error = &error as &dyn std::error::Error, "failed");
        });
        assert_eq!(ours, full);
    }

    #[test]
    fn times_are_written_to_the_microsecond_in_utc() {
        for seconds in [0, 951_782_400, 1_796_000_000, 1_796_000_001] {
            for micros in [0, 7, 999_999] {
                let time = UNIX_EPOCH + std::time::Duration::new(seconds, micros * 1000);
                let mut ours = String::new();
                write_timestamp(&mut ours, time).expect("written");
                let expected = chrono::DateTime::<chrono::Utc>::from(time)
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ ")
                    .to_string();
                assert_eq!(ours, expected);
            }
        }
    }
}
