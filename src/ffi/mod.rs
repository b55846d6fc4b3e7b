//! The C ABI (`libsioadapter.so`, `include/sioadapter.h`). The only module with `unsafe`.
//!
//! Conventions, for every function:
//! - Every function returns a [`SioResult`]; on failure the message is available from
//!   [`sio_last_error`] on the same thread until its next call into the library.
//! - Strings are NUL-terminated UTF-8, borrowed for the duration of the call only. NULL where a
//!   string is required gives `SIO_ERR_NULL`, invalid UTF-8 `SIO_ERR_UTF8`.
//! - Handles are created by `*_new` into an out-pointer and owned by the caller until passed to
//!   `*_free`, which is the only way to release them (NULL is accepted and ignored). A handle may
//!   be used from any thread, but not after `*_free` has started.
//! - Panics never unwind into C: they are caught at the boundary and reported as `SIO_ERR_PANIC`.
//! - Each handle runs its own background runtime (one worker thread, its Redis I/O), stopped by
//!   `*_free`; an adapter handle has a second thread, its callback thread (see the `host` module).
//! - Callbacks and completions run on the callback thread, one at a time. They may call any
//!   function of the library, `*_new` and `*_free` included: a function that must wait for a
//!   runtime runs on a helper thread when called from a runtime's thread, and a handle freed
//!   from its own callback is freed on another thread once that callback returns
//!   ([`sio_adapter_free`]).

mod adapter;
mod emitter;
pub(crate) mod heap;
mod host;
mod log;

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorCode};

pub use adapter::*;
pub use emitter::*;
pub use host::{SioCompletion, SioEvent, SioHostCallbacks, SioRequest};
pub use log::*;

/// Major version of the library (and of `include/sioadapter.h`).
pub const SIO_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const SIO_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const SIO_VERSION_PATCH: u32 = 0;

/// `parser` of `sio_adapter_options` and `sio_emitter_options`: notepack.io msgpack, the
/// official adapter's default.
pub const SIO_PARSER_NOTEPACK: u32 = 0;
/// `parser` of `sio_adapter_options` and `sio_emitter_options`: JSON, as official nodes and
/// emitters with `parser: { encode: JSON.stringify, decode: JSON.parse }` speak it. An adapter
/// handle still hands `on_broadcast` msgpack `[uid, packet, opts]` (binary as
/// `{"type":"Buffer","data":[..]}`), and an emitter takes its arguments as before.
pub const SIO_PARSER_JSON: u32 = 1;

/// Whether a `parser` option value (`SIO_PARSER_*`) asks for JSON.
pub(crate) fn json_parser_arg(parser: u32) -> Result<bool, ArgError> {
    match parser {
        SIO_PARSER_NOTEPACK => Ok(false),
        SIO_PARSER_JSON => Ok(true),
        other => Err(ArgError(SioResult::SioErrInvalid, format!("`parser` {other} is not a SIO_PARSER_* value"))),
    }
}

/// Result codes. Values are stable and never reused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioResult {
    /// Success.
    SioOk = 0,
    /// A required pointer argument was NULL.
    SioErrNull = 1,
    /// A string argument was not valid UTF-8.
    SioErrUtf8 = 2,
    /// An argument had an unusable value (bad URL, bad JSON, reserved event name, ...).
    SioErrInvalid = 3,
    /// Redis failed or is unreachable (the message never contains a password).
    SioErrRedis = 4,
    /// A request did not get every answer in time.
    SioErrTimeout = 5,
    /// The handle is closed.
    SioErrClosed = 6,
    /// A bug: a panic was caught at the boundary.
    SioErrPanic = 7,
    /// A message could not be encoded or decoded.
    SioErrProtocol = 8,
    /// More was queued than the configured bound; the message was dropped.
    SioErrOverloaded = 9,
    /// The message is larger than `max_message_bytes` (`sio_limits`): the other nodes would drop
    /// it, so it was not published.
    SioErrTooLarge = 10,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// On an adapter handle's callback thread: which handle's (see [`HandleToken::id`]); 0
    /// elsewhere.
    static HANDLE_OF_THREAD: Cell<usize> = const { Cell::new(0) };
}

/// What identifies a handle to its own callback thread, and silences its callbacks once it is
/// being freed.
#[derive(Default)]
pub(crate) struct HandleToken {
    silenced: std::sync::atomic::AtomicBool,
}

impl HandleToken {
    /// A number unique among live handles (the token's address).
    pub(crate) fn id(self: &std::sync::Arc<Self>) -> usize {
        std::sync::Arc::as_ptr(self) as usize
    }

    /// True when this thread is the callback thread of the handle.
    pub(crate) fn is_this_thread(self: &std::sync::Arc<Self>) -> bool {
        HANDLE_OF_THREAD.get() == self.id()
    }

    /// From now on the handle's host callbacks are not called any more.
    pub(crate) fn silence(&self) {
        self.silenced.store(true, std::sync::atomic::Ordering::Release);
    }

    /// True once [`HandleToken::silence`] was called.
    pub(crate) fn is_silenced(&self) -> bool {
        self.silenced.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The background runtime of a handle: one worker thread for its Redis I/O. The host's code
/// never runs there (an adapter's callbacks have a thread of their own).
pub(crate) fn new_runtime() -> Result<tokio::runtime::Runtime, ArgError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sioadapter")
        .enable_all()
        .build()
        .map_err(|e| ArgError(SioResult::SioErrRedis, format!("cannot start the runtime: {e}")))
}

/// Runs `work`, which waits on a runtime of its own: here, or, when this thread runs a tokio
/// runtime (a callback of a handle, a host's own runtime), where waiting is not allowed, on a
/// helper thread that this one waits for.
pub(crate) fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = text);
}

impl From<&Error> for SioResult {
    /// The C result of an error: its [`ErrorCode`], the one list of codes.
    fn from(err: &Error) -> Self {
        match err.code() {
            ErrorCode::Option => SioResult::SioErrInvalid,
            ErrorCode::Redis => SioResult::SioErrRedis,
            ErrorCode::Protocol | ErrorCode::TooComplex | ErrorCode::Malformed => SioResult::SioErrProtocol,
            ErrorCode::Timeout => SioResult::SioErrTimeout,
            ErrorCode::Overloaded => SioResult::SioErrOverloaded,
            ErrorCode::Closed => SioResult::SioErrClosed,
            ErrorCode::TooLarge => SioResult::SioErrTooLarge,
        }
    }
}

/// An argument problem found at the boundary.
pub(crate) struct ArgError(SioResult, String);

impl From<Error> for ArgError {
    fn from(err: Error) -> Self {
        ArgError(SioResult::from(&err), err.to_string())
    }
}

/// Runs the body of an exported function: catches panics, records the error message.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), ArgError>) -> SioResult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            SioResult::SioOk
        }
        Ok(Err(ArgError(code, message))) => {
            set_last_error(&message);
            code
        }
        Err(_) => {
            set_last_error("internal error (panic caught at the C boundary)");
            SioResult::SioErrPanic
        }
    }
}

/// Borrows a required C string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, ArgError> {
    if ptr.is_null() {
        return Err(ArgError(SioResult::SioErrNull, format!("`{name}` is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the function's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| ArgError(SioResult::SioErrUtf8, format!("`{name}` is not valid UTF-8")))
}

/// Borrows an optional C string argument: NULL reads as "" (the option's default).
///
/// # Safety
/// As for [`arg_str`].
pub(crate) unsafe fn optional_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, ArgError> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: non-NULL, and valid per the function's contract.
    unsafe { arg_str(ptr, name) }
}

/// Borrows an array of `len` C strings (NULL allowed when `len` is 0).
///
/// # Safety
/// `ptr` points to `len` valid C string pointers, each as for [`arg_str`].
pub(crate) unsafe fn arg_str_array<'a>(ptr: *const *const c_char, len: usize, name: &str) -> Result<Vec<&'a str>, ArgError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(ArgError(SioResult::SioErrNull, format!("`{name}` is NULL but its length is {len}")));
    }
    // SAFETY: `ptr` holds `len` elements per the contract.
    let items = unsafe { std::slice::from_raw_parts(ptr, len) };
    // SAFETY: each element is a C string per the contract.
    items.iter().map(|p| unsafe { arg_str(*p, name) }).collect()
}

/// Limits of a handle (see the README's Limits table). A field left 0 takes its default; NULL
/// instead of a `sio_limits` takes every default.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SioLimits {
    /// Largest message accepted from Redis, in bytes (default 16 MiB): larger ones are dropped
    /// and reported; publishing a larger one fails with `SIO_ERR_TOO_LARGE`.
    pub max_message_bytes: usize,
    /// Most values (scalars, arrays, maps, map keys) in one received message (default
    /// 1,000,000): more, and it is dropped and reported.
    pub max_message_values: usize,
    /// Deepest nesting of arrays and maps in one received message (default 256, at most 1024).
    pub max_message_depth: usize,
    /// Most messages waiting while Redis is slow or away (default 100,000): beyond it a
    /// publish fails with `SIO_ERR_OVERLOADED`.
    pub max_queued_publishes: usize,
    /// Most bytes waiting while Redis is slow or away (default 64 MiB): beyond it a publish
    /// fails with `SIO_ERR_OVERLOADED`.
    pub max_queued_bytes: usize,
    /// Most bytes of received messages waiting for the host callbacks of an adapter handle
    /// (default 256 MiB): beyond it they are dropped, counted (`sio_stats.dropped`) and reported
    /// (`SIO_EVENT_DROPPED`, `ERR_SIO_OVERLOADED`); a single larger message is taken when
    /// nothing waits. Emitters ignore it.
    pub max_receive_buffer_bytes: usize,
}

impl SioLimits {
    /// Reads `limits` (NULL: all defaults) into the core's limits and the Redis configuration.
    ///
    /// # Safety
    /// `limits` is NULL or points to a valid `SioLimits`.
    pub(crate) unsafe fn apply(limits: *const SioLimits, redis: &mut crate::RedisConfig) -> Result<crate::limits::Limits, ArgError> {
        // SAFETY: NULL or valid per the contract; plain data, copied.
        let given = unsafe { limits.as_ref() }.copied().unwrap_or_default();
        let or = |value: usize, default: usize| if value == 0 { default } else { value };
        let defaults = crate::limits::Limits::default();
        let limits = crate::limits::Limits {
            max_message_bytes: or(given.max_message_bytes, defaults.max_message_bytes),
            max_message_values: or(given.max_message_values, defaults.max_message_values),
            max_message_depth: or(given.max_message_depth, defaults.max_message_depth),
            max_receive_buffer_bytes: or(given.max_receive_buffer_bytes, defaults.max_receive_buffer_bytes),
        };
        limits.validate()?;
        redis.max_queued_publishes = or(given.max_queued_publishes, redis.max_queued_publishes);
        redis.max_queued_bytes = or(given.max_queued_bytes, redis.max_queued_bytes);
        Ok(limits)
    }
}

/// Borrows `len` bytes (NULL allowed when `len` is 0).
///
/// # Safety
/// `ptr` points to `len` readable bytes.
pub(crate) unsafe fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], ArgError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(ArgError(SioResult::SioErrNull, format!("`{name}` is NULL but its length is {len}")));
    }
    // SAFETY: readable for `len` bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The library version, e.g. `"0.1.0"`. Static storage: never free it.
#[no_mangle]
pub extern "C" fn sio_version() -> *const c_char {
    static VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"",
    };
    VERSION.as_ptr()
}

/// The message of the last failed call on this thread (`""` after a success). Owned by the
/// library, valid until the next call into the library on this thread; never free it.
#[no_mangle]
pub extern "C" fn sio_last_error() -> *const c_char {
    LAST_ERROR.with(|cell| cell.borrow().as_ptr())
}

/// A fixed description of a result code (`SIO_OK`, `SIO_ERR_NULL`, ...), or
/// `"SIO_ERR_UNKNOWN"` for a value that is not one: it takes an integer, so any value is safe to
/// pass. Static storage: never free it.
#[no_mangle]
pub extern "C" fn sio_result_name(code: i32) -> *const c_char {
    const NAMES: [(SioResult, &CStr); 11] = [
        (SioResult::SioOk, c"SIO_OK"),
        (SioResult::SioErrNull, c"SIO_ERR_NULL"),
        (SioResult::SioErrUtf8, c"SIO_ERR_UTF8"),
        (SioResult::SioErrInvalid, c"SIO_ERR_INVALID"),
        (SioResult::SioErrRedis, c"SIO_ERR_REDIS"),
        (SioResult::SioErrTimeout, c"SIO_ERR_TIMEOUT"),
        (SioResult::SioErrClosed, c"SIO_ERR_CLOSED"),
        (SioResult::SioErrPanic, c"SIO_ERR_PANIC"),
        (SioResult::SioErrProtocol, c"SIO_ERR_PROTOCOL"),
        (SioResult::SioErrOverloaded, c"SIO_ERR_OVERLOADED"),
        (SioResult::SioErrTooLarge, c"SIO_ERR_TOO_LARGE"),
    ];
    NAMES.iter().find(|(result, _)| *result as i32 == code).map_or(c"SIO_ERR_UNKNOWN", |(_, name)| name).as_ptr()
}
