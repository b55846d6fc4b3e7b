//! The receive buffer between the engine and a host that takes messages on a thread of its own
//! (Node's event loop, a C host's callback thread): bounded in bytes, handed over in bounded batches,
//! drops counted and reported once per burst.
//!
//! The engine delivers on the transport's task; the host's thread may be busy. At most one
//! hand-over is scheduled at a time, and it takes a bounded batch of what accumulated
//! meanwhile: a busy consumer gets fewer, larger batches and gets back to its own I/O between
//! two of them. At most [`Limits::max_receive_buffer_bytes`](crate::limits::Limits) wait: a
//! slow consumer must not grow memory without bound (Redis itself cuts off a subscriber that
//! lets 32 MiB pile up); a single larger message is accepted when nothing waits. Once a buffer
//! that held 4 MiB or more is empty again, the allocator's free pages are given back to the
//! system (`malloc_trim` on glibc) once no burst drained for 2 s, and again after 8 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::Error;
use crate::host::Delivery;
use crate::limits::Burst;

/// Most messages handed over at once.
pub const BATCH_MESSAGES: usize = 128;
/// Most bytes handed over at once (unless a single message is larger).
pub const BATCH_BYTES: usize = 1024 * 1024;

/// A bounded receive buffer. See the module documentation.
pub struct Outbox {
    state: Mutex<State>,
    limit: usize,
    /// Messages dropped for lack of room, in all.
    dropped: AtomicU64,
    /// Reports those drops once per burst.
    drops: Burst,
}

#[derive(Default)]
struct State {
    items: Vec<Delivery>,
    bytes: usize,
    /// The most bytes held since the buffer was last empty.
    peak: usize,
    scheduled: bool,
}

/// What [`Outbox::push`] asks of its caller.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Schedule a hand-over: none was scheduled and messages wait.
    pub schedule: bool,
    /// Messages were dropped for lack of room and a burst of drops starts: report this
    /// ([`Error::Overloaded`], `ERR_SIO_OVERLOADED`) to the user.
    pub report: Option<Error>,
}

impl Outbox {
    /// An empty buffer holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Outbox { state: Mutex::default(), limit, dropped: AtomicU64::new(0), drops: Burst::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a message, or drops it when it does not fit.
    pub fn push(&self, delivery: Delivery) -> Pushed {
        let mut state = self.lock();
        let len = delivery.weight();
        if state.bytes + len > self.limit && !state.items.is_empty() {
            drop(state);
            return Pushed { schedule: false, report: self.count_drops(1) };
        }
        state.bytes += len;
        state.peak = state.peak.max(state.bytes);
        state.items.push(delivery);
        let schedule = !state.scheduled;
        state.scheduled = true;
        Pushed { schedule, report: None }
    }

    fn count_drops(&self, dropped: u64) -> Option<Error> {
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        let count = self.drops.add(dropped)?;
        Some(Error::Overloaded(format!("receive buffer full (maxReceiveBufferBytes, {} bytes: the host is not keeping up): dropped {count} messages", self.limit)))
    }

    /// Takes up to [`BATCH_MESSAGES`] messages / [`BATCH_BYTES`] bytes, in order, and whether
    /// more wait; while more wait the buffer stays scheduled, and the consumer asks for the rest
    /// (another `take`) once it has handled this batch.
    pub fn take(&self) -> (Vec<Delivery>, bool) {
        let mut state = self.lock();
        let mut bytes = 0;
        let count = state
            .items
            .iter()
            .take(BATCH_MESSAGES)
            .take_while(|d| {
                let first = bytes == 0;
                bytes += d.weight();
                first || bytes <= BATCH_BYTES
            })
            .count();
        let items: Vec<Delivery> = state.items.drain(..count).collect();
        state.bytes -= items.iter().map(|d| d.weight()).sum::<usize>();
        let more = !state.items.is_empty();
        state.scheduled = more;
        if !more && std::mem::take(&mut state.peak) >= crate::ffi::heap::TRIM_AFTER_BYTES {
            // A burst was handled: its pages go back to the system.
            crate::ffi::heap::trim_after_burst();
        }
        (items, more)
    }

    /// Messages dropped for lack of room since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DeliveryKind;

    fn message(len: usize) -> Delivery {
        Delivery::new(DeliveryKind::Broadcast, vec![0; len])
    }

    /// Pushes every message; whether a hand-over was asked for, and the report, if any.
    fn push_all(outbox: &Outbox, messages: Vec<Delivery>) -> Pushed {
        messages.into_iter().fold(Pushed::default(), |all, m| {
            let pushed = outbox.push(m);
            Pushed { schedule: all.schedule || pushed.schedule, report: all.report.or(pushed.report) }
        })
    }

    #[test]
    fn one_hand_over_is_scheduled_at_a_time_and_batches_are_bounded() {
        let outbox = Outbox::new(usize::MAX);
        assert!(push_all(&outbox, (0..200).map(|_| message(10)).collect()).schedule);
        assert!(!outbox.push(message(10)).schedule, "already scheduled");
        let (first, more) = outbox.take();
        assert_eq!((first.len(), more), (BATCH_MESSAGES, true));
        assert!(!outbox.push(message(10)).schedule, "still scheduled while more wait");
        let (rest, more) = outbox.take();
        assert_eq!((rest.len(), more), (74, false));
        assert!(outbox.push(message(10)).schedule, "idle again");
        let (big, _) = {
            outbox.take();
            push_all(&outbox, vec![message(BATCH_BYTES), message(1)]);
            outbox.take()
        };
        assert_eq!(big.len(), 1, "a batch stops at BATCH_BYTES, a single larger message passes");
    }

    #[test]
    fn over_the_limit_messages_are_dropped_counted_and_reported_once_per_burst() {
        let outbox = Outbox::new(100);
        let pushed = push_all(&outbox, vec![message(60), message(60), message(30), message(10)]);
        assert!(pushed.schedule);
        let report = pushed.report.expect("a burst starts");
        assert_eq!(report.code(), "ERR_SIO_OVERLOADED");
        assert!(report.to_string().contains("dropped 1 messages"), "{report}");
        assert_eq!(outbox.dropped(), 1);
        assert!(outbox.push(message(60)).report.is_none(), "same burst: counted, not reported again");
        assert_eq!(outbox.dropped(), 2);
        let (items, more) = outbox.take();
        assert_eq!((items.len(), more), (3, false));
        assert!(outbox.push(message(500)).report.is_none(), "a single large message fits an empty buffer");
    }
}
