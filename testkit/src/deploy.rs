//! A host as it is deployed: where its `--metrics` serves, and HAProxy in
//! front of hosts on the configuration in `deploy/haproxy/`, unchanged.

use crate::Process;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The address `--metrics` serves on, from the host's log line
/// `serving metrics on http://ADDR/metrics` (in either log format), once it
/// has said it within `timeout`.
pub fn metrics_addr(process: &Process, timeout: Duration) -> Option<SocketAddr> {
    let line = process.wait_for_line("serving metrics on", timeout)?;
    let start = line.find("http://")? + "http://".len();
    let end = line[start..].find("/metrics")? + start;
    line[start..end].parse().ok()
}

/// `haproxy` in the foreground on `deploy/haproxy/haproxy.cfg`, listening
/// at `frontend`, in front of the hosts `servers`: each its echo address
/// and the port of its `--metrics` (on the same IP address). The file
/// names three servers; fewer hosts are repeated to fill them.
pub fn haproxy(frontend: SocketAddr, servers: &[(SocketAddr, u16)]) -> Command {
    let config = crate::workspace_root().join("deploy/haproxy/haproxy.cfg");
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(config);
    command.env("ECHO_FRONTEND", frontend.to_string());
    for (n, (addr, health)) in (1..=3).zip(servers.iter().cycle()) {
        command.env(format!("ECHO_SERVER_{n}"), addr.to_string());
        command.env(format!("ECHO_HEALTH_PORT_{n}"), health.to_string());
    }
    command
}
