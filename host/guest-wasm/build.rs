//! Builds the echo server's core and the shipped handlers for
//! `wasm32-wasip2`, and composes the core with the default handler
//! (`prefix`) into `echo_guest.wasm`, so that `cargo build` of the host is
//! the only command a user needs; `src/lib.rs` embeds the results.
//!
//! As `wasm-pack` does, a missing `wasm32-wasip2` target is installed with
//! rustup; without rustup the build stops and names the command to run.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// The handlers in `handlers/`, each built as `echo-handler-NAME`.
const HANDLERS: [&str; 4] = ["prefix", "uppercase", "lines", "ratelimit"];

fn main() {
    let here = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = here.ancestors().nth(2).expect("this crate lives in host/ in the workspace");
    for input in
        ["guest/src", "guest/Cargo.toml", "handlers", "compose", "settings", "wit", "Cargo.lock"]
    {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    ensure_target();

    // A target directory of its own: the outer build holds the lock on the
    // usual one, and shares none of its settings.
    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let guest_dir = target_dir.join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--package", "echo-guest", "--target", TARGET])
        .args(
            HANDLERS
                .iter()
                .flat_map(|name| ["--package".to_owned(), format!("echo-handler-{name}")]),
        )
        .arg("--target-dir")
        .arg(&guest_dir)
        // Flags and wrappers meant for the host build must not reach the
        // guest's: `-C target-cpu=native` or clippy's driver, say.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run cargo to build the guest");
    assert!(status.success(), "building the echo guest failed (see the errors above)");

    let built = guest_dir.join(TARGET).join("release");
    let core = built.join("echo_guest.wasm");
    println!("cargo:rustc-env=ECHO_SERVER_CORE_WASM={}", core.display());
    for name in HANDLERS {
        let wasm = built.join(format!("echo_handler_{name}.wasm"));
        println!("cargo:rustc-env=ECHO_HANDLER_{}={}", name.to_uppercase(), wasm.display());
    }

    // Beside cargo's own output, which stays the core alone.
    let read =
        |path: &Path| fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let prefix = built.join("echo_handler_prefix.wasm");
    let composed = echo_compose::compose(&read(&core), &read(&prefix), "the prefix handler")
        .unwrap_or_else(|e| panic!("composing the echo guest failed: {e}"));
    assert!(composed.extra_imports.is_empty(), "prefix imports {:?}", composed.extra_imports);
    let wasm = guest_dir.join("echo_guest.wasm");
    fs::write(&wasm, composed.bytes).unwrap_or_else(|e| panic!("write {}: {e}", wasm.display()));
    println!("cargo:rustc-env=ECHO_GUEST_WASM={}", wasm.display());
}

/// Makes sure the standard library for [`TARGET`] is installed.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir =
        Command::new(rustc).args(["--print", "target-libdir", "--target", TARGET]).output();
    if let Ok(out) = libdir
        && out.status.success()
        && Path::new(String::from_utf8_lossy(&out.stdout).trim()).exists()
    {
        return;
    }
    println!("cargo:warning=installing the Rust target {TARGET}: rustup target add {TARGET}");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    match rustup.status() {
        Ok(status) if status.success() => {}
        _ => panic!(
            "the Rust target {TARGET} is not installed, and installing it failed; run:\n\n    \
             rustup target add {TARGET}\n"
        ),
    }
}
