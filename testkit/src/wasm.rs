//! Components of this workspace that tests and benchmarks need but that
//! never ship (the hostile test components, the benchmark's yardsticks),
//! built for `wasm32-wasip2` on first use.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Builds `package` for `wasm32-wasip2` in release mode and returns the
/// folder its components land in.
///
/// A target directory of its own (`target/<dir>`), so as not to wait on the
/// lock of the build that runs the tests or the benchmark; the caller's
/// compiler flags and wrappers are for that build, not this one.
pub fn build(package: &str, dir: &str) -> PathBuf {
    build_with(package, dir, &[])
}

/// Like [`build`], with the package's cargo `features` on.
pub fn build_with(package: &str, dir: &str, features: &[&str]) -> PathBuf {
    let root = super::workspace_root();
    let target_dir = root.join("target").join(dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--package", package, "--target", "wasm32-wasip2"])
        .args(["--features", &features.join(",")])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run cargo to build {package}: {e}"));
    assert!(status.success(), "building {package} for wasm32-wasip2 failed (see above)");
    target_dir.join("wasm32-wasip2").join("release")
}
