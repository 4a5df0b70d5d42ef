//! Log lines: written in tracing-subscriber's formats, the access line of
//! every request more cheaply in the same words (`text.rs`), and gathered
//! on their way to stderr (`gathered.rs`).

pub mod gathered;
pub mod text;

/// The target of the access line every request writes (`routes`); the
/// text format writes lines of this target with an `elapsed_ms` itself.
pub const ACCESS_LINE_TARGET: &str = "mcp_mux::routes";

/// A sink the logging tests read: the bytes written to it, and how many
/// writes they took.
#[cfg(test)]
mod test_sink {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut seen = self.0.lock().expect("not poisoned");
            seen.0.extend_from_slice(bytes);
            seen.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
        type Writer = Sink;

        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    impl Sink {
        /// The text written, and the writes it took.
        pub fn written(&self) -> (String, usize) {
            let seen = self.0.lock().expect("not poisoned");
            (String::from_utf8_lossy(&seen.0).into_owned(), seen.1)
        }
    }
}
