//! Running the guest: instantiate it, call its `wasi:cli/run`, and decide
//! what its end means: exit, restart after a trap, or a graceful shutdown.
//!
//! Shutdown: on the first SIGINT or SIGTERM the host closes the guest's
//! stdin, which the echo guest (started with `--shutdown-on-eof`) takes as
//! "stop accepting, finish the open connections, return". The host waits for
//! that up to the grace period, then stops the guest wherever it is, even
//! blocked in `poll`; a second signal stops it at once. Either way the host
//! exits 0.

use crate::guest::CodeCache;
use crate::limits::Limits;
use crate::sandbox::{Extras, Sandbox};
use crate::wasi::{EchoServerPre, Grant, NetworkAccess};
use echo_settings::{GuestCommand, Span};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};
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
    /// Where its compiled code is kept between starts.
    pub cache: CodeCache,
    /// What it may import beyond `wit/world.wit`.
    pub extras: Extras,
    /// What each run may consume.
    pub limits: Limits,
}

impl Launch {
    /// The guest's argument list, its name first. A guest told to listen on
    /// a service address is told the address as bound: with port 0, the
    /// port the system picked.
    fn argv(&self, bound: &[SocketAddr]) -> Vec<String> {
        let mut guest = self.guest.clone();
        if let Some((_, bound)) = self
            .grant
            .listen
            .iter()
            .zip(bound)
            .find(|(granted, _)| **granted == guest.service.listen)
        {
            guest.service.listen = *bound;
        }
        let mut argv = vec!["echo-guest".to_owned()];
        argv.extend(guest.to_args());
        argv.extend(self.extra_args.iter().cloned());
        argv
    }
}

/// How runs follow one another.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Whether a guest that traps is started again.
    pub restart: Restart,
    /// How long open connections may take to finish once asked to stop.
    pub grace_period: Duration,
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

/// Runs the guest until it exits, traps past the restart policy, or is shut
/// down, and says how the process should exit.
pub async fn supervise(
    launch: &Launch,
    policy: Policy,
    engine: &Engine,
    pre: &EchoServerPre<Sandbox>,
    net: &Arc<NetworkAccess>,
) -> wasmtime::Result<ExitCode> {
    let mut signals = Signals::new().context("listen for SIGINT and SIGTERM")?;
    let bound = net.services.bound();
    let argv = launch.argv(&bound);
    let mut traps_in_a_row = 0;
    let mut backoff = FIRST_BACKOFF;
    loop {
        tracing::info!(listen = ?bound, "starting the guest");
        let started = Instant::now();
        let run = run_once(engine, pre, &argv, &launch.limits, net, policy, &mut signals);
        let error = match run.await? {
            End::Exit(code) => return Ok(code),
            End::Trap(error) => error,
        };
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
            () = signals.recv() => return Ok(ExitCode::SUCCESS),
        }
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
    engine: &Engine,
    pre: &EchoServerPre<Sandbox>,
    argv: &[String],
    limits: &Limits,
    net: &Arc<NetworkAccess>,
    policy: Policy,
    signals: &mut Signals,
) -> wasmtime::Result<End> {
    // Closing the guest's stdin is the shutdown signal.
    let (mut store, stdin) = Sandbox::store(engine, argv, limits, net);
    let guest = pre.instantiate_async(&mut store).await.context("instantiate the guest")?;
    // Unconstrained: Tokio's cooperative budget allows 128 readiness checks
    // per poll of a task, and one guest `poll` call checks every parked
    // pollable. With more parked than that, those past the 128th would never
    // be seen ready, and the host would spin.
    let run = tokio::task::unconstrained(guest.wasi_cli_run().call_run(&mut store));
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        () = signals.recv() => {
            let grace = policy.grace_period;
            tracing::info!("shutting down: no new connections, {grace:?} for the open ones to finish");
            stdin.close();
            tokio::select! {
                result = &mut run => result,
                () = tokio::time::sleep(grace) => {
                    tracing::warn!("grace period over: stopping the guest");
                    return Ok(End::Exit(ExitCode::SUCCESS));
                }
                () = signals.recv() => {
                    tracing::warn!("second signal: stopping the guest now");
                    return Ok(End::Exit(ExitCode::SUCCESS));
                }
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
