//! Handler components that tests and benchmarks build on first use: the
//! Python handler of `handlers/python` (with componentize-py) and the
//! hostile handler of `tests/hostile-handler`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// `componentize-py`: in `target/tools/bin`, where `scripts/componentize-py.sh`
/// installs it, else on the `PATH`.
fn componentize_py() -> PathBuf {
    let installed = super::workspace_root().join("target/tools/bin/componentize-py");
    if installed.is_file() {
        return installed;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("componentize-py")).find(|p| p.is_file())
    });
    on_path.expect(
        "componentize-py is needed for the Python handler: \
         `source scripts/componentize-py.sh` installs it into target/tools",
    )
}

/// The Python handler (`handlers/python`), built with componentize-py:
/// importing the WASI its runtime asks for, or, with `stub_wasi`, nothing.
pub fn python(stub_wasi: bool) -> PathBuf {
    static PLAIN: OnceLock<PathBuf> = OnceLock::new();
    static STUB: OnceLock<PathBuf> = OnceLock::new();
    let cell = if stub_wasi { &STUB } else { &PLAIN };
    cell.get_or_init(|| {
        let root = super::workspace_root();
        let out_dir = root.join("target/handlers");
        std::fs::create_dir_all(&out_dir).expect("create target/handlers");
        let name = if stub_wasi { "echo_handler_py_stub.wasm" } else { "echo_handler_py.wasm" };
        let out = out_dir.join(name);
        let mut command = Command::new(componentize_py());
        command.current_dir(root).args(["-d", "wit/handler", "-w", "plugin", "componentize"]);
        if stub_wasi {
            command.arg("--stub-wasi");
        }
        // Python's bytecode cache would land in the source tree.
        command.env("PYTHONDONTWRITEBYTECODE", "1");
        let status = command
            .args(["-p", "handlers/python", "echo_handler", "-o"])
            .arg(&out)
            .status()
            .expect("run componentize-py");
        assert!(status.success(), "building the Python handler failed (see above)");
        out
    })
    .clone()
}

/// The hostile handler (`tests/hostile-handler`), with its `file` cue
/// (and so importing the file system) or without.
pub fn hostile(file: bool) -> PathBuf {
    static WITH_FILE: OnceLock<PathBuf> = OnceLock::new();
    static WITHOUT: OnceLock<PathBuf> = OnceLock::new();
    let (cell, dir, features): (_, _, &[&str]) = match file {
        true => (&WITH_FILE, "hostile-handler-file", &["file"]),
        false => (&WITHOUT, "hostile-handler", &[]),
    };
    cell.get_or_init(|| {
        super::wasm::build_with("echo-hostile-handler", dir, features)
            .join("echo_hostile_handler.wasm")
    })
    .clone()
}
