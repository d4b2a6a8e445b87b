//! What the whole-system tests share: servers started as processes on port
//! 0 (on `echo-testkit`), clients with deadlines, and the reply oracle.
//!
//! Each test binary uses a different part of it.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the support code"
)]

pub mod chaos;
pub mod hostile;
pub mod observe;
pub mod oracle;
pub mod scenarios;
pub mod server;

pub use echo_testkit::raise_fd_limit;
pub use oracle::check_segments;
pub use server::Server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single client operation may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What `attempt` gives once it succeeds, tried every 20 ms; past
/// [`DEADLINE`], a panic with what its last failure said.
pub fn eventually<T>(mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(why) if start.elapsed() >= DEADLINE => panic!("after {DEADLINE:?}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A client connected to `addr`, whose reads and writes fail after
/// [`DEADLINE`] rather than hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Sends `message` and reads until the replies account for exactly it.
pub fn round_trip(stream: &mut TcpStream, prefix: &[u8], message: &[u8]) {
    stream.write_all(message).unwrap();
    read_replies(stream, prefix, message);
}

/// Reads until the bytes received are `prefix + chunk` segments whose chunks
/// make up exactly `sent`; panics with the oracle's verdict at the deadline
/// or at end of stream.
pub fn read_replies(stream: &mut TcpStream, prefix: &[u8], sent: &[u8]) -> Vec<u8> {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0; 64 * 1024];
    loop {
        if check_segments(&received, prefix, sent).is_ok() {
            return received;
        }
        let n = stream.read(&mut buf).unwrap_or_else(|e| {
            panic!("reading replies to {} bytes after {:?}: {e}", sent.len(), start.elapsed())
        });
        if n == 0 {
            let verdict = check_segments(&received, prefix, sent).unwrap_err();
            panic!("end of stream before all replies arrived: {verdict}");
        }
        received.extend_from_slice(&buf[..n]);
    }
}

/// Reads until end of stream.
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("read to end of stream");
    received
}

/// `ci` in a normal run, `full` when `ECHO_TEST_SCALE=full`: the heavier
/// tests run their full counts on demand (see the README).
pub fn scale(ci: usize, full: usize) -> usize {
    match std::env::var("ECHO_TEST_SCALE").as_deref() {
        Ok("full") => full,
        _ => ci,
    }
}

/// A small deterministic generator, so that failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes with the awkward cases planted: runs of NUL and of
    /// 0xFF, and the reply prefix itself.
    pub fn payload(&mut self, len: usize) -> Vec<u8> {
        let mut data: Vec<u8> = (0..len).map(|_| self.next_u64() as u8).collect();
        for _ in 0..len / 4096 {
            let at = self.below(len.saturating_sub(8).max(1));
            let plant: &[u8] = match self.below(3) {
                0 => b"\0\0\0\0",
                1 => b"\xff\xfe\xff",
                _ => b"GOT:",
            };
            let end = (at + plant.len()).min(len);
            data[at..end].copy_from_slice(&plant[..end - at]);
        }
        data
    }
}
