//! `wasi:sockets/tcp` and `tcp-create-socket`: the guest's TCP sockets, one
//! state at a time, on non-blocking system sockets registered with Tokio.
//!
//! The states are WASI's: unbound, bind started, bound, listen started,
//! listening, connecting, connected, closed. What each operation does in
//! each, and the error it returns otherwise, follows Wasmtime's own
//! implementation, with these differences, each on purpose:
//!
//! - a full descriptor table (EMFILE, ENFILE) is `new-socket-limit`, not
//!   `unknown`, so that a server can tell it apart and wait;
//! - connecting starts at `start-connect` (Wasmtime waits for the first
//!   `finish-connect` or poll), and the grant is checked there;
//! - a refused `start-listen` leaves the socket bound, not closed;
//! - binding to a service address binds nothing: listening there hands the
//!   socket the host's own listener ([`service`]);
//! - peers outside `--allow-peers` are reset as they are accepted.
//!
//! The grant ([`Grant`]) is checked at bind, listen, connect and accept.

pub mod service;
pub mod stream;

use super::Wasi;
use super::bindings::wasi::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress};
use super::bindings::wasi::sockets::tcp::{Duration, Host, HostTcpSocket, ShutdownType};
use super::bindings::wasi::sockets::tcp_create_socket;
use super::grant::{Bind, Grant};
use super::network::{
    Network, SocketResult, check_local, check_remote, error_code, from_wasi, to_wasi,
};
use super::poll::Pollable;
use super::readiness::{Direction, Notifier, Readiness};
use super::streams::{InputStream, OutputStream};
use crate::metrics::WorkerMetrics;
use rustix::io::Errno;
use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use stream::{Connection, TcpReader, TcpWriter};
use tokio::io::unix::AsyncFd;
use wasmtime::component::Resource;

/// WASI's default listen backlog, as Wasmtime's: the standard library's.
const DEFAULT_BACKLOG: u32 = 128;

/// How many clients outside `--allow-peers` one `accept` call resets before
/// it says `would-block`, so that a flood of them cannot keep it busy.
const REJECTS_PER_ACCEPT: usize = 64;

/// The host's `wasi:sockets/tcp.tcp-socket`.
#[derive(Debug)]
pub struct TcpSocket {
    family: IpAddressFamily,
    state: State,
    /// The backlog a listen will ask for.
    backlog: u32,
    notifier: Arc<Notifier>,
    /// The worker's figures, which its connections count in.
    stats: Arc<WorkerMetrics>,
}

#[derive(Debug)]
enum State {
    Unbound(OwnedFd),
    BindStarted(Bound),
    Bound(Bound),
    ListenStarted(Listener),
    Listening(Listener),
    Connecting(Connecting),
    Connected(Arc<Connection>),
    /// A connect failed with this; the socket can do no more.
    Closed(ErrorCode),
    /// Between two states, for the length of an operation.
    Moving,
}

#[derive(Debug)]
struct Bound {
    /// The system socket; for a service address, the one made at creation,
    /// unbound, which keeps the options set before listening.
    fd: OwnedFd,
    local: SocketAddr,
    grant: Bind,
}

#[derive(Debug)]
struct Listener {
    fd: AsyncFd<OwnedFd>,
    local: SocketAddr,
    /// Ready when a connection may be waiting to be accepted.
    readable: Arc<Readiness>,
    /// For the host's listener of a service address, shared with other
    /// guests: the figures that count the guest as listening while this
    /// lives.
    service: Option<Arc<WorkerMetrics>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stats) = &self.service {
            stats.listening.dec();
        }
    }
}

#[derive(Debug)]
struct Connecting {
    fd: AsyncFd<OwnedFd>,
    /// Ready when the connect has finished, one way or the other.
    writable: Arc<Readiness>,
    /// The connect failed at once.
    failed: Option<ErrorCode>,
}

impl TcpSocket {
    fn new(
        family: IpAddressFamily,
        fd: OwnedFd,
        notifier: &Arc<Notifier>,
        stats: &Arc<WorkerMetrics>,
    ) -> TcpSocket {
        TcpSocket {
            family,
            state: State::Unbound(fd),
            backlog: DEFAULT_BACKLOG,
            notifier: notifier.clone(),
            stats: stats.clone(),
        }
    }

    /// Whether what the socket's pollable waits for has happened: a connect
    /// finished, or a connection arrived; in any other state, always.
    pub fn ready(&self) -> bool {
        match &self.state {
            State::Connecting(c) => c.failed.is_some() || c.writable.is_ready(),
            State::Listening(l) => l.readable.is_ready(),
            _ => true,
        }
    }

    /// The error for an operation that needs another state.
    fn wrong_state(&self) -> ErrorCode {
        match &self.state {
            State::BindStarted(_) | State::ListenStarted(_) | State::Connecting(_) => {
                ErrorCode::ConcurrencyConflict
            }
            State::Closed(code) => *code,
            _ => ErrorCode::InvalidState,
        }
    }

    /// The system socket that options apply to.
    fn option_fd(&self) -> SocketResult<BorrowedFd<'_>> {
        match &self.state {
            State::Unbound(fd) => Ok(fd.as_fd()),
            State::BindStarted(b) | State::Bound(b) => Ok(b.fd.as_fd()),
            State::ListenStarted(l) | State::Listening(l) => Ok(l.fd.get_ref().as_fd()),
            State::Connected(c) => Ok(c.fd.get_ref().as_fd()),
            State::Connecting(_) | State::Moving => Err(ErrorCode::InvalidState.into()),
            State::Closed(code) => Err((*code).into()),
        }
    }

    fn start_bind(
        &mut self,
        local: SocketAddr,
        grant: &Grant,
        services: &[SocketAddr],
    ) -> SocketResult<()> {
        if !matches!(self.state, State::Unbound(_)) {
            return Err(self.wrong_state().into());
        }
        check_local(&local, self.family)?;
        let Some(granted) = grant.bind(local, services) else {
            tracing::warn!(%local, "denied a socket operation outside the grant: bind");
            return Err(ErrorCode::AccessDenied.into());
        };
        let State::Unbound(fd) = std::mem::replace(&mut self.state, State::Moving) else {
            unreachable!("checked above")
        };
        let bound = match granted {
            Bind::Service(addr) => Ok(addr),
            Bind::Listen | Bind::Client => bind(&fd, local),
        };
        self.state = match bound {
            Ok(local) => State::BindStarted(Bound { fd, local, grant: granted }),
            Err(e) => {
                self.state = State::Unbound(fd);
                return Err(e);
            }
        };
        Ok(())
    }

    fn start_listen(&mut self, grant_services: &service::ServiceListeners) -> SocketResult<()> {
        let State::Bound(bound) = &self.state else {
            return Err(match self.state {
                State::Unbound(_) => ErrorCode::InvalidState,
                _ => self.wrong_state(),
            }
            .into());
        };
        let (fd, service) = match bound.grant {
            Bind::Client => {
                tracing::warn!(local = %bound.local, "denied a socket operation outside the grant: listen");
                return Err(ErrorCode::AccessDenied.into());
            }
            Bind::Service(addr) => {
                (grant_services.share(addr).map_err(|_| ErrorCode::NewSocketLimit)?, true)
            }
            Bind::Listen => {
                let fd = bound.fd.try_clone().map_err(|_| ErrorCode::NewSocketLimit)?;
                rustix::net::listen(&fd, backlog(self.backlog))?;
                (fd, false)
            }
        };
        let local = bound.local;
        let fd = register(fd)?;
        let service = service.then(|| {
            self.stats.listening.inc();
            self.stats.clone()
        });
        let readable = Readiness::watch(&self.notifier, &fd, Direction::Read);
        self.state = State::ListenStarted(Listener { fd, local, readable, service });
        Ok(())
    }

    fn start_connect(&mut self, remote: SocketAddr, grant: &Grant) -> SocketResult<()> {
        match &self.state {
            State::Unbound(_) => {}
            State::Bound(b) if !matches!(b.grant, Bind::Service(_)) => {}
            _ => return Err(self.wrong_state().into()),
        }
        check_remote(&remote, self.family)?;
        if !grant.connect(remote) {
            tracing::warn!(%remote, "denied a socket operation outside the grant: connect");
            return Err(ErrorCode::AccessDenied.into());
        }
        let fd = match std::mem::replace(&mut self.state, State::Moving) {
            State::Unbound(fd) | State::Bound(Bound { fd, .. }) => fd,
            _ => unreachable!("checked above"),
        };
        let (in_progress, failed) = match rustix::net::connect(&fd, &remote) {
            Ok(()) => (false, None),
            Err(Errno::INPROGRESS) => (true, None),
            Err(errno) => (false, Some(error_code(errno))),
        };
        let fd = register(fd)?;
        let writable = Readiness::new(&self.notifier);
        // The socket becomes writable when the connect is done.
        if in_progress {
            writable.arm(&fd, Direction::Write);
        }
        self.state = State::Connecting(Connecting { fd, writable, failed });
        Ok(())
    }

    /// Completes a connect; the new connection, once it has one.
    fn finish_connect(&mut self) -> SocketResult<Arc<Connection>> {
        let State::Connecting(connecting) = &self.state else {
            return Err(ErrorCode::NotInProgress.into());
        };
        let outcome = match connecting.failed {
            Some(code) => Err(code),
            None if !connecting.writable.is_ready() => return Err(ErrorCode::WouldBlock.into()),
            None => {
                let fd = &connecting.fd;
                match rustix::net::sockopt::socket_error(fd.get_ref()) {
                    Ok(Err(errno)) | Err(errno) => Err(error_code(errno)),
                    Ok(Ok(())) => match peer(fd.get_ref()) {
                        Ok(peer) => Ok(peer),
                        // Not connected yet: not done after all.
                        Err(ErrorCode::InvalidState) => {
                            connecting.writable.arm(fd, Direction::Write);
                            return Err(ErrorCode::WouldBlock.into());
                        }
                        Err(code) => Err(code),
                    },
                }
            }
        };
        match outcome {
            Err(code) => {
                self.state = State::Closed(code);
                Err(code.into())
            }
            Ok(peer) => {
                let State::Connecting(c) = std::mem::replace(&mut self.state, State::Moving) else {
                    unreachable!("checked above")
                };
                let connection = Connection::outbound(c.fd, peer);
                self.state = State::Connected(connection.clone());
                Ok(connection)
            }
        }
    }

    /// The next client, or `would-block`.
    fn accept(&mut self, grant: &Grant) -> SocketResult<(TcpSocket, Arc<Connection>)> {
        let (State::ListenStarted(listener) | State::Listening(listener)) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let fd = &listener.fd;
        for _ in 0..REJECTS_PER_ACCEPT {
            if !listener.readable.is_ready() {
                return Err(ErrorCode::WouldBlock.into());
            }
            let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
            let (client, peer) = match rustix::net::acceptfrom_with(fd.get_ref(), flags) {
                Ok(accepted) => accepted,
                Err(Errno::AGAIN) => {
                    listener.readable.arm(fd, Direction::Read);
                    return Err(ErrorCode::WouldBlock.into());
                }
                Err(errno) => return Err(accept_error(errno).into()),
            };
            // A client that reset while it waited has no address any more.
            let Some(peer) = peer.and_then(|peer| SocketAddr::try_from(peer).ok()) else {
                return Err(ErrorCode::ConnectionAborted.into());
            };
            if !grant.accepts(peer) {
                tracing::debug!(%peer, "reset a client outside --allow-peers");
                self.stats.refused.inc();
                let _ = rustix::net::sockopt::set_socket_linger(
                    &client,
                    Some(std::time::Duration::ZERO),
                );
                continue;
            }
            let client = register(client)?;
            let connection = Connection::accepted(client, peer, &self.stats);
            let socket = TcpSocket {
                family: self.family,
                state: State::Connected(connection.clone()),
                backlog: DEFAULT_BACKLOG,
                notifier: self.notifier.clone(),
                stats: self.stats.clone(),
            };
            return Ok((socket, connection));
        }
        Err(ErrorCode::WouldBlock.into())
    }
}

/// Registers `fd` with the event loop of the runtime the guest runs on.
fn register(fd: OwnedFd) -> SocketResult<AsyncFd<OwnedFd>> {
    // SAFETY: `register` needs the descriptor to stay open, and the same,
    // for as long as the `AsyncFd` lives. An `OwnedFd` owns its descriptor
    // and closes it only when dropped, which the `AsyncFd` that owns it
    // does after deregistering it.
    unsafe { AsyncFd::register(fd) }.map_err(|_| ErrorCode::OutOfMemory.into())
}

/// Binds `fd` to `local` and says where it landed.
fn bind(fd: &OwnedFd, local: SocketAddr) -> SocketResult<SocketAddr> {
    // As Wasmtime does: a port in TIME_WAIT can be bound again at once.
    let _ = rustix::net::sockopt::set_socket_reuseaddr(fd, true);
    rustix::net::bind(fd, &local).map_err(|errno| match errno {
        // The address belongs to another family than the socket.
        Errno::AFNOSUPPORT => ErrorCode::InvalidArgument,
        errno => error_code(errno),
    })?;
    local_address(fd.as_fd())
}

fn local_address(fd: BorrowedFd<'_>) -> SocketResult<SocketAddr> {
    let addr = rustix::net::getsockname(fd)?;
    SocketAddr::try_from(addr).map_err(|_| ErrorCode::InvalidState.into())
}

fn peer(fd: &OwnedFd) -> Result<SocketAddr, ErrorCode> {
    match rustix::net::getpeername(fd) {
        Ok(Some(addr)) => SocketAddr::try_from(addr).map_err(|_| ErrorCode::InvalidState),
        Ok(None) => Err(ErrorCode::InvalidState),
        Err(errno) => Err(error_code(errno)),
    }
}

/// An accept's error: what says a client left before it was accepted is
/// `connection-aborted`, as on every system; a full descriptor table is
/// `new-socket-limit`, and the client stays queued.
fn accept_error(errno: Errno) -> ErrorCode {
    match errno {
        Errno::CONNRESET
        | Errno::NETRESET
        | Errno::HOSTUNREACH
        | Errno::HOSTDOWN
        | Errno::NETDOWN
        | Errno::NETUNREACH
        | Errno::PROTO
        | Errno::NOPROTOOPT
        | Errno::NONET
        | Errno::OPNOTSUPP => ErrorCode::ConnectionAborted,
        errno => error_code(errno),
    }
}

/// The listen backlog asked of the system, as WASI says: at least 1.
fn backlog(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX).max(1)
}

/// A new non-blocking TCP socket of `family`.
fn new_socket(family: IpAddressFamily) -> SocketResult<OwnedFd> {
    let domain = match family {
        IpAddressFamily::Ipv4 => AddressFamily::INET,
        IpAddressFamily::Ipv6 => AddressFamily::INET6,
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(domain, SocketType::STREAM, flags, None)?;
    if family == IpAddressFamily::Ipv6 {
        // WASI 0.2: an IPv6 socket is IPv6 only.
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    Ok(fd)
}

impl Wasi {
    fn socket(&mut self, socket: &Resource<TcpSocket>) -> SocketResult<&mut TcpSocket> {
        Ok(self.table.get_mut(socket)?)
    }

    /// Pushes `connection`'s streams as children of `socket`.
    fn streams(
        &mut self,
        socket: &Resource<TcpSocket>,
        connection: Arc<Connection>,
    ) -> SocketResult<(Resource<InputStream>, Resource<OutputStream>)> {
        let readable = Readiness::watch(&self.notifier, &connection.fd, Direction::Read);
        let reader = TcpReader::new(connection.clone(), readable);
        let writer = TcpWriter::new(connection, Readiness::new(&self.notifier));
        let input = self.table.push_child(InputStream::Tcp(reader), socket)?;
        let output = self.table.push_child(OutputStream::Tcp(writer), socket)?;
        Ok((input, output))
    }
}

impl tcp_create_socket::Host for Wasi {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let fd = new_socket(family)?;
        Ok(self.table.push(TcpSocket::new(family, fd, &self.notifier, &self.stats))?)
    }
}

impl Host for Wasi {}

impl HostTcpSocket for Wasi {
    fn start_bind(
        &mut self,
        socket: Resource<TcpSocket>,
        _network: Resource<Network>,
        local: IpSocketAddress,
    ) -> SocketResult<()> {
        let services = self.net.services.bound();
        let Wasi { table, net, .. } = self;
        table.get_mut(&socket)?.start_bind(from_wasi(local), &net.grant, &services)
    }

    fn finish_bind(&mut self, socket: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.socket(&socket)?;
        match std::mem::replace(&mut socket.state, State::Moving) {
            State::BindStarted(bound) => {
                socket.state = State::Bound(bound);
                Ok(())
            }
            other => {
                socket.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    fn start_connect(
        &mut self,
        socket: Resource<TcpSocket>,
        _network: Resource<Network>,
        remote: IpSocketAddress,
    ) -> SocketResult<()> {
        let Wasi { table, net, .. } = self;
        table.get_mut(&socket)?.start_connect(from_wasi(remote), &net.grant)
    }

    fn finish_connect(
        &mut self,
        socket: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<InputStream>, Resource<OutputStream>)> {
        let connection = self.socket(&socket)?.finish_connect()?;
        self.streams(&socket, connection)
    }

    fn start_listen(&mut self, socket: Resource<TcpSocket>) -> SocketResult<()> {
        let Wasi { table, net, .. } = self;
        table.get_mut(&socket)?.start_listen(&net.services)
    }

    fn finish_listen(&mut self, socket: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.socket(&socket)?;
        match std::mem::replace(&mut socket.state, State::Moving) {
            State::ListenStarted(listener) => {
                socket.state = State::Listening(listener);
                Ok(())
            }
            other => {
                socket.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    fn accept(
        &mut self,
        socket: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<TcpSocket>, Resource<InputStream>, Resource<OutputStream>)> {
        let Wasi { table, net, .. } = self;
        let (client, connection) = table.get_mut(&socket)?.accept(&net.grant)?;
        let client = self.table.push(client)?;
        let (input, output) = self.streams(&client, connection)?;
        Ok((client, input, output))
    }

    fn local_address(&mut self, socket: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.socket(&socket)?;
        let local = match &socket.state {
            State::BindStarted(b) | State::Bound(b) => b.local,
            State::ListenStarted(l) | State::Listening(l) => l.local,
            State::Connected(c) => local_address(c.fd.get_ref().as_fd())?,
            State::Closed(code) => return Err((*code).into()),
            State::Unbound(_) | State::Connecting(_) | State::Moving => {
                return Err(ErrorCode::InvalidState.into());
            }
        };
        Ok(to_wasi(local))
    }

    fn remote_address(&mut self, socket: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        match &self.socket(&socket)?.state {
            State::Connected(c) => Ok(to_wasi(c.peer)),
            State::Closed(code) => Err((*code).into()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn is_listening(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        let socket = self.table.get(&socket)?;
        Ok(matches!(socket.state, State::ListenStarted(_) | State::Listening(_)))
    }

    fn address_family(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&socket)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let socket = self.socket(&socket)?;
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        match &socket.state {
            State::Unbound(_) | State::BindStarted(_) | State::Bound(_) => {}
            // A service listener's backlog is the host's.
            State::ListenStarted(l) | State::Listening(l) if l.service.is_some() => {}
            State::ListenStarted(l) | State::Listening(l) => {
                rustix::net::listen(l.fd.get_ref(), backlog(value))
                    .map_err(|_| ErrorCode::NotSupported)?;
            }
            State::Connecting(_) | State::Connected(_) | State::Moving => {
                return Err(ErrorCode::InvalidState.into());
            }
            State::Closed(code) => return Err((*code).into()),
        }
        socket.backlog = value;
        Ok(())
    }

    fn keep_alive_enabled(&mut self, socket: Resource<TcpSocket>) -> SocketResult<bool> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::socket_keepalive(fd)?)
    }

    fn set_keep_alive_enabled(
        &mut self,
        socket: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::set_socket_keepalive(fd, value)?)
    }

    fn keep_alive_idle_time(&mut self, socket: Resource<TcpSocket>) -> SocketResult<Duration> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(nanos(rustix::net::sockopt::tcp_keepidle(fd)?))
    }

    fn set_keep_alive_idle_time(
        &mut self,
        socket: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        let value = keep_alive_time(value)?;
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::set_tcp_keepidle(fd, value)?)
    }

    fn keep_alive_interval(&mut self, socket: Resource<TcpSocket>) -> SocketResult<Duration> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(nanos(rustix::net::sockopt::tcp_keepintvl(fd)?))
    }

    fn set_keep_alive_interval(
        &mut self,
        socket: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        let value = keep_alive_time(value)?;
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::set_tcp_keepintvl(fd, value)?)
    }

    fn keep_alive_count(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u32> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::tcp_keepcnt(fd)?)
    }

    fn set_keep_alive_count(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u32,
    ) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        // The range Linux takes.
        let value = value.clamp(1, 127);
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(rustix::net::sockopt::set_tcp_keepcnt(fd, value)?)
    }

    fn hop_limit(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u8> {
        let socket = self.socket(&socket)?;
        let family = socket.family;
        let fd = socket.option_fd()?;
        match family {
            IpAddressFamily::Ipv4 => {
                let ttl = rustix::net::sockopt::ip_ttl(fd)?;
                u8::try_from(ttl).map_err(|_| ErrorCode::NotSupported.into())
            }
            IpAddressFamily::Ipv6 => Ok(rustix::net::sockopt::ipv6_unicast_hops(fd)?),
        }
    }

    fn set_hop_limit(&mut self, socket: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        let socket = self.socket(&socket)?;
        let family = socket.family;
        let fd = socket.option_fd()?;
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        match family {
            IpAddressFamily::Ipv4 => Ok(rustix::net::sockopt::set_ip_ttl(fd, value.into())?),
            IpAddressFamily::Ipv6 => {
                Ok(rustix::net::sockopt::set_ipv6_unicast_hops(fd, Some(value))?)
            }
        }
    }

    fn receive_buffer_size(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u64> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(buffer_size(rustix::net::sockopt::socket_recv_buffer_size(fd)?))
    }

    fn set_receive_buffer_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        let fd = self.socket(&socket)?.option_fd()?;
        let value = set_buffer_size(value)?;
        ignore_nobufs(rustix::net::sockopt::set_socket_recv_buffer_size(fd, value))
    }

    fn send_buffer_size(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u64> {
        let fd = self.socket(&socket)?.option_fd()?;
        Ok(buffer_size(rustix::net::sockopt::socket_send_buffer_size(fd)?))
    }

    fn set_send_buffer_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        let fd = self.socket(&socket)?.option_fd()?;
        let value = set_buffer_size(value)?;
        ignore_nobufs(rustix::net::sockopt::set_socket_send_buffer_size(fd, value))
    }

    fn subscribe(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<Resource<Pollable>> {
        let pollable = Pollable::Socket(socket.rep());
        self.push_pollable(pollable, &socket)
    }

    fn shutdown(&mut self, socket: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let State::Connected(connection) = &self.socket(&socket)?.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        connection.shutdown(match how {
            ShutdownType::Receive => Shutdown::Read,
            ShutdownType::Send => Shutdown::Write,
            ShutdownType::Both => Shutdown::Both,
        });
        Ok(())
    }

    fn drop(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(socket)?;
        Ok(())
    }
}

/// A WASI duration (nanoseconds) from a system one.
fn nanos(duration: std::time::Duration) -> Duration {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A keep-alive time as Linux takes it: whole seconds, 1 to 32,767,
/// rounded up; 0 is refused, as WASI asks.
fn keep_alive_time(value: Duration) -> SocketResult<std::time::Duration> {
    if value == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    let seconds = value.div_ceil(1_000_000_000).clamp(1, 32_767);
    Ok(std::time::Duration::from_secs(seconds))
}

/// A buffer size to set: 0 is refused, the rest taken up to what the system
/// takes.
fn set_buffer_size(value: u64) -> SocketResult<usize> {
    if value == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX).min(i32::MAX as usize))
}

/// A buffer size as the guest set it: Linux reports double what was set, to
/// account for its own overhead; Wasmtime halves it back, and so does this.
fn buffer_size(reported: usize) -> u64 {
    (reported / 2) as u64
}

/// A buffer size beyond the system's limit is capped by the system, not an
/// error (BSD says ENOBUFS where Linux caps).
fn ignore_nobufs(result: rustix::io::Result<()>) -> SocketResult<()> {
    match result {
        Ok(()) | Err(Errno::NOBUFS) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
