//! The injected clock. Server code never reads the system time directly (clippy's
//! `disallowed-methods` enforces it), so tests and the development clock can move time.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reader of the system time
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall-clock time plus an offset that only grows. Used when the server runs with the
/// development clock enabled: an administrator advances it to make expirations and
/// approval timeouts come due without waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_micros: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, by: Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX / 4).max(0);
        self.offset_micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Moves the offset up to `offset` (never back), e.g. to the offset stored in the
    /// database when the server starts again.
    pub fn advance_to(&self, offset: Duration) {
        let micros = offset.num_microseconds().unwrap_or(i64::MAX / 4).max(0);
        self.offset_micros.fetch_max(micros, Ordering::SeqCst);
    }

    pub fn offset(&self) -> Duration {
        Duration::microseconds(self.offset_micros.load(Ordering::SeqCst))
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.offset()
    }
}

/// Timestamps are kept at microsecond precision everywhere (storage, comparison, output).
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
