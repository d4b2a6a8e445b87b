//! Imports `wasi:sockets/udp`, which the host does not link: it must not
//! even instantiate.

use wasip2::sockets::network::IpAddressFamily;
use wasip2::sockets::udp_create_socket::create_udp_socket;

fn main() {
    let socket = create_udp_socket(IpAddressFamily::Ipv4);
    println!("udp socket: {}", if socket.is_ok() { "ok" } else { "refused" });
}
