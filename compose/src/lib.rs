//! One echo server component from two: the server's core (`guest/`, the
//! `server-core` world of `wit/world.wit`) and a handler (the `plugin`
//! world of `wit/handler/handler.wit`). The handler's export satisfies the
//! core's import; what is left is an `echo-server`, which runs under
//! `echo-host --component` and under a stock `wasmtime run`.
//!
//! The build composes the default handler this way into `echo_guest.wasm`;
//! `echo-host compose --handler H -o OUT` composes any other. Composed, the
//! handler shares the server's instance: a trap in the handler is a trap of
//! the whole server.

use std::fmt;
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// The interface a handler exports and the server core imports.
pub const HANDLER_INTERFACE: &str = "echo:handler/handler@0.1.0";

/// The server's export: a `wasi:cli/run` command.
pub const RUN_INTERFACE: &str = "wasi:cli/run@0.2.12";

/// A composed server, and what its handler brought with it.
#[derive(Debug)]
pub struct Composed {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// The handler's imports (version aside) that the server core does not
    /// import: the composed server imports them too, and a host has to
    /// grant them for it to run.
    pub extra_imports: Vec<String>,
}

/// Why two components do not compose.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Composes `handler` (named `handler_name` in messages) into `server`, the
/// server core: the handler is instantiated first and its
/// [`HANDLER_INTERFACE`] export fills the core's import; the result exports
/// the core's [`RUN_INTERFACE`] alone.
pub fn compose(server: &[u8], handler: &[u8], handler_name: &str) -> Result<Composed, Error> {
    let fail = |what: &str, e: &dyn fmt::Display| Error(format!("{what}: {e:#}"));
    let mut graph = CompositionGraph::new();
    let core = Package::from_bytes("echo:server-core", None, server.to_vec(), graph.types_mut())
        .map_err(|e| fail("the server core is not a component", &e))?;
    let plugin = Package::from_bytes("echo:plugin", None, handler.to_vec(), graph.types_mut())
        .map_err(|e| fail(&format!("{handler_name} is not a component"), &e))?;
    let exports_handler = graph.types()[plugin.ty()].exports.contains_key(HANDLER_INTERFACE);
    if !exports_handler {
        return Err(Error(format!(
            "{handler_name} does not export {HANDLER_INTERFACE}: a handler implements the \
             `plugin` world of wit/handler/handler.wit"
        )));
    }
    let unversioned = |name: &str| name.split('@').next().unwrap_or(name).to_owned();
    let core_imports: Vec<String> =
        graph.types()[core.ty()].imports.keys().map(|name| unversioned(name)).collect();
    let extra_imports = graph.types()[plugin.ty()]
        .imports
        .keys()
        .map(|name| unversioned(name))
        .filter(|name| !core_imports.contains(name))
        .collect();

    let core = graph.register_package(core).map_err(|e| fail("register the server core", &e))?;
    let plugin = graph.register_package(plugin).map_err(|e| fail("register the handler", &e))?;
    let plugin = graph.instantiate(plugin);
    let handler = graph
        .alias_instance_export(plugin, HANDLER_INTERFACE)
        .map_err(|e| fail("take the handler's export", &e))?;
    let server = graph.instantiate(core);
    graph
        .set_instantiation_argument(server, HANDLER_INTERFACE, handler)
        .map_err(|e| fail(&format!("{handler_name} does not fit the server core"), &e))?;
    let run = graph
        .alias_instance_export(server, RUN_INTERFACE)
        .map_err(|e| fail("take the server's export", &e))?;
    graph.export(run, RUN_INTERFACE).map_err(|e| fail("export wasi:cli/run", &e))?;
    let bytes = graph
        .encode(EncodeOptions::default())
        .map_err(|e| fail(&format!("compose {handler_name} with the server core"), &e))?;
    Ok(Composed { bytes, extra_imports })
}
