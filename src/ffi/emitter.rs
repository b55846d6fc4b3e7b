//! `sio_emitter`: emit into a socket.io cluster from a C/C++ program, like
//! `@socket.io/redis-emitter` does from Node.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use serde_json::value::RawValue;

use super::{arg_bytes, arg_str, arg_str_array, guard, json_parser_arg, new_runtime, off_runtime, optional_str_arg, ArgError, SioLimits, SioResult, SIO_PARSER_NOTEPACK};
use crate::config::RedisConfig;
use crate::emitter::{AnyEmitter, ClusterCommands, Emitter, ShardedEmitter};
use crate::protocol::request::{raw_json, RawJson, Targets};
use crate::protocol::{msgpack, BroadcastOptions, Room};
use crate::sharded::SubscriptionMode;
use crate::transport::redis::RedisTransport;
use crate::transport::Transport;

/// Flag for [`SioTarget::flags`]: the message may be dropped for clients that are not ready.
pub const SIO_FLAG_VOLATILE: u32 = 1;
/// Flag for [`SioTarget::flags`]: `compress(true)`.
pub const SIO_FLAG_COMPRESS: u32 = 2;
/// Flag for [`SioTarget::flags`]: `compress(false)`.
pub const SIO_FLAG_NO_COMPRESS: u32 = 4;

/// `subscription_mode` of [`sio_emitter_new_sharded`] and [`SioShardedOptions`](super::adapter::SioShardedOptions): every message on the main channel.
pub const SIO_SUBSCRIPTION_STATIC: u32 = 0;
/// `subscription_mode` of [`sio_emitter_new_sharded`]: public rooms have a channel (the default
/// of the sharded adapter).
pub const SIO_SUBSCRIPTION_DYNAMIC: u32 = 1;
/// `subscription_mode` of [`sio_emitter_new_sharded`]: every room, socket ids included, has a
/// channel.
pub const SIO_SUBSCRIPTION_DYNAMIC_PRIVATE: u32 = 2;

/// Which sockets an operation is for. Pass NULL for "every socket of the namespace".
/// The arrays are borrowed for the duration of the call.
#[repr(C)]
pub struct SioTarget {
    /// Rooms whose sockets are targeted (`to(...)`); none means every socket.
    pub rooms: *const *const c_char,
    /// Number of entries of `rooms`.
    pub rooms_len: usize,
    /// Rooms whose sockets are excluded (`except(...)`).
    pub except: *const *const c_char,
    /// Number of entries of `except`.
    pub except_len: usize,
    /// `SIO_FLAG_*` bits (broadcasts only).
    pub flags: u32,
}

/// An emitter handle: a Redis connection and a namespace. Create with [`sio_emitter_new`],
/// release with [`sio_emitter_free`].
pub struct SioEmitter {
    runtime: tokio::runtime::Runtime,
    transport: Arc<RedisTransport>,
    emitter: AnyEmitter,
}

/// A parsed [`SioTarget`].
pub(crate) struct Parsed {
    rooms: Vec<String>,
    except: Vec<String>,
    flags: u32,
}

/// # Safety
/// `target` is NULL or points to a valid [`SioTarget`] whose arrays follow its contract.
pub(crate) unsafe fn parse_target(target: *const SioTarget) -> Result<Parsed, ArgError> {
    // SAFETY: NULL or valid per the contract.
    let Some(t) = (unsafe { target.as_ref() }) else {
        return Ok(Parsed { rooms: Vec::new(), except: Vec::new(), flags: 0 });
    };
    // SAFETY: the arrays are valid per the contract.
    let rooms = unsafe { arg_str_array(t.rooms, t.rooms_len, "target.rooms") }?;
    // SAFETY: as above.
    let except = unsafe { arg_str_array(t.except, t.except_len, "target.except") }?;
    Ok(Parsed { rooms: rooms.into_iter().map(str::to_owned).collect(), except: except.into_iter().map(str::to_owned).collect(), flags: t.flags })
}

impl Parsed {
    pub(crate) fn options(&self) -> BroadcastOptions {
        let mut opts = BroadcastOptions {
            rooms: self.rooms.iter().map(|r| Room::from(r.as_str())).collect(),
            except: self.except.iter().map(|r| Room::from(r.as_str())).collect(),
            ..Default::default()
        };
        if self.flags & SIO_FLAG_VOLATILE != 0 {
            opts.flags.set("volatile", true);
        }
        if self.flags & (SIO_FLAG_COMPRESS | SIO_FLAG_NO_COMPRESS) != 0 {
            opts.flags.set("compress", self.flags & SIO_FLAG_COMPRESS != 0);
        }
        opts
    }

    pub(crate) fn json(&self) -> Result<(RawJson, RawJson), ArgError> {
        let list = |items: &[String]| raw_json(serde_json::to_string(items).unwrap_or_default(), "rooms").map_err(|e| ArgError::from(crate::Error::from(e)));
        Ok((list(&self.rooms)?, list(&self.except)?))
    }
}

fn rooms_json(rooms: &[&str]) -> Result<Box<RawValue>, ArgError> {
    raw_json(serde_json::to_string(rooms).unwrap_or_default(), "rooms").map_err(|e| ArgError::from(crate::Error::from(e)))
}

fn json_args(text: &str, name: &str) -> Result<serde_json::Value, ArgError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Array(_)) => Ok(value),
        _ => Err(ArgError(SioResult::SioErrInvalid, format!("`{name}` must be a JSON array"))),
    }
}

/// # Safety
/// `emitter` is NULL or a live handle from [`sio_emitter_new`].
unsafe fn handle<'a>(emitter: *const SioEmitter) -> Result<&'a SioEmitter, ArgError> {
    // SAFETY: NULL or live per the contract.
    unsafe { emitter.as_ref() }.ok_or_else(|| ArgError(SioResult::SioErrNull, "`emitter` is NULL".into()))
}

/// Creates an emitter for namespace `nsp` (e.g. `"/"`; a missing leading `/` is added) of the
/// cluster using channel prefix `key` (NULL or `""`: `"socket.io"`) on the Redis at `url`
/// (`redis://[user:password@]host:port[/db]`, `rediss://...`, a Sentinel deployment
/// `redis+sentinel://host:port[,host:port]/<primary name>` or a Redis Cluster
/// `redis+cluster://host:port[,host:port]`; `rediss+sentinel://` and `rediss+cluster://` with TLS). Connecting happens in the background; messages
/// emitted before Redis answers are queued. On success `*out` owns a handle to release with
/// [`sio_emitter_free`].
///
/// # Safety
/// `url`, `nsp` (and `key` unless NULL) are valid C strings; `out` is a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_new(url: *const c_char, key: *const c_char, nsp: *const c_char, out: *mut *mut SioEmitter) -> SioResult {
    // SAFETY: the same contract, with the default limits.
    unsafe { sio_emitter_new_with_limits(url, key, nsp, std::ptr::null(), out) }
}

/// [`sio_emitter_new`] with `limits` (NULL, or fields left 0: the defaults): an emitter uses
/// the publish queue's (`max_queued_publishes`, `max_queued_bytes`) and `max_message_bytes`
/// (a larger message fails with `SIO_ERR_TOO_LARGE`, since the nodes would drop it).
///
/// # Safety
/// As [`sio_emitter_new`]; `limits` is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_new_with_limits(url: *const c_char, key: *const c_char, nsp: *const c_char, limits: *const SioLimits, out: *mut *mut SioEmitter) -> SioResult {
    let options = SioEmitterOptions { key, limits, parser: SIO_PARSER_NOTEPACK };
    // SAFETY: the same contract, the arguments gathered in `options`.
    unsafe { sio_emitter_new_with_options(url, nsp, &options, out) }
}

/// The options of `@socket.io/redis-emitter` for [`sio_emitter_new_with_options`]. Zero fields
/// (and NULL pointers) take the defaults.
#[repr(C)]
pub struct SioEmitterOptions {
    /// Channel prefix (`key`); NULL or `""`: `"socket.io"`.
    pub key: *const c_char,
    /// Limits (NULL: the defaults), as for [`sio_emitter_new_with_limits`].
    pub limits: *const SioLimits,
    /// The nodes' `parser`: `SIO_PARSER_NOTEPACK` (0, the default) or `SIO_PARSER_JSON`
    /// (broadcasts published as JSON text).
    pub parser: u32,
}

/// [`sio_emitter_new`] with every option of the official emitter (`options`: NULL for the
/// defaults; see [`SioEmitterOptions`]).
///
/// # Safety
/// `url` and `nsp` are valid C strings; `options` is NULL or valid for the call, its `key` NULL or
/// a valid C string, its `limits` NULL or valid; `out` is a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_new_with_options(url: *const c_char, nsp: *const c_char, options: *const SioEmitterOptions, out: *mut *mut SioEmitter) -> SioResult {
    guard(|| {
        if out.is_null() {
            return Err(ArgError(SioResult::SioErrNull, "`out` is NULL".into()));
        }
        // SAFETY: valid C strings per the contract.
        let (url, nsp) = unsafe { (arg_str(url, "url")?, arg_str(nsp, "nsp")?) };
        // SAFETY: NULL or valid per the contract.
        let options = unsafe { options.as_ref() };
        let key = options.map_or(std::ptr::null(), |o| o.key);
        // SAFETY: as above; NULL means the default key.
        let key = unsafe { optional_str_arg(key, "key") }?;
        let json = json_parser_arg(options.map_or(SIO_PARSER_NOTEPACK, |o| o.parser))?;
        let mut config = RedisConfig::from_url(url)?;
        // SAFETY: NULL or valid per the contract.
        let limits = unsafe { SioLimits::apply(options.map_or(std::ptr::null(), |o| o.limits), &mut config) }?;
        let handle = open(&config, |transport| AnyEmitter::Classic(Emitter::new(transport, key, nsp).with_limits(limits).with_json_parser(json)))?;
        // SAFETY: `out` is valid per the contract.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Creates an emitter for namespace `nsp` of a cluster of sharded adapters
/// (`createShardedAdapter`, official or sioadapter's) with channel prefix `channel_prefix` (NULL or
/// `""`: `"socket.io"`) and subscription mode `subscription_mode` (`SIO_SUBSCRIPTION_*`, the
/// nodes' `subscriptionMode`), on a Redis Cluster (`redis+cluster://...`) or a single Redis ≥ 7
/// at `url`; `limits` as for [`sio_emitter_new_with_limits`]. Every `sio_emitter_*` function
/// works on it: it publishes socket.io's ClusterAdapter messages from uid `"emitter"` with
/// SPUBLISH, a broadcast to a single room on the room's channel where the subscription mode
/// gives rooms one. On success `*out` owns a handle to release with [`sio_emitter_free`].
///
/// # Safety
/// `url`, `nsp` (and `channel_prefix` unless NULL) are valid C strings; `limits` is NULL or
/// valid for the call; `out` is a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_new_sharded(
    url: *const c_char,
    channel_prefix: *const c_char,
    nsp: *const c_char,
    subscription_mode: u32,
    limits: *const SioLimits,
    out: *mut *mut SioEmitter,
) -> SioResult {
    guard(|| {
        if out.is_null() {
            return Err(ArgError(SioResult::SioErrNull, "`out` is NULL".into()));
        }
        // SAFETY: valid C strings per the contract.
        let (url, nsp) = unsafe { (arg_str(url, "url")?, arg_str(nsp, "nsp")?) };
        // SAFETY: NULL or a valid C string per the contract.
        let prefix = unsafe { channel_prefix_arg(channel_prefix) }?;
        let mode = subscription_mode_arg(subscription_mode)?;
        let mut config = RedisConfig::from_url(url)?;
        config.sharded = true;
        // SAFETY: NULL or valid per the contract.
        let limits = unsafe { SioLimits::apply(limits, &mut config) }?;
        let handle = open(&config, |transport| AnyEmitter::Sharded(ShardedEmitter::new(transport, prefix, nsp, mode).with_limits(limits)))?;
        // SAFETY: `out` is valid per the contract.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// The [`SubscriptionMode`] of a `SIO_SUBSCRIPTION_*` value.
pub(crate) fn subscription_mode_arg(value: u32) -> Result<SubscriptionMode, ArgError> {
    match value {
        SIO_SUBSCRIPTION_STATIC => Ok(SubscriptionMode::Static),
        SIO_SUBSCRIPTION_DYNAMIC => Ok(SubscriptionMode::Dynamic),
        SIO_SUBSCRIPTION_DYNAMIC_PRIVATE => Ok(SubscriptionMode::DynamicPrivate),
        other => Err(ArgError(SioResult::SioErrInvalid, format!("`subscription_mode` {other} is not a SIO_SUBSCRIPTION_* value"))),
    }
}

/// The channel prefix of a sharded handle: `prefix` (a C string or NULL), `"socket.io"` when NULL
/// or empty.
///
/// # Safety
/// `prefix` is NULL or a valid C string.
pub(crate) unsafe fn channel_prefix_arg<'a>(prefix: *const c_char) -> Result<&'a str, ArgError> {
    // SAFETY: NULL or valid per the contract.
    let prefix = unsafe { optional_str_arg(prefix, "channel_prefix") }?;
    Ok(if prefix.is_empty() { crate::sharded::DEFAULT_CHANNEL_PREFIX } else { prefix })
}

/// Connects (in the background) a transport for `config` on a runtime of the handle's own, and
/// makes the emitter with `make`.
fn open(config: &RedisConfig, make: impl FnOnce(Arc<dyn Transport>) -> AnyEmitter + Send) -> Result<Box<SioEmitter>, ArgError> {
    off_runtime(|| -> Result<Box<SioEmitter>, ArgError> {
        let runtime = new_runtime()?;
        let transport = Arc::new(runtime.block_on(async { RedisTransport::connect(config) })?);
        let emitter = make(transport.clone());
        Ok(Box::new(SioEmitter { runtime, transport, emitter }))
    })
}

/// Emits `event` with the arguments in `args_json` (a JSON array, e.g. `["hello", 1]`) to the
/// sockets of `target` (NULL: everybody) on every node. Queued: returns before Redis has it.
///
/// # Safety
/// `emitter` is a live handle; `event` and `args_json` are valid C strings; `target` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_emit(emitter: *const SioEmitter, event: *const c_char, args_json: *const c_char, target: *const SioTarget) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (emitter, event, args, target) = unsafe { (handle(emitter)?, arg_str(event, "event")?, arg_str(args_json, "args_json")?, parse_target(target)?) };
        let serde_json::Value::Array(items) = json_args(args, "args_json")? else { unreachable!("checked to be an array") };
        let args = items.iter().map(msgpack::from_json).collect();
        Ok(emitter.emitter.emit(event, args, &target.options())?)
    })
}

/// Like [`sio_emitter_emit`], with the arguments as msgpack: `args` holds one msgpack array
/// (`args_len` bytes), so binary (bin) arguments reach clients as binary.
///
/// # Safety
/// `emitter` is a live handle; `event` is a valid C string; `args` holds `args_len` bytes;
/// `target` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_emit_msgpack(emitter: *const SioEmitter, event: *const c_char, args: *const u8, args_len: usize, target: *const SioTarget) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (emitter, event, bytes, target) = unsafe { (handle(emitter)?, arg_str(event, "event")?, arg_bytes(args, args_len, "args")?, parse_target(target)?) };
        let args = match msgpack::from_slice(bytes) {
            Ok(Value::Array(items)) => items,
            _ => return Err(ArgError(SioResult::SioErrInvalid, "`args` must be one msgpack array".into())),
        };
        Ok(emitter.emitter.emit(event, args, &target.options())?)
    })
}

/// Makes the sockets of `target` join the `rooms_len` rooms in `rooms`, on every node
/// (`socketsJoin`).
///
/// # Safety
/// `emitter` is a live handle; `target` is NULL or valid; `rooms` holds `rooms_len` C strings.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_sockets_join(emitter: *const SioEmitter, target: *const SioTarget, rooms: *const *const c_char, rooms_len: usize) -> SioResult {
    // SAFETY: per the contract, passed on.
    unsafe { change_rooms(emitter, target, rooms, rooms_len, |commands, targets, rooms| commands.sockets_join(targets, rooms)) }
}

/// Makes the sockets of `target` leave the `rooms_len` rooms in `rooms`, on every node
/// (`socketsLeave`).
///
/// # Safety
/// `emitter` is a live handle; `target` is NULL or valid; `rooms` holds `rooms_len` C strings.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_sockets_leave(emitter: *const SioEmitter, target: *const SioTarget, rooms: *const *const c_char, rooms_len: usize) -> SioResult {
    // SAFETY: per the contract, passed on.
    unsafe { change_rooms(emitter, target, rooms, rooms_len, |commands, targets, rooms| commands.sockets_leave(targets, rooms)) }
}

/// `socketsJoin` or `socketsLeave` (`op`) with C arguments.
///
/// # Safety
/// As [`sio_emitter_sockets_join`].
unsafe fn change_rooms(
    emitter: *const SioEmitter,
    target: *const SioTarget,
    rooms: *const *const c_char,
    rooms_len: usize,
    op: fn(&dyn ClusterCommands, &Targets<'_>, &RawValue) -> Result<(), crate::Error>,
) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (emitter, target, rooms) = unsafe { (handle(emitter)?, parse_target(target)?, arg_str_array(rooms, rooms_len, "rooms")?) };
        let (targets_rooms, targets_except) = target.json()?;
        let targets = Targets { rooms: &targets_rooms, except: &targets_except };
        let rooms = rooms_json(&rooms)?;
        Ok(op(emitter.emitter.commands(), &targets, &rooms)?)
    })
}

/// Disconnects the sockets of `target` on every node (`close`: also close the underlying
/// connection).
///
/// # Safety
/// `emitter` is a live handle; `target` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_disconnect_sockets(emitter: *const SioEmitter, target: *const SioTarget, close: bool) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (emitter, target) = unsafe { (handle(emitter)?, parse_target(target)?) };
        let (rooms, except) = target.json()?;
        Ok(emitter.emitter.commands().disconnect_sockets(&Targets { rooms: &rooms, except: &except }, close)?)
    })
}

/// Emits `event` with `args_json` (a JSON array) to the server-side listeners of every node
/// (`serverSideEmit`; acknowledgements are not supported, as in the official emitter).
///
/// # Safety
/// `emitter` is a live handle; `event` and `args_json` are valid C strings.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_server_side_emit(emitter: *const SioEmitter, event: *const c_char, args_json: *const c_char) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (emitter, event, args) = unsafe { (handle(emitter)?, arg_str(event, "event")?, arg_str(args_json, "args_json")?) };
        let serde_json::Value::Array(mut items) = json_args(args, "args_json")? else { unreachable!("checked to be an array") };
        items.insert(0, serde_json::Value::from(event));
        let data = raw_json(serde_json::Value::Array(items).to_string(), "args_json").map_err(|e| ArgError::from(crate::Error::from(e)))?;
        Ok(emitter.emitter.commands().server_side_emit(&data)?)
    })
}

/// Waits until everything emitted so far has been handed to Redis, or `timeout_ms` passed
/// (then `SIO_ERR_TIMEOUT`).
///
/// # Safety
/// `emitter` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_flush(emitter: *const SioEmitter, timeout_ms: u32) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let emitter = unsafe { handle(emitter)? };
        let within = Duration::from_millis(u64::from(timeout_ms));
        if off_runtime(|| emitter.runtime.block_on(emitter.transport.flushed(within))) {
            return Ok(());
        }
        let left = emitter.transport.stats().pending.load(std::sync::atomic::Ordering::Acquire);
        Err(ArgError(SioResult::SioErrTimeout, format!("{left} messages still queued (is Redis reachable?)")))
    })
}

/// Sends what is queued (for up to 2 s), closes the connection, stops the handle's thread and
/// frees the handle. NULL is ignored. The handle must not be used afterwards.
///
/// # Safety
/// `emitter` is NULL or a live handle from [`sio_emitter_new`], not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn sio_emitter_free(emitter: *mut SioEmitter) {
    guard(|| {
        if emitter.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle created by `Box::into_raw`, released exactly once here.
        let handle = unsafe { Box::from_raw(emitter) };
        off_runtime(move || {
            let SioEmitter { runtime, transport, emitter } = *handle;
            runtime.block_on(transport.close());
            drop(emitter);
            drop(transport);
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        Ok(())
    });
}
