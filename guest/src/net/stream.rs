//! A connected TCP stream.

use super::address;
use super::error::{from_code, from_stream};
use crate::runtime::readiness;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};

/// The smallest read asked of the host.
///
/// Wasmtime's own WASI allocates and zeroes a buffer of the requested size on
/// every `read`, data or not (`echo-host` does neither), so a connection
/// carrying small messages should not ask for 64 KiB each time. 4 KiB holds
/// a typical request whole.
const MIN_READ: usize = 4 * 1024;

/// The largest read asked of the host: Wasmtime returns no more than 64 KiB
/// per call anyway.
const MAX_READ: usize = 64 * 1024;

/// A TCP connection, accepted by a [`TcpListener`](super::TcpListener).
///
/// End it with [`TcpStream::close`] rather than by dropping it: in Wasmtime's
/// own WASI, dropping an output stream waits, inside the host and so for
/// every task, until a write still in flight is done, which is never if the
/// client has stopped reading.
pub struct TcpStream {
    // Field order is drop order, and WASI requires children to be dropped
    // before their parents: each pollable before the stream it watches, both
    // streams before the socket.
    readable: Rc<Pollable>,
    writable: Rc<Pollable>,
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
    peer_addr: SocketAddr,
    /// How much the next read asks for: doubles while reads come back full,
    /// halves while they come back mostly empty.
    read_size: usize,
    /// The last read took everything there was, so the next one first waits
    /// for readiness rather than spend a host call to learn there is nothing.
    drained: bool,
}

impl TcpStream {
    pub(crate) fn new(
        socket: TcpSocket,
        input: InputStream,
        output: OutputStream,
    ) -> io::Result<TcpStream> {
        let peer_addr = address::from_wasi(socket.remote_address().map_err(from_code)?);
        Ok(TcpStream {
            readable: Rc::new(input.subscribe()),
            writable: Rc::new(output.subscribe()),
            input,
            output,
            socket,
            peer_addr,
            read_size: MIN_READ,
            drained: false,
        })
    }

    /// The address of the peer.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The next chunk the peer sent, at most `max` bytes and never empty, or
    /// `None` once the peer has shut down its sending side.
    pub async fn read(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let want = self.read_size.min(max).max(1);
        loop {
            if self.drained {
                readiness(&self.readable).await;
            }
            match self.input.read(want as u64) {
                // An empty read is not the end of the stream: WASI reports
                // that as `closed`. It only means nothing has arrived yet.
                Ok(chunk) if chunk.is_empty() => self.drained = true,
                Ok(chunk) => {
                    self.drained = chunk.len() < want;
                    if chunk.len() == want {
                        self.read_size = (self.read_size * 2).min(MAX_READ);
                    } else if chunk.len() < want / 4 {
                        self.read_size = (self.read_size / 2).max(MIN_READ);
                    }
                    return Ok(Some(chunk));
                }
                Err(StreamError::Closed) => return Ok(None),
                Err(error) => return Err(from_stream(error)),
            }
        }
    }

    /// Writes as much of `data` as the stream accepts now (at least one byte,
    /// waiting if it accepts none), and says how much that was.
    ///
    /// Never writes more than `check-write` permits: Wasmtime traps on that.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            let permit = self.output.check_write().map_err(from_stream)?;
            if permit == 0 {
                readiness(&self.writable).await;
                continue;
            }
            let n = data.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.output.write(&data[..n]).map_err(from_stream)?;
            return Ok(n);
        }
    }

    /// Waits until everything written has been handed to the network.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.output.flush().map_err(from_stream)?;
        // The flush has completed when writing is permitted again.
        while self.output.check_write().map_err(from_stream)? == 0 {
            readiness(&self.writable).await;
        }
        Ok(())
    }

    /// Flushes, then shuts down the sending side: the peer reads end of
    /// stream after the last byte written.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.socket.shutdown(ShutdownType::Send).map_err(from_code)
    }

    /// Closes the connection without blocking other tasks.
    ///
    /// The socket is shut down both ways first. Then this waits, parked like
    /// any other task, until no write is in flight, so that dropping the
    /// stream cannot block. Under `echo-host` that is at once: shutting down
    /// both ways drops what the host had not sent yet. Wasmtime's own WASI
    /// finishes a write in flight first, so under the stock CLI a connection
    /// whose client stopped reading lingers until it reads or goes away.
    pub async fn close(self) {
        let _ = self.socket.shutdown(ShutdownType::Both);
        while let Ok(0) = self.output.check_write() {
            readiness(&self.writable).await;
        }
    }
}
