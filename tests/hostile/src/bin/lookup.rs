//! Imports `wasi:sockets/ip-name-lookup`, which the host does not link: it
//! must not even instantiate.

use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;

fn main() {
    let lookup = resolve_addresses(&instance_network(), "localhost");
    println!("name lookup: {}", if lookup.is_ok() { "ok" } else { "refused" });
}
