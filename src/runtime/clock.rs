//! Where the runtime reads the time: the system clock in production, a clock that moves only
//! when told to in tests. Every "now" of the runtime (step and event times, timer due times,
//! deadlines, heartbeats, the worker's wait for the next timer) comes from one of these.

use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until a test moves it; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: OffsetDateTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock standing at the system's current time, to the millisecond (as times are stored).
    pub fn starting_now() -> ManualClock {
        let now = OffsetDateTime::now_utc();
        let ms = now.millisecond();
        ManualClock::at(now.replace_millisecond(ms).unwrap_or(now))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `to` (backwards too).
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let start = time::macros::datetime!(2026-01-02 03:04:05.006 UTC);
        let clock = ManualClock::at(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(std::time::Duration::from_millis(1500));
        assert_eq!(clock.now(), start + time::Duration::milliseconds(1500));
        clock.set(start);
        assert_eq!(other.now(), start);
    }
}
