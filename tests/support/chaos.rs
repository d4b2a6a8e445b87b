//! A seeded chaos client: many connections at once, each a session of
//! random-sized writes and pauses that ends in one of the ways a client can
//! leave: a half-close (whose replies are then read to the end and checked
//! with the oracle), a reset, or an early close without reading.
//!
//! The plan of every session follows from the seed, so a failure names the
//! seed and the session to replay; the timing between sessions does not.

use super::{DEADLINE, Rng, Server, check_segments, connect};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// The seed from `ECHO_CHAOS_SEED`, or a new one.
pub fn seed() -> u64 {
    match std::env::var("ECHO_CHAOS_SEED") {
        Ok(text) => text.parse().expect("ECHO_CHAOS_SEED is a number"),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |t| t.as_nanos() as u64)
        }
    }
}

/// How sessions ended, over a whole run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Half-closed, every reply read and found exact.
    pub verified: usize,
    /// Ended with a TCP reset.
    pub reset: usize,
    /// Closed without reading the replies.
    pub abandoned: usize,
    /// Bytes sent in verified sessions.
    pub verified_bytes: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.verified += other.verified;
        self.reset += other.reset;
        self.abandoned += other.abandoned;
        self.verified_bytes += other.verified_bytes;
    }
}

/// `clients` connections at a time, each running session after session
/// until `duration` is over; returns how they ended. Panics, naming the
/// seed and session, if a verified session's replies are not exactly its
/// input echoed once.
pub fn run(server: &Server, prefix: &[u8], seed: u64, clients: usize, duration: Duration) -> Tally {
    let until = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (addr, prefix) = (server.addr, prefix.to_vec());
            thread::spawn(move || {
                let mut tally = Tally::default();
                let mut session = 0;
                while Instant::now() < until {
                    let mut rng = Rng::new(seed ^ ((client as u64) << 32) ^ session);
                    let name = format!("seed {seed}, client {client}, session {session}");
                    tally.add(one_session(connect(addr), &prefix, &mut rng, &name));
                    session += 1;
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.add(worker.join().expect("a chaos session failed (its seed is above)"));
    }
    tally
}

/// How a session ends.
enum Ending {
    HalfClose,
    Reset,
    Abandon,
}

fn one_session(stream: TcpStream, prefix: &[u8], rng: &mut Rng, name: &str) -> Tally {
    let mut reader = stream.try_clone().unwrap();
    // Replies are read while the session writes, as a real client would;
    // a client that stops reading is the stall tests' business.
    let reading = thread::spawn(move || {
        let mut received = Vec::new();
        let result = reader.read_to_end(&mut received);
        (received, result)
    });
    let mut writer = stream;
    let mut sent = Vec::new();
    for _ in 0..1 + rng.below(12) {
        let len = match rng.below(10) {
            0..5 => 1 + rng.below(100),
            5..9 => 1 + rng.below(4096),
            _ => 1 + rng.below(64 * 1024),
        };
        let data = rng.payload(len);
        if writer.write_all(&data).is_err() {
            panic!("{name}: the server stopped taking data mid-session");
        }
        sent.extend_from_slice(&data);
        if rng.below(3) == 0 {
            thread::sleep(Duration::from_millis(rng.below(20) as u64));
        }
    }
    let ending = match rng.below(10) {
        0..6 => Ending::HalfClose,
        6..8 => Ending::Reset,
        _ => Ending::Abandon,
    };
    match ending {
        Ending::HalfClose => {
            writer.shutdown(Shutdown::Write).unwrap();
            let (received, result) = reading.join().unwrap();
            if let Err(e) = result {
                panic!("{name}: reading the replies failed after {DEADLINE:?} at most: {e}");
            }
            if let Err(verdict) = check_segments(&received, prefix, &sent) {
                panic!("{name}: {verdict}");
            }
            Tally { verified: 1, verified_bytes: sent.len(), ..Tally::default() }
        }
        Ending::Reset | Ending::Abandon => {
            let reset = matches!(ending, Ending::Reset);
            if reset {
                socket2::SockRef::from(&writer).set_linger(Some(Duration::ZERO)).unwrap();
            }
            // Ends the reader's wait; the socket closes with the last handle.
            let _ = writer.shutdown(Shutdown::Read);
            drop(reading.join().unwrap());
            drop(writer);
            Tally { reset: usize::from(reset), abandoned: usize::from(!reset), ..Tally::default() }
        }
    }
}
