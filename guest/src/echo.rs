//! The echo protocol: every chunk a client sends comes back as `prefix + chunk`.
//!
//! The protocol talks to the network only through [`Connection`], so it knows
//! nothing of sockets, pollables or tasks, and is tested natively with a fake
//! connection that splits and delays data at random.
//!
//! Two promises hold for any chunking:
//!
//! - every byte is echoed exactly once and in order, or [`serve`] returns an
//!   error and the connection ends;
//! - a connection holds at most one reply ([`MAX_CHUNK`] plus the prefix): the
//!   next chunk is read only once the previous reply is written, so a client
//!   that stops reading makes the server stop reading too, and the kernel's
//!   flow control pushes back on that client alone.

use std::io;

/// The most a single read may return, and so the most a connection holds.
///
/// 64 KiB is also the most Wasmtime hands over per `read` call, so asking for
/// more would not return more.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The byte stream a protocol runs over.
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
}

/// Echoes every chunk from `conn` back with `prefix`, until the peer finishes
/// sending; then finishes the reply stream too.
pub async fn serve(conn: &mut impl Connection, prefix: &[u8]) -> io::Result<()> {
    while let Some(chunk) = conn.read(MAX_CHUNK).await? {
        // One buffer, one write: a prefix sent on its own would cost a second
        // system call and could be held back by Nagle's algorithm.
        let mut reply = Vec::with_capacity(prefix.len() + chunk.len());
        reply.extend_from_slice(prefix);
        reply.extend_from_slice(&chunk);
        // Only the reply is held while the client takes its time to read.
        drop(chunk);
        write_all(conn, &reply).await?;
    }
    conn.finish().await
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
        block_on(serve(&mut conn, b"GOT:")).unwrap();
        assert_eq!(conn.written, b"GOT:Hello\nGOT:World\n");
        assert!(conn.finished);
    }

    #[test]
    fn empty_prefix_is_a_plain_echo() {
        let mut conn = Scripted {
            incoming: [b"abc".to_vec(), b"\0GOT:".to_vec()].into(),
            ..Default::default()
        };
        block_on(serve(&mut conn, b"")).unwrap();
        assert_eq!(conn.written, b"abc\0GOT:");
    }

    #[test]
    fn short_writes_lose_nothing() {
        let mut conn = Scripted {
            incoming: [vec![7; 1000]].into(),
            write_sizes: [1, 2, 3, 500].into(),
            ..Default::default()
        };
        block_on(serve(&mut conn, b"GOT:")).unwrap();
        let mut expected = b"GOT:".to_vec();
        expected.extend([7; 1000]);
        assert_eq!(conn.written, expected);
    }

    #[test]
    fn chunks_never_exceed_max_chunk() {
        let mut conn =
            Scripted { incoming: [vec![1; MAX_CHUNK * 2 + 5]].into(), ..Default::default() };
        block_on(serve(&mut conn, b"P")).unwrap();
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
        let err = block_on(serve(&mut conn, b"GOT:")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(conn.written, b"GOT");
        assert!(!conn.finished);
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
            let result = block_on(serve(&mut conn, &prefix));
            let echoed = fail_read_after.unwrap_or(chunks.len());
            let expected: Vec<u8> =
                chunks[..echoed].iter().flat_map(|c| prefix.iter().chain(c).copied()).collect();
            assert_eq!(conn.written, expected);
            assert_eq!(result.is_ok(), fail_read_after.is_none());
            assert_eq!(conn.finished, result.is_ok());
        }
    }
}
