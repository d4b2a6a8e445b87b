//! Runs the echo component, or another `wasi:cli/run` component, under
//! Wasmtime with only the capabilities an echo server needs.
//!
//! - [`config`]: the command line, checked, as plain settings for the rest.
//! - [`sandbox`]: what the guest may reach: the interfaces linked, and the
//!   network grant behind them.
//! - [`guest`]: the engine, the embedded echo component, and loading one.
//! - [`limits`] and [`watchdog`]: memory, handles, host-call sizes, open
//!   files; time between host calls.
//! - [`supervisor`]: the workers, each running its guest on a thread of its
//!   own, one run after another; restarts after traps, graceful shutdown on
//!   SIGINT and SIGTERM.
//! - [`metrics`]: what the host counts, and `--metrics`, which serves it
//!   with `/healthz` and `/readyz`.
//!
//! [`run`] puts them together: the listeners, the engine and the linked
//! guest once, then the workers.

// Documented with `--document-private-items`: links to private items are meant.
#![allow(rustdoc::private_intra_doc_links, reason = "documented with private items")]

pub mod config;
pub mod guest;
pub mod handler;
pub mod limits;
pub mod metrics;
pub mod sandbox;
pub mod supervisor;
pub mod wasi;
pub mod watchdog;

pub use config::Config;
pub use supervisor::{Launch, Policy, Shared};

use std::process::ExitCode;
use std::sync::Arc;
use wasmtime::error::Context;

/// Descriptors needed beyond one per connection: the listener, stdio, the
/// event loop's own.
const SPARE_DESCRIPTORS: u64 = 64;

/// Runs what `launch` says under supervision, until the guest exits or the
/// process is asked to stop; says how the process should exit.
pub fn run(launch: &Launch, policy: Policy) -> wasmtime::Result<ExitCode> {
    limits::raise_open_files(launch.guest.service.max_connections.get() as u64 + SPARE_DESCRIPTORS);
    // Bound before any guest runs, and open until the host exits: clients
    // queue in the backlog while a guest starts or restarts, and every
    // worker's guest accepts from the same kernel queue.
    let services = wasi::ServiceListeners::bind(&launch.grant.listen)?;
    let metrics_listener = launch.metrics.map(metrics_listener).transpose()?;
    let metrics = Arc::new(launch.metrics_for(services.bound().len()));
    let net = Arc::new(wasi::NetworkAccess { grant: launch.grant.clone(), services });
    let engine = guest::engine()?;
    watchdog::start_ticking(&engine);
    let component = match &launch.handler {
        None => guest::load(&engine, launch.component.as_deref(), &launch.cache)?,
        Some(_) => {
            guest::load_bytes(&engine, "the server core", guest::SERVER_CORE, &launch.cache)?
        }
    };
    for (name, _) in component.component_type().imports(&engine) {
        tracing::debug!(import = name, "the guest imports");
    }
    let linker = sandbox::linker(&engine, launch.extras)?;
    let pre = linker
        .instantiate_pre(&component)
        .context("link the guest: it imports something this host does not grant")?;
    let pre = wasi::EchoServerPre::new(pre).context("the guest does not export wasi:cli/run")?;
    // This thread only waits for signals and for the workers, each of which
    // runs a runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    tracing::info!(workers = launch.workers, "serving");
    runtime.block_on(async {
        let plugin = match &launch.handler {
            None => None,
            Some(handler) => Some(Arc::new(
                handler::Plugin::load(
                    &handler.source,
                    &launch.cache,
                    handler.limits,
                    handler.on_failure,
                    launch.guest.service.handler_settings(),
                )
                .await?,
            )),
        };
        if let Some(listener) = metrics_listener {
            let addr = listener.local_addr().context("the metrics listener's address")?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .context("register the metrics listener")?;
            tracing::info!("serving metrics on http://{addr}/metrics");
            tokio::spawn(metrics::serve(listener, metrics.clone()));
        }
        supervisor::serve(launch, policy, Shared { engine, pre, net, metrics, plugin }).await
    })
}

/// `echo-host compose`: the server core and `compose.handler`, composed
/// into one component at `compose.output`.
pub fn compose(compose: &config::Compose) -> wasmtime::Result<()> {
    let name = compose.handler.name();
    let composed = echo_compose::compose(guest::SERVER_CORE, &compose.handler.bytes()?, &name)?;
    for import in &composed.extra_imports {
        tracing::warn!(
            "the handler imports {import}, and so does the composed server: echo-host \
             --component does not grant it (componentize-py: build with --stub-wasi)"
        );
    }
    std::fs::write(&compose.output, &composed.bytes)
        .with_context(|| format!("write {}", compose.output.display()))?;
    tracing::info!("composed {} and the server core into {}", name, compose.output.display());
    Ok(())
}

/// The listener of `--metrics`, bound before anything starts, so that an
/// address in use stops the host at once.
fn metrics_listener(addr: std::net::SocketAddr) -> wasmtime::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot serve --metrics on {addr}"))?;
    listener.set_nonblocking(true).context("make the metrics listener non-blocking")?;
    Ok(listener)
}
