//! Where services get the time: the system clock in production, a clock that follows tokio's
//! (pausable) time in tests, so that deadlines are deterministic.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;

    /// For clocks that can jump (set by hand): a receiver that changes whenever they do, so that
    /// whoever sleeps until a time on this clock wakes up. `None` for clocks that only run.
    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }
}

/// What a clock that can jump uses to tell sleepers it did.
#[derive(Debug)]
pub struct Jumps(tokio::sync::watch::Sender<()>);

impl Default for Jumps {
    fn default() -> Self {
        Jumps(tokio::sync::watch::channel(()).0)
    }
}

impl Jumps {
    /// Tells every sleeper the clock jumped.
    pub fn jumped(&self) {
        self.0.send_replace(());
    }

    /// A receiver for [`Clock::jumps`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.0.subscribe()
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given time and advances with tokio's time, so that
/// `tokio::time::pause()` and `advance()` drive it.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TokioClock {
            start,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed();
        self.start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// A clock tests set by hand.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<ManualInner>);

#[derive(Debug)]
struct ManualInner {
    now: std::sync::Mutex<DateTime<Utc>>,
    jumps: Jumps,
}

impl ManualClock {
    /// A clock reading `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(ManualInner {
            now: std::sync::Mutex::new(at),
            jumps: Jumps::default(),
        }))
    }

    /// Sets the time, waking whoever sleeps on this clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .0
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
        self.0.jumps.jumped();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.0.jumps.subscribe())
    }
}
