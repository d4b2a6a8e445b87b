//! `wasi:clocks/monotonic-clock`: nanoseconds since the store was made, and
//! pollables that are deadlines, known in advance, needing no future.

use super::Wasi;
use super::bindings::wasi::clocks::monotonic_clock::{Duration, Host, Instant};
use super::poll::Pollable;
use wasmtime::component::Resource;

/// How far ahead a deadline may lie: past it, a deadline is as good as never
/// (tokio's timers reach about two years; this is a year).
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

impl Wasi {
    /// The monotonic clock's `instant` as a Tokio instant.
    fn deadline(&self, when: Instant) -> tokio::time::Instant {
        let since_start = std::time::Duration::from_nanos(when);
        let now = tokio::time::Instant::now();
        let at = self.clock_start + since_start;
        at.min(now + FAR_FUTURE)
    }
}

impl Host for Wasi {
    fn now(&mut self) -> wasmtime::Result<Instant> {
        let elapsed = self.clock_start.elapsed();
        Ok(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    fn resolution(&mut self) -> wasmtime::Result<Duration> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: Instant) -> wasmtime::Result<Resource<Pollable>> {
        let deadline = self.deadline(when);
        self.push_orphan_pollable(Pollable::Deadline(deadline))
    }

    fn subscribe_duration(&mut self, when: Duration) -> wasmtime::Result<Resource<Pollable>> {
        let now = self.now()?;
        self.subscribe_instant(now.saturating_add(when))
    }
}
