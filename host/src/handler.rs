//! Handlers run on their own (`--handler`): the server core imports
//! `echo:handler/handler`, and the host provides that import by calling a
//! handler instance in a store of its own.
//!
//! A handler's store has its own memory cap (`--handler-memory`) and fuel
//! for each call (`--handler-fuel`), and nothing to reach: the contract
//! imports nothing, and whatever WASI 0.2 a language runtime asks for is
//! linked with nothing behind it (no files, no environment, no network,
//! stdio that goes nowhere, clocks that stand still), which the log lists
//! at start. Any other import refuses the handler at start, as does a
//! handler that fails to instantiate or refuses its settings.
//!
//! An instance whose memory nears its cap is replaced between two calls,
//! before it fails one: language runtimes that do not give memory back
//! then run for good, at the cost of the state their sessions held.
//!
//! A failing handler (a trap, out of fuel, over its memory) does not take
//! the server down. The call's connection gets the failure policy
//! (`--on-handler-failure`); the instance, whose store a trap leaves
//! unusable, is replaced by a fresh one, at once the first time and after
//! a backoff if failures follow one another. Sessions of other connections
//! that lived in the failed instance are opened again in the fresh one
//! (their `accept` is called again, its greeting dropped): they keep being
//! served, and lose what state the handler kept for them.
//!
//! Each worker has its own [`HandlerHost`], with its own instance, on its
//! own thread.

use crate::guest::{self, CodeCache};
use crate::metrics::WorkerMetrics;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, Resource, ResourceAny, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, bail};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// The default fuel for one call into a handler: about 20 to 50 ms of
/// computation, a thousand times what a call of the shipped handlers, or of
/// the Python one, takes.
pub const FUEL: u64 = 20_000_000;

/// The default memory cap of a handler instance, in MiB: CPython needs
/// about 13 to start.
pub const MEMORY_MIB: u64 = 64;

/// The most bytes one reply may hold, as the contract says: a longer one
/// aborts its connection before it reaches the server core.
pub const MAX_REPLY: usize = 1024 * 1024;

/// An instance whose memory exceeds this many eighths of its cap is
/// replaced between calls.
const RECYCLE_EIGHTHS: usize = 7;

/// The pause before instantiating again after the second failure in a row;
/// it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause between instances.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The bindings: the server's import, which the host provides, and the
/// handler's export, which it calls.
mod bindings {
    pub mod server {
        wasmtime::component::bindgen!({
            path: "../wit/handler",
            world: "echo:handler/server",
            imports: { default: async | trappable },
            with: { "echo:handler/handler.session": crate::handler::Session },
        });
    }

    pub mod plugin {
        wasmtime::component::bindgen!({
            path: "../wit/handler",
            world: "echo:handler/plugin",
            exports: { default: async },
        });
    }
}

use bindings::plugin::exports::echo::handler::handler as export;
use bindings::server::echo::handler::handler as import;

/// What a connection gets when its handler fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnFailure {
    /// Deliver what was already answered, then end the stream (a FIN).
    Close,
    /// End the connection at once; the client sees it reset or cut.
    Reset,
}

impl OnFailure {
    fn verdict(self) -> import::Verdict {
        let then = match self {
            OnFailure::Close => import::Then::Close,
            OnFailure::Reset => import::Then::Abort,
        };
        import::Verdict { reply: Vec::new(), then }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Close => "close",
            OnFailure::Reset => "reset",
        })
    }
}

/// Where a handler comes from: one of `handlers/`, built into the host, or
/// a component file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Shipped(&'static str),
    File(std::path::PathBuf),
}

impl Source {
    /// The handler's name in messages and the log.
    pub fn name(&self) -> String {
        match self {
            Source::Shipped(name) => (*name).to_owned(),
            Source::File(path) => path.display().to_string(),
        }
    }

    /// The component's bytes.
    pub fn bytes(&self) -> wasmtime::Result<std::borrow::Cow<'static, [u8]>> {
        match self {
            Source::Shipped(name) => {
                let shipped = echo_guest_wasm::HANDLERS.iter().find(|h| h.name == *name);
                Ok(shipped.context("no such shipped handler")?.bytes.into())
            }
            Source::File(path) => Ok(std::fs::read(path)
                .with_context(|| format!("read the handler {}", path.display()))?
                .into()),
        }
    }
}

impl FromStr for Source {
    type Err = String;

    /// A shipped handler's name, or a path (anything with a `/` or a `.`).
    fn from_str(text: &str) -> Result<Source, String> {
        if let Some(shipped) = echo_guest_wasm::HANDLERS.iter().find(|h| h.name == text) {
            return Ok(Source::Shipped(shipped.name));
        }
        if text.contains(['/', '.']) {
            return Ok(Source::File(text.into()));
        }
        let names: Vec<&str> = echo_guest_wasm::HANDLERS.iter().map(|h| h.name).collect();
        Err(format!(
            "no shipped handler is named {text:?} (they are {}); a file's path has a / or a .",
            names.join(", ")
        ))
    }
}

/// How much a handler instance may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerLimits {
    /// Linear memory, in bytes.
    pub memory: usize,
    /// Fuel for each call.
    pub fuel: u64,
}

/// A handler, compiled and linked, ready to be instantiated by any worker.
pub struct Plugin {
    name: String,
    engine: Engine,
    pre: bindings::plugin::PluginPre<HandlerState>,
    limits: HandlerLimits,
    on_failure: OnFailure,
    /// The settings it accepted at start, given again to every instance.
    settings: Vec<(String, String)>,
}

impl Plugin {
    /// Compiles (or loads from `cache`) the handler from `source`, links
    /// it, and tries it: one instance is started and given `settings`.
    /// Refuses a handler that imports more than WASI 0.2, fails to start,
    /// or refuses its settings.
    pub async fn load(
        source: &Source,
        cache: &CodeCache,
        limits: HandlerLimits,
        on_failure: OnFailure,
        settings: Vec<(String, String)>,
    ) -> wasmtime::Result<Plugin> {
        let name = source.name();
        let engine = engine()?;
        let component =
            guest::load_bytes(&engine, &format!("the handler {name}"), &source.bytes()?, cache)?;
        let pre = link(&engine, &component, &name)?;
        let plugin = Plugin { name, engine, pre, limits, on_failure, settings };
        let mut live = plugin.instantiate().await?;
        live.store.set_fuel(limits.fuel)?;
        let configured = live.handler().call_configure(&mut live.store, &plugin.settings).await;
        match configured {
            Ok(Ok(())) => Ok(plugin),
            Ok(Err(refusal)) => {
                bail!("the handler {} refuses its settings: {refusal}", plugin.name)
            }
            Err(e) => {
                let (_, what) = describe(&e, &live.store, limits);
                bail!("the handler {} failed as it was configured: {what}", plugin.name)
            }
        }
    }

    /// A fresh instance in a store of its own.
    async fn instantiate(&self) -> wasmtime::Result<Live> {
        let state = HandlerState {
            wasi: nothing_behind(),
            table: ResourceTable::new(),
            limiter: HandlerLimiter {
                limits: StoreLimitsBuilder::new().memory_size(self.limits.memory).build(),
                refused: false,
                size: 0,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(self.limits.fuel)?;
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .with_context(|| format!("instantiate the handler {}", self.name))?;
        Ok(Live { store, handler: instance, generation: 0 })
    }
}

/// The engine for handlers: fuel, counted per call. Its own, because fuel
/// is an engine-wide setting that the server's engine does not need.
fn engine() -> wasmtime::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    Engine::new(&config).context("configure Wasmtime for handlers")
}

/// Links the contract and WASI 0.2 with nothing behind it; refuses any
/// other import, and says which WASI interfaces the handler asked for.
fn link(
    engine: &Engine,
    component: &Component,
    name: &str,
) -> wasmtime::Result<bindings::plugin::PluginPre<HandlerState>> {
    let imports: Vec<String> =
        component.component_type().imports(engine).map(|(import, _)| import.to_owned()).collect();
    if let Some(other) = imports.iter().find(|import| !import.starts_with("wasi:")) {
        bail!(
            "the handler {name} imports {other}, which is neither the contract nor WASI 0.2: \
             refused"
        );
    }
    if !imports.is_empty() {
        tracing::info!(
            "the handler {name} imports WASI, linked with nothing behind it (no files, \
             environment, network or clock): {}",
            imports.join(", ")
        );
    }
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let pre = linker.instantiate_pre(component).with_context(|| {
        format!("link the handler {name}: it imports what this host cannot stub")
    })?;
    bindings::plugin::PluginPre::new(pre)
        .with_context(|| format!("the handler {name} does not export echo:handler/handler@0.1.0"))
}

/// WASI with nothing behind it: no arguments, environment, directories or
/// sockets; stdio that reads nothing and writes nowhere; clocks that stand
/// still at zero. (Randomness is Wasmtime's: it reaches nothing.)
fn nothing_behind() -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder.wall_clock(Still).monotonic_clock(Still);
    builder.build()
}

/// A clock that stands still: time is passed in, not granted.
struct Still;

impl HostWallClock for Still {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Still {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A handler store's data.
struct HandlerState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: HandlerLimiter,
}

impl WasiView for HandlerState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The handler's memory cap, which remembers that it refused, so that the
/// trap that follows can be told for what it is.
struct HandlerLimiter {
    limits: StoreLimits,
    refused: bool,
    /// The linear memory the instance has, all its memories together.
    size: usize,
}

impl ResourceLimiter for HandlerLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.refused |= !allowed;
        if allowed {
            self.size += desired.saturating_sub(current);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

/// What a failure was, for the figures (a label) and the log (words).
fn describe(
    error: &wasmtime::Error,
    store: &Store<HandlerState>,
    limits: HandlerLimits,
) -> (String, String) {
    // The wasm backtrace, if any, is for the debug log: one line here.
    tracing::debug!("the handler's error: {error:?}");
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            "out_of_fuel".to_owned(),
            format!("ran out of fuel ({} for a call, --handler-fuel)", limits.fuel),
        ),
        Some(trap) if store.data().limiter.refused => (
            "memory".to_owned(),
            format!(
                "trapped ({trap}) after reaching its memory cap ({} MiB, --handler-memory)",
                limits.memory >> 20
            ),
        ),
        Some(trap) => (format!("{trap:?}"), format!("trapped: {trap}")),
        None => {
            let text = format!("{error:#}");
            ("error".to_owned(), format!("failed: {}", text.lines().next().unwrap_or_default()))
        }
    }
}

/// A running instance.
struct Live {
    store: Store<HandlerState>,
    handler: bindings::plugin::Plugin,
    /// Which of the worker's instances this is.
    generation: u64,
}

impl Live {
    fn handler(&self) -> export::Guest {
        self.handler.echo_handler_handler().clone()
    }
}

/// A session as the server core holds it: the handler's, in the instance
/// of `generation`.
pub struct Session {
    handler: Option<ResourceAny>,
    generation: u64,
    peer: String,
}

/// One worker's side of the contract: the import its server core calls,
/// carried out in the worker's handler instance.
pub struct HandlerHost {
    plugin: Arc<Plugin>,
    stats: Arc<WorkerMetrics>,
    live: Option<Live>,
    /// How many instances this worker has started.
    generations: u64,
    sessions: ResourceTable,
    /// How many sessions the server core holds.
    open: usize,
    failures_in_a_row: u32,
    /// No new instance before this, after failures in a row.
    retry_at: Option<Instant>,
}

impl HandlerHost {
    pub fn new(plugin: Arc<Plugin>, stats: Arc<WorkerMetrics>) -> HandlerHost {
        HandlerHost {
            plugin,
            stats,
            live: None,
            generations: 0,
            sessions: ResourceTable::new(),
            open: 0,
            failures_in_a_row: 0,
            retry_at: None,
        }
    }

    /// Links the import to the worker's `HandlerHost` in the store data `T`.
    pub fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut HandlerHost,
    ) -> wasmtime::Result<()> {
        bindings::server::Server::add_to_linker::<T, wasmtime::component::HasSelf<HandlerHost>>(
            linker, get,
        )
    }

    /// The live instance, started afresh if there is none and the backoff
    /// allows; with the fuel for one call.
    async fn live(&mut self) -> Result<&mut Live, String> {
        if self.live.is_none() {
            if let Some(at) = self.retry_at
                && Instant::now() < at
            {
                return Err(format!(
                    "the handler is unavailable after {} failures in a row",
                    self.failures_in_a_row
                ));
            }
            match self.start().await {
                Ok(live) => self.live = Some(live),
                Err(e) => {
                    tracing::error!(
                        handler = self.plugin.name,
                        "the handler does not start: {e:#}"
                    );
                    self.stats.handler_failed("start");
                    self.back_off();
                    return Err("the handler does not start".to_owned());
                }
            }
        }
        self.fueled().map_err(|e| format!("{e:#}"))
    }

    /// The live instance, with the fuel for one call: every call into the
    /// handler starts with the whole of `--handler-fuel`.
    fn fueled(&mut self) -> wasmtime::Result<&mut Live> {
        let fuel = self.plugin.limits.fuel;
        let live = self.live.as_mut().context("no live handler instance")?;
        live.store.set_fuel(fuel)?;
        Ok(live)
    }

    /// A fresh instance, configured as the first one was.
    async fn start(&mut self) -> wasmtime::Result<Live> {
        let mut live = self.plugin.instantiate().await?;
        live.store.set_fuel(self.plugin.limits.fuel)?;
        let configured =
            live.handler().call_configure(&mut live.store, &self.plugin.settings).await?;
        if let Err(refusal) = configured {
            bail!("it refuses the settings it took before: {refusal}");
        }
        self.generations += 1;
        live.generation = self.generations;
        self.stats.handler_instances.inc();
        Ok(live)
    }

    /// The instance failed in `call` for the connection from `peer`: counts
    /// and logs it, and lets the instance go.
    fn failed(&mut self, error: &wasmtime::Error, call: &str, peer: &str) {
        let Some(live) = self.live.take() else { return };
        let (kind, what) = describe(error, &live.store, self.plugin.limits);
        self.stats.handler_failed(&kind);
        let others = self.open.saturating_sub(1);
        tracing::warn!(
            peer,
            call,
            kind,
            "the handler {} {what}; its connection: {} (--on-handler-failure); {others} other \
             sessions reopen in a fresh instance",
            self.plugin.name,
            self.plugin.on_failure,
        );
        self.back_off();
    }

    fn back_off(&mut self) {
        self.failures_in_a_row += 1;
        let doublings = self.failures_in_a_row.saturating_sub(2).min(16);
        let backoff = match self.failures_in_a_row {
            1 => Duration::ZERO,
            _ => (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF),
        };
        self.retry_at = Some(Instant::now() + backoff);
    }

    /// A call went well. An instance whose memory has grown near its cap
    /// is let go now, between calls, rather than fail the call that would
    /// reach it: language runtimes that never give memory back (CPython
    /// under componentize-py grows by tens of bytes a call) are started
    /// afresh before they fail, and their sessions reopen in the new one.
    fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
        self.retry_at = None;
        let cap = self.plugin.limits.memory;
        let Some(size) = self.live.as_ref().map(|live| live.store.data().limiter.size) else {
            return;
        };
        if size > cap / 8 * RECYCLE_EIGHTHS {
            tracing::info!(
                "the handler {} has {} of its {} MiB of memory: a fresh instance takes over, \
                 and its {} sessions reopen there",
                self.plugin.name,
                size >> 20,
                cap >> 20,
                self.open
            );
            self.stats.handler_recycled.inc();
            self.live = None;
        }
    }

    /// The session's handler resource in the live instance, reopened there
    /// if it lived in one that failed.
    async fn resource(
        &mut self,
        session: &Resource<Session>,
        now: u64,
    ) -> Result<ResourceAny, String> {
        let (current, peer) = {
            let s = self.sessions.get(session).map_err(|e| e.to_string())?;
            (
                s.handler
                    .filter(|_| Some(s.generation) == self.live.as_ref().map(|l| l.generation)),
                s.peer.clone(),
            )
        };
        if let Some(handler) = current {
            return Ok(handler);
        }
        let live = self.live().await?;
        let generation = live.generation;
        let handler = live.handler();
        match handler.call_accept(&mut live.store, &peer, now).await {
            Ok(Ok((reopened, _greeting))) => {
                self.succeeded();
                let s = self.sessions.get_mut(session).map_err(|e| e.to_string())?;
                s.handler = Some(reopened);
                s.generation = generation;
                Ok(reopened)
            }
            Ok(Err(refusal)) => {
                Err(format!("the handler refuses to reopen the session: {refusal}"))
            }
            Err(e) => {
                self.failed(&e, "accept", &peer);
                Err("the handler failed".to_owned())
            }
        }
    }

    /// The handler's answer for the server core; one whose reply is over
    /// [`MAX_REPLY`] aborts the connection instead, and is logged.
    fn bounded(&self, answer: export::Verdict, session: &Resource<Session>) -> import::Verdict {
        if answer.reply.len() > MAX_REPLY {
            tracing::warn!(
                peer = self.peer(session),
                "the handler {}'s reply of {} bytes is over the {MAX_REPLY} allowed: connection \
                 aborted",
                self.plugin.name,
                answer.reply.len()
            );
            self.stats.handler_failed("reply_too_long");
            return import::Verdict { reply: Vec::new(), then: import::Then::Abort };
        }
        verdict(answer)
    }

    fn peer(&self, session: &Resource<Session>) -> String {
        self.sessions.get(session).map(|s| s.peer.clone()).unwrap_or_default()
    }
}

impl import::Host for HandlerHost {
    async fn configure(
        &mut self,
        settings: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), String>> {
        // The settings were tried at start, and every instance gets them.
        if settings != self.plugin.settings {
            return Ok(Err("the settings differ from those the host tried at start".to_owned()));
        }
        Ok(self.live().await.map(|_| ()))
    }

    async fn accept(
        &mut self,
        peer: String,
        now: u64,
    ) -> wasmtime::Result<Result<(Resource<Session>, import::Verdict), String>> {
        let live = match self.live().await {
            Ok(live) => live,
            Err(why) => return Ok(Err(why)),
        };
        let generation = live.generation;
        let handler = live.handler();
        match handler.call_accept(&mut live.store, &peer, now).await {
            Ok(Ok((handler, greeting))) => {
                self.succeeded();
                let session = Session { handler: Some(handler), generation, peer };
                let session = self.sessions.push(session)?;
                self.open += 1;
                let greeting = self.bounded(greeting, &session);
                Ok(Ok((session, greeting)))
            }
            Ok(Err(refusal)) => Ok(Err(refusal)),
            Err(e) => {
                self.failed(&e, "accept", &peer);
                Ok(Err("the handler failed".to_owned()))
            }
        }
    }
}

impl import::HostSession for HandlerHost {
    async fn data(
        &mut self,
        session: Resource<Session>,
        chunk: Vec<u8>,
        now: u64,
    ) -> wasmtime::Result<import::Verdict> {
        let policy = self.plugin.on_failure.verdict();
        let Ok(handler) = self.resource(&session, now).await else { return Ok(policy) };
        let live = self.fueled()?;
        match live.handler().session().call_data(&mut live.store, handler, &chunk, now).await {
            Ok(answer) => {
                self.succeeded();
                Ok(self.bounded(answer, &session))
            }
            Err(e) => {
                let peer = self.peer(&session);
                self.failed(&e, "data", &peer);
                Ok(policy)
            }
        }
    }

    async fn finished(
        &mut self,
        session: Resource<Session>,
        now: u64,
    ) -> wasmtime::Result<import::Verdict> {
        let policy = self.plugin.on_failure.verdict();
        let Ok(handler) = self.resource(&session, now).await else { return Ok(policy) };
        let live = self.fueled()?;
        match live.handler().session().call_finished(&mut live.store, handler, now).await {
            Ok(answer) => {
                self.succeeded();
                Ok(self.bounded(answer, &session))
            }
            Err(e) => {
                let peer = self.peer(&session);
                self.failed(&e, "finished", &peer);
                Ok(policy)
            }
        }
    }

    async fn closed(
        &mut self,
        session: Resource<Session>,
        reason: import::CloseReason,
    ) -> wasmtime::Result<()> {
        // A session whose instance failed is not reopened just to close it.
        let current = {
            let s = self.sessions.get(&session)?;
            s.handler.filter(|_| Some(s.generation) == self.live.as_ref().map(|l| l.generation))
        };
        let Some(handler) = current else { return Ok(()) };
        let live = self.fueled()?;
        if let Err(e) = live
            .handler()
            .session()
            .call_closed(&mut live.store, handler, close_reason(reason))
            .await
        {
            let peer = self.peer(&session);
            self.failed(&e, "closed", &peer);
        }
        Ok(())
    }

    async fn drop(&mut self, session: Resource<Session>) -> wasmtime::Result<()> {
        let session = self.sessions.delete(session)?;
        self.open -= 1;
        let Some(handler) = session.handler else { return Ok(()) };
        if self.live.as_ref().is_none_or(|live| live.generation != session.generation) {
            return Ok(());
        }
        let live = self.fueled()?;
        if let Err(e) = handler.resource_drop_async(&mut live.store).await {
            self.failed(&e, "drop", &session.peer);
        }
        Ok(())
    }
}

fn verdict(answer: export::Verdict) -> import::Verdict {
    let then = match answer.then {
        export::Then::Read => import::Then::Read,
        export::Then::ReadAfter(nanos) => import::Then::ReadAfter(nanos),
        export::Then::Close => import::Then::Close,
        export::Then::Abort => import::Then::Abort,
    };
    import::Verdict { reply: answer.reply, then }
}

fn close_reason(reason: import::CloseReason) -> export::CloseReason {
    match reason {
        import::CloseReason::Finished => export::CloseReason::Finished,
        import::CloseReason::Closed => export::CloseReason::Closed,
        import::CloseReason::Aborted => export::CloseReason::Aborted,
        import::CloseReason::Reset => export::CloseReason::Reset,
        import::CloseReason::IdleTimeout => export::CloseReason::IdleTimeout,
        import::CloseReason::StallTimeout => export::CloseReason::StallTimeout,
        import::CloseReason::Shutdown => export::CloseReason::Shutdown,
    }
}
