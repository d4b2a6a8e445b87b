//! Runs the echo component, or another `wasi:cli/run` component, under
//! Wasmtime with only the capabilities an echo server needs.
//!
//! - [`config`]: the command line.
//! - [`sandbox`]: what the guest may reach: the interfaces linked, and the
//!   network grant behind them.
//! - [`guest`]: the engine, the embedded echo component, and loading one.
//!
//! [`run`] puts them together: it instantiates the guest, calls its
//! `wasi:cli/run` export on a single-threaded Tokio runtime, and turns the
//! outcome into an exit status.

pub mod config;
pub mod guest;
pub mod sandbox;

pub use config::Config;

use std::process::ExitCode;
use wasmtime::error::Context;
use wasmtime::{Store, bail};

/// Host bindings for `wit/world.wit`. Every import is Wasmtime's own WASI
/// implementation; only the `wasi:cli/run` export is generated here.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "echo-server",
        exports: { default: async },
        with: { "wasi": wasmtime_wasi::p2::bindings },
    });
}

/// Runs the guest that `config` names until it returns, and says how the
/// process should exit.
pub fn run(config: Config) -> wasmtime::Result<ExitCode> {
    // One thread: the guest is single-threaded, and Wasmtime's WASI work
    // (socket readiness, background writes) then happens on the same thread
    // that runs it, without cross-thread wake-ups.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> wasmtime::Result<ExitCode> {
    let engine = guest::engine()?;
    let component = guest::load(&engine, config.component.as_deref())?;
    for (name, _) in component.component_type().imports(&engine) {
        tracing::debug!(import = name, "the guest imports");
    }
    let linker = sandbox::linker(&engine)?;
    let pre = linker
        .instantiate_pre(&component)
        .context("link the guest: it imports something this host does not grant")?;
    let pre =
        bindings::EchoServerPre::new(pre).context("the guest does not export wasi:cli/run")?;

    tracing::info!(listen = %config.listen, "granting TCP listen");
    let mut store = Store::new(&engine, sandbox::Sandbox::new(&config));
    let guest = pre.instantiate_async(&mut store).await.context("instantiate the guest")?;
    // Unconstrained: Tokio's cooperative budget allows 128 readiness checks
    // per poll of a task, and one guest `poll` call checks every parked
    // pollable. With more parked than that, those past the 128th would never
    // be seen ready, and the host would spin.
    let run = tokio::task::unconstrained(guest.wasi_cli_run().call_run(&mut store));
    match run.await {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => bail!("the guest exited with an error"),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(ExitCode::from(u8::try_from(exit.0).unwrap_or(1))),
            None => Err(e.context("the guest trapped")),
        },
    }
}
