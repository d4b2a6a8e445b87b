//! A single-threaded, yield-based scheduler over WASI 0.2 pollables.
//!
//! This is the seed's generator scheduler in Rust's terms. A task is a future;
//! where the seed's task did `yield 'recv', sock`, ours awaits the readiness
//! of a pollable ([`readiness`]), which parks it in the [`reactor`](Reactor)
//! until that pollable is ready. The loop in [`block_on`] then goes round and
//! round:
//!
//! 1. run every task that is ready, once each (the [executor](Executor));
//! 2. hand every parked pollable, plus one for the nearest timer, to a single
//!    `wasi:io/poll.poll` call, and wake the tasks whose pollables are ready.
//!
//! Step 2 blocks only when no task is ready. Each piece is in its own file:
//! the executor knows nothing of pollables, and the reactor nothing of tasks
//! beyond their [`Waker`](std::task::Waker)s.
//!
//! Around them, the few tools the server needs: [`time`] (sleeps and
//! timeouts, all on one clock pollable), [`race()`] (the first of two futures),
//! [`Signal`] (a flag tasks wait for, such as "shut down") and [`Semaphore`]
//! (the connection cap).

mod executor;
mod race;
mod reactor;
mod semaphore;
mod signal;
mod slab;
pub mod time;

#[cfg(all(test, target_os = "wasi"))]
mod tests;

use executor::Executor;
use reactor::Reactor;
use std::cell::{Cell, RefCell};
use std::future::Future;

pub use executor::{JoinHandle, spawn, yield_now};
pub use race::{Either, race};
pub use reactor::{Readiness, readiness};
pub use semaphore::{Permit, Semaphore};
pub use signal::{Signal, Wait as SignalWait};

/// The one runtime of this component instance.
///
/// WASI 0.2 has no threads, so a thread-local is simply a global that needs
/// neither locks nor `unsafe`. Wakers reach the ready queue through it.
struct Runtime {
    executor: Executor,
    reactor: RefCell<Reactor>,
    /// Set while [`block_on`] runs, to refuse a nested call loudly.
    running: Cell<bool>,
}

thread_local! {
    static RUNTIME: Runtime = Runtime {
        executor: Executor::default(),
        reactor: RefCell::new(Reactor::default()),
        running: Cell::new(false),
    };
}

/// Runs `future` to completion, with every task it spawns, and returns its
/// output.
///
/// Tasks still alive when `future` completes are dropped, closing whatever
/// they hold.
///
/// # Panics
///
/// When called from inside another `block_on` (a task must `.await` instead),
/// and when every task waits but nothing could ever wake one: no pollable is
/// parked and no timer is set.
pub fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| {
        assert!(
            !rt.running.replace(true),
            "runtime::block_on called from inside the runtime; use .await instead"
        );
    });
    let _stop = StopOnDrop;
    RUNTIME.with(|rt| rt.executor.run(future, |block| rt.reactor.borrow_mut().wait(block)))
}

/// Leaves the runtime empty for the next [`block_on`], even after a panic.
struct StopOnDrop;

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        RUNTIME.with(|rt| {
            // Tasks go first: dropping them cancels their parked pollables.
            rt.executor.clear();
            rt.reactor.borrow_mut().clear();
            rt.running.set(false);
        });
    }
}
