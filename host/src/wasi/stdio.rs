//! `wasi:cli/stdin`, `stdout` and `stderr`.
//!
//! Stdin is the shutdown signal: it stays empty until the host closes it
//! ([`StdinCloser`]), which the echo guest (with `--shutdown-on-eof`) takes
//! as "stop accepting, finish, return". Stdout and stderr are the host's
//! own, written to at once: the guest's log lines are small.

use super::Wasi;
use super::bindings::wasi::cli::{stderr, stdin, stdout};
use super::readiness::{Notifier, Readiness};
use super::streams::{InputStream, MAX_CHUNK, OutputStream, StreamError, StreamResult};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::Resource;

/// The guest's stdin: every `get-stdin` shares it.
#[derive(Debug, Clone)]
pub struct Stdin(Arc<StdinState>);

#[derive(Debug)]
struct StdinState {
    closed: AtomicBool,
    readiness: Arc<Readiness>,
}

/// Closes a guest's stdin, from any thread.
#[derive(Debug, Clone)]
pub struct StdinCloser(Arc<StdinState>);

impl Stdin {
    /// A stdin for the store whose `poll` waits on `notifier`, and what
    /// closes it.
    pub fn new(notifier: &Arc<Notifier>) -> (Stdin, StdinCloser) {
        let state = Arc::new(StdinState {
            closed: AtomicBool::new(false),
            readiness: Readiness::new(notifier),
        });
        (Stdin(state.clone()), StdinCloser(state))
    }

    /// Nothing, until stdin is closed; then `closed`.
    pub fn read(&mut self) -> StreamResult<Vec<u8>> {
        // Cleared before the look, so that a close in between sets it again.
        self.0.readiness.clear();
        if self.0.closed.load(Ordering::SeqCst) {
            self.0.readiness.set();
            return Err(StreamError::Closed);
        }
        Ok(Vec::new())
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.0.readiness.clone()
    }
}

impl StdinCloser {
    /// Ends the guest's stdin: its reads see the end of the stream.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.readiness.set();
    }
}

/// The guest's stdout or stderr: the host's.
#[derive(Debug)]
pub enum StdioOut {
    Stdout,
    Stderr,
}

impl StdioOut {
    pub fn check_write(&self) -> usize {
        MAX_CHUNK
    }

    pub fn write(&mut self, bytes: &[u8]) -> StreamResult<()> {
        let written = match self {
            StdioOut::Stdout => std::io::stdout().write_all(bytes),
            StdioOut::Stderr => std::io::stderr().write_all(bytes),
        };
        // The host's own output gone (a closed pipe): the guest's is too.
        written.map_err(|_| StreamError::Closed)
    }

    pub fn flush(&mut self) -> StreamResult<()> {
        let flushed = match self {
            StdioOut::Stdout => std::io::stdout().flush(),
            StdioOut::Stderr => std::io::stderr().flush(),
        };
        flushed.map_err(|_| StreamError::Closed)
    }
}

impl stdin::Host for Wasi {
    fn get_stdin(&mut self) -> wasmtime::Result<Resource<InputStream>> {
        Ok(self.table.push(InputStream::Stdin(self.stdin.clone()))?)
    }
}

impl stdout::Host for Wasi {
    fn get_stdout(&mut self) -> wasmtime::Result<Resource<OutputStream>> {
        Ok(self.table.push(OutputStream::Stdio(StdioOut::Stdout))?)
    }
}

impl stderr::Host for Wasi {
    fn get_stderr(&mut self) -> wasmtime::Result<Resource<OutputStream>> {
        Ok(self.table.push(OutputStream::Stdio(StdioOut::Stderr))?)
    }
}
