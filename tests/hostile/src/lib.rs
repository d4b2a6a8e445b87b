//! Helpers for the hostile test components in `src/bin/`: each is a
//! `wasm32-wasip2` command that tries something the host must refuse and
//! prints what happened, one line per attempt, for the test to read. The
//! benchmark's minimal guest (`bench/floor`) uses them too.

use std::net::SocketAddr;
use wasip2::io::poll::Pollable;
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};

/// The address the host granted, from the `--listen=ADDR` argument it passes.
pub fn granted_address() -> Option<SocketAddr> {
    std::env::args().find_map(|arg| arg.strip_prefix("--listen=").and_then(|a| a.parse().ok()))
}

/// The arguments that are not the host's settings (which all start with `--`).
pub fn actions() -> Vec<String> {
    std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect()
}

pub fn family(addr: SocketAddr) -> IpAddressFamily {
    if addr.is_ipv4() { IpAddressFamily::Ipv4 } else { IpAddressFamily::Ipv6 }
}

pub fn to_wasi(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let [b0, b1, b2, b3] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port: a.port(), address: (b0, b1, b2, b3) })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: 0,
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: 0,
            })
        }
    }
}

pub fn from_wasi(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (b0, b1, b2, b3) = a.address;
            SocketAddr::from(([b0, b1, b2, b3], a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            SocketAddr::from(([s0, s1, s2, s3, s4, s5, s6, s7], a.port))
        }
    }
}

/// Finishes a two-phase WASI operation, blocking on `ready`.
pub fn finish<T>(
    ready: &Pollable,
    mut finish: impl FnMut() -> Result<T, ErrorCode>,
) -> Result<T, ErrorCode> {
    loop {
        match finish() {
            Err(ErrorCode::WouldBlock) => ready.block(),
            result => return result,
        }
    }
}

/// `ok`, or the WASI error code's name.
pub fn outcome<T>(result: &Result<T, ErrorCode>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(code) => code.name(),
    }
}
