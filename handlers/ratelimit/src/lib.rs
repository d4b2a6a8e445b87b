//! A handler that paces each client with a token bucket of bytes: every
//! chunk comes back as it is (a plain echo), and a client that sends faster
//! than `rate` bytes a second, beyond a `burst`, is answered with
//! `read-after`: the server reads its next chunk only once the bucket has
//! refilled. The kernel's flow control then slows the client down; no clock
//! and no sleep in the handler.
//!
//! Settings: `rate` (bytes a second, default 65536) and `burst` (bytes,
//! default 65536).

mod bindings {
    wit_bindgen::generate!({ path: "../../wit/handler", world: "plugin" });
}

use bindings::exports::echo::handler::handler::{
    CloseReason, Guest, GuestSession, Instant, Session, Then, Verdict,
};
use std::cell::RefCell;
use std::sync::OnceLock;

const NANOS: u128 = 1_000_000_000;

/// A bucket's shape: how fast it refills, and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Bytes a second; more than zero.
    pub rate: u64,
    /// Bytes; more than zero.
    pub burst: u64,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape { rate: 64 * 1024, burst: 64 * 1024 }
    }
}

static SHAPE: OnceLock<Shape> = OnceLock::new();

/// One client's bucket.
#[derive(Debug)]
pub struct Bucket {
    shape: Shape,
    tokens: u64,
    /// When `tokens` was counted; may be ahead of now while the client is
    /// made to wait.
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(shape: Shape, now: Instant) -> Bucket {
        Bucket { shape, tokens: shape.burst, at: now }
    }

    /// Takes `bytes` at `now`; says how long (in nanoseconds) the client
    /// must wait before its next chunk is read, if at all.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Option<u64> {
        let elapsed = u128::from(now.saturating_sub(self.at));
        let refill = elapsed * u128::from(self.shape.rate) / NANOS;
        let tokens = (u128::from(self.tokens) + refill).min(u128::from(self.shape.burst));
        self.tokens = tokens as u64;
        self.at = self.at.max(now);
        if bytes <= self.tokens {
            self.tokens -= bytes;
            return None;
        }
        let deficit = u128::from(bytes - self.tokens);
        let wait = (deficit * NANOS).div_ceil(u128::from(self.shape.rate)) as u64;
        self.tokens = 0;
        self.at += wait;
        Some(wait)
    }
}

fn parse(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{key}={value:?}: expected a count of bytes above 0")),
    }
}

struct Handler;

impl Guest for Handler {
    type Session = Paced;

    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let mut shape = Shape::default();
        for (key, value) in settings {
            match key.as_str() {
                "rate" => shape.rate = parse(&key, &value)?,
                "burst" => shape.burst = parse(&key, &value)?,
                _ => return Err(format!("unknown setting {key:?} (ratelimit takes: rate, burst)")),
            }
        }
        SHAPE.set(shape).map_err(|_| "configured twice".to_owned())
    }

    fn accept(_peer: String, now: Instant) -> Result<(Session, Verdict), String> {
        let bucket = Bucket::new(SHAPE.get().copied().unwrap_or_default(), now);
        Ok((
            Session::new(Paced(RefCell::new(bucket))),
            Verdict { reply: Vec::new(), then: Then::Read },
        ))
    }
}

struct Paced(RefCell<Bucket>);

impl GuestSession for Paced {
    fn data(&self, chunk: Vec<u8>, now: Instant) -> Verdict {
        let then = match self.0.borrow_mut().take(chunk.len() as u64, now) {
            None => Then::Read,
            Some(wait) => Then::ReadAfter(wait),
        };
        Verdict { reply: chunk, then }
    }

    fn finished(&self, _now: Instant) -> Verdict {
        Verdict { reply: Vec::new(), then: Then::Close }
    }

    fn closed(&self, _reason: CloseReason) {}
}

// Exported from the component only: native builds are for the tests.
#[cfg(target_arch = "wasm32")]
bindings::export!(Handler with_types_in bindings);

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_and_then_the_rate_holds() {
        let shape = Shape { rate: 100, burst: 50 };
        let mut bucket = Bucket::new(shape, 0);
        assert_eq!(bucket.take(50, 0), None);
        // 100 bytes more at once: a second to refill them.
        assert_eq!(bucket.take(100, 0), Some(SECOND));
        // Read a second later: the bucket is empty, not in debt.
        assert_eq!(bucket.take(10, SECOND), Some(SECOND / 10));
        // Long idle refills to the burst, no more.
        assert_eq!(bucket.take(50, 100 * SECOND), None);
        assert_eq!(bucket.take(1, 100 * SECOND), Some(SECOND / 100));
    }

    /// A chunk that comes before the wait it was given is over earns
    /// nothing: the bucket refills from the end of the wait.
    #[test]
    fn an_early_chunk_earns_no_credit() {
        let mut bucket = Bucket::new(Shape { rate: 100, burst: 200 }, 0);
        assert_eq!(bucket.take(300, 0), Some(SECOND));
        assert_eq!(bucket.take(0, SECOND / 2), None);
        assert_eq!(bucket.take(100, SECOND + SECOND / 2), Some(SECOND / 2));
    }
}
