//! Bounds on what other nodes (or anyone able to publish on the channels) can make a node hold,
//! and the accounting of what those bounds drop.
//!
//! Every message from Redis is checked in Rust before the host sees it: its size
//! ([`Limits::max_message_bytes`]), then, while it is validated, how many values it holds and how
//! deeply they nest ([`Limits::max_message_values`], [`Limits::max_message_depth`]). A message
//! over a limit is dropped, counted by [`DropKind`] in the engine's stats, and reported to the
//! host as an [`Error::Dropped`] event at most once a second per kind (a burst of a thousand
//! hostile messages is one event saying how many were dropped). The publish queue has its own
//! bounds, in messages and in bytes ([`crate::RedisConfig`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::host::{AdapterEvent, Host};
use crate::protocol::ProtocolError;

/// Default [`Limits::max_message_bytes`]: 16 MiB (Redis itself accepts up to 512 MB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Default [`Limits::max_message_values`].
pub const DEFAULT_MAX_MESSAGE_VALUES: usize = 1_000_000;
/// Default [`Limits::max_message_depth`].
pub const DEFAULT_MAX_MESSAGE_DEPTH: usize = 256;
/// Largest [`Limits::max_message_depth`] accepted: decoding recurses once per level, and the
/// engine's threads have stacks of a few MiB.
pub const MAX_MESSAGE_DEPTH_CEILING: usize = 1024;
/// Default [`Limits::max_receive_buffer_bytes`]: 256 MiB. Sized so that a burst of 10,000
/// broadcasts of 10 KB sent as fast as possible reaches a Node node with 10 clients whole
/// (`bench/RESULTS.md`: 64 MiB lost a fifth of it); the memory is given back once the burst is
/// handled.
pub const DEFAULT_MAX_RECEIVE_BUFFER_BYTES: usize = 256 << 20;

/// How often each kind of drop is reported at most.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What one node accepts from the others. Options of the same names (in camelCase) in the npm
/// package, fields of `SioLimits` in C.
///
/// ```
/// use sioadapter::limits::Limits;
/// let limits = Limits { max_message_bytes: 1 << 20, ..Limits::default() };
/// assert!(limits.validate().is_ok());
/// assert!(Limits { max_message_depth: 0, ..limits }.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted from Redis, in bytes (default 16 MiB). Larger ones are dropped
    /// unread; publishing a larger one fails, since the other nodes would drop it.
    pub max_message_bytes: usize,
    /// Most values in one message (scalars, arrays, maps and map keys all count; default
    /// 1,000,000): a few megabytes of empty arrays would otherwise become millions of objects.
    pub max_message_values: usize,
    /// Deepest nesting of arrays and maps in one message (default 256, at most
    /// [`MAX_MESSAGE_DEPTH_CEILING`]).
    pub max_message_depth: usize,
    /// Most bytes of received messages waiting for a host that takes them asynchronously (the
    /// Node event loop; default 256 MiB). Beyond it messages are dropped, counted and reported as
    /// [`Error::Overloaded`]; a single larger message is taken when nothing waits.
    pub max_receive_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_message_values: DEFAULT_MAX_MESSAGE_VALUES,
            max_message_depth: DEFAULT_MAX_MESSAGE_DEPTH,
            max_receive_buffer_bytes: DEFAULT_MAX_RECEIVE_BUFFER_BYTES,
        }
    }
}

impl Limits {
    /// For reading again what was already checked against the configured limits (which may be
    /// above the defaults): only the depth's ceiling, which keeps recursion safe, applies.
    pub(crate) const ALREADY_CHECKED: Limits =
        Limits { max_message_bytes: usize::MAX, max_message_values: usize::MAX, max_message_depth: MAX_MESSAGE_DEPTH_CEILING, max_receive_buffer_bytes: usize::MAX };

    /// Fails, naming the option, when a limit is zero or the depth beyond its ceiling.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("maxMessageBytes (max_message_bytes)", self.max_message_bytes),
            ("maxMessageValues (max_message_values)", self.max_message_values),
            ("maxMessageDepth (max_message_depth)", self.max_message_depth),
            ("maxReceiveBufferBytes (max_receive_buffer_bytes)", self.max_receive_buffer_bytes),
        ];
        if let Some((option, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(Error::InvalidOption { option, reason: "must be a positive integer".into() });
        }
        if self.max_message_depth > MAX_MESSAGE_DEPTH_CEILING {
            return Err(Error::InvalidOption {
                option: "maxMessageDepth (max_message_depth)",
                reason: format!("at most {MAX_MESSAGE_DEPTH_CEILING}, got {}", self.max_message_depth),
            });
        }
        Ok(())
    }

    /// Fails, saying why, when a message of `len` bytes is over [`Limits::max_message_bytes`].
    pub(crate) fn check_size(&self, len: usize) -> Result<(), String> {
        if len > self.max_message_bytes {
            return Err(format!("{len} bytes, more than maxMessageBytes ({})", self.max_message_bytes));
        }
        Ok(())
    }

    /// Fails when a message of `len` bytes about to be published is over
    /// [`Limits::max_message_bytes`]: the other nodes would drop it.
    pub fn check_outgoing(&self, len: usize) -> Result<(), Error> {
        self.check_size(len).map_err(|why| Error::Dropped { kind: DropKind::TooLarge, count: 1, detail: format!("{why}: not published, since the other nodes would drop it") })
    }
}

/// Why a received message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropKind {
    /// Over [`Limits::max_message_bytes`] (`ERR_SIO_TOO_LARGE`).
    TooLarge,
    /// Over [`Limits::max_message_values`] or [`Limits::max_message_depth`]
    /// (`ERR_SIO_TOO_COMPLEX`).
    TooComplex,
    /// Not a message of the protocol (`ERR_SIO_MALFORMED`).
    Malformed,
}

impl DropKind {
    /// The stable error code reported with the drop.
    pub fn code(self) -> crate::error::ErrorCode {
        match self {
            DropKind::TooLarge => crate::error::ErrorCode::TooLarge,
            DropKind::TooComplex => crate::error::ErrorCode::TooComplex,
            DropKind::Malformed => crate::error::ErrorCode::Malformed,
        }
    }

    /// The kind of drop a decoding error means.
    pub fn of(err: &ProtocolError) -> Self {
        match err {
            ProtocolError::TooManyValues(_) | ProtocolError::TooDeep(_) => DropKind::TooComplex,
            _ => DropKind::Malformed,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropKind::TooLarge => "too large",
            DropKind::TooComplex => "too complex",
            DropKind::Malformed => "malformed",
        })
    }
}

/// Counts events and says when to report them: the first at once, then at most one report
/// per second, carrying how many happened since the last one.
#[derive(Debug, Default)]
pub struct Burst {
    unreported: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl Burst {
    /// Counts `n` more; returns how many to report now, if it is time to.
    pub fn add(&self, n: u64) -> Option<u64> {
        self.unreported.fetch_add(n, Ordering::AcqRel);
        let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REPORT_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(self.unreported.swap(0, Ordering::AcqRel))
    }
}

/// Drops of one engine, by kind: counted, and reported in bursts.
#[derive(Debug, Default)]
pub(crate) struct DropCounters {
    counts: [AtomicU64; 3],
    bursts: [Burst; 3],
}

impl DropCounters {
    /// Counts one drop of `kind`; returns the event to report, if it is time to (`detail`
    /// describes this drop: what, how large, on which channel).
    pub(crate) fn count(&self, kind: DropKind, detail: impl FnOnce() -> String) -> Option<Error> {
        self.add(kind);
        let count = self.bursts[kind.index()].add(1)?;
        Some(Error::Dropped { kind, count, detail: detail() })
    }

    /// Counts one drop of `kind` and, when it is time to report ([`Self::count`]), tells `host`.
    pub(crate) fn report(&self, kind: DropKind, host: &dyn Host, detail: impl FnOnce() -> String) {
        if let Some(report) = self.count(kind, detail) {
            host.on_event(AdapterEvent::Error(report));
        }
    }

    /// Counts one drop of `kind` that is reported otherwise (a refused publish fails the call).
    pub(crate) fn add(&self, kind: DropKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops of `kind` since creation.
    pub(crate) fn get(&self, kind: DropKind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Every kind with its count.
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<(DropKind, u64)> {
        [DropKind::TooLarge, DropKind::TooComplex, DropKind::Malformed].iter().map(|k| (*k, self.get(*k))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_reported_once_then_summed() {
        let drops = DropCounters::default();
        let first = drops.count(DropKind::TooLarge, || "first".into());
        assert!(matches!(first, Some(Error::Dropped { kind: DropKind::TooLarge, count: 1, .. })));
        for _ in 0..999 {
            assert!(drops.count(DropKind::TooLarge, || unreachable!("not reported within the second")).is_none());
        }
        // Another kind has its own burst.
        assert!(drops.count(DropKind::Malformed, || "other".into()).is_some());
        assert_eq!(drops.all(), vec![(DropKind::TooLarge, 1000), (DropKind::TooComplex, 0), (DropKind::Malformed, 1)]);
        // A second later the next drop reports what piled up meanwhile.
        *drops.bursts[0].last_report.lock().unwrap() = Some(Instant::now() - REPORT_EVERY);
        let next = drops.count(DropKind::TooLarge, || "next".into());
        assert!(matches!(next, Some(Error::Dropped { count: 1000, .. })), "{next:?}");
    }

    #[test]
    fn limits_are_checked() {
        assert!(Limits::default().validate().is_ok());
        let err = Limits { max_message_depth: MAX_MESSAGE_DEPTH_CEILING + 1, ..Limits::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("maxMessageDepth"), "{err}");
        let err = Limits { max_receive_buffer_bytes: 0, ..Limits::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("maxReceiveBufferBytes"), "{err}");
        let limits = Limits { max_message_bytes: 10, ..Limits::default() };
        assert!(limits.check_outgoing(10).is_ok());
        assert_eq!(limits.check_outgoing(11).unwrap_err().code(), "ERR_SIO_TOO_LARGE");
    }
}
