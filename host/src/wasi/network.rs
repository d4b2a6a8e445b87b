//! `wasi:sockets/network` and `instance-network`: the network resource, the
//! one mapping from the system's errors to WASI's error codes, and
//! addresses between `std::net` and WASI.

use super::Wasi;
use super::bindings::wasi::sockets::instance_network;
use super::bindings::wasi::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use rustix::io::Errno;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use wasmtime::component::Resource;

/// The host's `wasi:sockets/network.network`: the right to use the network,
/// within the store's grant. Every guest has the same one.
#[derive(Debug)]
pub struct Network;

/// A `wasi:sockets` error, or a reason to trap (a bad resource handle).
#[derive(Debug)]
pub enum SocketError {
    Code(ErrorCode),
    Trap(wasmtime::Error),
}

impl From<ErrorCode> for SocketError {
    fn from(code: ErrorCode) -> SocketError {
        SocketError::Code(code)
    }
}

impl From<Errno> for SocketError {
    fn from(errno: Errno) -> SocketError {
        SocketError::Code(error_code(errno))
    }
}

impl From<wasmtime::component::ResourceTableError> for SocketError {
    fn from(error: wasmtime::component::ResourceTableError) -> SocketError {
        SocketError::Trap(error.into())
    }
}

impl From<wasmtime::Error> for SocketError {
    fn from(error: wasmtime::Error) -> SocketError {
        SocketError::Trap(error)
    }
}

/// What a `wasi:sockets` operation returns.
pub type SocketResult<T> = Result<T, SocketError>;

/// The error code for a system error, as the WASI spec text lists them per
/// operation. The cases an operation cannot see never arise from it.
pub fn error_code(errno: Errno) -> ErrorCode {
    match errno {
        Errno::ACCESS | Errno::PERM => ErrorCode::AccessDenied,
        Errno::OPNOTSUPP
        | Errno::NOPROTOOPT
        | Errno::PFNOSUPPORT
        | Errno::PROTONOSUPPORT
        | Errno::PROTOTYPE
        | Errno::SOCKTNOSUPPORT
        | Errno::AFNOSUPPORT => ErrorCode::NotSupported,
        Errno::INVAL => ErrorCode::InvalidArgument,
        Errno::NOMEM | Errno::NOBUFS => ErrorCode::OutOfMemory,
        Errno::TIMEDOUT => ErrorCode::Timeout,
        Errno::AGAIN => ErrorCode::WouldBlock,
        Errno::ALREADY => ErrorCode::ConcurrencyConflict,
        Errno::ISCONN | Errno::NOTCONN | Errno::DESTADDRREQ => ErrorCode::InvalidState,
        // The descriptor table is full: the process's (EMFILE) or the
        // system's (ENFILE). A server should wait for connections to close.
        Errno::MFILE | Errno::NFILE => ErrorCode::NewSocketLimit,
        Errno::ADDRNOTAVAIL => ErrorCode::AddressNotBindable,
        Errno::ADDRINUSE => ErrorCode::AddressInUse,
        Errno::HOSTUNREACH
        | Errno::HOSTDOWN
        | Errno::NETDOWN
        | Errno::NETUNREACH
        | Errno::NONET => ErrorCode::RemoteUnreachable,
        Errno::CONNREFUSED => ErrorCode::ConnectionRefused,
        Errno::CONNRESET | Errno::PIPE => ErrorCode::ConnectionReset,
        Errno::CONNABORTED => ErrorCode::ConnectionAborted,
        Errno::MSGSIZE => ErrorCode::DatagramTooLarge,
        _ => ErrorCode::Unknown,
    }
}

pub fn to_wasi(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(addr) => {
            let [a, b, c, d] = addr.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port: addr.port(), address: (a, b, c, d) })
        }
        SocketAddr::V6(addr) => {
            let [a, b, c, d, e, f, g, h] = addr.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: addr.port(),
                flow_info: addr.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: addr.scope_id(),
            })
        }
    }
}

pub fn from_wasi(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: (a, b, c, d) }) => {
            SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port).into()
        }
        IpSocketAddress::Ipv6(addr) => {
            let (a, b, c, d, e, f, g, h) = addr.address;
            let ip = Ipv6Addr::new(a, b, c, d, e, f, g, h);
            SocketAddrV6::new(ip, addr.port, addr.flow_info, addr.scope_id).into()
        }
    }
}

/// Checks an address a socket of `socket_family` is to be bound to, as
/// WASI asks: the socket's family (an IPv6 socket is IPv6-only, so an
/// IPv4-mapped address is refused too), and no multicast or broadcast.
pub fn check_local(addr: &SocketAddr, socket_family: IpAddressFamily) -> SocketResult<()> {
    let family_fits = match (addr, socket_family) {
        (SocketAddr::V4(_), IpAddressFamily::Ipv4) => true,
        (SocketAddr::V6(v6), IpAddressFamily::Ipv6) => !embeds_ipv4(v6.ip()),
        _ => false,
    };
    if !family_fits || !is_unicast(addr.ip()) {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(())
}

/// Checks an address to connect to: as [`check_local`], and neither the
/// unspecified address nor port 0.
pub fn check_remote(addr: &SocketAddr, socket_family: IpAddressFamily) -> SocketResult<()> {
    check_local(addr, socket_family)?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(ErrorCode::InvalidArgument.into());
    }
    Ok(())
}

/// An IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`)
/// address, which an IPv6-only socket cannot use.
fn embeds_ipv4(ip: &Ipv6Addr) -> bool {
    let compatible = ip.segments()[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback();
    ip.to_ipv4_mapped().is_some() || compatible
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_multicast(),
    }
}

impl network::Host for Wasi {
    fn network_error_code(
        &mut self,
        error: Resource<super::streams::IoError>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        Ok(self.table.get(&error)?.code)
    }

    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        match error {
            SocketError::Code(code) => Ok(code),
            SocketError::Trap(error) => Err(error),
        }
    }
}

impl network::HostNetwork for Wasi {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(network)?;
        Ok(())
    }
}

impl instance_network::Host for Wasi {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<Network>> {
        Ok(self.table.push(Network)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_round_trip() {
        for text in ["127.0.0.1:25000", "0.0.0.0:0", "[::1]:8080", "[fe80::1%3]:1"] {
            assert_eq!(from_wasi(to_wasi(addr(text))), addr(text));
        }
    }

    #[test]
    fn addresses_are_checked_as_wasi_asks() {
        use IpAddressFamily::{Ipv4, Ipv6};
        assert!(check_local(&addr("127.0.0.1:0"), Ipv4).is_ok());
        assert!(check_local(&addr("0.0.0.0:0"), Ipv4).is_ok());
        assert!(check_local(&addr("[::]:0"), Ipv6).is_ok());
        for (text, family) in [
            ("127.0.0.1:1", Ipv6),
            ("[::1]:1", Ipv4),
            ("[::ffff:127.0.0.1]:1", Ipv6),
            ("[::127.0.0.1]:1", Ipv6),
            ("224.0.0.1:1", Ipv4),
            ("255.255.255.255:1", Ipv4),
            ("[ff02::1]:1", Ipv6),
        ] {
            assert!(check_local(&addr(text), family).is_err(), "{text}");
        }
        assert!(check_remote(&addr("127.0.0.1:80"), Ipv4).is_ok());
        assert!(check_remote(&addr("0.0.0.0:80"), Ipv4).is_err());
        assert!(check_remote(&addr("127.0.0.1:0"), Ipv4).is_err());
    }

    #[test]
    fn a_full_descriptor_table_is_a_socket_limit() {
        assert_eq!(error_code(Errno::MFILE), ErrorCode::NewSocketLimit);
        assert_eq!(error_code(Errno::NFILE), ErrorCode::NewSocketLimit);
        assert_eq!(error_code(Errno::CONNREFUSED), ErrorCode::ConnectionRefused);
        assert_eq!(error_code(Errno::IO), ErrorCode::Unknown);
    }
}
