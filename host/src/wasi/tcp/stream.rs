//! A connected socket's streams: the reader and the writer of one
//! [`Connection`].
//!
//! Reads go from the kernel straight into a buffer that is not zeroed
//! first, one `recv` per call, while the socket's read flag is set; a short
//! read shows the kernel's buffer drained (as Tokio's own streams take it),
//! so the next read waits for the event loop instead of spending a system
//! call to learn there is nothing.
//!
//! Writes go to the kernel at once, one `send` per call. What the kernel
//! does not take (its buffer is full) is kept, at most one permit's worth,
//! `check-write` permits nothing more until it is sent, and the store's
//! `poll` sends it as soon as the socket is writable ([`Wasi::send_unsent`]):
//! no task, lock or future per write. A writer dropped with bytes still
//! unsent hands them to a task that sends them within [`LINGER`] and then
//! lets the socket go, as the kernel does with its own buffer when a socket
//! is closed; the drop itself never waits.
//!
//! [`Wasi::send_unsent`]: crate::wasi::Wasi::send_unsent

use crate::metrics::{End, WorkerMetrics};
use crate::wasi::network::error_code;
use crate::wasi::readiness::{Direction, Readiness};
use crate::wasi::streams::{IoError, MAX_CHUNK, StreamError, StreamResult};
use rustix::buffer::spare_capacity;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, Shutdown};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

/// How long bytes left unsent by a dropped writer may take to leave. Ten
/// seconds delivers them to any client that is reading; one that is not
/// loses them, as it would to a closed socket's kernel buffer.
pub const LINGER: Duration = Duration::from_secs(10);

/// A connected socket, shared by its `tcp-socket` resource and its streams.
#[derive(Debug)]
pub struct Connection {
    pub fd: AsyncFd<OwnedFd>,
    pub peer: SocketAddr,
    /// The writer holds bytes the kernel has not taken.
    unsent: AtomicBool,
    /// `shutdown(send)` was asked for while bytes were unsent: whoever sends
    /// the last of them shuts the sending side down after them.
    fin_after_unsent: AtomicBool,
    /// `shutdown(both)`: unsent bytes are dropped, not sent.
    aborted: AtomicBool,
    /// The guest shut this direction down: its stream is closed, even where
    /// the kernel would still hand over what it has (Linux keeps reading
    /// after `SHUT_RD`).
    read_shut: AtomicBool,
    write_shut: AtomicBool,
    /// What the host counts of a connection it accepted.
    traffic: Option<Traffic>,
}

impl Connection {
    /// A connection the guest made.
    pub fn outbound(fd: AsyncFd<OwnedFd>, peer: SocketAddr) -> Arc<Connection> {
        Arc::new(Connection::new(fd, peer, None))
    }

    /// A connection the guest accepted, counted in `stats`.
    pub fn accepted(
        fd: AsyncFd<OwnedFd>,
        peer: SocketAddr,
        stats: &Arc<WorkerMetrics>,
    ) -> Arc<Connection> {
        stats.opened();
        Arc::new(Connection::new(fd, peer, Some(Traffic::new(stats.clone()))))
    }

    fn new(fd: AsyncFd<OwnedFd>, peer: SocketAddr, traffic: Option<Traffic>) -> Connection {
        Connection {
            fd,
            peer,
            unsent: AtomicBool::new(false),
            fin_after_unsent: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            traffic,
        }
    }

    /// Shuts down one or both directions. The sending side waits for bytes
    /// the writer still holds, unless both directions are shut: a guest
    /// ending a connection both ways is done with what it wrote.
    pub fn shutdown(&self, how: Shutdown) {
        let fd = self.fd.get_ref();
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Relaxed);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write_shut.store(true, Ordering::Relaxed);
        }
        match how {
            Shutdown::Read => {
                let _ = rustix::net::shutdown(fd, Shutdown::Read);
            }
            Shutdown::Write if self.unsent.load(Ordering::Relaxed) => {
                self.fin_after_unsent.store(true, Ordering::Relaxed);
            }
            Shutdown::Write => {
                let _ = rustix::net::shutdown(fd, Shutdown::Write);
            }
            Shutdown::Both => {
                self.aborted.store(true, Ordering::Relaxed);
                let _ = rustix::net::shutdown(fd, Shutdown::Both);
            }
        }
    }
}

/// The reading half of a [`Connection`].
#[derive(Debug)]
pub struct TcpReader {
    connection: Arc<Connection>,
    readable: Arc<Readiness>,
    /// The stream has ended: its end, or its error, has been said.
    closed: bool,
}

impl TcpReader {
    pub fn new(connection: Arc<Connection>, readable: Arc<Readiness>) -> TcpReader {
        TcpReader { connection, readable, closed: false }
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.readable.clone()
    }

    /// Up to `len` bytes, or none if none have arrived; `closed` at the end.
    pub fn read(&mut self, len: usize) -> StreamResult<Vec<u8>> {
        if self.closed || self.connection.read_shut.load(Ordering::Relaxed) {
            self.closed = true;
            return Err(StreamError::Closed);
        }
        if len == 0 || !self.readable.is_ready() {
            return Ok(Vec::new());
        }
        let fd = &self.connection.fd;
        let mut chunk = Vec::with_capacity(len);
        match rustix::net::recv(fd.get_ref(), spare_capacity(&mut chunk), RecvFlags::empty()) {
            Ok(_) if chunk.is_empty() => {
                self.closed = true;
                if let Some(traffic) = &self.connection.traffic {
                    traffic.finished();
                }
                Err(StreamError::Closed)
            }
            Ok(_) => {
                if let Some(traffic) = &self.connection.traffic {
                    traffic.received(chunk.len());
                }
                // A short read drained the kernel's buffer: the next read
                // waits for the event loop.
                if chunk.len() < len {
                    self.readable.arm(fd, Direction::Read);
                }
                Ok(chunk)
            }
            Err(Errno::AGAIN) => {
                self.readable.arm(fd, Direction::Read);
                Ok(Vec::new())
            }
            // An error is said once; after it, the stream is closed.
            Err(errno) => {
                self.closed = true;
                if let Some(traffic) = &self.connection.traffic {
                    traffic.failed(errno);
                }
                Err(StreamError::Failed(IoError::code(error_code(errno))))
            }
        }
    }
}

/// The writing half of a [`Connection`].
#[derive(Debug)]
pub struct TcpWriter {
    connection: Arc<Connection>,
    writable: Arc<Readiness>,
    /// What `check-write` last permitted, less what was written since.
    permit: usize,
    /// Bytes written that the kernel has not taken yet.
    unsent: Vec<u8>,
    /// The stream has ended: a send failed, or the sending side was shut.
    closed: bool,
    /// Why a send failed, until the guest has been told.
    failure: Option<IoError>,
}

/// A send found the stream ended; [`TcpWriter::end`] says how.
struct Ended;

impl TcpWriter {
    pub fn new(connection: Arc<Connection>, writable: Arc<Readiness>) -> TcpWriter {
        TcpWriter {
            connection,
            writable,
            permit: 0,
            unsent: Vec::new(),
            closed: false,
            failure: None,
        }
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.writable.clone()
    }

    /// Whether bytes wait for the kernel.
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// How much the next writes may hand over: nothing while earlier bytes
    /// wait for the kernel, else [`MAX_CHUNK`].
    pub fn check_write(&mut self) -> StreamResult<usize> {
        self.send_unsent().map_err(|Ended| self.end())?;
        if self.shut() {
            return Err(StreamError::Closed);
        }
        self.permit = if self.unsent.is_empty() { MAX_CHUNK } else { 0 };
        Ok(self.permit)
    }

    /// Hands `bytes` over; the guest traps if `check-write` did not permit
    /// that many.
    pub fn write(&mut self, bytes: &[u8]) -> StreamResult<()> {
        if self.closed {
            return Err(self.end());
        }
        if self.shut() {
            return Err(StreamError::Closed);
        }
        if bytes.len() > self.permit {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "the guest wrote {} bytes where check-write permitted {}: not permitted to write \
                 more than check-write allows",
                bytes.len(),
                self.permit
            )));
        }
        self.permit -= bytes.len();
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(traffic) = &self.connection.traffic {
            traffic.stats.replies.inc();
        }
        if !self.unsent.is_empty() {
            self.unsent.extend_from_slice(bytes);
            return self.send_unsent().map_err(|Ended| self.end());
        }
        let sent = self.send(bytes).map_err(|Ended| self.end())?;
        if sent < bytes.len() {
            self.unsent.extend_from_slice(&bytes[sent..]);
            self.connection.unsent.store(true, Ordering::Relaxed);
            if let Some(traffic) = &self.connection.traffic {
                traffic.stalling();
            }
        }
        Ok(())
    }

    /// WASI's flush: the bytes are the kernel's once sent, so flushing is
    /// sending what is still held.
    pub fn flush(&mut self) -> StreamResult<()> {
        self.send_unsent().map_err(|Ended| self.end())?;
        if self.shut() {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    /// The guest shut the sending side down: what it wrote before still
    /// goes, but it may write no more.
    fn shut(&self) -> bool {
        self.connection.write_shut.load(Ordering::Relaxed)
    }

    /// Sends what it can of the bytes held, for the store's `poll`; a
    /// failure is the guest's to learn at its next call. Says whether bytes
    /// are still held.
    pub fn send_in_background(&mut self) -> bool {
        let _ = self.send_unsent();
        self.has_unsent()
    }

    /// How the stream ended, for the guest: the failure once, then `closed`.
    fn end(&mut self) -> StreamError {
        match self.failure.take() {
            Some(failure) => StreamError::Failed(failure),
            None => StreamError::Closed,
        }
    }

    /// Sends what the kernel takes of the bytes held, and shuts the sending
    /// side down after the last of them if that was asked for meanwhile.
    fn send_unsent(&mut self) -> Result<(), Ended> {
        if self.closed {
            return Err(Ended);
        }
        if self.connection.aborted.load(Ordering::Relaxed) {
            self.unsent.clear();
        }
        if self.unsent.is_empty() {
            return Ok(());
        }
        let unsent = std::mem::take(&mut self.unsent);
        let sent = self.send(&unsent)?;
        self.unsent = unsent;
        self.unsent.drain(..sent);
        if self.unsent.is_empty() {
            self.connection.all_sent();
            if self.connection.fin_after_unsent.load(Ordering::Relaxed) {
                self.connection.shutdown(Shutdown::Write);
            }
        }
        Ok(())
    }

    /// One `send` of as much of `bytes` as the kernel takes now; 0 if it
    /// takes nothing, in which case the flag's waker is registered.
    fn send(&mut self, bytes: &[u8]) -> Result<usize, Ended> {
        if !self.writable.is_ready() {
            return Ok(0);
        }
        let fd = &self.connection.fd;
        match rustix::net::send(fd.get_ref(), bytes, SendFlags::NOSIGNAL) {
            Ok(n) => {
                if let Some(traffic) = &self.connection.traffic {
                    traffic.sent(n);
                }
                // The kernel's buffer is full.
                if n < bytes.len() {
                    self.writable.arm(fd, Direction::Write);
                }
                Ok(n)
            }
            Err(Errno::AGAIN) => {
                self.writable.arm(fd, Direction::Write);
                Ok(0)
            }
            Err(errno) => {
                self.unsent.clear();
                self.connection.all_sent();
                self.closed = true;
                // EPIPE: the sending side was shut down, by the guest or the
                // peer; the stream is simply closed.
                if errno != Errno::PIPE {
                    self.failure = Some(IoError::code(error_code(errno)));
                }
                if let Some(traffic) = &self.connection.traffic
                    && !self.shut()
                {
                    traffic.failed(errno);
                }
                Err(Ended)
            }
        }
    }
}

impl Drop for TcpWriter {
    fn drop(&mut self) {
        if self.unsent.is_empty() || self.connection.aborted.load(Ordering::Relaxed) {
            return;
        }
        let connection = self.connection.clone();
        let unsent = std::mem::take(&mut self.unsent);
        // A drop happens inside a host call, on the guest's runtime, in
        // its worker's span.
        let lingering = async move {
            let _ = tokio::time::timeout(LINGER, linger(&connection, unsent)).await;
        };
        tokio::spawn(tracing::Instrument::in_current_span(lingering));
    }
}

/// Sends `unsent` on `connection` as it becomes writable, then shuts the
/// sending side down if the guest asked for that meanwhile.
async fn linger(connection: &Connection, mut unsent: Vec<u8>) {
    while !unsent.is_empty() {
        if connection.aborted.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut guard) = connection.fd.writable().await else { return };
        match guard.try_io(|fd| {
            rustix::net::send(fd.get_ref(), &unsent, SendFlags::NOSIGNAL)
                .map_err(std::io::Error::from)
        }) {
            Err(_would_block) => continue,
            Ok(Ok(n)) => {
                if let Some(traffic) = &connection.traffic {
                    traffic.sent(n);
                }
                drop(unsent.drain(..n));
            }
            Ok(Err(errno)) => {
                if let Some(traffic) = &connection.traffic {
                    traffic.failed(Errno::from_io_error(&errno).unwrap_or(Errno::IO));
                }
                return;
            }
        }
    }
    connection.all_sent();
    if connection.fin_after_unsent.load(Ordering::Relaxed) {
        connection.shutdown(Shutdown::Write);
    }
}

impl Connection {
    /// The writer holds no more bytes.
    fn all_sent(&self) {
        self.unsent.store(false, Ordering::Relaxed);
        if let Some(traffic) = &self.traffic {
            traffic.unsent_since.store(NEVER, Ordering::Relaxed);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(traffic) = &self.traffic else { return };
        let open = traffic.opened.elapsed();
        let end = traffic.end(open);
        traffic.stats.closed(end, open);
        tracing::debug!(
            peer = %self.peer,
            received = traffic.received.load(Ordering::Relaxed),
            sent = traffic.sent.load(Ordering::Relaxed),
            duration = ?open,
            end = ?end,
            "connection closed"
        );
    }
}

/// A time not yet come.
const NEVER: u64 = u64::MAX;

/// What the host counts of one accepted connection: its bytes, and what
/// tells how it ended. Times are nanoseconds since it was accepted.
#[derive(Debug)]
struct Traffic {
    stats: Arc<WorkerMetrics>,
    opened: Instant,
    received: AtomicU64,
    sent: AtomicU64,
    /// When the client last sent something.
    last_read: AtomicU64,
    /// When the client finished sending.
    finished_at: AtomicU64,
    /// Since when the writer has held bytes the kernel would not take.
    unsent_since: AtomicU64,
    /// A failure, if the connection failed: [`RESET`] or [`ERROR`].
    failure: AtomicU8,
}

const RESET: u8 = 1;
const ERROR: u8 = 2;

impl Traffic {
    fn new(stats: Arc<WorkerMetrics>) -> Traffic {
        Traffic {
            stats,
            opened: Instant::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_read: AtomicU64::new(0),
            finished_at: AtomicU64::new(NEVER),
            unsent_since: AtomicU64::new(NEVER),
            failure: AtomicU8::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(NEVER - 1)
    }

    fn received(&self, n: usize) {
        self.stats.received.inc_by(n as u64);
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        self.last_read.store(self.now(), Ordering::Relaxed);
    }

    fn sent(&self, n: usize) {
        self.stats.sent.inc_by(n as u64);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn finished(&self) {
        self.finished_at.store(self.now(), Ordering::Relaxed);
    }

    /// The kernel took less than was written.
    fn stalling(&self) {
        let now = self.now();
        let _ =
            self.unsent_since.compare_exchange(NEVER, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn failed(&self, errno: Errno) {
        let failure = match errno {
            Errno::CONNRESET | Errno::PIPE => RESET,
            _ => ERROR,
        };
        let _ = self.failure.compare_exchange(0, failure, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How the connection ended, `open` after it was accepted: a failure if
    /// it had one; else the client's end of stream, if it came first; else
    /// the host's shutdown; else which of the guest's timeouts had run out.
    fn end(&self, open: Duration) -> End {
        match self.failure.load(Ordering::Relaxed) {
            RESET => return End::reset,
            ERROR => return End::error,
            _ => {}
        }
        let now = u64::try_from(open.as_nanos()).unwrap_or(NEVER - 1);
        let elapsed = |since: &AtomicU64| match since.load(Ordering::Relaxed) {
            NEVER => None,
            at => Some(Duration::from_nanos(now.saturating_sub(at))),
        };
        let timeouts = self.stats.timeouts;
        let stalled = elapsed(&self.unsent_since);
        if let Some(finished) = elapsed(&self.finished_at) {
            return match timeouts {
                Some(t) if stalled.is_some() && finished >= t.half_close => End::half_close_timeout,
                _ => End::finished,
            };
        }
        if self.stats.draining() {
            return End::shutdown;
        }
        let Some(t) = timeouts else { return End::closed };
        if stalled.is_some_and(|stalled| stalled >= t.stall) {
            End::stall_timeout
        } else if elapsed(&self.last_read).is_some_and(|idle| idle >= t.idle) {
            End::idle_timeout
        } else {
            End::closed
        }
    }
}
