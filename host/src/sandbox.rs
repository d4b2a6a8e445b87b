//! What the guest may reach.
//!
//! Two layers. The [`linker`] provides exactly the interfaces `wit/world.wit`
//! imports, so a component asking for files, UDP, name lookup or randomness
//! does not even instantiate. Behind those interfaces, the [`Sandbox`]'s WASI
//! context grants:
//!
//! - TCP: bind and listen on the configured address only ([`NetworkGrant`]),
//!   accept from anyone; no outbound connections;
//! - the arguments the host chose, and no environment variables;
//! - the host's stdout and stderr, so that the guest's log reaches the user;
//! - for stdin, a pipe that stays empty and is closed to ask for a graceful
//!   shutdown;
//! - no preopened directories;
//! - bounded memory, resource handles, bytes per host call ([`Limits`]) and
//!   time between host calls ([`watchdog`]).

use crate::limits::{HOSTCALL_FUEL, Limits};
use crate::watchdog::{self, Watchdog};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::DuplexStream;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceType};
use wasmtime::{Engine, Store, StoreLimits};
use wasmtime_wasi::cli::{AsyncStdinStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::io::poll;
use wasmtime_wasi::p2::bindings::{cli, clocks, io, sockets};
use wasmtime_wasi::p2::{DynOutputStream, DynPollable};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The store's data: the guest's WASI context and resource table, and what
/// limits it.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// See [`watchdog`].
    watchdog: Watchdog,
}

impl Sandbox {
    /// A store for one run of a guest given `argv`, within `limits`, on the
    /// network `grant`, and nothing else. `stdin` is the guest's end of the
    /// shutdown pipe: when the host drops the other end, the guest reads end
    /// of file.
    pub fn store(
        engine: &Engine,
        argv: &[String],
        limits: &Limits,
        grant: &NetworkGrant,
        stdin: DuplexStream,
    ) -> Store<Sandbox> {
        let grant = grant.clone();
        let wasi = WasiCtxBuilder::new()
            .args(argv)
            .stdin(AsyncStdinStream::new(stdin))
            .inherit_stdout()
            .inherit_stderr()
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, usage| {
                let allowed = grant.check(addr, usage);
                if !allowed {
                    tracing::warn!(%addr, ?usage, "denied a socket operation outside the grant");
                }
                Box::pin(async move { allowed })
            })
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.table);
        let sandbox = Sandbox {
            wasi,
            table,
            limits: limits.store_limits(),
            watchdog: Watchdog::new(limits.cpu),
        };
        let mut store = Store::new(engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.limits);
        store.set_max_component_handles(limits.table);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        watchdog::install(&mut store);
        store
    }
}

impl AsMut<Watchdog> for Sandbox {
    fn as_mut(&mut self) -> &mut Watchdog {
        &mut self.watchdog
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Links exactly the imports of `wit/world.wit`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    let l = &mut linker;
    io::error::add_to_linker::<Sandbox, Table>(l, |s| &mut s.table)?;
    io::poll::add_to_linker::<Sandbox, Table>(l, |s| &mut s.table)?;
    io::streams::add_to_linker::<Sandbox, Table>(l, |s| &mut s.table)?;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::stdin::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::stdout::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::stderr::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    clocks::monotonic_clock::add_to_linker::<Sandbox, WasiClocks>(l, Sandbox::clocks)?;
    sockets::network::add_to_linker::<Sandbox, WasiSockets>(
        l,
        &Default::default(),
        Sandbox::sockets,
    )?;
    sockets::instance_network::add_to_linker::<Sandbox, WasiSockets>(l, Sandbox::sockets)?;
    sockets::tcp::add_to_linker::<Sandbox, WasiSockets>(l, Sandbox::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<Sandbox, WasiSockets>(l, Sandbox::sockets)?;

    // Wasmtime's destructor for an output stream first waits for any write
    // still in flight. On a TCP stream whose client has stopped reading that
    // wait never ends, and since it happens inside a host call, every task of
    // the guest waits with it. This one drops the stream at once: the pending
    // bytes are abandoned (the guest only drops a stream it has flushed, or
    // one it is giving up on), and the guest is told so with
    // `--host-abandons-writes`.
    linker.allow_shadowing(true);
    linker.instance("wasi:io/streams@0.2.12")?.resource(
        "output-stream",
        ResourceType::host::<DynOutputStream>(),
        |mut store, rep| {
            let stream =
                store.data_mut().table.delete(Resource::<DynOutputStream>::new_own(rep))?;
            drop(stream);
            Ok(())
        },
    )?;
    // Wasmtime's `poll` reports what the event loop last saw. On this
    // single-threaded runtime the event loop only runs when the guest waits,
    // and a guest with work always at hand might never wait: connections
    // whose data has arrived would look idle until it does. Yielding first
    // lets the event loop take in what the kernel has (one non-blocking
    // `epoll_wait`), shared by every task the `poll` call wakes.
    //
    // Then each pollable is asked once whether it is ready. Wasmtime's `poll`
    // sorts every pollable into a map and a list of futures before looking at
    // any; a busy guest, whose `poll` finds some pollable ready, is spared
    // that. Only when none is ready does Wasmtime's `poll` run, and wait.
    linker.instance("wasi:io/poll@0.2.12")?.func_wrap_async(
        "poll",
        |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move {
                tokio::task::yield_now().await;
                let table = &mut store.data_mut().table;
                let mut ready = Vec::new();
                for (index, pollable) in (0u32..).zip(&pollables) {
                    let pollable = Resource::new_borrow(pollable.rep());
                    if poll::HostPollable::ready(table, pollable).await? {
                        ready.push(index);
                    }
                }
                if ready.is_empty() {
                    ready = poll::Host::poll(table, pollables).await?;
                }
                Ok((ready,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(linker)
}

/// `wasi:io` works on the resource table alone.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// The network a guest may use: one listening address.
///
/// Clones share what was bound: with port 0, the port the system picked is
/// remembered, so that a restarted guest listens on the same one.
#[derive(Debug, Clone)]
pub struct NetworkGrant {
    /// The address granted; port 0 grants whichever port the system picks.
    pub listen: SocketAddr,
    bound: Arc<Mutex<Option<SocketAddr>>>,
}

impl NetworkGrant {
    /// A grant to listen on `listen`.
    pub fn new(listen: SocketAddr) -> NetworkGrant {
        NetworkGrant { listen, bound: Arc::default() }
    }

    /// The address a guest last listened on under this grant.
    pub fn bound(&self) -> Option<SocketAddr> {
        *self.bound.lock().unwrap()
    }

    /// [`NetworkGrant::allows`], remembering a listening address allowed.
    fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let allowed = self.allows(addr, usage);
        if allowed && matches!(usage, SocketAddrUse::TcpListen) {
            *self.bound.lock().unwrap() = Some(addr);
        }
        allowed
    }

    /// Whether the guest may use `addr` for `usage`.
    pub fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let same_ip = addr.ip() == self.listen.ip();
        match usage {
            // Binding must name the granted address exactly: with port 0,
            // port 0, so that the system picks, or the port it picked before.
            SocketAddrUse::TcpBind => {
                same_ip && (addr.port() == self.listen.port() || Some(addr) == self.bound())
            }
            // Listening sees the address actually bound.
            SocketAddrUse::TcpListen => {
                same_ip && (self.listen.port() == 0 || addr.port() == self.listen.port())
            }
            // Anyone may connect to the service.
            SocketAddrUse::TcpAccept => true,
            SocketAddrUse::TcpConnect
            | SocketAddrUse::UdpBind
            | SocketAddrUse::UdpSend
            | SocketAddrUse::UdpReceive => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(listen: &str) -> NetworkGrant {
        NetworkGrant::new(listen.parse().unwrap())
    }

    fn allows(grant: &NetworkGrant, addr: &str, usage: SocketAddrUse) -> bool {
        grant.allows(addr.parse().unwrap(), usage)
    }

    #[test]
    fn only_the_granted_address_may_be_bound_and_listened_on() {
        let g = grant("127.0.0.1:25000");
        assert!(allows(&g, "127.0.0.1:25000", SocketAddrUse::TcpBind));
        assert!(allows(&g, "127.0.0.1:25000", SocketAddrUse::TcpListen));
        for other in ["127.0.0.1:25001", "127.0.0.1:0", "0.0.0.0:25000", "127.0.0.2:25000"] {
            assert!(!allows(&g, other, SocketAddrUse::TcpBind), "{other}");
            assert!(!allows(&g, other, SocketAddrUse::TcpListen), "{other}");
        }
    }

    #[test]
    fn port_zero_grants_the_port_the_system_picks() {
        let g = grant("[::1]:0");
        assert!(allows(&g, "[::1]:0", SocketAddrUse::TcpBind));
        assert!(!allows(&g, "[::1]:4000", SocketAddrUse::TcpBind));
        assert!(allows(&g, "[::1]:4000", SocketAddrUse::TcpListen));
        assert!(!allows(&g, "127.0.0.1:4000", SocketAddrUse::TcpListen));
    }

    #[test]
    fn accepting_is_allowed_and_everything_outbound_is_not() {
        let g = grant("0.0.0.0:25000");
        assert!(allows(&g, "192.0.2.1:5555", SocketAddrUse::TcpAccept));
        for usage in [
            SocketAddrUse::TcpConnect,
            SocketAddrUse::UdpBind,
            SocketAddrUse::UdpSend,
            SocketAddrUse::UdpReceive,
        ] {
            assert!(!allows(&g, "0.0.0.0:25000", usage));
            assert!(!allows(&g, "127.0.0.1:80", usage));
        }
    }
}
