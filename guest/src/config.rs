//! The server's configuration: the command line ([`GuestCommand`], defined
//! with the host in `echo-settings`) made into what the server works with.

use echo_settings::GuestCommand;
use std::net::SocketAddr;
use std::time::Duration;

/// A complete service configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The addresses to bind and listen on; port 0 lets the system choose.
    pub listen: Vec<SocketAddr>,
    /// The handler's settings (`--prefix` as `prefix`, and every `--set`).
    pub settings: Vec<(String, String)>,
    /// What one connection, and all of them together, may take.
    pub limits: Limits,
    /// Watch stdin, and shut down gracefully when it ends.
    pub shutdown_on_eof: bool,
}

/// The limits on connections; `echo-settings` says why each default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may wait for the client's next bytes.
    pub idle_timeout: Duration,
    /// How long a reply may make no progress.
    pub stall_timeout: Duration,
    /// How long the last replies may take once the client stopped sending.
    pub half_close_timeout: Duration,
}

impl From<GuestCommand> for Config {
    fn from(command: GuestCommand) -> Config {
        let service = command.service;
        Config {
            settings: service.handler_settings(),
            listen: service.listen,
            limits: Limits {
                max_connections: service.max_connections.get(),
                idle_timeout: service.idle_timeout.into(),
                stall_timeout: service.stall_timeout.into(),
                half_close_timeout: service.half_close_timeout.into(),
            },
            shutdown_on_eof: command.shutdown_on_eof,
        }
    }
}
