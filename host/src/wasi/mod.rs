//! The host's own WASI 0.2 for its guests: `wasi:io` (pollables, streams,
//! errors), the monotonic clock, stdio, and `wasi:sockets` TCP, on Tokio.
//!
//! A host whose whole job is serving TCP owns this layer rather than using
//! Wasmtime's, for four things Wasmtime 48 cannot give an embedder: a `poll`
//! whose cost follows what is ready, not what is parked ([`poll`],
//! [`readiness`]); listeners bound by the host and handed to its guests
//! ([`tcp::service`]); the right error codes (a full descriptor table is
//! `new-socket-limit`); and the grant checked inside the socket layer
//! ([`grant`]). Reads fill buffers that are not zeroed first, writes need no
//! task or lock, and dropping a stream never waits ([`tcp::stream`]).
//!
//! The guest does not see the difference: the WIT is WASI 0.2.12's, as in
//! `wit/deps`, and the same component runs under the stock `wasmtime run`.
//! Wasmtime's own implementation stays behind what has no pollable or
//! stream: CLI arguments, exit and the terminal queries (`sandbox.rs`).

pub mod grant;

mod clock;
mod network;
mod poll;
mod readiness;
mod stdio;
mod streams;
mod tcp;

pub use grant::Grant;
pub use stdio::StdinCloser;
pub use tcp::service::ServiceListeners;

use crate::metrics::WorkerMetrics;
use readiness::Notifier;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// Bindings for the interfaces this module implements, generated from
/// `wit/world.wit` with this module's resource types.
mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/handler", "../wit"],
        world: "echo:server/echo-server",
        imports: {
            // The only calls that wait; everything else returns at once.
            "wasi:io/poll.poll": async | trappable,
            "wasi:io/poll.[method]pollable.block": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-read": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-skip": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-splice": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        trappable_error_type: {
            "wasi:io/streams.stream-error" => crate::wasi::streams::StreamError,
            "wasi:sockets/network.error-code" => crate::wasi::network::SocketError,
        },
        with: {
            // Wasmtime's, linked by `sandbox.rs`.
            "wasi:cli/environment": wasmtime_wasi::p2::bindings::cli::environment,
            "wasi:cli/exit": wasmtime_wasi::p2::bindings::cli::exit,
            "wasi:cli/terminal-input": wasmtime_wasi::p2::bindings::cli::terminal_input,
            "wasi:cli/terminal-output": wasmtime_wasi::p2::bindings::cli::terminal_output,
            "wasi:cli/terminal-stdin": wasmtime_wasi::p2::bindings::cli::terminal_stdin,
            "wasi:cli/terminal-stdout": wasmtime_wasi::p2::bindings::cli::terminal_stdout,
            "wasi:cli/terminal-stderr": wasmtime_wasi::p2::bindings::cli::terminal_stderr,
            // This module's.
            "wasi:io/error.error": crate::wasi::streams::IoError,
            "wasi:io/poll.pollable": crate::wasi::poll::Pollable,
            "wasi:io/streams.input-stream": crate::wasi::streams::InputStream,
            "wasi:io/streams.output-stream": crate::wasi::streams::OutputStream,
            "wasi:sockets/network.network": crate::wasi::network::Network,
            "wasi:sockets/tcp.tcp-socket": crate::wasi::tcp::TcpSocket,
        },
    });
}

pub use bindings::EchoServerPre;

/// What every guest of a host may use of the network: the grant, and the
/// listeners the host bound for it. Shared by every store, and kept across
/// restarts.
#[derive(Debug)]
pub struct NetworkAccess {
    pub grant: Grant,
    pub services: ServiceListeners,
}

/// One store's WASI state: its resources, and what its `poll` waits on.
pub struct Wasi {
    table: ResourceTable,
    notifier: Arc<Notifier>,
    /// The origin of the guest's monotonic clock.
    clock_start: tokio::time::Instant,
    stdin: stdio::Stdin,
    net: Arc<NetworkAccess>,
    /// The output streams that hold bytes the kernel has not taken yet.
    unsent: Vec<u32>,
    /// Each pollable's readiness flag, if it has one, by handle: see
    /// [`Wasi::push_pollable`].
    flags: Vec<Option<Arc<readiness::Readiness>>>,
    /// The worker's figures, counted by its sockets.
    stats: Arc<WorkerMetrics>,
}

impl Wasi {
    /// A store's WASI, on the network `net`, with a resource table of at
    /// most `max_resources` entries, counting in `stats`; and what closes
    /// its stdin.
    pub fn new(
        net: Arc<NetworkAccess>,
        max_resources: usize,
        stats: Arc<WorkerMetrics>,
    ) -> (Wasi, StdinCloser) {
        let notifier = Arc::new(Notifier::default());
        let (stdin, closer) = stdio::Stdin::new(&notifier);
        let mut table = ResourceTable::new();
        table.set_max_capacity(max_resources);
        let clock_start = tokio::time::Instant::now();
        let wasi = Wasi {
            table,
            notifier,
            clock_start,
            stdin,
            net,
            unsent: Vec::new(),
            flags: Vec::new(),
            stats,
        };
        (wasi, closer)
    }

    /// The resource table, which Wasmtime's CLI interfaces share.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// The [`HasData`] that reaches a store's [`Wasi`].
struct HasWasi;

impl HasData for HasWasi {
    type Data<'a> = &'a mut Wasi;
}

/// Links the interfaces this module implements, for stores whose data keeps
/// its [`Wasi`] where `get` says.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Wasi,
) -> wasmtime::Result<()> {
    use bindings::wasi::{cli, clocks, io, sockets};
    io::error::add_to_linker::<T, HasWasi>(linker, get)?;
    io::poll::add_to_linker::<T, HasWasi>(linker, get)?;
    io::streams::add_to_linker::<T, HasWasi>(linker, get)?;
    clocks::monotonic_clock::add_to_linker::<T, HasWasi>(linker, get)?;
    cli::stdin::add_to_linker::<T, HasWasi>(linker, get)?;
    cli::stdout::add_to_linker::<T, HasWasi>(linker, get)?;
    cli::stderr::add_to_linker::<T, HasWasi>(linker, get)?;
    sockets::network::add_to_linker::<T, HasWasi>(linker, &Default::default(), get)?;
    sockets::instance_network::add_to_linker::<T, HasWasi>(linker, get)?;
    sockets::tcp::add_to_linker::<T, HasWasi>(linker, get)?;
    sockets::tcp_create_socket::add_to_linker::<T, HasWasi>(linker, get)?;
    Ok(())
}
