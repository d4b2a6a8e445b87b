//! The Wasmtime engine, and the components it runs, compiled once.
//!
//! Compiling a component takes a second or more; loading compiled code takes
//! a millisecond. So compiled code is kept in a cache folder, one file per
//! component, named by a hash of the component's bytes and of the engine's
//! compatibility hash ([`Engine::precompile_compatibility_hash`]: Wasmtime's
//! version and every setting that changes the code). The first start
//! compiles the embedded guest; later starts, and a `--component` given
//! again, load what was compiled.
//!
//! A cached file is machine code that is run without further checks, so the
//! folder must be the user's own: the host creates it readable by its owner
//! only, and will not use a folder that anyone else may write to.

use std::borrow::Cow;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::error::Context;
use wasmtime::{Engine, bail};

pub use echo_guest_wasm::{ECHO_GUEST, SERVER_CORE};

/// How many compiled components a cache folder keeps; past it, the oldest
/// go. Each is a few MiB; a host keeps one or two in use.
const CACHE_ENTRIES: usize = 16;

/// Where compiled code is kept between starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCache {
    /// `$XDG_CACHE_HOME/echo-host`, else `~/.cache/echo-host`.
    Default,
    /// This folder.
    At(PathBuf),
    /// Nowhere: compile at every start.
    Off,
}

impl CodeCache {
    fn folder(&self) -> Option<PathBuf> {
        match self {
            CodeCache::Off => None,
            CodeCache::At(folder) => Some(folder.clone()),
            CodeCache::Default => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
                .map(|cache| cache.join("echo-host")),
        }
    }
}

/// The engine that compiles and runs guests: epoch interruption for the
/// [`watchdog`](crate::watchdog), Wasmtime's defaults otherwise.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    Engine::new(&config).context("configure Wasmtime")
}

/// The component at `path`, or the embedded echo server if `None`: loaded
/// from `cache` if it was compiled before, else compiled (and kept there).
///
/// A cache that cannot be used (a read-only file system, a folder others
/// may write to) is no reason not to serve: the host says so and compiles.
pub fn load(
    engine: &Engine,
    path: Option<&Path>,
    cache: &CodeCache,
) -> wasmtime::Result<Component> {
    let bytes = match path {
        None => Cow::Borrowed(ECHO_GUEST),
        Some(path) => Cow::Owned(
            fs::read(path).with_context(|| format!("load component {}", path.display()))?,
        ),
    };
    let name =
        path.map_or_else(|| "the embedded echo guest".to_owned(), |p| p.display().to_string());
    load_bytes(engine, &name, &bytes, cache)
}

/// The component `bytes`, called `name` in messages, compiled by `engine`
/// or loaded from `cache`, as [`load`] does.
pub fn load_bytes(
    engine: &Engine,
    name: &str,
    bytes: &[u8],
    cache: &CodeCache,
) -> wasmtime::Result<Component> {
    let started = Instant::now();
    let Some(folder) = cache.folder() else {
        return Component::new(engine, bytes).with_context(|| format!("compile {name}"));
    };
    let file = folder.join(format!("{:016x}.cwasm", key(engine, bytes)));
    if file.is_file() {
        match private_folder(&folder).and_then(|()| {
            // SAFETY: `deserialize_file` runs the file's machine code without
            // checking it, so the file must come from Wasmtime's own
            // `precompile_component`. It does: this host wrote it (below),
            // into a folder no one else may write to, as `private_folder`
            // has just checked; its name is the hash of the component and
            // of this engine's settings. Wasmtime still checks its version
            // and settings, and refuses a mismatch with an error.
            unsafe { Component::deserialize_file(engine, &file) }
        }) {
            Ok(component) => {
                tracing::debug!(file = %file.display(), took = ?started.elapsed(), "loaded {name}, compiled before");
                return Ok(component);
            }
            Err(e) => tracing::warn!("compiling {name}: its compiled code does not load: {e:#}"),
        }
    }
    let compiled = engine.precompile_component(bytes).with_context(|| format!("compile {name}"))?;
    tracing::info!(took = ?started.elapsed(), "compiled {name}");
    if let Err(e) = keep(&folder, &file, &compiled) {
        tracing::warn!("compiling {name} at every start: the code cache is unusable: {e:#}");
    }
    // SAFETY: these bytes are what `precompile_component` returned, just now.
    unsafe { Component::deserialize(engine, &compiled) }.with_context(|| format!("load {name}"))
}

/// The cache key of `bytes` compiled by `engine`.
fn key(engine: &Engine, bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Writes `compiled` to `file` in `folder`, whole or not at all, and lets the
/// oldest entries go past [`CACHE_ENTRIES`].
fn keep(folder: &Path, file: &Path, compiled: &[u8]) -> wasmtime::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .with_context(|| format!("create {}", folder.display()))?;
    private_folder(folder)?;
    // Written beside its final name and renamed: another host starting at
    // the same time sees the whole file or none.
    let partial = file.with_extension(format!("{}.partial", std::process::id()));
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("create {}", partial.display()))?;
    out.write_all(compiled).and_then(|()| out.sync_all()).context("write compiled code")?;
    fs::rename(&partial, file).context("put compiled code in place")?;
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(folder)?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let modified = path.metadata().ok()?.modified().ok()?;
            (path.extension()? == "cwasm").then_some((modified, path))
        })
        .collect();
    entries.sort();
    for (_, old) in entries.iter().rev().skip(CACHE_ENTRIES) {
        let _ = fs::remove_file(old);
    }
    Ok(())
}

/// Refuses a folder that is not this user's, or that others may write to.
fn private_folder(folder: &Path) -> wasmtime::Result<()> {
    let meta = fs::metadata(folder).with_context(|| format!("look at {}", folder.display()))?;
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user || meta.mode() & 0o022 != 0 {
        bail!(
            "{} is not private to this user (owner {}, mode {:o}): its code could be anyone's",
            folder.display(),
            meta.uid(),
            meta.mode() & 0o777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("echo-host-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// The first load compiles and keeps the code; the second loads it; a
    /// folder others may write to is not trusted, and the guest still loads.
    #[test]
    fn compiled_code_is_kept_and_trusted_only_in_a_private_folder() {
        let engine = engine().unwrap();
        let dir = folder("kept");
        let cache = CodeCache::At(dir.clone());
        load(&engine, None, &cache).unwrap();
        let files: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let file = files[0].as_ref().unwrap().path();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        load(&engine, None, &cache).unwrap();

        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_folder(&dir).unwrap_err().to_string().contains("not private"));
        load(&engine, None, &cache).unwrap();
        assert!(file.is_file());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_follow_the_bytes() {
        let engine = engine().unwrap();
        assert_eq!(key(&engine, b"a"), key(&engine, b"a"));
        assert_ne!(key(&engine, b"a"), key(&engine, b"b"));
    }
}
