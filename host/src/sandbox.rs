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
//! - no stdin, no preopened directories.

use crate::config::Config;
use std::net::SocketAddr;
use wasmtime::Engine;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, sockets};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The store's data: the guest's WASI context and its resource table.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl Sandbox {
    /// A sandbox granting what `config` asks for, and nothing else.
    pub fn new(config: &Config) -> Sandbox {
        let grant = NetworkGrant { listen: config.listen };
        let wasi = WasiCtxBuilder::new()
            .args(&config.guest_argv())
            .inherit_stdout()
            .inherit_stderr()
            .allow_tcp(true)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(move |addr, usage| {
                let allowed = grant.allows(addr, usage);
                if !allowed {
                    tracing::warn!(%addr, ?usage, "denied a socket operation outside the grant");
                }
                Box::pin(async move { allowed })
            })
            .build();
        Sandbox { wasi, table: ResourceTable::new() }
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
    Ok(linker)
}

/// `wasi:io` works on the resource table alone.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// The network a guest may use: one listening address.
#[derive(Debug, Clone, Copy)]
pub struct NetworkGrant {
    /// The address granted; port 0 grants whichever port the system picks.
    pub listen: SocketAddr,
}

impl NetworkGrant {
    /// Whether the guest may use `addr` for `usage`.
    pub fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let same_ip = addr.ip() == self.listen.ip();
        match usage {
            // Binding must name the granted address exactly: with port 0,
            // port 0, so that the system picks.
            SocketAddrUse::TcpBind => same_ip && addr.port() == self.listen.port(),
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
        NetworkGrant { listen: listen.parse().unwrap() }
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
