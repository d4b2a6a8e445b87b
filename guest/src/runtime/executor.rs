//! Tasks and the ready queue: what runs next.
//!
//! A task is a boxed future in a [`Slab`]. Its waker is an `Arc<Header>`;
//! waking puts the header on the ready queue, once: the `queued` flag keeps a
//! task from being queued twice. [`Executor::run`] takes the queue in rounds
//! and, between rounds, lets the reactor look at I/O.

use super::RUNTIME;
use super::slab::Slab;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// The tasks and the queue of those ready to run.
#[derive(Default)]
pub(crate) struct Executor {
    tasks: RefCell<Slab<Task>>,
    ready: RefCell<VecDeque<Arc<Header>>>,
}

struct Task {
    header: Arc<Header>,
    /// Taken out while the task is polled, so that no borrow of the slab is
    /// held while user code runs (and spawns, or wakes other tasks).
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

/// What a waker points to: the task's key, and whether it is already queued.
struct Header {
    key: usize,
    queued: AtomicBool,
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Atomics only because `Wake` requires `Send + Sync`; with no threads
        // in WASI 0.2 they compile to plain loads and stores.
        if !self.queued.swap(true, Ordering::Relaxed) {
            RUNTIME.with(|rt| rt.executor.ready.borrow_mut().push_back(self.clone()));
        }
    }
}

impl Executor {
    /// Polls `main` and every spawned task until `main` completes.
    ///
    /// `poll_io(block)` is the reactor's half of the loop: it wakes the tasks
    /// whose I/O or timers are ready, waiting for one only if `block`, and
    /// says whether it had anything to wait on at all.
    pub(crate) fn run<F: Future>(
        &self,
        main: F,
        mut poll_io: impl FnMut(bool) -> bool,
    ) -> F::Output {
        let main_header = Arc::new(Header { key: usize::MAX, queued: AtomicBool::new(true) });
        let main_waker = Waker::from(main_header.clone());
        let mut main = pin!(main);
        self.ready.borrow_mut().push_back(main_header.clone());
        loop {
            // One round: everything queued now runs once. Tasks woken during
            // the round, including a task that yields, wait for the next one,
            // after I/O has been looked at: a task that keeps yielding cannot
            // starve the tasks waiting for I/O.
            let round = self.ready.borrow().len();
            for _ in 0..round {
                let Some(header) = self.ready.borrow_mut().pop_front() else { break };
                // Cleared before polling, so that a wake during the poll
                // queues the task again.
                header.queued.store(false, Ordering::Relaxed);
                if Arc::ptr_eq(&header, &main_header) {
                    if let Poll::Ready(output) =
                        main.as_mut().poll(&mut Context::from_waker(&main_waker))
                    {
                        return output;
                    }
                } else {
                    self.poll_task(header);
                }
            }
            // Block for I/O only when nothing is left to run; otherwise just
            // collect what is ready. With nothing ready and nothing to wait
            // on, no task could ever run again.
            let idle = self.ready.borrow().is_empty();
            if !poll_io(idle) && idle {
                panic!("deadlock: every task is waiting, and no pollable or timer can wake one");
            }
        }
    }

    /// Polls the task that `header`, just taken off the ready queue, belongs
    /// to; the queue's reference becomes the task's waker for this poll.
    fn poll_task(&self, header: Arc<Header>) {
        let mut future = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get_mut(header.key) {
                // A waker can outlive its task, and the task's slot be reused:
                // only the header stored in the slot is the slot's own.
                Some(task) if Arc::ptr_eq(&task.header, &header) => match task.future.take() {
                    Some(future) => future,
                    None => return,
                },
                _ => return,
            }
        };
        let key = header.key;
        let waker = Waker::from(header);
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(()) => {
                let task = self.tasks.borrow_mut().remove(key);
                // Dropped here, outside the borrow: dropping a future may
                // cancel waits or wake other tasks.
                drop(task);
                drop(future);
            }
            Poll::Pending => {
                if let Some(task) = self.tasks.borrow_mut().get_mut(key) {
                    task.future = Some(future);
                }
            }
        }
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()>>>) {
        let mut tasks = self.tasks.borrow_mut();
        let header = Arc::new(Header { key: tasks.next_key(), queued: AtomicBool::new(true) });
        let key = tasks.insert(Task { header: header.clone(), future: Some(future) });
        debug_assert_eq!(key, header.key);
        drop(tasks);
        self.ready.borrow_mut().push_back(header);
    }

    /// Drops every task and empties the queue.
    pub(crate) fn clear(&self) {
        let tasks = self.tasks.borrow_mut().take_all();
        // Dropped outside the borrow: dropping a future cancels its waits,
        // and may wake other tasks.
        drop(tasks);
        self.ready.borrow_mut().clear();
    }
}

/// Starts `future` as a task of its own. It first runs in the next round of
/// the loop, and goes on whether or not the handle is kept.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let state = Rc::new(RefCell::new(JoinState { output: None, waiter: None }));
    let task_state = state.clone();
    let task = async move {
        let output = future.await;
        let waiter = {
            let mut state = task_state.borrow_mut();
            state.output = Some(output);
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    };
    RUNTIME.with(|rt| rt.executor.spawn(Box::pin(task)));
    JoinHandle { state }
}

/// Waits for a spawned task's output. Dropping it lets the task run on.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

struct JoinState<T> {
    output: Option<T>,
    waiter: Option<Waker>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has completed.
    pub fn is_finished(&self) -> bool {
        self.state.borrow().output.is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match state.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                state.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Lets every other ready task run, and I/O be looked at, before going on.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
