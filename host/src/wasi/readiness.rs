//! Readiness kept where `poll` reads it in a few nanoseconds.
//!
//! Each source a guest may wait on (a stream's direction, a listener, a
//! connecting socket, stdin) has a [`Readiness`]: a flag that says "an
//! operation may make progress now". While it is set, operations try their
//! system call at once; the call that finds the source not ready clears the
//! flag and, in the same breath, registers the flag's own waker with Tokio's
//! event loop ([`Readiness::arm`]); when the kernel says the source is
//! ready, that waker sets the flag and tells the store's [`Notifier`]. So
//! `poll` asks each pollable a question answered by one load, and waits,
//! when none is ready, for the notifier alone.
//!
//! A source on a new descriptor starts out clear, with its waker registered
//! ([`Readiness::watch`]): Tokio's first turn of the event loop after the
//! registration reports what the kernel already has, so a connection that
//! has sent nothing is not reported ready. A set flag may still be stale:
//! that costs one system call that finds nothing, a spurious wake-up WASI
//! allows. A clear flag is never stale, because it is only cleared with the
//! waker registered.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use tokio::io::unix::AsyncFd;

/// Which way a source is waited on.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    Read,
    Write,
}

/// One source's readiness; its waker is the [`Readiness`] itself.
#[derive(Debug)]
pub struct Readiness {
    ready: AtomicBool,
    notifier: Arc<Notifier>,
}

impl Readiness {
    /// A source of the store whose `poll` waits on `notifier`, ready until
    /// an operation finds it not: for sources that almost always are at
    /// first (a new connection's empty send buffer, stdin).
    pub fn new(notifier: &Arc<Notifier>) -> Arc<Readiness> {
        Arc::new(Readiness { ready: AtomicBool::new(true), notifier: notifier.clone() })
    }

    /// A source on `fd`, just registered with the event loop, waited on in
    /// `direction`: not ready until the event loop says it is.
    pub fn watch(
        notifier: &Arc<Notifier>,
        fd: &AsyncFd<OwnedFd>,
        direction: Direction,
    ) -> Arc<Readiness> {
        let readiness =
            Arc::new(Readiness { ready: AtomicBool::new(false), notifier: notifier.clone() });
        let waker = Waker::from(readiness.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = match direction {
            Direction::Read => fd.poll_read_ready(&mut cx).map_ok(drop),
            Direction::Write => fd.poll_write_ready(&mut cx).map_ok(drop),
        };
        // Ready, or an error the first operation will report.
        if polled.is_ready() {
            readiness.ready.store(true, Ordering::Relaxed);
        }
        readiness
    }

    /// Whether an operation may make progress now.
    pub fn is_ready(&self) -> bool {
        // Atomics only because wakers must be `Send + Sync`: the store runs
        // on one thread, and its event loop wakes on the same one.
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the source not ready; only for a source whose owner sets it
    /// again itself (stdin's closer), as [`Readiness::arm`] does for the
    /// event loop's sources.
    pub fn clear(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Marks the source ready, and tells the store.
    pub fn set(&self) {
        self.ready.store(true, Ordering::Relaxed);
        self.notifier.notify();
    }

    /// For a source a system call just found not ready (it said EAGAIN, or
    /// a read came back short): clears the flag, and Tokio's readiness of
    /// that direction, which is stale, and registers this flag's waker with
    /// Tokio, so that the next event sets the flag again.
    ///
    /// Tokio never forgets that the peer closed a direction: if it still
    /// says ready after the clear, that is news, and the flag stays set.
    pub fn arm(self: &Arc<Self>, fd: &AsyncFd<OwnedFd>, direction: Direction) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        for attempt in 0..2 {
            let polled = match direction {
                Direction::Read => fd.poll_read_ready(&mut cx).map_ok(|mut guard| {
                    if attempt == 0 {
                        guard.clear_ready();
                    }
                }),
                Direction::Write => fd.poll_write_ready(&mut cx).map_ok(|mut guard| {
                    if attempt == 0 {
                        guard.clear_ready();
                    }
                }),
            };
            match polled {
                Poll::Pending => {
                    self.ready.store(false, Ordering::Relaxed);
                    return;
                }
                // Let the operation say what is wrong.
                Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(())) => {}
            }
        }
        self.set();
    }
}

impl Wake for Readiness {
    fn wake(self: Arc<Self>) {
        self.set();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set();
    }
}

/// What a store's `poll` waits on when nothing it was asked about is ready:
/// any source of the store becoming ready.
#[derive(Debug, Default)]
pub struct Notifier {
    woken: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

impl Notifier {
    fn notify(&self) {
        self.woken.store(true, Ordering::Relaxed);
        if let Some(waiter) = self.waiter.lock().unwrap().take() {
            waiter.wake();
        }
    }

    /// Forgets earlier notifications: called before `poll` looks at its
    /// pollables, so that one arriving after the look is not missed.
    pub fn reset(&self) {
        self.woken.store(false, Ordering::Relaxed);
    }

    /// Ready once a source has been set since the last [`Notifier::reset`].
    pub fn poll_notified(&self, cx: &Context<'_>) -> Poll<()> {
        if self.woken.load(Ordering::Relaxed) {
            return Poll::Ready(());
        }
        *self.waiter.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}
