//! The scheduler under a real Wasmtime: these run as a `wasm32-wasip2`
//! command (`cargo test --target wasm32-wasip2`, with `wasmtime run` as the
//! runner), against real clock pollables.

use super::time::{Instant, sleep, timeout};
use super::{block_on, readiness, spawn, yield_now};
use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use wasip2::clocks::monotonic_clock::{self, subscribe_duration};

/// Spawned tasks run, and their handles return their outputs.
#[test]
fn spawned_tasks_return_their_output() {
    let total = block_on(async {
        let handles: Vec<_> = (0..10u64).map(|i| spawn(async move { i * i })).collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await;
        }
        total
    });
    assert_eq!(total, 285);
}

/// Ten thousand tasks, each yielding a few times, all finish.
#[test]
fn many_tasks_all_finish() {
    let finished = Rc::new(Cell::new(0));
    block_on({
        let finished = finished.clone();
        async move {
            let handles: Vec<_> = (0..10_000)
                .map(|_| {
                    let finished = finished.clone();
                    spawn(async move {
                        for _ in 0..3 {
                            yield_now().await;
                        }
                        finished.set(finished.get() + 1);
                    })
                })
                .collect();
            for handle in handles {
                handle.await;
            }
        }
    });
    assert_eq!(finished.get(), 10_000);
}

/// Tasks left running when the main future finishes are dropped.
#[test]
fn leftover_tasks_are_dropped() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    block_on(async move {
        spawn(async move {
            let _flag = flag;
            sleep(Duration::from_secs(3600)).await;
        });
        yield_now().await;
    });
    assert!(dropped.get());
}

/// A task that never stops yielding cannot starve one waiting on a timer:
/// every round ends with a look at the pollables.
#[test]
fn a_yielding_task_does_not_starve_timers() {
    block_on(async {
        let woke = Rc::new(Cell::new(false));
        let sleeper = {
            let woke = woke.clone();
            spawn(async move {
                sleep(Duration::from_millis(20)).await;
                woke.set(true);
            })
        };
        let mut rounds = 0u64;
        while !woke.get() {
            rounds += 1;
            assert!(rounds < 100_000_000, "the sleeper never woke");
            yield_now().await;
        }
        sleeper.await;
    });
}

/// Two tasks that both keep yielding take turns.
#[test]
fn yielding_tasks_take_turns() {
    let log = Rc::new(RefCell::new(Vec::new()));
    block_on({
        let log = log.clone();
        async move {
            let tasks: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|name| {
                    let log = log.clone();
                    spawn(async move {
                        for _ in 0..3 {
                            log.borrow_mut().push(name);
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        }
    });
    assert_eq!(*log.borrow(), ["a", "b", "a", "b", "a", "b"]);
}

/// A sleep lasts at least its duration.
#[test]
fn sleep_lasts_at_least_its_duration() {
    let start = Instant::now();
    block_on(sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30), "{:?}", start.elapsed());
}

/// Timers fire in deadline order, whatever order they were set in.
#[test]
fn timers_fire_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    block_on({
        let order = order.clone();
        async move {
            let tasks: Vec<_> = [30u64, 10, 20, 0]
                .into_iter()
                .map(|ms| {
                    let order = order.clone();
                    spawn(async move {
                        sleep(Duration::from_millis(ms)).await;
                        order.borrow_mut().push(ms);
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        }
    });
    assert_eq!(*order.borrow(), [0, 10, 20, 30]);
}

/// A timeout gives up on a slow future and lets a fast one through.
#[test]
fn timeout_gives_up_only_on_slow_futures() {
    block_on(async {
        let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600))).await;
        assert!(slow.is_err());
        let fast = timeout(Duration::from_secs(3600), async { 7 }).await;
        assert_eq!(fast, Ok(7));
    });
}

/// A reset sleep fires at its new deadline, not the old one.
#[test]
fn a_reset_sleep_moves_its_deadline() {
    let start = Instant::now();
    block_on(async {
        let mut nap = sleep(Duration::from_secs(3600));
        let _ = timeout(Duration::from_millis(5), &mut nap).await;
        nap.reset(Instant::now() + Duration::from_millis(10));
        nap.await;
    });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(15) && took < Duration::from_secs(60), "{took:?}");
}

/// Runs `future`, counting in `polls` how often it is polled.
async fn counting_polls<F: Future>(polls: Rc<Cell<u32>>, future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        polls.set(polls.get() + 1);
        future.as_mut().poll(cx)
    })
    .await
}

/// Many tasks parked on pollables at once, half of them given up on before
/// they are ready: every one that stays parked is woken once its pollable is
/// ready, and not before: it is polled exactly twice, once to park and once
/// to finish, and wakes after its pollable's deadline.
///
/// The clock says whether it woke too early, not the pollable's `ready`:
/// Wasmtime's CLI can answer `false` for a ready pollable when many were
/// looked at since its runtime last waited (Tokio's cooperative budget).
#[test]
fn many_parked_pollables_wake_exactly_their_tasks() {
    let polls: Vec<Rc<Cell<u32>>> = (0..1000).map(|_| Rc::default()).collect();
    let woken = Rc::new(Cell::new(0));
    block_on({
        let (polls, woken) = (polls.clone(), woken.clone());
        async move {
            let tasks: Vec<_> = (0..1000u64)
                .map(|i| {
                    let woken = woken.clone();
                    let wait = async move {
                        let delay = 1_000_000 * (i % 20);
                        let parked = monotonic_clock::now();
                        let ready = Rc::new(subscribe_duration(delay));
                        let patience =
                            if i % 2 == 0 { Duration::from_secs(3600) } else { Duration::ZERO };
                        if timeout(patience, readiness(&ready)).await.is_ok() && i % 2 == 0 {
                            let waited = monotonic_clock::now() - parked;
                            assert!(waited >= delay, "task {i} woken after {waited} ns of {delay}");
                            woken.set(woken.get() + 1);
                        }
                    };
                    spawn(counting_polls(polls[i as usize].clone(), wait))
                })
                .collect();
            for task in tasks {
                task.await;
            }
        }
    });
    assert_eq!(woken.get(), 500, "not every patient task was woken");
    for (i, polls) in polls.iter().enumerate().step_by(2) {
        assert_eq!(polls.get(), 2, "task {i} was polled {} times", polls.get());
    }
}

/// A wait that moved up when an earlier one fired is cancelled in its new
/// place: the task parked after it still wakes.
#[test]
fn a_wait_moved_up_by_a_gap_is_cancelled_where_it_is() {
    let woken = Rc::new(RefCell::new(Vec::new()));
    block_on({
        let woken = woken.clone();
        async move {
            // Ready after 1 ms, 20 ms (given up on at 5 ms) and 10 ms; the
            // others are given up on after 2 s, which only a lost wait needs.
            let waits = [(1, 2_000), (20, 5), (10, 2_000)];
            let tasks: Vec<_> = waits
                .into_iter()
                .enumerate()
                .map(|(task, (ready_ms, patience_ms))| {
                    let woken = woken.clone();
                    spawn(async move {
                        let ready = Rc::new(subscribe_duration(ready_ms * 1_000_000));
                        let patience = Duration::from_millis(patience_ms);
                        if timeout(patience, readiness(&ready)).await.is_ok() {
                            woken.borrow_mut().push(task);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        }
    });
    assert_eq!(*woken.borrow(), [0, 2]);
}

/// Tasks whose pollables become ready together wake in the order they
/// parked, whatever order the pollables were made in; waits given up on
/// leave no gap in that order.
#[test]
fn ready_tasks_wake_in_the_order_they_parked() {
    let order = Rc::new(RefCell::new(Vec::new()));
    block_on({
        let order = order.clone();
        async move {
            // One deadline for all, so that one `poll` finds them all ready.
            let deadline = monotonic_clock::now() + 2_000_000;
            let pollables: Vec<_> =
                (0..20).map(|_| Rc::new(monotonic_clock::subscribe_instant(deadline))).collect();
            // Spawned tasks first run, and park, in the order spawned.
            let tasks: Vec<_> = (0..20usize)
                .map(|j| {
                    let pollable = pollables[(j * 7) % 20].clone();
                    let order = order.clone();
                    spawn(async move {
                        let patience =
                            if j % 3 == 0 { Duration::ZERO } else { Duration::from_secs(3600) };
                        if timeout(patience, readiness(&pollable)).await.is_ok() {
                            order.borrow_mut().push(j);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        }
    });
    let expected: Vec<usize> = (0..20).filter(|j| j % 3 != 0).collect();
    assert_eq!(*order.borrow(), expected);
}

/// Setting a signal wakes every task waiting for it at once, and later waits
/// finish without waiting.
#[test]
fn a_signal_wakes_every_waiter() {
    use super::Signal;
    block_on(async {
        let signal = Signal::default();
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let signal = signal.clone();
                spawn(async move { signal.wait().await })
            })
            .collect();
        yield_now().await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "a waiter finished before the signal");
        signal.set();
        // One round: the woken waiters run once each, then so does this task.
        yield_now().await;
        let finished = waiters.iter().filter(|w| w.is_finished()).count();
        assert_eq!(finished, 100, "only {finished} of 100 waiters were woken by the signal");
        assert_eq!(timeout(Duration::ZERO, signal.wait()).await, Ok(()));
    });
}

/// Waits given up on (here by a timeout, as a connection's read is when the
/// server shuts down) leave nothing behind in the signal.
#[test]
fn abandoned_signal_waits_are_forgotten() {
    use super::Signal;
    block_on(async {
        let signal = Signal::default();
        for _ in 0..1000 {
            assert!(timeout(Duration::ZERO, signal.wait()).await.is_err());
        }
        assert_eq!(signal.waiting(), 0);
    });
}

/// A semaphore never lets more than its capacity in, and a waiter gets in
/// as soon as a permit is returned.
#[test]
fn a_semaphore_caps_holders() {
    use super::Semaphore;
    let most = block_on(async {
        let slots = Semaphore::new(3);
        let inside = Rc::new(Cell::new(0));
        let most = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (slots, inside, most) = (slots.clone(), inside.clone(), most.clone());
                spawn(async move {
                    let _permit = slots.acquire().await;
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    sleep(Duration::from_millis(i % 3)).await;
                    inside.set(inside.get() - 1);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        slots.until_idle().await;
        assert_eq!(slots.in_use(), 0);
        most.get()
    });
    assert_eq!(most, 3);
}

/// A race returns whichever future finishes first, the first on a tie.
#[test]
fn race_takes_the_first_to_finish() {
    use super::{Either, race};
    block_on(async {
        let slow = sleep(Duration::from_secs(3600));
        assert_eq!(race(slow, async { 2 }).await, Either::Right(2));
        assert_eq!(race(async { 1 }, async { 2 }).await, Either::Left(1));
    });
}
