//! `sio_set_log_callback`: the library's diagnostic events (connection state, requests, drops)
//! for the host's own logger, as rustls-ffi offers them.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::{guard, ArgError, SioResult};

/// Verbosity of [`sio_set_log_callback`], and the level of each event.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioLogLevel {
    /// Nothing (the default).
    SioLogOff = 0,
    /// Errors.
    SioLogError = 1,
    /// Warnings (e.g. TLS verification turned off).
    SioLogWarn = 2,
    /// Information.
    SioLogInfo = 3,
    /// What a user debugging a deployment wants: link state changes, requests sent and settled,
    /// messages dropped and why.
    SioLogDebug = 4,
    /// Everything.
    SioLogTrace = 5,
}

/// Receives one event: its level, its target (the Rust module that logged it, e.g.
/// `sioadapter::transport::driver`) and its text, both borrowed for the call. It runs on the
/// thread that logged (a handle's thread, or the caller's), possibly on several threads at
/// once, and must not block for long. It may call into the library, except
/// [`sio_set_log_callback`]; events logged meanwhile on its thread are not passed to it.
pub type SioLogCallback = Option<unsafe extern "C" fn(user_data: *mut c_void, level: SioLogLevel, target: *const c_char, message: *const c_char)>;

/// The callback and `user_data`, callable from any thread.
struct LogTarget {
    callback: unsafe extern "C" fn(*mut c_void, SioLogLevel, *const c_char, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the caller of `sio_set_log_callback` guarantees that the callback and `user_data` may
// be used from any thread, at the same time.
unsafe impl Send for LogTarget {}
// SAFETY: as above.
unsafe impl Sync for LogTarget {}

/// Sends the library's events up to `level` (a `sio_log_level`; above `SIO_LOG_TRACE` means
/// trace) to `callback` (with `user_data`), for every handle of the process; `callback` NULL or
/// `level` `SIO_LOG_OFF` turns it off. Once it returns, the
/// callback it replaced is not running and is not called any more. Called from the log
/// callback itself it gives `SIO_ERR_INVALID`.
///
/// # Safety
/// `callback` is NULL or a valid function that, with `user_data`, may be called from any thread
/// until it is replaced.
#[no_mangle]
pub unsafe extern "C" fn sio_set_log_callback(callback: SioLogCallback, user_data: *mut c_void, level: u32) -> SioResult {
    guard(|| {
        let sink: Option<crate::log::Sink> = callback.map(|callback| {
            let target = LogTarget { callback, user_data };
            Arc::new(move |level: tracing::Level, module: &str, text: &str| {
                let level = match level {
                    tracing::Level::ERROR => SioLogLevel::SioLogError,
                    tracing::Level::WARN => SioLogLevel::SioLogWarn,
                    tracing::Level::INFO => SioLogLevel::SioLogInfo,
                    tracing::Level::DEBUG => SioLogLevel::SioLogDebug,
                    tracing::Level::TRACE => SioLogLevel::SioLogTrace,
                };
                let module = CString::new(module).unwrap_or_default();
                let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
                let target = &target;
                // SAFETY: a valid callback per the contract; the strings live for the call.
                unsafe { (target.callback)(target.user_data, level, module.as_ptr(), text.as_ptr()) };
            }) as crate::log::Sink
        });
        crate::log::set_sink(level as usize, sink).map_err(|e| ArgError(SioResult::SioErrInvalid, e.to_string()))?;
        Ok(())
    })
}
