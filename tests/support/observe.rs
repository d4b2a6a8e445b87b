//! What an operator sees of a running host: its HTTP endpoints (`--metrics`),
//! asked with `curl` as an operator would, and its figures read back.

use super::{DEADLINE, eventually};
use echo_testkit::Process;
use std::net::SocketAddr;
use std::process::Command;

/// The address `--metrics` serves on, from the host's log.
pub fn metrics_addr(process: &Process) -> SocketAddr {
    echo_testkit::deploy::metrics_addr(process, DEADLINE)
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{}", process.log()))
}

/// `GET http://addr/path` with `curl`: the status and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--write-out", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl is needed for these tests (the README's test command installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// Asks `path` until its status is `status` (within [`DEADLINE`]); the body.
pub fn wait_for_status(addr: SocketAddr, path: &str, status: u16) -> String {
    eventually(|| match get(addr, path) {
        (got, body) if got == status => Ok(body),
        (got, body) => Err(format!("{path} still answers {got}, not {status}: {body}")),
    })
}

/// The sum of the samples of `name` whose labels include every one of
/// `labels` (`worker="1"`, say), in an OpenMetrics text.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The figures, once `ready` says they are as awaited (within
/// [`DEADLINE`]).
pub fn metrics_when(addr: SocketAddr, mut ready: impl FnMut(&str) -> bool) -> String {
    eventually(|| {
        let (status, text) = get(addr, "/metrics");
        assert_eq!(status, 200, "{text}");
        if ready(&text) { Ok(text) } else { Err(format!("the figures never got there:\n{text}")) }
    })
}
