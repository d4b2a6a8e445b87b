//! A one-time, many-listener flag: set once, seen by every task that waits.

use super::slab::Slab;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Tasks [`Signal::wait`] for it; anyone may [`Signal::set`] it, once and for
/// all. Clones share the flag.
#[derive(Clone, Default)]
pub struct Signal(Rc<RefCell<State>>);

#[derive(Default)]
struct State {
    set: bool,
    /// One slot per waiting future, freed when it completes or is dropped,
    /// so that long-lived waits do not pile up wakers.
    waiters: Slab<Waker>,
}

impl Signal {
    /// Sets the flag and wakes every waiting task.
    pub fn set(&self) {
        let waiters = {
            let mut state = self.0.borrow_mut();
            state.set = true;
            state.waiters.take_all()
        };
        for waker in waiters {
            waker.wake();
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.0.borrow().set
    }

    /// How many waits are registered.
    #[cfg(all(test, target_os = "wasi"))]
    pub(crate) fn waiting(&self) -> usize {
        self.0.borrow().waiters.len()
    }

    /// Completes once the flag is set.
    pub fn wait(&self) -> Wait<'_> {
        Wait { signal: self, slot: None }
    }
}

/// The future returned by [`Signal::wait`].
pub struct Wait<'a> {
    signal: &'a Signal,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.signal.0.borrow_mut();
        if state.set {
            drop(state);
            self.slot = None;
            return Poll::Ready(());
        }
        match self.slot.and_then(|slot| state.waiters.get_mut(slot)) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                let slot = state.waiters.insert(cx.waker().clone());
                drop(state);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut state = self.signal.0.borrow_mut();
            if !state.set {
                state.waiters.remove(slot);
            }
        }
    }
}
