//! The stdio transport: one child process per backend session, spoken to in
//! newline-delimited JSON-RPC on its stdin and stdout. Its stderr is logged
//! at debug level, and it never outlives mcp-mux, even one killed outright.

use std::sync::{Arc, Weak};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

use super::channel::{Ends, Link, Open, Outgoing};
use super::exchange::MAX_RESPONSE_BYTES;
use crate::backend::error::BackendError;
use crate::registry::{AuthScheme, ServerConfig, StdioCommand};

/// The variables a child inherits from mcp-mux's environment: enough to find
/// programs and a home directory, and none of mcp-mux's own secrets. The
/// registry's `env` adds the rest.
const INHERITED_ENV: [&str; 8] = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TMPDIR",
];
/// How long a child may take to exit after its end of input before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The longest stderr line logged; the rest of a longer one is dropped.
const MAX_LOG_LINE: usize = 2048;

/// Starts a stdio backend's process, once per connection.
pub(crate) struct Stdio {
    server: Arc<ServerConfig>,
    command: StdioCommand,
    /// The environment variable that carries the session's credential.
    credential: Option<(String, SecretString)>,
}

impl Stdio {
    /// A server with `auth.env` takes the session's `credential` in that
    /// variable.
    pub(super) fn new(
        server: Arc<ServerConfig>,
        command: StdioCommand,
        credential: Option<SecretString>,
    ) -> Self {
        let credential = match (&server.auth, credential) {
            (AuthScheme::Env { var, .. }, Some(secret)) => Some((var.clone(), secret)),
            _ => None,
        };
        Stdio {
            server,
            command,
            credential,
        }
    }

    /// Spawns the child and the tasks that write to it, read from it and
    /// reap it. Called from an async task, so on a runtime worker thread
    /// (see `die_with_parent`).
    fn spawn(&self, link: &Arc<Link>, ends: Ends) -> Result<(), BackendError> {
        let mut command = Command::new(&self.command.command);
        command.args(&self.command.args).env_clear();
        for name in INHERITED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(&self.command.env);
        if let Some((var, secret)) = &self.credential {
            command.env(var, secret.expose_secret());
        }
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // A safety net: a child whose handle is dropped unreaped is killed.
            .kill_on_drop(true)
            // Its own process group, so that a Ctrl-C meant for mcp-mux does
            // not reach it before mcp-mux has ended its sessions.
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|error| self.spawn_error(&error))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            // Cannot happen with piped stdio; the child is killed on drop.
            return Err(BackendError::Protocol {
                server: self.server.name.clone(),
                reason: "the process has no standard streams".into(),
            });
        };
        let server = self.server.name.clone();
        tracing::debug!(%server, pid = child.id(), "started a backend process");
        tokio::spawn(write_messages(stdin, ends.outgoing, server.clone()));
        tokio::spawn(log_stderr(stderr, server.clone()));
        let (link, stop, connection) = (Arc::downgrade(link), ends.stop, ends.connection);
        tokio::spawn(async move {
            supervise(child, stdout, link, stop, server).await;
            // The child and its pipes are gone.
            drop(connection);
        });
        Ok(())
    }

    fn spawn_error(&self, error: &std::io::Error) -> BackendError {
        use std::io::ErrorKind;
        BackendError::Spawn {
            server: self.server.name.clone(),
            command: self.command.name().to_owned(),
            reason: error.to_string(),
            // A missing or forbidden command stays so: no use trying again.
            transient: !matches!(
                error.kind(),
                ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::InvalidInput
            ),
        }
    }
}

impl Open for Stdio {
    /// A child process holds three pipes.
    const DESCRIPTORS: u32 = 3;

    async fn open(&self, link: &Arc<Link>, ends: Ends) -> Result<(), BackendError> {
        self.spawn(link, ends)
    }
}

/// Has the kernel kill the child (SIGKILL) when the thread that spawned it
/// exits, so that no child outlives mcp-mux, even one killed with SIGKILL.
/// The signal is tied to the spawning *thread*, not the process: children
/// must be spawned from a runtime worker thread, which lives as long as the
/// runtime, never from `spawn_blocking`, whose threads exit when idle.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "the parent-death signal can only be set in the child, between fork and exec"
)]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are, and the
    // closure allocates nothing (an OS error code is stored inline).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // mcp-mux may have died between fork and prctl, and then no
            // signal will ever come: give up instead of running orphaned.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// Writes each message as one line, in order. Dropping stdin when the queue
/// closes gives the child its end of input.
async fn write_messages(
    mut stdin: ChildStdin,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    server: String,
) {
    while let Some(Outgoing { bytes, sent, .. }) = outgoing.recv().await {
        let written = write_line(&mut stdin, &bytes).await;
        if let Err(error) = &written {
            tracing::debug!(%server, %error, "writing to the backend process failed");
        }
        let failed = written.is_err();
        if let Some(sent) = sent {
            // A line that could not be written was never read: the message
            // did not reach the backend.
            let _ = sent.send(written.map_err(|_| BackendError::SessionExpired {
                server: server.clone(),
            }));
        }
        if failed {
            return;
        }
    }
}

async fn write_line(stdin: &mut ChildStdin, bytes: &[u8]) -> std::io::Result<()> {
    stdin.write_all(bytes).await?;
    stdin.write_all(b"\n").await?;
    stdin.flush().await
}

/// Why the supervisor stopped reading.
enum Ending {
    /// mcp-mux ended the link (or dropped it): stdin is closed.
    Stopped,
    Exited(std::io::Result<std::process::ExitStatus>),
    StdoutClosed,
    TooLong,
    ReadFailed(std::io::Error),
}

/// Reads the child's stdout line by line into the link, until the child
/// exits, the link ends, or the child breaks the protocol; then makes sure
/// the child is gone and reaped.
async fn supervise(
    mut child: Child,
    stdout: ChildStdout,
    link: Weak<Link>,
    mut stop: oneshot::Receiver<()>,
    server: String,
) {
    let mut stdout = BufReader::new(stdout);
    let mut line = Vec::new();
    let ending = loop {
        tokio::select! {
            _ = &mut stop => break Ending::Stopped,
            status = child.wait() => break Ending::Exited(status),
            read = read_line(&mut stdout, &mut line, MAX_RESPONSE_BYTES) => match read {
                Ok(Line::Complete) => {
                    let Some(link) = link.upgrade() else {
                        break Ending::Stopped;
                    };
                    link.deliver(&String::from_utf8_lossy(&line));
                    line.clear();
                }
                Ok(Line::End) => break Ending::StdoutClosed,
                Ok(Line::TooLong) => break Ending::TooLong,
                Err(error) => break Ending::ReadFailed(error),
            },
        }
    };
    let lost = |cause: String| BackendError::Transport {
        server: server.clone(),
        cause,
    };
    let (error, grace) = match ending {
        Ending::Stopped => (None, EXIT_GRACE),
        Ending::Exited(status) => {
            let status = status.map_or_else(|error| error.to_string(), |status| status.to_string());
            (
                Some(lost(format!("the backend process exited ({status})"))),
                Duration::ZERO,
            )
        }
        Ending::StdoutClosed => (
            Some(lost("the backend process closed its stdout".into())),
            EXIT_GRACE,
        ),
        Ending::TooLong => (
            Some(BackendError::Protocol {
                server: server.clone(),
                reason: format!("a message is longer than the {MAX_RESPONSE_BYTES}-byte limit"),
            }),
            Duration::ZERO,
        ),
        Ending::ReadFailed(error) => (
            Some(lost(format!(
                "reading the backend's stdout failed: {error}"
            ))),
            Duration::ZERO,
        ),
    };
    if let (Some(error), Some(link)) = (error, link.upgrade()) {
        link.lose(error);
    }
    end_child(&mut child, grace, &server).await;
}

/// Waits up to `grace` for the child to exit, kills it if it has not, and
/// reaps it.
async fn end_child(child: &mut Child, grace: Duration, server: &str) {
    if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
        tracing::debug!(server, %status, "backend process ended");
        return;
    }
    if let Err(error) = child.start_kill() {
        tracing::debug!(server, %error, "killing the backend process failed");
    }
    match child.wait().await {
        Ok(status) => tracing::debug!(server, %status, "backend process killed"),
        Err(error) => tracing::debug!(server, %error, "reaping the backend process failed"),
    }
}

/// Logs the child's stderr at debug level, line by line, each cut to a
/// bounded length.
async fn log_stderr(stderr: ChildStderr, server: String) {
    let mut stderr = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        match read_line(&mut stderr, &mut line, MAX_LOG_LINE).await {
            Ok(Line::Complete) => {
                tracing::debug!(%server, line = %String::from_utf8_lossy(&line), "backend stderr");
            }
            Ok(Line::TooLong) => {
                tracing::debug!(%server, line = %String::from_utf8_lossy(&line), "backend stderr (cut)");
                if !matches!(skip_line(&mut stderr).await, Ok(true)) {
                    return;
                }
            }
            Ok(Line::End) | Err(_) => return,
        }
        line.clear();
    }
}

/// How reading a line ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// `line` holds a whole line, without its newline.
    Complete,
    /// The stream ended (a last line without a newline is dropped).
    End,
    /// The line passed `limit`: `line` holds its first `limit` bytes.
    TooLong,
}

/// Appends the next line to `line`, reading at most `limit` bytes of it.
/// Cancel-safe: what was read stays in `line` and the reader.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::End);
        }
        let (taken, complete) = match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => (end, true),
            None => (available.len(), false),
        };
        let room = limit.saturating_sub(line.len());
        if taken > room {
            line.extend_from_slice(&available[..room]);
            reader.consume(room);
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(if complete { taken + 1 } else { taken });
        if complete {
            return Ok(Line::Complete);
        }
    }
}

/// Skips the rest of a line; false at the end of the stream.
async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<bool> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(false);
        }
        match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(true);
            }
            None => {
                let all = available.len();
                reader.consume(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_whole_and_bounded() {
        let mut reader = BufReader::with_capacity(3, &b"ab\n{\"x\":1}\n0123456789\nlast"[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.expect("read"),
            Line::Complete
        );
        assert_eq!(line, b"ab");
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.expect("read"),
            Line::Complete
        );
        assert_eq!(line, b"{\"x\":1}");
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.expect("read"),
            Line::Complete,
            "a line of exactly the limit is whole"
        );
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).await.expect("read"),
            Line::End,
            "a last line without a newline is dropped"
        );
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_cut_and_the_rest_can_be_skipped() {
        let mut reader = BufReader::with_capacity(4, &b"0123456789\nnext\n"[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 6).await.expect("read"),
            Line::TooLong
        );
        assert_eq!(line, b"012345");
        assert!(skip_line(&mut reader).await.expect("read"));
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line, 6).await.expect("read"),
            Line::Complete
        );
        assert_eq!(line, b"next");
    }
}
