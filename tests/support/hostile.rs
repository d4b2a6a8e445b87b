//! The hostile test components of `tests/hostile`, built for
//! `wasm32-wasip2` on first use.

use super::server::host_command;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the hostile component `name` (a binary of `tests/hostile`).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| echo_testkit::wasm::build("echo-hostile", "hostile"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "no hostile component {}", path.display());
    path
}

/// `echo-host` with `flags`, running the hostile component `name` with
/// `actions` as its arguments.
pub fn under_host(name: &str, flags: &[&str], actions: &[&str]) -> Command {
    let mut command = host_command();
    command.args(flags).arg("--component").arg(component(name)).arg("--").args(actions);
    command
}
