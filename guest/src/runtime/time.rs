//! Timers on `wasi:clocks/monotonic-clock`: [`sleep`], [`sleep_until`] and
//! [`timeout`].
//!
//! A timer has no pollable of its own: the reactor keeps deadlines in order
//! and subscribes only to the nearest, so a thousand connection timeouts cost
//! one pollable per `poll`.

use super::reactor::Registration;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::ops::Add;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;
use wasip2::clocks::monotonic_clock;

/// A point on the monotonic clock, in nanoseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    /// The current time.
    pub fn now() -> Instant {
        Instant(monotonic_clock::now())
    }

    /// The time the scheduler last read, right after its last `poll`: free,
    /// and behind [`Instant::now`] by at most the work done since. Good for
    /// deadlines measured in milliseconds or more, such as timeouts.
    pub fn recent() -> Instant {
        Instant(super::RUNTIME.with(|rt| rt.reactor.borrow_mut().recent()))
    }

    /// How long after `earlier` this is; zero if it is not after.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds since the clock's origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed since this instant.
    pub fn elapsed(self) -> Duration {
        Instant::now().duration_since(self)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, duration: Duration) -> Instant {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

/// Completes once `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes once the clock reaches `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, registration: Registration::default() }
}

/// The future returned by [`sleep`] and [`sleep_until`].
pub struct Sleep {
    deadline: Instant,
    registration: Registration,
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, as an idle timer does on activity.
    pub fn reset(&mut self, deadline: Instant) {
        self.registration.cancel();
        self.deadline = deadline;
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline.0;
        self.registration.poll(cx, Registration::park_timer(deadline))
    }
}

/// Runs `future`, giving up with [`Elapsed`] if it takes longer than
/// `duration`.
///
/// The clock starts when the future first has to wait: one that finishes at
/// once, as most writes do, costs no timer at all. It starts from
/// [`Instant::recent`], so the timeout may end up to one scheduler round
/// early.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer: Option<Sleep> = None;
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let timer = timer.get_or_insert_with(|| sleep_until(Instant::recent() + duration));
        Pin::new(timer).poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// A [`timeout`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(elapsed: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, elapsed)
    }
}
