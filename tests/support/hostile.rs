//! The hostile test components of `tests/hostile`, built for
//! `wasm32-wasip2` on first use.

use super::server::ECHO_HOST;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of the hostile component `name` (a binary of `tests/hostile`).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build);
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "no hostile component {}", path.display());
    path
}

/// `echo-host` with `flags`, running the hostile component `name` with
/// `actions` as its arguments.
pub fn under_host(name: &str, flags: &[&str], actions: &[&str]) -> Command {
    let mut command = Command::new(ECHO_HOST);
    command.args(flags).arg("--component").arg(component(name)).arg("--").args(actions);
    command
}

fn build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // A target directory of its own, so as not to wait on the lock of the
    // build that is running these tests.
    let target_dir = root.join("target").join("hostile");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "--package", "echo-hostile", "--target", "wasm32-wasip2"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the hostile components failed");
    target_dir.join("wasm32-wasip2").join("release")
}
