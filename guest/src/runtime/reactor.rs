//! The reactor: tasks parked on pollables and timers, and the single `poll`
//! call that wakes them.
//!
//! A task parks by awaiting [`readiness`] of a pollable (or a
//! [`Sleep`](super::time::Sleep)); the wait lives in a slot of the reactor
//! until the pollable is ready, then the task's waker is called and the slot
//! marked fired. The waiting future frees its slot when it sees that, or when
//! it is dropped, so a slot is never reused under a live future.
//!
//! Costs: parking and waking are O(1); each `poll` passes every parked
//! pollable (WASI 0.2's `poll` takes the whole list every time), but only
//! one pollable for all timers, that of the nearest deadline. The list is
//! kept in order by closing its gaps from the first one on, so a `poll`
//! after a few tasks that parked last woke and parked again moves only
//! those, whatever the number of idle ones before them. It is kept as the
//! handles `poll` takes, side by side, and handed over as it is: the
//! generated binding would instead copy every handle out of its pollable,
//! one scattered allocation each, on every call (see [`poll_handles`]).
//!
//! Order: tasks whose pollables are ready wake in the order they parked,
//! oldest first. A connection's request arrives some time after its task
//! parked (the task parks as it sends the previous reply), so this serves
//! requests roughly in the order they came, as a kernel's ready list does;
//! a fixed order would leave the same connections at the end of every
//! round, and at times a round behind, doubling their latency.

use super::RUNTIME;
use super::slab::Slab;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::Pollable;

/// Parked waits, and what the next `poll` call needs.
#[derive(Default)]
pub(crate) struct Reactor {
    waits: Slab<Wait>,
    /// The pollables of parked waits in the order they parked, each with
    /// the key of its wait; `None` where a wait has ended since the last
    /// `poll`, which closes the gaps.
    parked: Vec<Option<(Rc<Pollable>, usize)>>,
    /// The handle of each pollable in `parked`, at the same index (stale
    /// where `parked` has a gap): the list `poll` takes, once compacted.
    handles: Vec<u32>,
    /// The first gap in `parked`, if any (`parked.len()` or more if none).
    first_gap: usize,
    /// Timer waits by deadline (nanoseconds on the monotonic clock), then key.
    timers: BTreeSet<(u64, usize)>,
    /// A pollable for the nearest deadline when it was subscribed. Kept until
    /// it is ready or an earlier deadline comes: when the nearest timer is
    /// cancelled instead, it fires early once, which is cheaper than a new
    /// subscription for every change.
    timer: Option<(u64, Pollable)>,
    /// A pollable that is always ready, added when `poll` must not block.
    ready_now: Option<Pollable>,
    /// The monotonic clock as read right after the last `poll` (nanoseconds;
    /// 0 before the first): see [`Reactor::recent`].
    clock: u64,
}

enum Wait {
    /// Parked on `parked[index]`.
    Pollable { index: usize, waker: Waker },
    /// Parked until the monotonic clock reaches `deadline`.
    Timer { deadline: u64, waker: Waker },
    /// Ready; the waiting future has not looked yet.
    Fired,
}

impl Reactor {
    fn park_pollable(&mut self, pollable: Rc<Pollable>, waker: Waker) -> usize {
        let key = self.waits.insert(Wait::Pollable { index: self.parked.len(), waker });
        self.handles.push(pollable.handle());
        self.parked.push(Some((pollable, key)));
        key
    }

    fn park_timer(&mut self, deadline: u64, waker: Waker) -> usize {
        let key = self.waits.insert(Wait::Timer { deadline, waker });
        self.timers.insert((deadline, key));
        key
    }

    /// Whether the wait `key` has fired, freeing its slot if so; otherwise
    /// remembers `waker` as the one to call.
    fn check(&mut self, key: usize, waker: &Waker) -> bool {
        match self.waits.get_mut(key) {
            Some(Wait::Pollable { waker: parked, .. } | Wait::Timer { waker: parked, .. }) => {
                if !parked.will_wake(waker) {
                    parked.clone_from(waker);
                }
                false
            }
            // Fired, or gone because the runtime was cleared.
            Some(Wait::Fired) | None => {
                self.waits.remove(key);
                true
            }
        }
    }

    /// Forgets the wait `key`, fired or not.
    fn cancel(&mut self, key: usize) {
        match self.waits.remove(key) {
            Some(Wait::Pollable { index, .. }) => {
                self.parked[index] = None;
                self.first_gap = self.first_gap.min(index);
            }
            Some(Wait::Timer { deadline, .. }) => {
                self.timers.remove(&(deadline, key));
            }
            Some(Wait::Fired) | None => {}
        }
    }

    /// Closes the gaps in `parked`, keeping its order, and tells each wait
    /// that moved its new place: those after the first gap.
    fn compact(&mut self) {
        if self.first_gap >= self.parked.len() {
            self.first_gap = usize::MAX;
            return;
        }
        let mut place = self.first_gap;
        for from in self.first_gap..self.parked.len() {
            let Some((pollable, key)) = self.parked[from].take() else { continue };
            if let Some(Wait::Pollable { index, .. }) = self.waits.get_mut(key) {
                *index = place;
            }
            self.parked[place] = Some((pollable, key));
            self.handles[place] = self.handles[from];
            place += 1;
        }
        self.parked.truncate(place);
        self.handles.truncate(place);
        self.first_gap = usize::MAX;
    }

    fn fire(&mut self, key: usize) {
        if let Some(wait) = self.waits.get_mut(key)
            && let Wait::Pollable { waker, .. } | Wait::Timer { waker, .. } =
                std::mem::replace(wait, Wait::Fired)
        {
            // Waking only queues the task in the executor; it does not call
            // back into the reactor.
            waker.wake();
        }
    }

    /// One `poll` over every parked pollable: wakes the tasks whose
    /// pollables are ready or whose deadlines have passed.
    ///
    /// Blocks until at least one is ready if `block`; otherwise returns at
    /// once. Returns `false`, without calling `poll`, when nothing is parked.
    pub(crate) fn wait(&mut self, block: bool) -> bool {
        self.compact();
        if self.parked.is_empty() && self.timers.is_empty() {
            // `poll` traps on an empty list, and there is nothing to wait for.
            return false;
        }
        if let Some(&(deadline, _)) = self.timers.first()
            && self.timer.as_ref().is_none_or(|(subscribed, _)| deadline < *subscribed)
        {
            self.timer = Some((deadline, monotonic_clock::subscribe_instant(deadline)));
        }
        if !block && self.ready_now.is_none() {
            // A deadline that has passed stays ready forever.
            self.ready_now = Some(monotonic_clock::subscribe_duration(0));
        }

        // Compacted: `handles` is exactly the parked pollables, in order.
        let parked = self.parked.len();
        let timer_index = match &self.timer {
            Some((_, pollable)) if !self.timers.is_empty() => {
                self.handles.push(pollable.handle());
                Some(self.handles.len() - 1)
            }
            _ => None,
        };
        if !block && let Some(pollable) = &self.ready_now {
            self.handles.push(pollable.handle());
        }
        // Every handle in the list is that of a pollable this reactor holds
        // (in `parked`, `timer` or `ready_now`) until after the call.
        let mut ready = poll_handles(&self.handles);
        self.handles.truncate(parked);
        // One clock reading per `poll`, shared by everything that runs until
        // the next: timers, and timeouts that start meanwhile.
        self.clock = monotonic_clock::now();

        // Oldest first: see the module's documentation.
        ready.sort_unstable();
        let mut timer_ready = false;
        for index in ready {
            let index = index as usize;
            if index < self.parked.len() {
                if let Some((_, key)) = self.parked[index].take() {
                    self.first_gap = self.first_gap.min(index);
                    self.fire(key);
                }
            } else if Some(index) == timer_index {
                timer_ready = true;
            }
        }
        // Timers are only looked at when the nearest one's pollable is ready:
        // every other deadline is later.
        if timer_ready {
            // Ready for good now: the next wait needs a fresh one.
            self.timer = None;
            while let Some(&(deadline, key)) = self.timers.first()
                && deadline <= self.clock
            {
                self.timers.pop_first();
                self.fire(key);
            }
        }
        true
    }

    /// The monotonic clock as of the last `poll`, read afresh only before
    /// the first. It trails the real time by at most the work done since
    /// that `poll` returned, and costs no host call.
    pub(crate) fn recent(&mut self) -> u64 {
        if self.clock == 0 {
            self.clock = monotonic_clock::now();
        }
        self.clock
    }

    /// Forgets every wait.
    pub(crate) fn clear(&mut self) {
        self.waits = Slab::default();
        self.parked.clear();
        self.handles.clear();
        self.first_gap = usize::MAX;
        self.timers.clear();
        self.timer = None;
    }
}

/// `wasi:io/poll.poll` over the pollables with these handles: the indices of
/// those ready.
///
/// The import itself, below `wasip2`'s binding of it, which takes
/// `&[&Pollable]` and copies each one's handle into a list of its own on
/// every call. Every handle must be that of a live pollable for the whole
/// call; the caller holds each one's [`Pollable`].
fn poll_handles(handles: &[u32]) -> Vec<u32> {
    // The version is `wasip2`'s. The component linker matches an import to
    // the world's by semver, so a later 0.2.x in `wasip2` still links (and
    // a 0.3 would not).
    #[cfg(target_arch = "wasm32")]
    #[link(wasm_import_module = "wasi:io/poll@0.2.12")]
    unsafe extern "C" {
        /// The canonical ABI's lowering of `poll: func(in: list<borrow<pollable>>)
        /// -> list<u32>`: the list's address and length, and where to store
        /// the result's address and length.
        #[link_name = "poll"]
        fn import(list: *const u32, len: usize, result: *mut [usize; 2]);
    }
    #[cfg(not(target_arch = "wasm32"))]
    unsafe fn import(_: *const u32, _: usize, _: *mut [usize; 2]) {
        unreachable!("wasi:io/poll is only there on wasm32")
    }
    let mut result = [0usize; 2];
    // SAFETY: the list is `handles.len()` valid `u32`s, borrowed for the
    // call; each is a live pollable's handle (this function's contract),
    // which is all a `borrow<pollable>` needs. The host writes the result
    // list's address and length into `result`, the list allocated with
    // this module's `cabi_realloc` (the global allocator, as the binding's
    // own call relies on) with the alignment of `u32`, so it becomes a
    // `Vec<u32>` of that length and capacity, as the binding does.
    unsafe {
        import(handles.as_ptr(), handles.len(), &mut result);
        let [address, len] = result;
        Vec::from_raw_parts(address as *mut u32, len, len)
    }
}

/// A task's place in the reactor, if it has one; leaving it cancels the wait.
#[derive(Default)]
pub(crate) struct Registration {
    key: Option<usize>,
}

impl Registration {
    /// Ready once the wait that `park` registers has fired.
    ///
    /// The first call parks; later calls check, and keep the waker current.
    pub(crate) fn poll(
        &mut self,
        cx: &Context<'_>,
        park: impl FnOnce(&mut Reactor, Waker) -> usize,
    ) -> Poll<()> {
        RUNTIME.with(|rt| {
            let mut reactor = rt.reactor.borrow_mut();
            match self.key {
                None => {
                    self.key = Some(park(&mut reactor, cx.waker().clone()));
                    Poll::Pending
                }
                Some(key) if reactor.check(key, cx.waker()) => {
                    self.key = None;
                    Poll::Ready(())
                }
                Some(_) => Poll::Pending,
            }
        })
    }

    /// Parks a timer wait for `deadline`.
    pub(crate) fn park_timer(deadline: u64) -> impl FnOnce(&mut Reactor, Waker) -> usize {
        move |reactor, waker| reactor.park_timer(deadline, waker)
    }

    /// Cancels the wait, if any, so that the next poll parks afresh.
    pub(crate) fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            // `try_with`: nothing to cancel once the runtime itself is gone.
            let _ = RUNTIME.try_with(|rt| rt.reactor.borrow_mut().cancel(key));
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Waits until `pollable` is ready: the one way a task parks on I/O.
///
/// The pollable is shared (`Rc`) so that the reactor can hand it to `poll`
/// while the task sleeps; its owner keeps it for as long as the stream or
/// socket it watches, and subscribes only once.
pub fn readiness(pollable: &Rc<Pollable>) -> Readiness<'_> {
    Readiness { pollable, registration: Registration::default() }
}

/// The future returned by [`readiness`].
pub struct Readiness<'a> {
    pollable: &'a Rc<Pollable>,
    registration: Registration,
}

impl Future for Readiness<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let pollable = this.pollable;
        this.registration.poll(cx, |reactor, waker| reactor.park_pollable(pollable.clone(), waker))
    }
}
