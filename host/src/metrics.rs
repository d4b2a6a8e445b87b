//! What the host counts, per worker, where it is true: connections and bytes
//! in the socket layer ([`crate::wasi`]), traps and restarts in the
//! [`supervisor`](crate::supervisor), memory in the store's limiter.
//!
//! The figures are always kept (a relaxed atomic add per read and write);
//! they are served only if `--metrics` asks for it ([`serve`]), in the
//! OpenMetrics text format that Prometheus scrapes, beside `/healthz` and
//! `/readyz`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod http;

pub use http::serve;

/// The labels of a figure kept per worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WorkerLabel {
    /// The worker's number, from 1, as in the log.
    worker: u32,
}

/// How a connection ended, as the socket layer saw it; its name (and its
/// `Debug`) is the label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are Prometheus's snake case")]
pub enum End {
    /// The client finished sending, and the server finished after it.
    finished,
    /// The client reset the connection, or went away mid-reply.
    reset,
    /// Another error of the connection.
    error,
    /// The server closed it after the client sent nothing for
    /// `--idle-timeout`.
    idle_timeout,
    /// The server closed it after its reply made no progress for
    /// `--stall-timeout`.
    stall_timeout,
    /// The server closed it with replies undelivered `--half-close-timeout`
    /// after the client finished.
    half_close_timeout,
    /// The host was shutting down.
    shutdown,
    /// The server closed it for a reason of its own (a component other than
    /// the echo guest, or its guest stopping).
    closed,
}

impl End {
    const ALL: [End; 8] = [
        End::finished,
        End::reset,
        End::error,
        End::idle_timeout,
        End::stall_timeout,
        End::half_close_timeout,
        End::shutdown,
        End::closed,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndLabels {
    worker: u32,
    reason: End,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TrapLabels {
    worker: u32,
    /// Wasmtime's name for the trap (`UnreachableCodeReached`,
    /// `Interrupt`, ...), or `host` for an error a host call raised.
    kind: String,
}

/// The guest's timeouts, which tell why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Duration,
    pub stall: Duration,
    pub half_close: Duration,
}

/// Every figure of the host, registered once.
pub struct Metrics {
    registry: Registry,
    /// The host is shutting down: not ready, and connections that end now
    /// end for that.
    draining: Arc<AtomicBool>,
    workers: Vec<Arc<WorkerMetrics>>,
    /// Listeners each worker's guest must hold to be ready.
    listeners: i64,
}

struct Families {
    accepted: Family<WorkerLabel, Counter>,
    refused: Family<WorkerLabel, Counter>,
    open: Family<WorkerLabel, Gauge>,
    limit: Family<WorkerLabel, Gauge>,
    full: Family<WorkerLabel, Counter>,
    received: Family<WorkerLabel, Counter>,
    sent: Family<WorkerLabel, Counter>,
    replies: Family<WorkerLabel, Counter>,
    ends: Family<EndLabels, Counter>,
    durations: Family<WorkerLabel, Histogram>,
    traps: Family<TrapLabels, Counter>,
    restarts: Family<WorkerLabel, Counter>,
    memory: Family<WorkerLabel, Gauge>,
    listening: Family<WorkerLabel, Gauge>,
    handler_failures: Family<TrapLabels, Counter>,
    handler_instances: Family<WorkerLabel, Counter>,
    handler_recycled: Family<WorkerLabel, Counter>,
}

/// Connection durations from a millisecond to about 18 minutes, each bucket
/// four times the last.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 11))
}

impl Metrics {
    /// The figures of `limits.len()` workers, the worker numbered `n`
    /// serving up to `limits[n - 1]` connections; each worker's guest is
    /// ready once it listens on all `listeners` service addresses.
    /// `timeouts` are the echo guest's, if that is what runs.
    pub fn new(limits: &[usize], listeners: usize, timeouts: Option<Timeouts>) -> Metrics {
        let families = Families {
            accepted: Family::default(),
            refused: Family::default(),
            open: Family::default(),
            limit: Family::default(),
            full: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            replies: Family::default(),
            ends: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            traps: Family::default(),
            restarts: Family::default(),
            memory: Family::default(),
            listening: Family::default(),
            handler_failures: Family::default(),
            handler_instances: Family::default(),
            handler_recycled: Family::default(),
        };
        let mut registry = Registry::with_prefix("echo");
        let f = &families;
        let r = &mut registry;
        r.register("connections_accepted", "Connections accepted", f.accepted.clone());
        r.register(
            "connections_refused",
            "Clients outside --allow-peers, reset as they were accepted",
            f.refused.clone(),
        );
        r.register("connections_open", "Connections open now", f.open.clone());
        r.register(
            "connection_limit",
            "The most connections a worker serves at once",
            f.limit.clone(),
        );
        r.register(
            "connections_full",
            "Times a worker's open connections reached its limit: newcomers wait in the \
             listener's backlog until one closes",
            f.full.clone(),
        );
        r.register("received_bytes", "Bytes received from clients", f.received.clone());
        r.register("sent_bytes", "Bytes sent to clients", f.sent.clone());
        r.register(
            "replies",
            "Replies the guest wrote to clients (the echo guest writes one per chunk received, \
             in two writes if it is over 64 KiB)",
            f.replies.clone(),
        );
        r.register("connections_closed", "Connections closed, by how they ended", f.ends.clone());
        r.register_with_unit(
            "connection_duration",
            "How long connections were open",
            prometheus_client::registry::Unit::Seconds,
            f.durations.clone(),
        );
        r.register("guest_traps", "Guest traps, by kind", f.traps.clone());
        r.register("guest_restarts", "Guests started again after a trap", f.restarts.clone());
        r.register_with_unit(
            "guest_memory",
            "The guest's linear memory",
            prometheus_client::registry::Unit::Bytes,
            f.memory.clone(),
        );
        r.register(
            "guest_listeners",
            "Service addresses the worker's guest is listening on",
            f.listening.clone(),
        );
        r.register(
            "handler_failures",
            "Calls into a --handler that failed, by kind (out_of_fuel, memory, a trap's name)",
            f.handler_failures.clone(),
        );
        r.register(
            "handler_instances",
            "--handler instances started, the first and those after failures",
            f.handler_instances.clone(),
        );
        r.register(
            "handler_recycled",
            "--handler instances replaced between calls because their memory neared the cap",
            f.handler_recycled.clone(),
        );
        let draining = Arc::new(AtomicBool::new(false));
        let workers = (1..)
            .zip(limits)
            .map(|(worker, &limit)| {
                Arc::new(WorkerMetrics::new(&families, worker, limit, timeouts, &draining))
            })
            .collect();
        Metrics {
            registry,
            draining,
            workers,
            listeners: i64::try_from(listeners).unwrap_or(i64::MAX),
        }
    }

    /// The figures of worker `index` (from 0).
    pub fn worker(&self, index: usize) -> Arc<WorkerMetrics> {
        self.workers[index].clone()
    }

    /// The host is shutting down: it is not ready any more.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the host takes new connections, or why not.
    pub fn readiness(&self) -> Readiness {
        if self.draining.load(Ordering::Relaxed) {
            return Readiness::Draining;
        }
        match self.workers.iter().find(|w| w.listening.get() < self.listeners) {
            Some(worker) => Readiness::NotListening(worker.number),
            None => Readiness::Ready,
        }
    }

    /// The figures in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Whether the host takes new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// This worker's guest is not listening: it is starting, or restarting
    /// after a trap.
    NotListening(u32),
    /// The host is shutting down: it finishes the open connections and
    /// takes no new ones.
    Draining,
}

/// One worker's figures, shared by its socket layer and its supervisor.
pub struct WorkerMetrics {
    /// The worker's number, from 1.
    pub number: u32,
    pub accepted: Counter,
    pub refused: Counter,
    pub open: Gauge,
    /// The most connections this worker serves at once.
    limit: i64,
    pub full: Counter,
    pub received: Counter,
    pub sent: Counter,
    pub replies: Counter,
    /// Ends, in the order of [`End::ALL`].
    ends: [Counter; End::ALL.len()],
    pub durations: Histogram,
    traps: Family<TrapLabels, Counter>,
    pub restarts: Counter,
    pub memory: Gauge,
    pub listening: Gauge,
    handler_failures: Family<TrapLabels, Counter>,
    pub handler_instances: Counter,
    pub handler_recycled: Counter,
    pub timeouts: Option<Timeouts>,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").field("worker", &self.number).finish_non_exhaustive()
    }
}

impl WorkerMetrics {
    fn new(
        f: &Families,
        number: u32,
        limit: usize,
        timeouts: Option<Timeouts>,
        draining: &Arc<AtomicBool>,
    ) -> WorkerMetrics {
        let label = WorkerLabel { worker: number };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        f.limit.get_or_create(&label).set(limit);
        WorkerMetrics {
            number,
            accepted: f.accepted.get_or_create_owned(&label),
            refused: f.refused.get_or_create_owned(&label),
            open: f.open.get_or_create_owned(&label),
            limit,
            full: f.full.get_or_create_owned(&label),
            received: f.received.get_or_create_owned(&label),
            sent: f.sent.get_or_create_owned(&label),
            replies: f.replies.get_or_create_owned(&label),
            ends: End::ALL
                .map(|reason| f.ends.get_or_create_owned(&EndLabels { worker: number, reason })),
            durations: f.durations.get_or_create_owned(&label),
            traps: f.traps.clone(),
            restarts: f.restarts.get_or_create_owned(&label),
            memory: f.memory.get_or_create_owned(&label),
            listening: f.listening.get_or_create_owned(&label),
            handler_failures: f.handler_failures.clone(),
            handler_instances: f.handler_instances.get_or_create_owned(&label),
            handler_recycled: f.handler_recycled.get_or_create_owned(&label),
            timeouts,
            draining: draining.clone(),
        }
    }

    /// A connection was accepted.
    pub fn opened(&self) {
        self.accepted.inc();
        if self.open.inc() + 1 >= self.limit {
            self.full.inc();
        }
    }

    /// A connection ended, after `open` for that long.
    pub fn closed(&self, end: End, open: Duration) {
        self.open.dec();
        self.ends[end as usize].inc();
        self.durations.observe(open.as_secs_f64());
    }

    /// The guest trapped; `kind` says how.
    pub fn trapped(&self, kind: &str) {
        self.traps.get_or_create(&TrapLabels { worker: self.number, kind: kind.to_owned() }).inc();
    }

    /// A call into the `--handler` failed; `kind` says how.
    pub fn handler_failed(&self, kind: &str) {
        let labels = TrapLabels { worker: self.number, kind: kind.to_owned() };
        self.handler_failures.get_or_create(&labels).inc();
    }

    /// Whether the host is shutting down.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
