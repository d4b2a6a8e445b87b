//! Settings the guest and the host share: the defaults, and how durations
//! are written.
//!
//! The host compiles this same file into its flags, so that `echo-host` with
//! no arguments and a stock `wasmtime run` of the guest behave alike.

use std::time::Duration;

/// Where the service listens: every IPv4 interface, port 25000, as the
/// tutorial server this project grew from.
pub const LISTEN: &str = "0.0.0.0:25000";

/// What each reply starts with. An empty prefix makes a plain RFC 862 echo.
pub const PREFIX: &str = "GOT:";

/// The most connections served at once. Past it the listener is not polled,
/// so newcomers wait in the kernel's backlog while existing connections go
/// on undisturbed.
///
/// 16,384 leaves room above the 10,000 concurrent clients the service is
/// measured with, and stays within common hard limits on open files (the
/// host needs a descriptor per connection).
pub const MAX_CONNECTIONS: usize = 16_384;

/// How long a connection may wait for the client's next bytes before it is
/// closed. Five minutes outlasts any interactive pause, yet keeps abandoned
/// connections from piling up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a reply may make no progress, the client not reading, before
/// the connection is closed. Thirty seconds is far beyond any healthy
/// client's pause, and short enough that a stalled client does not hold its
/// buffers for long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long, once the client has finished sending, the server may take to
/// deliver the remaining replies. Bounds a client that half-closes and then
/// reads at a trickle.
pub const HALF_CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses a duration: a whole number with an optional unit, `ms`, `s`
/// (the default) or `m`: `250ms`, `30s`, `30`, `5m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || format!("invalid duration {text:?} (expected e.g. 250ms, 30s or 5m)");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs).ok_or_else(invalid),
        _ => Err(invalid()),
    }
}
