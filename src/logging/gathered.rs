//! Where log lines go: stderr, gathered. A line written at once costs a
//! `write(2)` of its own, and at info every request writes one (the access
//! line): 4 % of a call's CPU. Lines at info and below are gathered and
//! written together at most [`GATHER`] after the first of them, or as soon
//! as [`FULL`] bytes wait; a warning or an error is written at once, after
//! the lines gathered before it, so that the order holds. The lines still
//! gathered when the process ends are written by [`LogFlush`]'s drop; a
//! process killed outright loses at most [`GATHER`] of lines.
//!
//! Not `tracing-appender`'s non-blocking writer: it hands each line to its
//! own thread, which still writes each line with a `write(2)` of its own
//! and is woken for it.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait for others before it is written.
pub const GATHER: Duration = Duration::from_millis(100);
/// Bytes gathered that are written without waiting for the rest.
pub const FULL: usize = 64 * 1024;

/// Log lines gathered on their way to `sink`.
pub struct GatheredLines<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

struct Shared<W> {
    state: Mutex<State<W>>,
    /// Told when the first line of a gathering arrives.
    first_line: Condvar,
}

struct State<W> {
    waiting: Vec<u8>,
    sink: W,
}

impl<W: Write + Send + 'static> GatheredLines<W> {
    /// Gathers lines for `sink`, and starts the thread that writes what was
    /// gathered once `gather` has passed since its first line.
    pub fn new(sink: W, gather: Duration) -> (Self, LogFlush) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: Vec::with_capacity(FULL),
                sink,
            }),
            first_line: Condvar::new(),
        });
        let writer = Arc::clone(&shared);
        // Should the thread not start, a line is written with the next
        // warning, once FULL bytes wait, or at exit.
        let _ = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.write_gathered_lines(gather));
        let flush: Arc<dyn Flush> = shared.clone();
        (GatheredLines { shared }, LogFlush(flush))
    }
}

impl<W: Write + Send> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        // A line is bytes: a panic while one was added leaves nothing to mend.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, line: &[u8], urgent: bool) {
        let mut state = self.lock();
        let first = state.waiting.is_empty();
        state.waiting.extend_from_slice(line);
        if urgent || state.waiting.len() >= FULL {
            state.write_out();
        } else if first {
            self.first_line.notify_one();
        }
    }

    fn write_gathered_lines(&self, gather: Duration) {
        loop {
            let state = self.lock();
            let state = self
                .first_line
                .wait_while(state, |state| state.waiting.is_empty())
                .unwrap_or_else(PoisonError::into_inner);
            drop(state);
            std::thread::sleep(gather);
            self.lock().write_out();
        }
    }
}

impl<W: Write> State<W> {
    fn write_out(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        // Nowhere is left to say that stderr failed: the lines are dropped.
        let _ = self.sink.write_all(&self.waiting);
        let _ = self.sink.flush();
        self.waiting.clear();
    }
}

trait Flush: Send + Sync {
    fn flush(&self);
}

impl<W: Write + Send> Flush for Shared<W> {
    fn flush(&self) {
        self.lock().write_out();
    }
}

/// Writes the lines still gathered when dropped: keep it until the
/// process ends.
#[must_use = "lines gathered at exit are written when this is dropped"]
pub struct LogFlush(Arc<dyn Flush>);

impl Drop for LogFlush {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// One line on its way: added to the gathered lines in one piece.
pub struct LineWriter<'a, W: Write + Send> {
    shared: &'a Shared<W>,
    urgent: bool,
}

impl<W: Write + Send> Write for LineWriter<'_, W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.shared.add(line, self.urgent);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for GatheredLines<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::test_sink::Sink;

    /// What `events` wrote through lines gathered for `gather` (more may
    /// follow), and the flush at exit.
    fn logged(gather: Duration, events: impl FnOnce()) -> (Sink, LogFlush) {
        let sink = Sink::default();
        let (lines, flush) = GatheredLines::new(sink.clone(), gather);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        (sink, flush)
    }

    #[test]
    fn info_lines_are_written_together_once_the_gathering_time_passed() {
        let (seen, _flush) = logged(Duration::from_millis(300), || {
            tracing::info!("one");
            tracing::info!("two");
        });
        assert_eq!(seen.written(), (String::new(), 0), "nothing written yet");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.written().1 == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            seen.written(),
            (" INFO one\n INFO two\n".to_owned(), 1),
            "both lines in one write"
        );
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_gathered_before_it() {
        let (seen, _flush) = logged(Duration::from_secs(3600), || {
            tracing::info!("before");
            tracing::warn!("careful");
            tracing::info!("after");
            tracing::error!("broken");
        });
        assert_eq!(
            seen.written(),
            (
                " INFO before\n WARN careful\n INFO after\nERROR broken\n".to_owned(),
                2
            )
        );
    }

    #[test]
    fn full_gatherings_are_written_without_waiting_and_the_rest_at_exit() {
        let line = "x".repeat(1000);
        let lines_per_write = FULL.div_ceil(line.len() + " INFO \n".len());
        let (seen, flush) = logged(Duration::from_secs(3600), || {
            for _ in 0..lines_per_write + 1 {
                tracing::info!("{line}");
            }
        });
        let (text, writes) = seen.written();
        assert_eq!((text.lines().count(), writes), (lines_per_write, 1));
        drop(flush);
        let (text, writes) = seen.written();
        assert_eq!((text.lines().count(), writes), (lines_per_write + 1, 2));
        assert!(
            text.lines()
                .all(|written| written == format!(" INFO {line}"))
        );
    }
}
