//! Giving freed memory back to the system after a large message or a burst.
//!
//! glibc's allocator raises its mmap threshold after freeing a large block, so the next large
//! buffers (a hostile 25 MB message read, then dropped) come from its heaps, whose free pages it
//! keeps: a node's RSS stays tens of MiB above what it uses. A burst of small messages does the
//! same at a larger scale: 100 MB of 10 KB messages waiting in a receive buffer, once handled,
//! leave their pages in the heaps (measured: 250 MiB RSS after, 100 MiB after a trim).
//! `malloc_trim` returns them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Messages at least this large are followed by a trim.
pub(crate) const TRIM_AFTER_BYTES: usize = 4 << 20;
/// Trims are at least this far apart (each walks the allocator's heaps).
const TRIM_EVERY: Duration = Duration::from_secs(1);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// How long after the last burst drained the trims come: the host's copies (Node's Buffers,
/// freed at V8's next collections) go meanwhile. A trim while messages keep flowing would only
/// hand back pages that the next messages fault in again (measured: a third more system time
/// on a node receiving 80 MB/s), so each waits until no burst drained for that long.
const TRIMS_AFTER_QUIET: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(8)];

/// When the last burst drained, in milliseconds since [`epoch`].
static LAST_BURST_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// After a receive buffer that held [`TRIM_AFTER_BYTES`] or more drained: trims on a thread of
/// its own (the caller is the host's thread, e.g. Node's event loop) once bursts stopped for
/// each of [`TRIMS_AFTER_QUIET`]. One such thread at a time.
pub(crate) fn trim_after_burst() {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    LAST_BURST_MS.store(epoch().elapsed().as_millis() as u64, Ordering::Release);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new().name("sioadapter-trim".into()).spawn(|| {
        let mut last_seen = 0;
        for quiet in TRIMS_AFTER_QUIET {
            // Until no burst drained for `quiet`.
            loop {
                let since = epoch().elapsed().saturating_sub(Duration::from_millis(LAST_BURST_MS.load(Ordering::Acquire)));
                if since >= quiet {
                    break;
                }
                std::thread::sleep(quiet - since);
            }
            last_seen = LAST_BURST_MS.load(Ordering::Acquire);
            trim_after_large_message();
        }
        RUNNING.store(false, Ordering::Release);
        // A burst that drained while this thread was finishing found it running: its turn.
        if LAST_BURST_MS.load(Ordering::Acquire) != last_seen {
            trim_after_burst();
        }
    });
    if spawned.is_err() {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Returns the allocator's free pages to the system, at most once a [`TRIM_EVERY`]; called
/// after a message of [`TRIM_AFTER_BYTES`] or more was handled (and, if dropped, freed).
/// Nothing to do off glibc.
pub(crate) fn trim_after_large_message() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < TRIM_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    trim();
}

/// Returns the allocator's free pages to the system now, on a thread of its own (a trim walks
/// every heap, and the caller may be the host's event loop). For a host that just freed much
/// memory of its own: Node's adapter calls it after a full V8 collection once a heavy stretch of
/// traffic is over. Nothing to do off glibc.
pub fn release_free_memory() {
    // Without a thread, no trim: the memory stays with the allocator, as it would anyway.
    let _ = std::thread::Builder::new().name("sioadapter-trim".into()).spawn(trim);
}

/// `malloc_trim(0)`: every heap's free pages back to the system.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; any thread may call it.
    unsafe {
        malloc_trim(0);
    }
}
