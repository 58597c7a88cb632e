//! When and how long to wait before trying a registry request again: which failures are
//! transient (connection refused or reset, timeouts, HTTP 408/429/5xx), exponential backoff with
//! jitter and a cap, and the `Retry-After` header.

use std::io;
use std::time::{Duration, SystemTime};

/// How many times and how fast transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; it doubles each time.
    pub base_delay: Duration,
    /// Longest delay between two attempts (also caps `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1 for the first retry): exponential, capped,
    /// with up to 25% random jitter so that parallel transfers do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        let mut byte = [0u8; 1];
        let jitter = match getrandom::getrandom(&mut byte) {
            Ok(()) => capped / 4 * u32::from(byte[0]) / 255,
            Err(_) => Duration::ZERO,
        };
        (capped + jitter).min(self.max_delay)
    }

    /// The delay before retry number `retry`, or what the server asked for (capped).
    pub fn delay_for(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_delay),
            None => self.delay(retry),
        }
    }
}

/// True for HTTP statuses worth retrying: 408, 429 and 5xx except 501 and 505 (which will
/// not change).
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && status != 501 && status != 505
}

/// True for i/o errors that a new connection may not hit again.
pub fn is_transient_io(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | Interrupted
            | WouldBlock
    )
}

/// True for transport errors of the HTTP client worth retrying.
pub fn is_transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => is_transient_io(io),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::BodyStalled => true,
        // A server that closed the connection in the middle of a response.
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Parse `Retry-After`: delay-seconds or an HTTP date (RFC 9110 10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.timestamp()).ok()?);
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let d1 = p.delay(1);
        assert!(d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(125));
        let d3 = p.delay(3);
        assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(500));
        assert_eq!(p.delay(9), Duration::from_secs(1));
        assert_eq!(p.delay(60), Duration::from_secs(1), "no overflow");
        assert_eq!(
            p.delay_for(1, Some(Duration::from_secs(30))),
            Duration::from_secs(1),
            "Retry-After is capped"
        );
        assert_eq!(
            p.delay_for(1, Some(Duration::from_millis(5))),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 416, 501, 505] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
