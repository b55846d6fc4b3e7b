//! Giving freed memory back to the system after a large message.
//!
//! glibc's allocator raises its mmap threshold after freeing a large block, so the next large
//! buffers (a hostile 25 MB message read, then dropped) come from its heaps, whose free pages it
//! keeps: a node's RSS stays tens of MiB above what it uses. `malloc_trim` returns them.

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
