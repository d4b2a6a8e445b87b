//! Running the guests: one per worker, each instantiated and run again and
//! again on a thread of its own, and what their ends mean: exit, restart
//! after a trap, or a graceful shutdown.
//!
//! Each worker is its own fault domain: its guest has its own store (memory,
//! handles, watchdog), and a trap restarts that guest alone, with its own
//! backoff, while the others go on serving. The listeners are the host's
//! ([`ServiceListeners`](crate::wasi::ServiceListeners)), shared by every
//! worker's guest and open while any guest restarts.
//!
//! Shutdown: on the first SIGINT or SIGTERM `/readyz` says the host is
//! draining. After `--drain-delay` (none by default), in which load
//! balancers stop sending clients, the host lets its listeners go and
//! closes every guest's stdin, which the echo guest (started with
//! `--shutdown-on-eof`) takes as "stop accepting, finish the open
//! connections, return"; once the guests have closed their listeners,
//! newcomers are refused. The host waits for all of them within the one
//! grace period, then stops those still running wherever they are, even
//! blocked in `poll`; a second signal stops them at once. Either way the
//! host exits 0. A worker whose guest exits by itself, or traps past the
//! restart policy, ends the host the same way, with its guest's exit status
//! or the trap.

use crate::guest::CodeCache;
use crate::handler::{HandlerHost, Plugin};
use crate::limits::Limits;
use crate::metrics::{Metrics, Timeouts, WorkerMetrics};
use crate::sandbox::{Extras, Sandbox};
use crate::wasi::{EchoServerPre, Grant, NetworkAccess};
use echo_settings::{GuestCommand, Span};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use wasmtime::error::Context;
use wasmtime::{Engine, Trap, bail};

/// The default time open connections get to finish after SIGINT or SIGTERM.
/// Ten seconds drains replies in flight on any healthy network, and stays
/// well within the stop timeouts of service managers (systemd's is 90 s).
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// The pause before the first restart; it doubles with each trap in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A guest that ran this long before trapping is considered to have been
/// healthy: the count of traps in a row, and the backoff, start over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What to run, run after run.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What the guest may do with TCP.
    pub grant: Grant,
    /// The settings the guest is given as arguments.
    pub guest: GuestCommand,
    /// Arguments after those, for a component other than the echo guest.
    pub extra_args: Vec<String>,
    /// The component to run instead of the embedded echo guest.
    pub component: Option<PathBuf>,
    /// The handler to run the server core with, each in its own store,
    /// instead of the embedded echo guest.
    pub handler: Option<Handler>,
    /// Where its compiled code is kept between starts.
    pub cache: CodeCache,
    /// What it may import beyond `wit/world.wit`.
    pub extras: Extras,
    /// What the guests may consume, all workers together.
    pub limits: Limits,
    /// How many guests serve the listeners at once, each on its own thread.
    pub workers: NonZeroUsize,
    /// Where to serve the figures, `/healthz` and `/readyz`, if anywhere.
    pub metrics: Option<SocketAddr>,
}

impl Launch {
    /// What worker `index` (from 0) runs: the same guest, with its part of
    /// the connection cap (an even share, the first workers taking one more
    /// where it does not divide) and of the limits.
    pub fn worker(&self, index: usize) -> Launch {
        let workers = self.workers.get();
        let total = self.guest.service.max_connections.get();
        let share = total / workers + usize::from(index < total % workers);
        let mut launch = self.clone();
        // At least one: a plan never has more workers than connections.
        launch.guest.service.max_connections =
            NonZeroUsize::new(share).unwrap_or(NonZeroUsize::MIN);
        launch.limits = self.limits.part(share, workers);
        launch
    }

    /// The figures of these workers, each ready once it listens on
    /// `listeners` service addresses.
    pub fn metrics_for(&self, listeners: usize) -> Metrics {
        let limits: Vec<usize> = (0..self.workers.get())
            .map(|index| self.worker(index).guest.service.max_connections.get())
            .collect();
        // The echo guest's timeouts tell why it closed a connection; another
        // component's reasons are its own.
        let service = &self.guest.service;
        let timeouts = self.component.is_none().then_some(Timeouts {
            idle: service.idle_timeout.0,
            stall: service.stall_timeout.0,
            half_close: service.half_close_timeout.0,
        });
        Metrics::new(&limits, listeners, timeouts)
    }

    /// The guest's argument list, its name first. A guest told to listen on
    /// a service address is told the address as bound: with port 0, the
    /// port the system picked.
    fn argv(&self, bound: &[SocketAddr]) -> Vec<String> {
        let mut guest = self.guest.clone();
        for listen in &mut guest.service.listen {
            let granted =
                self.grant.listen.iter().zip(bound).find(|(granted, _)| *granted == listen);
            if let Some((_, bound)) = granted {
                *listen = *bound;
            }
        }
        let mut argv = vec!["echo-guest".to_owned()];
        argv.extend(guest.to_args());
        argv.extend(self.extra_args.iter().cloned());
        argv
    }
}

/// A `--handler`, and what it may take.
#[derive(Debug, Clone)]
pub struct Handler {
    pub source: crate::handler::Source,
    pub limits: crate::handler::HandlerLimits,
    pub on_failure: crate::handler::OnFailure,
}

/// How runs follow one another.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Whether a guest that traps is started again.
    pub restart: Restart,
    /// How long open connections may take to finish once asked to stop.
    pub grace_period: Duration,
    /// How long to go on accepting, once asked to stop, before the grace
    /// period: `/readyz` already says the host is draining, and load
    /// balancers that ask it stop sending clients meanwhile.
    pub drain_delay: Duration,
}

/// Whether a guest that traps is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// After every trap.
    Always,
    /// Never: a trap ends the host.
    Never,
    /// After at most this many traps in a row.
    AtMost(u32),
}

impl Restart {
    fn allows(self, traps_in_a_row: u32) -> bool {
        match self {
            Restart::Always => true,
            Restart::Never => false,
            Restart::AtMost(max) => traps_in_a_row <= max,
        }
    }
}

impl FromStr for Restart {
    type Err = String;

    fn from_str(text: &str) -> Result<Restart, String> {
        match text {
            "always" => Ok(Restart::Always),
            "never" => Ok(Restart::Never),
            count => count.parse().map(Restart::AtMost).map_err(|_| {
                format!("invalid restart policy {count:?} (expected always, never or a count)")
            }),
        }
    }
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restart::Always => f.write_str("always"),
            Restart::Never => f.write_str("never"),
            Restart::AtMost(count) => write!(f, "{count}"),
        }
    }
}

/// What the workers are told to do, in increasing order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Directive {
    /// Serve.
    Serve,
    /// Stop accepting, finish the open connections, return.
    Drain,
    /// Stop at once, wherever the guest is.
    Stop,
}

/// What a worker needs to run its guest, shared by all of them.
#[derive(Clone)]
pub struct Shared {
    pub engine: Engine,
    pub pre: EchoServerPre<Sandbox>,
    pub net: Arc<NetworkAccess>,
    pub metrics: Arc<Metrics>,
    /// The `--handler`, which each worker's server core gets an instance of.
    pub plugin: Option<Arc<Plugin>>,
}

/// Runs `launch.workers` workers, each on its own thread, until a guest
/// exits by itself, one traps past the restart policy, or the process is
/// asked to stop; then drains them all within one grace period, and says
/// how the process should exit.
pub async fn serve(launch: &Launch, policy: Policy, shared: Shared) -> wasmtime::Result<ExitCode> {
    let mut signals = Signals::new().context("listen for SIGINT and SIGTERM")?;
    let (tell, told_rx) = watch::channel(Directive::Serve);
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let workers = launch.workers.get();
    let mut threads = Vec::with_capacity(workers);
    for index in 0..workers {
        let (launch, shared) = (launch.worker(index), shared.clone());
        let (directive, ended) = (told_rx.clone(), ended_tx.clone());
        let stats = shared.metrics.worker(index);
        let id = index + 1;
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                // A single-threaded runtime of the worker's own: its guest
                // and the I/O of its sockets on one thread, without
                // cross-thread wake-ups.
                let span = tracing::info_span!("worker", worker = id);
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("start a worker's async runtime")
                    .and_then(|runtime| {
                        runtime.block_on(
                            worker(&launch, policy, &shared, &stats, directive).instrument(span),
                        )
                    });
                let _ = ended.send(result);
            })
            .context("start a worker thread")?;
        threads.push(thread);
    }
    drop(ended_tx);

    let mut outcome = None;
    let signalled = tokio::select! {
        () = signals.recv() => true,
        // `None` only if every worker thread is gone without a word.
        result = ended.recv() => {
            if workers > 1 {
                tracing::info!("a worker has ended: stopping the others");
            }
            outcome = result;
            false
        }
    };
    // Not ready any more: load balancers send no new clients.
    shared.metrics.drain();
    let mut now = Directive::Drain;
    let delay = policy.drain_delay;
    if signalled && !delay.is_zero() {
        tracing::info!(
            "shutting down: /readyz says so; still accepting for {} while load balancers see it",
            Span(delay)
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = signals.recv() => {
                tracing::warn!("second signal: stopping the guests now");
                now = Directive::Stop;
            }
            result = ended.recv() => outcome = result,
        }
    }
    if signalled && now == Directive::Drain {
        let grace = Span(policy.grace_period);
        tracing::info!("shutting down: no new connections, {grace} for the open ones to finish");
    }
    // Once the guests have closed their listeners too, new clients are
    // refused, which sends them (or a load balancer) elsewhere, instead of
    // queueing where no one will accept them.
    shared.net.services.close();
    let _ = tell.send(now);
    let grace = tokio::time::sleep(policy.grace_period);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            result = ended.recv() => match result {
                Some(result) => outcome = Some(worse(outcome, result)),
                None => break,
            },
            () = &mut grace, if *tell.borrow() < Directive::Stop => {
                tracing::warn!("grace period over: stopping the guests");
                let _ = tell.send(Directive::Stop);
            }
            () = signals.recv(), if *tell.borrow() < Directive::Stop => {
                tracing::warn!("second signal: stopping the guests now");
                let _ = tell.send(Directive::Stop);
            }
        }
    }
    for thread in threads {
        if thread.join().is_err() {
            outcome = Some(worse(outcome, Err(wasmtime::format_err!("a worker thread panicked"))));
        }
    }
    outcome.unwrap_or(Ok(ExitCode::SUCCESS))
}

/// The outcome that decides the process's exit: an error over an exit
/// status, and the first of each.
fn worse(
    first: Option<wasmtime::Result<ExitCode>>,
    next: wasmtime::Result<ExitCode>,
) -> wasmtime::Result<ExitCode> {
    match first {
        Some(Err(error)) => Err(error),
        Some(Ok(_)) if next.is_err() => next,
        Some(first) => first,
        None => next,
    }
}

/// Waits until the workers are told `level`, or something more urgent.
async fn told(directive: &mut watch::Receiver<Directive>, level: Directive) {
    // The sender outlives every worker; if it were gone, nothing could tell.
    if directive.wait_for(|told| *told >= level).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One worker: runs its guest until it exits, traps past the restart
/// policy, or the worker is asked to stop, and says how the process should
/// exit.
async fn worker(
    launch: &Launch,
    policy: Policy,
    shared: &Shared,
    stats: &Arc<WorkerMetrics>,
    mut directive: watch::Receiver<Directive>,
) -> wasmtime::Result<ExitCode> {
    let bound = shared.net.services.bound();
    let argv = launch.argv(&bound);
    let mut traps_in_a_row = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        tracing::info!(listen = ?bound, "starting the guest");
        let started = Instant::now();
        let error = match run_once(launch, shared, stats, &argv, &mut directive).await? {
            End::Exit(code) => return Ok(code),
            End::Trap(error) => error,
        };
        stats.trapped(&trap_kind(&error));
        if started.elapsed() >= HEALTHY_RUN {
            traps_in_a_row = 0;
            backoff = FIRST_BACKOFF;
        }
        traps_in_a_row += 1;
        let error = explain(error, launch.limits.cpu);
        tracing::error!("the guest trapped: {error:?}");
        if !policy.restart.allows(traps_in_a_row) {
            return Err(
                error.context(format!("the guest trapped (restart policy: {})", policy.restart))
            );
        }
        tracing::warn!(traps_in_a_row, "restarting the guest in {backoff:?}");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = told(&mut directive, Directive::Drain) => return Ok(ExitCode::SUCCESS),
        }
        stats.restarts.inc();
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// How one run of the guest ended.
enum End {
    /// The process should exit with this status.
    Exit(ExitCode),
    /// The guest trapped.
    Trap(wasmtime::Error),
}

async fn run_once(
    launch: &Launch,
    shared: &Shared,
    stats: &Arc<WorkerMetrics>,
    argv: &[String],
    directive: &mut watch::Receiver<Directive>,
) -> wasmtime::Result<End> {
    // Closing the guest's stdin is the shutdown signal.
    let handler =
        shared.plugin.as_ref().map(|plugin| HandlerHost::new(plugin.clone(), stats.clone()));
    let (mut store, stdin) =
        Sandbox::store(&shared.engine, argv, &launch.limits, &shared.net, stats, handler);
    let guest = shared.pre.instantiate_async(&mut store).await.context("instantiate the guest")?;
    // Unconstrained: Tokio's cooperative budget allows 128 readiness checks
    // per poll of a task, and one guest `poll` call checks every parked
    // pollable. With more parked than that, those past the 128th would never
    // be seen ready, and the host would spin.
    let run = tokio::task::unconstrained(guest.wasi_cli_run().call_run(&mut store));
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        () = told(directive, Directive::Drain) => {
            stdin.close();
            tokio::select! {
                result = &mut run => result,
                () = told(directive, Directive::Stop) => return Ok(End::Exit(ExitCode::SUCCESS)),
            }
        }
    };
    match result {
        Ok(Ok(())) => Ok(End::Exit(ExitCode::SUCCESS)),
        Ok(Err(())) => bail!("the guest stopped with an error (its message is above)"),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(End::Exit(ExitCode::from(u8::try_from(exit.0).unwrap_or(1)))),
            None => Ok(End::Trap(e)),
        },
    }
}

/// Wasmtime's name for a trap (`UnreachableCodeReached`, `Interrupt`, ...),
/// or `host` for an error a host call raised.
fn trap_kind(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<Trap>() {
        Some(trap) => format!("{trap:?}"),
        None => "host".to_owned(),
    }
}

/// Adds what a trap means in this host's terms.
fn explain(error: wasmtime::Error, cpu_limit: Duration) -> wasmtime::Error {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => error.context(format!(
            "interrupted: the guest ran for {} without returning to the host (--cpu-limit)",
            Span(cpu_limit)
        )),
        Some(trap) => {
            let kind = format!("{trap:?}");
            error.context(kind)
        }
        None => error,
    }
}

/// SIGINT and SIGTERM, taken over from their default of ending the process.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_count() {
        assert_eq!("always".parse(), Ok(Restart::Always));
        assert_eq!("never".parse(), Ok(Restart::Never));
        assert_eq!("3".parse(), Ok(Restart::AtMost(3)));
        assert!("sometimes".parse::<Restart>().is_err());
        assert!(Restart::Always.allows(1_000));
        assert!(!Restart::Never.allows(1));
        assert!(Restart::AtMost(2).allows(2) && !Restart::AtMost(2).allows(3));
    }
}
