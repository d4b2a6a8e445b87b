//! The service's listening sockets, bound by the host itself before any
//! guest runs, and handed to every guest that listens on a service address.
//!
//! They outlive the guests: while one restarts after a trap, the kernel
//! keeps queueing its clients in the listener's backlog, and the port never
//! refuses a connection; and several guests can accept from one kernel queue.

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// How many connections the kernel queues on a service address before they
/// are accepted: enough for a thousand clients connecting at once, and for
/// the clients of a guest that is restarting. The kernel caps it at
/// `net.core.somaxconn`.
pub const BACKLOG: i32 = 1024;

/// The listeners of the service addresses, in the order granted.
#[derive(Debug, Default)]
pub struct ServiceListeners {
    /// The addresses as bound.
    bound: Vec<SocketAddr>,
    /// The host's descriptor of each, until it lets them go.
    fds: Mutex<Vec<OwnedFd>>,
}

impl ServiceListeners {
    /// Binds and listens on each of `addresses`. An IPv6 address takes IPv6
    /// clients only, as every WASI 0.2 socket does. Port 0 picks a free
    /// port once: later addresses with port 0 take the same one, so that
    /// `0.0.0.0:0` and `[::]:0` make one dual-stack port.
    pub fn bind(addresses: &[SocketAddr]) -> io::Result<ServiceListeners> {
        let mut picked = None;
        let (mut bound_all, mut fds) = (Vec::new(), Vec::new());
        for &asked in addresses {
            let mut addr = asked;
            if let (0, Some(port)) = (addr.port(), picked) {
                addr.set_port(port);
            }
            let (bound, fd) = listen(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            if asked.port() == 0 {
                picked.get_or_insert(bound.port());
            }
            bound_all.push(bound);
            fds.push(fd);
        }
        Ok(ServiceListeners { bound: bound_all, fds: Mutex::new(fds) })
    }

    /// The addresses as bound: with port 0, the port the system picked.
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.bound.clone()
    }

    /// A descriptor of the listener bound at `addr`, for one guest to accept
    /// from; closing it leaves the listener open.
    pub fn share(&self, addr: SocketAddr) -> io::Result<OwnedFd> {
        let index = self
            .bound
            .iter()
            .position(|bound| *bound == addr)
            .ok_or_else(|| io::Error::other(format!("no service listener on {addr}")))?;
        let fds = self.fds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fd = fds
            .get(index)
            .ok_or_else(|| io::Error::other(format!("the listener on {addr} is closed")))?;
        fd.try_clone()
    }

    /// Lets the host's own descriptors go, for a shutdown: each listener
    /// closes, and new clients are refused, once the guests have closed
    /// theirs too; until then they go on queueing.
    pub fn close(&self) {
        self.fds.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

/// `socket`, `bind` and `listen` on `addr`, non-blocking.
fn listen(addr: SocketAddr) -> io::Result<(SocketAddr, OwnedFd)> {
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)?;
    if addr.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    // A restarted host can listen again at once, its old connections in
    // TIME_WAIT notwithstanding.
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, BACKLOG)?;
    let bound = SocketAddr::try_from(rustix::net::getsockname(&fd)?)
        .map_err(|_| io::Error::other("the listener has no IP address"))?;
    Ok((bound, fd))
}
