//! The time source that expiry checks use: the system clock, or a fixed instant for tests.

use chrono::{DateTime, Utc};

/// Where "now" comes from for every expiry and certificate-validity check.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock (`clock_gettime` through libc, so `faketime` can move it).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant (tests of expiry and freeze attacks).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl FixedClock {
    /// A clock stopped at an RFC 3339 instant, e.g. `2026-11-24T00:00:00Z`.
    pub fn at(rfc3339: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(rfc3339)
            .ok()
            .map(|t| FixedClock(t.with_timezone(&Utc)))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
