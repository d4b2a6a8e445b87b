//! The network grant: what a guest may do with TCP, every allowance off
//! unless asked for.
//!
//! - **Service addresses** (`--listen`): the host binds each one itself,
//!   before any guest runs, and a guest that binds and listens on one is
//!   handed that listener: its clients wait in the kernel's backlog while a
//!   guest restarts, and every guest of the host accepts from it.
//! - **Networks to listen on** (`--allow-listen CIDR`): the guest may bind
//!   and listen on any address and port in them, itself.
//! - **Networks to connect to** (`--allow-connect CIDR`): outbound
//!   connections, for plugins that need an upstream. A socket may then bind
//!   to a port the system picks before it connects, as clients do, but may
//!   not listen there.
//! - **Peers** (`--allow-peers CIDR`): whose connections are accepted; others
//!   are reset as they are accepted, and the guest never sees them. Everyone,
//!   unless given.
//!
//! Anything else is refused with `access-denied`.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// What a guest may do with TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Addresses the host binds and hands to a guest that listens there.
    pub listen: Vec<SocketAddr>,
    /// Networks the guest may bind and listen on by itself, any port.
    pub listen_networks: Vec<IpNet>,
    /// Networks the guest may connect to.
    pub connect: Vec<IpNet>,
    /// Networks whose clients are accepted; `None`: everyone.
    pub peers: Option<Vec<IpNet>>,
}

/// What a bind is granted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// A service address: the host's listener stands in for the socket.
    Service(SocketAddr),
    /// An address of a network the guest may listen on.
    Listen,
    /// A port the system picks, for a socket about to connect out: it may
    /// not listen.
    Client,
}

impl Grant {
    /// How binding `addr` is allowed, if it is. `bound` are the service
    /// addresses as bound (with port 0, on the port the system picked, which
    /// is what the guest is told): binding one of those is binding the
    /// service.
    pub fn bind(&self, addr: SocketAddr, bound: &[SocketAddr]) -> Option<Bind> {
        if bound.contains(&addr) {
            return Some(Bind::Service(addr));
        }
        if contains(&self.listen_networks, addr.ip()) {
            return Some(Bind::Listen);
        }
        if !self.connect.is_empty() && addr.port() == 0 && addr.ip().is_unspecified() {
            return Some(Bind::Client);
        }
        None
    }

    /// Whether the guest may connect to `remote`.
    pub fn connect(&self, remote: SocketAddr) -> bool {
        contains(&self.connect, remote.ip())
    }

    /// Whether a client from `peer` is accepted.
    pub fn accepts(&self, peer: SocketAddr) -> bool {
        self.peers.as_ref().is_none_or(|peers| contains(peers, peer.ip()))
    }
}

/// Whether `ip`, or the IPv4 address an IPv4-mapped IPv6 address stands for,
/// is in one of `networks`.
fn contains(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    networks.iter().any(|net| net.contains(&ip))
}

/// Parses a network for a command line: `CIDR` (`10.0.0.0/8`, `::1/128`), or
/// a single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a network (expected e.g. 10.0.0.0/8 or ::1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| parse_network(n).unwrap()).collect()
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let grant = Grant::default();
        assert_eq!(grant.bind(addr("127.0.0.1:80"), &[]), None);
        assert_eq!(grant.bind(addr("0.0.0.0:0"), &[]), None);
        assert!(!grant.connect(addr("127.0.0.1:80")));
        assert!(grant.accepts(addr("192.0.2.1:5555")), "everyone is accepted by default");
    }

    #[test]
    fn a_service_address_binds_to_the_hosts_listener() {
        let grant = Grant { listen: vec![addr("127.0.0.1:25000")], ..Grant::default() };
        let bound = [addr("127.0.0.1:25000")];
        assert_eq!(grant.bind(addr("127.0.0.1:25000"), &bound), Some(Bind::Service(bound[0])));
        for other in ["127.0.0.1:25001", "127.0.0.1:0", "0.0.0.0:25000", "127.0.0.2:25000"] {
            assert_eq!(grant.bind(addr(other), &bound), None, "{other}");
        }
    }

    #[test]
    fn port_zero_grants_the_port_the_system_picked() {
        let grant = Grant { listen: vec![addr("[::1]:0")], ..Grant::default() };
        let bound = [addr("[::1]:4000")];
        assert_eq!(grant.bind(addr("[::1]:4000"), &bound), Some(Bind::Service(bound[0])));
        // Port 0 is a port of the guest's own, which the grant does not give.
        assert_eq!(grant.bind(addr("[::1]:0"), &bound), None);
        assert_eq!(grant.bind(addr("[::1]:4001"), &bound), None);
    }

    #[test]
    fn networks_allow_any_port_and_mapped_addresses() {
        let grant = Grant {
            listen_networks: nets(&["127.0.0.0/8"]),
            connect: nets(&["10.1.0.0/16", "::1"]),
            ..Grant::default()
        };
        assert_eq!(grant.bind(addr("127.3.2.1:9"), &[]), Some(Bind::Listen));
        assert_eq!(grant.bind(addr("[::ffff:127.0.0.1]:9"), &[]), Some(Bind::Listen));
        assert_eq!(grant.bind(addr("[::1]:9"), &[]), None);
        assert!(grant.connect(addr("10.1.200.3:443")) && grant.connect(addr("[::1]:1")));
        assert!(!grant.connect(addr("10.2.0.1:443")));
        // A client's bind before connecting: the system picks the port.
        assert_eq!(grant.bind(addr("0.0.0.0:0"), &[]), Some(Bind::Client));
        assert_eq!(grant.bind(addr("0.0.0.0:7"), &[]), None);
    }

    #[test]
    fn peers_can_be_limited() {
        let grant = Grant { peers: Some(nets(&["192.0.2.0/24"])), ..Grant::default() };
        assert!(grant.accepts(addr("192.0.2.77:1")));
        assert!(grant.accepts(addr("[::ffff:192.0.2.77]:1")));
        assert!(!grant.accepts(addr("198.51.100.1:1")));
    }

    #[test]
    fn networks_parse_as_cidr_or_address() {
        assert_eq!(parse_network("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network("::1").unwrap().to_string(), "::1/128");
        assert!(parse_network("localhost").unwrap_err().contains("not a network"));
    }
}
