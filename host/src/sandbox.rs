//! What the guest may reach.
//!
//! Two layers. The [`linker`] provides exactly the interfaces `wit/world.wit`
//! imports, so a component asking for files, UDP, name lookup or randomness
//! does not even instantiate. Behind those interfaces, the [`Sandbox`]
//! grants:
//!
//! - TCP as the [`Grant`] says, in the host's own socket layer
//!   ([`crate::wasi`]): by default, listening on the service addresses only,
//!   accepting anyone, and no outbound connections;
//! - the arguments the host chose, and no environment variables;
//! - the host's stdout and stderr, so that the guest's log reaches the user;
//! - for stdin, a stream that stays empty and is closed to ask for a
//!   graceful shutdown;
//! - no preopened directories;
//! - bounded memory, resource handles, bytes per host call ([`Limits`]) and
//!   time between host calls ([`watchdog`]);
//! - with `--handler`, the handler import, served by a handler instance in
//!   a store of its own ([`crate::handler`]).
//!
//! [`Grant`]: crate::wasi::Grant

use crate::handler::HandlerHost;
use crate::limits::{HOSTCALL_FUEL, Limiter, Limits};
use crate::metrics::WorkerMetrics;
use crate::wasi::{self, NetworkAccess, StdinCloser, Wasi};
use crate::watchdog::{self, Watchdog};
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::p2::bindings::cli;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The store's data: the guest's WASI, and what limits it.
pub struct Sandbox {
    /// The host's own WASI: I/O, clock, stdio, TCP.
    wasi: Wasi,
    /// Wasmtime's, for the CLI interfaces without streams: the arguments,
    /// exit, the terminal queries.
    cli: WasiCtx,
    limits: Limiter,
    /// See [`watchdog`].
    watchdog: Watchdog,
    /// The handler the server core imports, with `--handler`.
    handler: Option<HandlerHost>,
}

impl Sandbox {
    /// A store for one run of a guest given `argv`, within `limits`, on the
    /// network `net`, with `handler` behind its handler import if it has
    /// one, and nothing else, counting in `stats`; and what closes the
    /// guest's stdin, which asks it to shut down.
    pub fn store(
        engine: &Engine,
        argv: &[String],
        limits: &Limits,
        net: &Arc<NetworkAccess>,
        stats: &Arc<WorkerMetrics>,
        handler: Option<HandlerHost>,
    ) -> (Store<Sandbox>, StdinCloser) {
        let (wasi, stdin) = Wasi::new(net.clone(), limits.table, stats.clone());
        let cli = WasiCtxBuilder::new().args(argv).build();
        let sandbox = Sandbox {
            wasi,
            cli,
            limits: Limiter::new(limits.store_limits(), stats.memory.clone()),
            watchdog: Watchdog::new(limits.cpu),
            handler,
        };
        let mut store = Store::new(engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.limits);
        store.set_max_component_handles(limits.table);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        watchdog::install(&mut store);
        (store, stdin)
    }
}

impl AsMut<Watchdog> for Sandbox {
    fn as_mut(&mut self) -> &mut Watchdog {
        &mut self.watchdog
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.cli, table: self.wasi.table() }
    }
}

/// What is linked beyond the imports of `wit/world.wit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `wasi:random` (random, insecure, insecure-seed), Wasmtime's, for
    /// components whose language runtime asks for it (to seed its hash
    /// maps, say). Randomness reaches nothing outside the sandbox; it is
    /// off by default only because the echo guest needs none.
    pub random: bool,
    /// `echo:handler/handler`, for the server core run with `--handler`.
    pub handler: bool,
}

/// Links exactly the imports of `wit/world.wit`, and the `extras`.
pub fn linker(engine: &Engine, extras: Extras) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    let l = &mut linker;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    wasi::add_to_linker(l, |sandbox| &mut sandbox.wasi)?;
    if extras.random {
        use wasmtime_wasi::p2::bindings::random;
        use wasmtime_wasi::random::WasiRandom;
        random::random::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.cli.random())?;
        random::insecure::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.cli.random())?;
        random::insecure_seed::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.cli.random())?;
    }
    if extras.handler {
        HandlerHost::add_to_linker(l, |sandbox| {
            sandbox.handler.as_mut().expect("a store for the server core has its handler")
        })?;
    }
    Ok(linker)
}
