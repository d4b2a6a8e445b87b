//! `wasi:io/poll`: pollables, and the one call that waits on many.
//!
//! A pollable is one of four kinds, each answered without a future or a
//! lock: a source's [`Readiness`] flag, a socket (whose meaning follows its
//! state, see [`TcpSocket::ready`]), a deadline on the monotonic clock, or
//! always. A flag is also kept by the pollable's handle
//! ([`Wasi::push_pollable`]), so that looking at it costs one load and no
//! lookup in the resource table. `poll` looks at each pollable of its list once; when none is
//! ready it waits for the store's [`Notifier`] (any source becoming ready)
//! or the earliest deadline in the list, whichever comes first, and looks
//! again. It never returns an empty list, and it never waits with something
//! ready.
//!
//! [`Notifier`]: super::readiness::Notifier

use super::Wasi;
use super::bindings::wasi::io::poll::{Host, HostPollable};
use super::readiness::Readiness;
use super::tcp::TcpSocket;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::time::Instant;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Result, bail};

/// The host's `wasi:io/poll.pollable`.
#[derive(Debug)]
pub enum Pollable {
    /// Ready while the source's flag is set.
    Flag(Arc<Readiness>),
    /// A TCP socket: what it waits for depends on its state.
    Socket(u32),
    /// Ready once the monotonic clock reaches this instant.
    Deadline(Instant),
    /// Always ready: a source that never makes one wait (stdout, say).
    Always,
}

impl Wasi {
    /// Subscribes to `parent`, which the pollable outlives not: it is pushed
    /// as the parent's child, so that dropping the parent first traps, as
    /// WASI requires.
    pub(super) fn push_pollable<T: 'static>(
        &mut self,
        pollable: Pollable,
        parent: &Resource<T>,
    ) -> Result<Resource<Pollable>> {
        let flag = pollable.flag();
        let pushed = self.table.push_child(pollable, parent)?;
        self.note_flag(&pushed, flag);
        Ok(pushed)
    }

    /// Pushes a pollable that has no parent (a clock's).
    pub(super) fn push_orphan_pollable(
        &mut self,
        pollable: Pollable,
    ) -> Result<Resource<Pollable>> {
        let flag = pollable.flag();
        let pushed = self.table.push(pollable)?;
        self.note_flag(&pushed, flag);
        Ok(pushed)
    }

    /// Whether `pollable` is ready at `now` (see [`Pollable::check`]), its
    /// flag read by handle if it has one.
    fn check_pollable(
        &self,
        pollable: &Resource<Pollable>,
        now: &mut Option<Instant>,
    ) -> Result<Check> {
        match self.flags.get(pollable.rep() as usize) {
            Some(Some(flag)) => Ok(Check::from(flag.is_ready())),
            _ => self.table.get(pollable)?.check(&self.table, now),
        }
    }

    /// Keeps `pollable`'s flag where `poll` finds it by handle, without a
    /// lookup in the resource table and its type check.
    ///
    /// Every pollable pushed writes its handle's entry, a flag or none, so
    /// the entry of every live pollable is its own; a handle that is no
    /// longer a pollable keeps a stale entry, which is never read, since
    /// Wasmtime hands `poll` only live pollables.
    fn note_flag(&mut self, pollable: &Resource<Pollable>, flag: Option<Arc<Readiness>>) {
        let handle = pollable.rep() as usize;
        if self.flags.len() <= handle {
            self.flags.resize(handle + 1, None);
        }
        self.flags[handle] = flag;
    }
}

impl Pollable {
    /// The readiness flag this pollable reads, if it is one.
    fn flag(&self) -> Option<Arc<Readiness>> {
        match self {
            Pollable::Flag(readiness) => Some(readiness.clone()),
            _ => None,
        }
    }

    /// Whether the pollable is ready at `now` (read at most once per look,
    /// and only if a deadline is met); if not, when it will be, if that is
    /// known.
    fn check(&self, table: &ResourceTable, now: &mut Option<Instant>) -> Result<Check> {
        Ok(match self {
            Pollable::Flag(readiness) => Check::from(readiness.is_ready()),
            Pollable::Always => Check::Ready,
            Pollable::Socket(rep) => {
                Check::from(table.get(&Resource::<TcpSocket>::new_borrow(*rep))?.ready())
            }
            Pollable::Deadline(deadline) => {
                let now = *now.get_or_insert_with(Instant::now);
                if *deadline <= now { Check::Ready } else { Check::At(*deadline) }
            }
        })
    }
}

/// What one look at a pollable found.
enum Check {
    Ready,
    NotYet,
    /// Not yet; ready at this instant.
    At(Instant),
}

impl From<bool> for Check {
    fn from(ready: bool) -> Check {
        if ready { Check::Ready } else { Check::NotYet }
    }
}

impl Wasi {
    /// Waits until at least one of `pollables` is ready, and returns the
    /// positions in the list of all that are, in order.
    async fn wait_any(&mut self, pollables: &[Resource<Pollable>]) -> Result<Vec<u32>> {
        loop {
            self.notifier.reset();
            self.send_unsent();
            let mut now = None;
            let mut earliest: Option<Instant> = None;
            let mut ready = Vec::new();
            for (index, pollable) in (0u32..).zip(pollables) {
                match self.check_pollable(pollable, &mut now)? {
                    Check::Ready => ready.push(index),
                    Check::NotYet => {}
                    Check::At(at) => earliest = Some(earliest.map_or(at, |e| e.min(at))),
                }
            }
            if !ready.is_empty() {
                return Ok(ready);
            }
            // Nothing ready: every flag that is clear has its waker
            // registered with the event loop, so waiting for the notifier
            // misses nothing; a deadline needs a timer, one per wait.
            let notifier = self.notifier.clone();
            let notified = poll_fn(|cx| notifier.poll_notified(cx));
            match earliest {
                None => notified.await,
                Some(deadline) => {
                    let mut sleep = pin!(tokio::time::sleep_until(deadline));
                    let mut notified = pin!(notified);
                    poll_fn(|cx| match notified.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => sleep.as_mut().poll(cx),
                    })
                    .await;
                }
            }
        }
    }
}

impl Wasi {
    /// Waits until `pollable` is ready.
    pub(super) async fn wait_one(&mut self, pollable: &Resource<Pollable>) -> Result<()> {
        self.wait_any(&[Resource::new_borrow(pollable.rep())]).await.map(drop)
    }
}

impl Host for Wasi {
    async fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> Result<Vec<u32>> {
        if pollables.is_empty() {
            bail!("empty poll list");
        }
        // On this single-threaded runtime the event loop runs only when the
        // guest waits, and a guest with work always at hand might never
        // wait: yielding once lets the event loop take in what the kernel
        // has (one `epoll_wait` that does not block) before the look.
        tokio::task::yield_now().await;
        self.wait_any(&pollables).await
    }
}

impl HostPollable for Wasi {
    fn ready(&mut self, pollable: Resource<Pollable>) -> Result<bool> {
        let mut now = None;
        Ok(matches!(self.check_pollable(&pollable, &mut now)?, Check::Ready))
    }

    async fn block(&mut self, pollable: Resource<Pollable>) -> Result<()> {
        self.wait_one(&pollable).await
    }

    fn drop(&mut self, pollable: Resource<Pollable>) -> Result<()> {
        self.table.delete(pollable)?;
        Ok(())
    }
}
