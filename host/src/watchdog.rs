//! The CPU watchdog: a guest that runs too long without returning to the
//! host is interrupted.
//!
//! Wasmtime checks an epoch counter at function entries and loop back-edges.
//! A thread advances the epoch every [`TICK`]; each time the guest crosses a
//! tick while running, [`on_tick`] looks at whether it has called the host
//! since the previous tick. A guest that serves clients calls the host all the
//! time (`poll`, `read`, `write`); one that has not for [`CPU_LIMIT`] is stuck
//! in a loop, and is interrupted with a trap.
//!
//! Between ticks the guest also yields to the host's event loop, so the host
//! stays responsive (to signals, say) even while a guest spins.

use std::thread;
use std::time::Duration;
use wasmtime::{CallHook, Engine, Store, UpdateDeadline};

/// How often the epoch advances: the watchdog's resolution.
pub const TICK: Duration = Duration::from_millis(10);

/// The default time a guest may run without calling the host. One second is
/// orders of magnitude more than serving any request takes, and short enough
/// that a spinning guest is noticed quickly.
pub const CPU_LIMIT: Duration = Duration::from_secs(1);

/// The watchdog's view of one guest: kept in the store's data.
#[derive(Debug, Default)]
pub struct Watchdog {
    /// Ticks of continuous running allowed.
    limit: u64,
    /// Calls out of the guest so far: host functions, and Wasmtime's own
    /// libcalls, the epoch check that runs [`on_tick`] among them.
    host_calls: u64,
    /// `host_calls` at the previous tick.
    seen: u64,
    /// Ticks the guest has been running without a host call.
    busy: u64,
}

impl Watchdog {
    /// A watchdog allowing `limit` of continuous running.
    pub fn new(limit: Duration) -> Watchdog {
        let ticks = limit.as_nanos().div_ceil(TICK.as_nanos()).max(1);
        Watchdog { limit: u64::try_from(ticks).unwrap_or(u64::MAX), ..Watchdog::default() }
    }
}

/// Starts the thread that advances `engine`'s epoch; it ends with the engine.
pub fn start_ticking(engine: &Engine) {
    let engine = engine.weak();
    thread::Builder::new()
        .name("epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(TICK);
            }
        })
        .expect("start the epoch thread");
}

/// Arms the watchdog on `store`, whose data keeps it.
pub fn install<T: AsMut<Watchdog> + 'static>(store: &mut Store<T>) {
    store.call_hook(|mut store, hook| {
        if let CallHook::CallingHost = hook {
            store.data_mut().as_mut().host_calls += 1;
        }
        Ok(())
    });
    store.epoch_deadline_callback(|mut store| Ok(on_tick(store.data_mut().as_mut())));
    store.set_epoch_deadline(1);
}

/// What to do when the guest, while running, crosses a tick.
fn on_tick(watchdog: &mut Watchdog) -> UpdateDeadline {
    // The epoch check that called us counts as one call out of the guest;
    // any more means the guest called the host since the previous tick.
    let calls = watchdog.host_calls - watchdog.seen;
    watchdog.seen = watchdog.host_calls;
    if calls > 1 {
        watchdog.busy = 0;
    } else {
        watchdog.busy += 1;
    }
    if watchdog.busy >= watchdog.limit {
        UpdateDeadline::Interrupt
    } else {
        // Let the host's event loop run before the guest goes on.
        UpdateDeadline::Yield(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_continuous_running_is_interrupted() {
        let mut watchdog = Watchdog::new(Duration::from_millis(30));
        assert_eq!(watchdog.limit, 3);
        // Each tick is itself one call out of the guest.
        let tick = |watchdog: &mut Watchdog, host_calls: u64| {
            watchdog.host_calls += host_calls + 1;
            on_tick(watchdog)
        };
        // A guest that calls the host between ticks runs forever.
        for _ in 0..100 {
            assert!(matches!(tick(&mut watchdog, 1), UpdateDeadline::Yield(1)));
        }
        // One that stops calling is interrupted on the third silent tick.
        assert!(matches!(tick(&mut watchdog, 0), UpdateDeadline::Yield(1)));
        assert!(matches!(tick(&mut watchdog, 0), UpdateDeadline::Yield(1)));
        assert!(matches!(tick(&mut watchdog, 0), UpdateDeadline::Interrupt));
    }
}
