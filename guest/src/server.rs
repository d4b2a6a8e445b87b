//! The accept loop: one task per connection, the limits that keep one client
//! from hurting the others, graceful shutdown, and the log lines.
//!
//! What a connection's bytes mean is the handler's business, and carrying
//! out its verdicts is [`session`]'s. Here a connection is accepted, handed
//! to the handler, bounded in time ([`Guarded`]), its errors are logged with
//! its peer, the handler is told how it ended, and nothing a client or a
//! handler's verdict does can stop the loop.

use crate::config::{Config, Limits};
use crate::net::error::is_client_gone;
use crate::net::{TcpListener, TcpStream};
use crate::runtime::time::{self, Instant, timeout};
use crate::runtime::{self, Either, Permit, Semaphore, Signal, race};
use crate::session::{self, CloseReason, Connection, End, Handler, Session};
use crate::shutdown;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// How long the accept loop pauses after a failed accept (the process out of
/// descriptors or memory). Retrying at once would spin on a listener that
/// stays ready; 100 ms lets connections close meanwhile, as nginx does.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection shares.
struct Shared<H> {
    handler: H,
    limits: Limits,
    /// Set when the service is to shut down gracefully.
    shutdown: Signal,
}

/// Serves `config` with `handler` until shut down, or until an error that
/// makes a listener itself unusable.
pub async fn run<H: Handler + 'static>(config: Config, handler: H) -> io::Result<()> {
    let mut listeners = Vec::with_capacity(config.listen.len());
    for &addr in &config.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        println!("listening on {}", listener.local_addr());
        listeners.push(listener);
    }

    let shared = Rc::new(Shared { handler, limits: config.limits, shutdown: Signal::default() });
    if config.shutdown_on_eof {
        runtime::spawn(shutdown::on_stdin_eof(shared.shutdown.clone()));
    }
    // One accept loop per listener, all within the one cap.
    let slots = Semaphore::new(shared.limits.max_connections);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| runtime::spawn(accept_loop(listener, shared.clone(), slots.clone())))
        .collect();
    for accepting in loops {
        accepting.await;
    }
    println!("shutting down: {} connections to finish", slots.in_use());
    slots.until_idle().await;
    println!("shut down");
    Ok(())
}

/// Accepts from `listener` while a slot is free, until shutdown; then closes
/// it, which refuses newcomers.
async fn accept_loop<H: Handler + 'static>(
    listener: TcpListener,
    shared: Rc<Shared<H>>,
    slots: Semaphore,
) {
    // Accepts failed in a row, logged when the streak starts and ends.
    let mut failures = 0u64;
    while let Some(permit) = next_slot(&slots, &shared).await {
        match race(listener.accept(), shared.shutdown.wait()).await {
            Either::Left(Ok(stream)) => {
                if failures > 0 {
                    eprintln!("accept: working again after {failures} failed attempts");
                    failures = 0;
                }
                runtime::spawn(connection(stream, shared.clone(), permit));
            }
            // A client that left before it was accepted: its business alone.
            Either::Left(Err(e)) if is_client_gone(&e) => {}
            Either::Left(Err(e)) => {
                if failures == 0 {
                    eprintln!(
                        "accept: {e}; backing off, one attempt every {} ms, until it works",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
                failures += 1;
                race(time::sleep(ACCEPT_BACKOFF), shared.shutdown.wait()).await;
            }
            Either::Right(()) => break,
        }
    }
    // Open connections stop reading, deliver what they owe, and close.
    drop(listener);
}

/// A permit for one more connection, waiting while the cap is reached; `None`
/// once shutdown begins.
///
/// While waiting, the listener is not polled: new clients queue in the
/// kernel's backlog, and the open connections carry on undisturbed.
async fn next_slot<H>(slots: &Semaphore, shared: &Shared<H>) -> Option<Permit> {
    if shared.shutdown.is_set() {
        return None;
    }
    if let Some(permit) = slots.try_acquire() {
        return Some(permit);
    }
    eprintln!(
        "connection cap ({}) reached: not accepting until a connection closes",
        shared.limits.max_connections
    );
    match race(slots.acquire(), shared.shutdown.wait()).await {
        Either::Left(permit) => Some(permit),
        Either::Right(()) => None,
    }
}

async fn connection<H: Handler>(stream: TcpStream, shared: Rc<Shared<H>>, permit: Permit) {
    let peer = stream.peer_addr();
    println!("Connection from {peer}");
    let mut conn = Guarded {
        stream,
        limits: &shared.limits,
        shutdown_signal: &shared.shutdown,
        last_read: Instant::recent(),
        idle: time::sleep_until(Instant::recent() + shared.limits.idle_timeout),
        shutdown: shared.shutdown.wait(),
        finish_by: None,
        timed_out: None,
    };
    match shared.handler.accept(peer) {
        Ok((mut handler, greeting)) => {
            let reason = match session::serve(&mut conn, &mut handler, greeting).await {
                Ok(End::Finished) if shared.shutdown.is_set() => CloseReason::Shutdown,
                Ok(End::Finished) => CloseReason::Finished,
                Ok(End::Closed) => CloseReason::Closed,
                Ok(End::Aborted) => CloseReason::Aborted,
                Err(e) => {
                    eprintln!("connection {peer}: {e}");
                    conn.reason(&e)
                }
            };
            handler.closed(reason);
        }
        Err(refusal) => eprintln!("connection {peer}: refused by the handler: {refusal}"),
    }
    // The slot is held until the connection is really closed, so that
    // connections lingering on a stalled write still count against the cap.
    conn.stream.close().await;
    drop(permit);
    println!("Connection closed");
}

/// A connection as a session sees it: the stream, with the limits and the
/// shutdown signal applied.
///
/// The idle timer and the shutdown wait live as long as the connection, so
/// that a request costs neither a timer nor a registration: the timer is
/// only moved, lazily, when it goes off before the connection is really
/// idle.
struct Guarded<'a> {
    stream: TcpStream,
    limits: &'a Limits,
    shutdown_signal: &'a Signal,
    /// When the client last sent something.
    last_read: Instant,
    /// Goes off at the earliest moment the connection could be idle too long.
    idle: time::Sleep,
    shutdown: crate::runtime::SignalWait<'a>,
    /// Once the client has finished sending: when the last replies are due.
    finish_by: Option<Instant>,
    /// Which limit ended the connection, if one did.
    timed_out: Option<CloseReason>,
}

impl Guarded<'_> {
    /// Why the connection ended with `error`, for the handler.
    fn reason(&self, error: &io::Error) -> CloseReason {
        match (self.timed_out, error.kind()) {
            (Some(reason), _) => reason,
            (None, io::ErrorKind::InvalidData) => CloseReason::Aborted,
            (None, _) => CloseReason::Reset,
        }
    }

    /// How long the next write may wait for the client to read.
    fn write_limit(&self) -> Duration {
        let stall = self.limits.stall_timeout;
        match self.finish_by {
            Some(deadline) => stall.min(deadline.duration_since(Instant::recent())),
            None => stall,
        }
    }

    fn write_timed_out(&mut self, limit: Duration) -> io::Error {
        self.timed_out = Some(CloseReason::StallTimeout);
        let reason = if limit < self.limits.stall_timeout {
            format!(
                "replies not delivered within {:?} of the client's end of stream",
                self.limits.half_close_timeout
            )
        } else {
            format!("no progress writing for {limit:?}: the client is not reading")
        };
        io::Error::new(io::ErrorKind::TimedOut, reason)
    }
}

impl Connection for Guarded<'_> {
    async fn read(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        // On shutdown a connection stops reading and delivers what it owes:
        // to the protocol, that looks like the client's end of stream.
        if self.shutdown_signal.is_set() {
            return Ok(None);
        }
        let idle = self.limits.idle_timeout;
        let chunk = loop {
            let wakes = race(&mut self.idle, &mut self.shutdown);
            match race(self.stream.read(max), wakes).await {
                Either::Left(read) => break read?,
                Either::Right(Either::Right(())) => break None,
                Either::Right(Either::Left(())) => {
                    let due = self.last_read + idle;
                    if Instant::recent() >= due {
                        self.timed_out = Some(CloseReason::IdleTimeout);
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("idle for {idle:?}"),
                        ));
                    }
                    self.idle.reset(due);
                }
            }
        };
        self.last_read = Instant::recent();
        if chunk.is_none() {
            self.finish_by = Some(Instant::recent() + self.limits.half_close_timeout);
        }
        Ok(chunk)
    }

    async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let limit = self.write_limit();
        match timeout(limit, self.stream.write(data)).await {
            Ok(written) => written,
            Err(_) => Err(self.write_timed_out(limit)),
        }
    }

    async fn finish(&mut self) -> io::Result<()> {
        let limit = self.write_limit();
        match timeout(limit, self.stream.shutdown_write()).await {
            Ok(done) => done,
            Err(_) => Err(self.write_timed_out(limit)),
        }
    }

    async fn pause(&mut self, duration: Duration) {
        // Shutdown cuts the pause short; the next read then ends the stream.
        race(time::sleep(duration), &mut self.shutdown).await;
        // The pause was the handler's, not the client's idleness.
        self.last_read = Instant::recent();
    }
}
