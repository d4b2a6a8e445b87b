//! A connection's life under a handler: the handler says what to answer
//! and what next ([`Verdict`]); this module reads, writes and ends the
//! connection accordingly, and keeps the server's promises whatever the
//! handler says.
//!
//! It talks to the network only through [`Connection`] and to the handler
//! only through [`Session`], so it knows nothing of sockets, pollables,
//! tasks or components, and is tested natively with a fake connection that
//! splits and delays data at random.
//!
//! The promises, for any chunking and any handler:
//!
//! - every reply is written whole and in order, or [`serve`] returns an
//!   error and the connection ends;
//! - a connection holds at most one reply: the next chunk is read only once
//!   the previous reply is written, so a client that stops reading makes the
//!   server stop reading too, and the kernel's flow control pushes back on
//!   that client alone;
//! - a reply is at most [`MAX_REPLY`] bytes: a longer one aborts the
//!   connection.

use std::io;
use std::time::Duration;

/// The most a single read may return, and so the most a handler is given
/// at once.
///
/// 64 KiB is also the most Wasmtime hands over per `read` call, so asking for
/// more would not return more.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The most bytes one reply may hold.
pub const MAX_REPLY: usize = 1024 * 1024;

/// What the connection does once the reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Read the next chunk.
    Read,
    /// Read the next chunk after this long.
    ReadAfter(Duration),
    /// Deliver the reply, end the stream, close.
    Close,
    /// Close at once; the reply is dropped.
    Abort,
}

/// A handler's answer: bytes to send, then what next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reply: Vec<u8>,
    pub then: Then,
}

impl Verdict {
    /// No reply; read on.
    pub fn read() -> Verdict {
        Verdict { reply: Vec::new(), then: Then::Read }
    }
}

/// How a connection ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client finished sending, and every reply was delivered.
    Finished,
    /// The handler said `close`, and its reply was delivered.
    Closed,
    /// The handler said `abort`, or its reply was longer than [`MAX_REPLY`].
    Aborted,
}

/// Why a connection ended, as the handler is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client finished sending and every reply was delivered.
    Finished,
    /// The handler said `close`.
    Closed,
    /// The handler said `abort`, or its reply was too long.
    Aborted,
    /// Reset by the client, or a network error.
    Reset,
    /// The client sent nothing for the idle timeout.
    IdleTimeout,
    /// A reply made no progress in time, or the last ones were not
    /// delivered within the half-close timeout.
    StallTimeout,
    /// The server shut down gracefully.
    Shutdown,
}

/// What the server asks of a handler: a session for each new client.
pub trait Handler {
    type Session: Session;

    /// A session for a client from `peer`, and its first verdict; or why
    /// the client is refused.
    fn accept(&self, peer: std::net::SocketAddr) -> Result<(Self::Session, Verdict), String>;
}

/// One connection's handler.
pub trait Session {
    /// The answer to a chunk the client sent.
    fn data(&mut self, chunk: &[u8]) -> Verdict;
    /// The answer to the client's end of stream.
    fn finished(&mut self) -> Verdict;
    /// The connection has ended.
    fn closed(self, reason: CloseReason);
}

/// The byte stream a session runs over.
///
/// Each method waits (without blocking other tasks) until it can make
/// progress.
#[allow(async_fn_in_trait, reason = "the guest is single-threaded; no Send bound is wanted")]
pub trait Connection {
    /// The next chunk the peer sent, at most `max` bytes and never empty, or
    /// `None` once the peer has finished sending.
    async fn read(&mut self, max: usize) -> io::Result<Option<Vec<u8>>>;

    /// Writes a non-empty prefix of `data` and says how long it was.
    async fn write(&mut self, data: &[u8]) -> io::Result<usize>;

    /// Waits until everything written has been handed to the network, then
    /// ends the sending side (a FIN, for TCP).
    async fn finish(&mut self) -> io::Result<()>;

    /// Waits `duration` before the next read (a handler's `read-after`).
    async fn pause(&mut self, duration: Duration);
}

/// Runs `session` over `conn`, starting with the handler's first verdict
/// (its greeting), until the client finishes, the handler closes or aborts,
/// or the connection fails.
pub async fn serve(
    conn: &mut impl Connection,
    session: &mut impl Session,
    greeting: Verdict,
) -> io::Result<End> {
    let mut verdict = greeting;
    loop {
        match answer(conn, verdict).await? {
            Then::Read => {}
            Then::ReadAfter(duration) => conn.pause(duration).await,
            Then::Close => return conn.finish().await.map(|()| End::Closed),
            Then::Abort => return Ok(End::Aborted),
        }
        verdict = match conn.read(MAX_CHUNK).await? {
            Some(chunk) => session.data(&chunk),
            None => break,
        };
    }
    // Whatever the handler says after the client's end, nothing more is read.
    match answer(conn, session.finished()).await? {
        Then::Abort => Ok(End::Aborted),
        _ => conn.finish().await.map(|()| End::Finished),
    }
}

/// Writes the verdict's reply unless it aborts; says what next.
async fn answer(conn: &mut impl Connection, verdict: Verdict) -> io::Result<Then> {
    let Verdict { reply, then } = verdict;
    if then == Then::Abort {
        return Ok(Then::Abort);
    }
    if reply.len() > MAX_REPLY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the handler's reply of {} bytes is over the {MAX_REPLY} allowed", reply.len()),
        ));
    }
    write_all(conn, &reply).await?;
    Ok(then)
}

async fn write_all(conn: &mut impl Connection, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = conn.write(data).await?;
        data = &data[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// A connection fed from a script of chunks, answering in pieces of
    /// scripted sizes, and saying "not yet" every other call so that every
    /// await point is exercised.
    #[derive(Default)]
    struct Scripted {
        incoming: VecDeque<Vec<u8>>,
        write_sizes: VecDeque<usize>,
        written: Vec<u8>,
        finished: bool,
        fail_write_after: Option<usize>,
        /// Fail the read after this many chunks have been read.
        fail_read_after: Option<usize>,
        reads: usize,
        stall: bool,
        pauses: Vec<Duration>,
    }

    impl Scripted {
        fn not_yet(&mut self) -> bool {
            self.stall = !self.stall;
            self.stall
        }
    }

    /// Returns `Pending` once, having asked to be polled again, as a real
    /// connection does when the network is not ready yet.
    async fn not_ready_yet() {
        let mut asked = false;
        std::future::poll_fn(|cx| {
            if asked {
                return Poll::Ready(());
            }
            asked = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    impl Connection for Scripted {
        async fn read(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
            if self.not_yet() {
                not_ready_yet().await;
            }
            if self.fail_read_after == Some(self.reads) {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset while reading"));
            }
            self.reads += 1;
            let Some(mut chunk) = self.incoming.pop_front() else { return Ok(None) };
            if chunk.len() > max {
                self.incoming.push_front(chunk.split_off(max));
            }
            assert!(!chunk.is_empty(), "the script must not hold empty chunks");
            Ok(Some(chunk))
        }

        async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            assert!(!self.finished, "write after finish");
            if self.not_yet() {
                not_ready_yet().await;
            }
            if self.fail_write_after.is_some_and(|limit| self.written.len() >= limit) {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "peer reset"));
            }
            let n = self.write_sizes.pop_front().unwrap_or(usize::MAX).clamp(1, data.len());
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }

        async fn finish(&mut self) -> io::Result<()> {
            self.finished = true;
            Ok(())
        }

        async fn pause(&mut self, duration: Duration) {
            self.pauses.push(duration);
        }
    }

    /// The default handler's protocol: `prefix + chunk`.
    struct Prefix<'a>(&'a [u8]);

    impl Session for Prefix<'_> {
        fn data(&mut self, chunk: &[u8]) -> Verdict {
            Verdict { reply: [self.0, chunk].concat(), then: Then::Read }
        }
        fn finished(&mut self) -> Verdict {
            Verdict { reply: Vec::new(), then: Then::Close }
        }
        fn closed(self, _: CloseReason) {}
    }

    /// A handler that answers from a script, and says how it was called.
    #[derive(Default)]
    struct Told {
        verdicts: VecDeque<Verdict>,
        at_end: Option<Verdict>,
        chunks: Vec<Vec<u8>>,
    }

    impl Session for Told {
        fn data(&mut self, chunk: &[u8]) -> Verdict {
            self.chunks.push(chunk.to_vec());
            self.verdicts.pop_front().unwrap_or_else(Verdict::read)
        }
        fn finished(&mut self) -> Verdict {
            self.at_end.take().unwrap_or(Verdict { reply: b"bye".to_vec(), then: Then::Read })
        }
        fn closed(self, _: CloseReason) {}
    }

    fn serve_prefix(conn: &mut Scripted, prefix: &[u8]) -> io::Result<End> {
        block_on(serve(conn, &mut Prefix(prefix), Verdict::read()))
    }

    fn verdict(reply: &[u8], then: Then) -> Verdict {
        Verdict { reply: reply.to_vec(), then }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1_000_000 {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
        panic!("future did not finish");
    }

    /// A small deterministic generator, so that failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn each_chunk_is_answered_with_prefix_and_chunk() {
        let mut conn = Scripted {
            incoming: [b"Hello\n".to_vec(), b"World\n".to_vec()].into(),
            ..Default::default()
        };
        serve_prefix(&mut conn, b"GOT:").unwrap();
        assert_eq!(conn.written, b"GOT:Hello\nGOT:World\n");
        assert!(conn.finished);
    }

    #[test]
    fn empty_prefix_is_a_plain_echo() {
        let mut conn = Scripted {
            incoming: [b"abc".to_vec(), b"\0GOT:".to_vec()].into(),
            ..Default::default()
        };
        serve_prefix(&mut conn, b"").unwrap();
        assert_eq!(conn.written, b"abc\0GOT:");
    }

    #[test]
    fn short_writes_lose_nothing() {
        let mut conn = Scripted {
            incoming: [vec![7; 1000]].into(),
            write_sizes: [1, 2, 3, 500].into(),
            ..Default::default()
        };
        serve_prefix(&mut conn, b"GOT:").unwrap();
        let mut expected = b"GOT:".to_vec();
        expected.extend([7; 1000]);
        assert_eq!(conn.written, expected);
    }

    #[test]
    fn chunks_never_exceed_max_chunk() {
        let mut conn =
            Scripted { incoming: [vec![1; MAX_CHUNK * 2 + 5]].into(), ..Default::default() };
        serve_prefix(&mut conn, b"P").unwrap();
        let mut expected = Vec::new();
        for len in [MAX_CHUNK, MAX_CHUNK, 5] {
            expected.push(b'P');
            expected.extend(std::iter::repeat_n(1, len));
        }
        assert_eq!(conn.written, expected);
    }

    #[test]
    fn a_failed_write_ends_the_connection_without_finishing() {
        let mut conn = Scripted {
            incoming: [b"one".to_vec(), b"two".to_vec()].into(),
            fail_write_after: Some(3),
            write_sizes: [3].into(),
            ..Default::default()
        };
        let err = serve_prefix(&mut conn, b"GOT:").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(conn.written, b"GOT");
        assert!(!conn.finished);
    }

    /// The greeting goes first; `finished`'s reply is delivered before the
    /// end of stream, and its `read` means close.
    #[test]
    fn greeting_first_and_the_last_word_at_the_end() {
        let mut conn = Scripted { incoming: [b"a".to_vec()].into(), ..Default::default() };
        let mut told = Told::default();
        let end = block_on(serve(&mut conn, &mut told, verdict(b"hi\n", Then::Read))).unwrap();
        assert_eq!(end, End::Finished);
        assert_eq!(conn.written, b"hi\nbye");
        assert!(conn.finished);
        assert_eq!(told.chunks, [b"a"]);
    }

    /// `close` delivers the reply, ends the stream, and reads no more.
    #[test]
    fn close_delivers_then_ends() {
        let mut conn =
            Scripted { incoming: [b"one".to_vec(), b"two".to_vec()].into(), ..Default::default() };
        let mut told =
            Told { verdicts: [verdict(b"last", Then::Close)].into(), ..Default::default() };
        let end = block_on(serve(&mut conn, &mut told, Verdict::read())).unwrap();
        assert_eq!(end, End::Closed);
        assert_eq!(conn.written, b"last");
        assert!(conn.finished);
        assert_eq!(told.chunks, [b"one"]);
    }

    /// `abort` drops its reply and ends without finishing the stream, from
    /// the greeting, a chunk, or the end of stream.
    #[test]
    fn abort_drops_the_reply_and_does_not_finish() {
        let mut conn = Scripted { incoming: [b"x".to_vec()].into(), ..Default::default() };
        let mut told = Told::default();
        let end = block_on(serve(&mut conn, &mut told, verdict(b"no", Then::Abort))).unwrap();
        assert_eq!((end, conn.written.len(), conn.finished), (End::Aborted, 0, false));
        assert!(told.chunks.is_empty());

        let mut conn = Scripted { incoming: [b"x".to_vec()].into(), ..Default::default() };
        let mut told = Told {
            verdicts: [verdict(b"ok", Then::Read)].into(),
            at_end: Some(verdict(b"never", Then::Abort)),
            ..Default::default()
        };
        let end = block_on(serve(&mut conn, &mut told, Verdict::read())).unwrap();
        assert_eq!(
            (end, conn.written.as_slice(), conn.finished),
            (End::Aborted, &b"ok"[..], false)
        );
    }

    /// `read-after` pauses before the next read, with the reply written.
    #[test]
    fn read_after_pauses_before_reading() {
        let mut conn =
            Scripted { incoming: [b"a".to_vec(), b"b".to_vec()].into(), ..Default::default() };
        let wait = Duration::from_millis(250);
        let mut told =
            Told { verdicts: [verdict(b"A", Then::ReadAfter(wait))].into(), ..Default::default() };
        block_on(serve(&mut conn, &mut told, Verdict::read())).unwrap();
        assert_eq!(conn.pauses, [wait]);
        assert_eq!(conn.written, b"Abye");
        assert_eq!(told.chunks.len(), 2);
    }

    /// A reply over [`MAX_REPLY`] ends the connection with an error, and
    /// nothing of it is written.
    #[test]
    fn an_overlong_reply_is_refused() {
        let mut conn = Scripted { incoming: [b"a".to_vec()].into(), ..Default::default() };
        let mut told = Told {
            verdicts: [Verdict { reply: vec![0; MAX_REPLY + 1], then: Then::Read }].into(),
            ..Default::default()
        };
        let err = block_on(serve(&mut conn, &mut told, Verdict::read())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(conn.written.is_empty() && !conn.finished);
        let mut conn = Scripted { incoming: [b"a".to_vec()].into(), ..Default::default() };
        let mut told = Told {
            verdicts: [Verdict { reply: vec![0; MAX_REPLY], then: Then::Read }].into(),
            ..Default::default()
        };
        block_on(serve(&mut conn, &mut told, Verdict::read())).unwrap();
        assert_eq!(conn.written.len(), MAX_REPLY + 3);
    }

    /// For arbitrary data, chunkings, write sizes and failures: the output
    /// is exactly the chunks read so far, in order, each after the prefix,
    /// and a failure ends the connection without finishing it.
    #[test]
    fn arbitrary_chunking_round_trips() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2000 {
            let prefix: Vec<u8> = b"GOT:"[..rng.below(5)].to_vec();
            let chunks: Vec<Vec<u8>> = (0..rng.below(20))
                .map(|_| (0..1 + rng.below(300)).map(|_| rng.next() as u8).collect())
                .collect();
            let fail_read_after = (rng.below(4) == 0).then(|| rng.below(chunks.len() + 1));
            let mut conn = Scripted {
                incoming: chunks.iter().cloned().collect(),
                write_sizes: (0..100).map(|_| 1 + rng.below(64)).collect(),
                fail_read_after,
                ..Default::default()
            };
            let result = serve_prefix(&mut conn, &prefix);
            let echoed = fail_read_after.unwrap_or(chunks.len());
            let expected: Vec<u8> =
                chunks[..echoed].iter().flat_map(|c| prefix.iter().chain(c).copied()).collect();
            assert_eq!(conn.written, expected);
            assert_eq!(result.is_ok(), fail_read_after.is_none());
            assert_eq!(conn.finished, result.is_ok());
        }
    }
}
