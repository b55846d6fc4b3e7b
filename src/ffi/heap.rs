//! Giving freed memory back to the system after a large message or a burst.
//!
//! glibc's allocator raises its mmap threshold after freeing a large block, so the next large
//! buffers (a hostile 25 MB message read, then dropped) come from its heaps, whose free pages it
//! keeps: a node's RSS stays tens of MiB above what it uses. A burst of small messages does the
//! same at a larger scale: 100 MB of 10 KB messages waiting in a receive buffer, once handled,
//! leave their pages in the heaps (measured: 250 MiB RSS after, 100 MiB after a trim).
//! `malloc_trim` returns them.

use std::sync::atomic::{AtomicBool, Ordering};
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

/// When, after a burst drained, the later trims come: the host's copies (Node's Buffers, freed
/// at V8's next collections) go meanwhile.
const LATER_TRIMS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(8)];

/// After a receive buffer that held [`TRIM_AFTER_BYTES`] or more drained: trims on a thread of
/// its own (the caller is the host's thread, e.g. Node's event loop), now and at
/// [`LATER_TRIMS`]. One such thread at a time.
pub(crate) fn trim_after_burst() {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new().name("sioadapter-trim".into()).spawn(|| {
        trim_after_large_message();
        for pause in LATER_TRIMS {
            std::thread::sleep(pause);
            trim_after_large_message();
        }
        RUNNING.store(false, Ordering::Release);
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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; any thread may call it.
    unsafe {
        malloc_trim(0);
    }
}
