//! A counting semaphore: at most so many holders at once.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Hands out up to `capacity` [`Permit`]s; a permit is returned when dropped.
/// Clones share the count.
#[derive(Clone)]
pub struct Semaphore(Rc<RefCell<State>>);

struct State {
    capacity: usize,
    in_use: usize,
    /// Tasks waiting for a permit or for all permits to come back. Few wait
    /// at a time (the accept loop, a shutdown), so all are woken on a return.
    waiters: Vec<Waker>,
}

impl Semaphore {
    /// A semaphore with `capacity` permits.
    pub fn new(capacity: usize) -> Semaphore {
        Semaphore(Rc::new(RefCell::new(State { capacity, in_use: 0, waiters: Vec::new() })))
    }

    /// How many permits are held.
    pub fn in_use(&self) -> usize {
        self.0.borrow().in_use
    }

    /// A permit now, if one is free.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut state = self.0.borrow_mut();
        if state.in_use < state.capacity {
            state.in_use += 1;
            Some(Permit(self.clone()))
        } else {
            None
        }
    }

    /// Waits for a free permit.
    pub async fn acquire(&self) -> Permit {
        poll_fn(|cx| match self.try_acquire() {
            Some(permit) => Poll::Ready(permit),
            None => {
                self.wait_with(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    /// Waits until every permit has been returned.
    pub async fn until_idle(&self) {
        poll_fn(|cx| {
            if self.in_use() == 0 {
                Poll::Ready(())
            } else {
                self.wait_with(cx.waker());
                Poll::Pending
            }
        })
        .await
    }

    fn wait_with(&self, waker: &Waker) {
        let mut state = self.0.borrow_mut();
        if !state.waiters.iter().any(|w| w.will_wake(waker)) {
            state.waiters.push(waker.clone());
        }
    }
}

/// One unit of a [`Semaphore`], returned on drop.
pub struct Permit(Semaphore);

impl Drop for Permit {
    fn drop(&mut self) {
        let waiters = {
            let mut state = (self.0).0.borrow_mut();
            state.in_use -= 1;
            std::mem::take(&mut state.waiters)
        };
        for waker in waiters {
            waker.wake();
        }
    }
}
