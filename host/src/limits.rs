//! What a guest may consume: memory, resource handles, bytes per host call,
//! time between host calls, and the process's open files.

use prometheus_client::metrics::gauge::Gauge;
use std::time::Duration;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// The default cap on the guest's linear memory, in MiB.
///
/// At the default connection cap (16,384) a full-size reply (64 KiB) per
/// connection is 1 GiB; a quarter more covers everything else.
pub const MAX_MEMORY_MIB: u64 = 1280;

/// Resource-table entries allowed per connection: a socket, two streams and
/// their two pollables, plus one to spare.
const ENTRIES_PER_CONNECTION: usize = 6;

/// Entries beyond those of the connections: the listener, stdio, timers.
const SPARE_ENTRIES: usize = 1024;

/// The most bytes a single guest-to-host call may hand over. A write is at
/// most 64 KiB (what Wasmtime's `check-write` permits on a TCP stream), and a
/// `poll` list of 16,384 pollables is 64 KiB, so 1 MiB leaves ample room
/// while keeping a hostile guest from making the host copy gigabytes.
pub const HOSTCALL_FUEL: usize = 1 << 20;

/// How much the guest may hold and take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: usize,
    /// Resource-table entries and component handles: a hostile guest that
    /// creates sockets or pollables in a loop traps here, long before the
    /// host runs out of descriptors.
    pub table: usize,
    /// The longest the guest may run without calling the host (see
    /// [`watchdog`](crate::watchdog)).
    pub cpu: Duration,
}

impl Limits {
    /// Limits for a guest serving up to `max_connections` with at most
    /// `max_memory_mib` of memory, interrupted after `cpu` without a host call.
    pub fn new(max_connections: usize, max_memory_mib: u64, cpu: Duration) -> Limits {
        let memory = usize::try_from(max_memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        Limits::with_memory(max_connections, memory, cpu)
    }

    fn with_memory(max_connections: usize, memory: usize, cpu: Duration) -> Limits {
        let table =
            max_connections.saturating_mul(ENTRIES_PER_CONNECTION).saturating_add(SPARE_ENTRIES);
        Limits { memory, table, cpu }
    }

    /// One worker's part, when these limits are for `workers` guests
    /// together and this one serves up to `max_connections`: an even share
    /// of the memory, and the handles its connections need.
    pub fn part(&self, max_connections: usize, workers: usize) -> Limits {
        Limits::with_memory(max_connections, self.memory / workers.max(1), self.cpu)
    }

    /// The store limiter: memory growth past the cap fails (the guest's
    /// allocator sees an out-of-memory), and one instance with one memory
    /// and a few tables is all a component of this kind needs.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.memory)
            .instances(64)
            .memories(16)
            .tables(64)
            .build()
    }
}

/// A store's limits, which also keep `memory` at the size of the store's
/// linear memories, all together, for as long as the store lives.
pub struct Limiter {
    limits: StoreLimits,
    memory: Gauge,
    /// What this store has added to `memory`.
    counted: i64,
}

impl Limiter {
    pub fn new(limits: StoreLimits, memory: Gauge) -> Limiter {
        Limiter { limits, memory, counted: 0 }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            let grown = i64::try_from(desired.saturating_sub(current)).unwrap_or(i64::MAX);
            self.memory.inc_by(grown);
            self.counted = self.counted.saturating_add(grown);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.memory.dec_by(self.counted);
    }
}

/// Raises the soft limit on open files toward `needed`, as far as the hard
/// limit allows, and says so. Below it, accepts fail with `new-socket-limit`
/// and the guest backs off instead of serving more clients.
pub fn raise_open_files(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else { return };
    if soft >= needed {
        return;
    }
    let target = hard.map_or(needed, |hard| hard.min(needed));
    if target > soft {
        let raised = rustix::process::Rlimit { current: Some(target), maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(from = soft, to = target, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, needed, "could not raise the open-file limit: {e}"),
        }
    }
    if target < needed {
        tracing::warn!(
            limit = target,
            needed,
            "the open-file limit is below what the connection cap needs; past it, accepts back off"
        );
    }
}
