//! `wasi:io/streams` and `wasi:io/error`: the guest's input and output
//! streams, whatever is behind them (a TCP connection, stdin, stdout), and
//! what a failed operation says.

use super::Wasi;
use super::bindings::wasi::io::error::{self as wasi_error, HostError};
use super::bindings::wasi::io::streams::{self as wasi_streams, HostInputStream, HostOutputStream};
use super::bindings::wasi::sockets::network::ErrorCode;
use super::poll::Pollable;
use super::stdio::{Stdin, StdioOut};
use super::tcp::stream::{TcpReader, TcpWriter};
use wasmtime::Result;
use wasmtime::component::Resource;

/// The most a `read` returns, and the most `check-write` permits: the 64 KiB
/// Wasmtime's own streams use, so that a guest sees the same sizes under
/// both.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The host's `wasi:io/streams.input-stream`.
#[derive(Debug)]
pub enum InputStream {
    Tcp(TcpReader),
    Stdin(Stdin),
}

/// The host's `wasi:io/streams.output-stream`.
#[derive(Debug)]
pub enum OutputStream {
    Tcp(TcpWriter),
    Stdio(StdioOut),
}

/// The host's `wasi:io/error.error`: what went wrong, as a socket error
/// code where it is one, and in words.
#[derive(Debug)]
pub struct IoError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl IoError {
    /// An error that is a socket error code.
    pub fn code(code: ErrorCode) -> IoError {
        IoError { code: Some(code), message: code.name().to_owned() }
    }

    /// An error in words only.
    pub fn other(message: impl Into<String>) -> IoError {
        IoError { code: None, message: message.into() }
    }
}

/// A stream operation's failure.
#[derive(Debug)]
pub enum StreamError {
    /// The stream has ended; no more can be read or written.
    Closed,
    /// The last operation failed; the stream is closed from now on.
    Failed(IoError),
    /// The guest broke a rule (wrote past `check-write`): it traps.
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for StreamError {
    fn from(error: wasmtime::Error) -> StreamError {
        StreamError::Trap(error)
    }
}

impl From<wasmtime::component::ResourceTableError> for StreamError {
    fn from(error: wasmtime::component::ResourceTableError) -> StreamError {
        StreamError::Trap(error.into())
    }
}

/// What a stream operation returns.
pub type StreamResult<T> = Result<T, StreamError>;

/// The length a guest asked for, capped at what one call hands over.
fn capped(len: u64) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX).min(MAX_CHUNK)
}

impl wasi_streams::Host for Wasi {
    fn convert_stream_error(&mut self, error: StreamError) -> Result<wasi_streams::StreamError> {
        match error {
            StreamError::Closed => Ok(wasi_streams::StreamError::Closed),
            StreamError::Failed(error) => {
                Ok(wasi_streams::StreamError::LastOperationFailed(self.table.push(error)?))
            }
            StreamError::Trap(error) => Err(error),
        }
    }
}

impl HostInputStream for Wasi {
    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        match self.table.get_mut(&stream)? {
            InputStream::Tcp(reader) => reader.read(capped(len)),
            InputStream::Stdin(stdin) => stdin.read(),
        }
    }

    async fn blocking_read(
        &mut self,
        stream: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        loop {
            let chunk = self.read(Resource::new_borrow(stream.rep()), len)?;
            if !chunk.is_empty() || len == 0 {
                return Ok(chunk);
            }
            let pollable = HostInputStream::subscribe(self, Resource::new_borrow(stream.rep()))?;
            let waited = self.wait_one(&pollable).await;
            self.table.delete(pollable)?;
            waited.map_err(StreamError::Trap)?;
        }
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        Ok(self.read(stream, len)?.len() as u64)
    }

    async fn blocking_skip(
        &mut self,
        stream: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        Ok(self.blocking_read(stream, len).await?.len() as u64)
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> Result<Resource<Pollable>> {
        let pollable = match self.table.get(&stream)? {
            InputStream::Tcp(reader) => Pollable::Flag(reader.readiness()),
            InputStream::Stdin(stdin) => Pollable::Flag(stdin.readiness()),
        };
        self.push_pollable(pollable, &stream)
    }

    fn drop(&mut self, stream: Resource<InputStream>) -> Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

impl HostOutputStream for Wasi {
    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        match self.table.get_mut(&stream)? {
            OutputStream::Tcp(writer) => writer.check_write().map(|n| n as u64),
            OutputStream::Stdio(out) => Ok(out.check_write() as u64),
        }
    }

    fn write(&mut self, stream: Resource<OutputStream>, contents: Vec<u8>) -> StreamResult<()> {
        match self.table.get_mut(&stream)? {
            OutputStream::Tcp(writer) => {
                writer.write(&contents)?;
                // What the kernel did not take, `poll` sends when it can.
                if writer.has_unsent() && !self.unsent.contains(&stream.rep()) {
                    self.unsent.push(stream.rep());
                }
                Ok(())
            }
            OutputStream::Stdio(out) => out.write(&contents),
        }
    }

    async fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        contents: Vec<u8>,
    ) -> StreamResult<()> {
        // As in Wasmtime: the call is for small writes, and says so.
        if contents.len() > 4096 {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "Buffer too large for blocking-write-and-flush (expected at most 4096)"
            )));
        }
        let mut rest = &contents[..];
        while !rest.is_empty() {
            let permit = self.wait_writable(&stream).await?;
            let n = rest.len().min(permit);
            self.write(Resource::new_borrow(stream.rep()), rest[..n].to_vec())?;
            rest = &rest[n..];
        }
        self.blocking_flush(stream).await
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        match self.table.get_mut(&stream)? {
            OutputStream::Tcp(writer) => writer.flush(),
            OutputStream::Stdio(out) => out.flush(),
        }
    }

    async fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        self.flush(Resource::new_borrow(stream.rep()))?;
        self.wait_writable(&stream).await.map(drop)
    }

    fn subscribe(&mut self, stream: Resource<OutputStream>) -> Result<Resource<Pollable>> {
        let pollable = match self.table.get(&stream)? {
            OutputStream::Tcp(writer) => Pollable::Flag(writer.readiness()),
            OutputStream::Stdio(_) => Pollable::Always,
        };
        self.push_pollable(pollable, &stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        self.write(stream, vec![0; usize::try_from(len).unwrap_or(usize::MAX)])
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let zeroes = vec![0; usize::try_from(len).unwrap_or(usize::MAX).min(4097)];
        self.blocking_write_and_flush(stream, zeroes).await
    }

    fn splice(
        &mut self,
        stream: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let permit = self.check_write(Resource::new_borrow(stream.rep()))?;
        let chunk = self.read(src, len.min(permit))?;
        let n = chunk.len() as u64;
        self.write(stream, chunk)?;
        Ok(n)
    }

    async fn blocking_splice(
        &mut self,
        stream: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let permit = self.wait_writable(&stream).await? as u64;
        let chunk = self.blocking_read(src, len.min(permit)).await?;
        let n = chunk.len() as u64;
        self.write(stream, chunk)?;
        Ok(n)
    }

    fn drop(&mut self, stream: Resource<OutputStream>) -> Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

impl Wasi {
    /// Sends what TCP writers hold for sockets that have become writable
    /// since, and forgets the writers that hold nothing any more.
    pub fn send_unsent(&mut self) {
        let mut i = 0;
        while i < self.unsent.len() {
            let stream = Resource::<OutputStream>::new_borrow(self.unsent[i]);
            let holds = match self.table.get_mut(&stream) {
                Ok(OutputStream::Tcp(writer)) => writer.send_in_background(),
                // Dropped, its bytes handed to a task of their own.
                _ => false,
            };
            if holds {
                i += 1;
            } else {
                self.unsent.swap_remove(i);
            }
        }
    }

    /// Waits until `stream` permits a write, and says how much.
    async fn wait_writable(&mut self, stream: &Resource<OutputStream>) -> StreamResult<usize> {
        loop {
            let permit = self.check_write(Resource::new_borrow(stream.rep()))?;
            if permit > 0 {
                return Ok(usize::try_from(permit).unwrap_or(usize::MAX));
            }
            let pollable = HostOutputStream::subscribe(self, Resource::new_borrow(stream.rep()))?;
            let waited = self.wait_one(&pollable).await;
            self.table.delete(pollable)?;
            waited.map_err(StreamError::Trap)?;
        }
    }
}

impl wasi_error::Host for Wasi {}

impl HostError for Wasi {
    fn to_debug_string(&mut self, error: Resource<IoError>) -> Result<String> {
        Ok(self.table.get(&error)?.message.clone())
    }

    fn drop(&mut self, error: Resource<IoError>) -> Result<()> {
        self.table.delete(error)?;
        Ok(())
    }
}
