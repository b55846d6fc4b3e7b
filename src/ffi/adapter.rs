//! `sio_adapter`: a C/C++ server that hosts its own sockets takes part in a socket.io cluster,
//! of classic adapters (`sio_adapter_new*`) or of sharded ones (`sio_adapter_new_sharded`).
//! It receives other nodes' broadcasts and requests through callbacks, answers requests with
//! `sio_adapter_respond`, and asks the cluster (allRooms, fetchSockets, serverSideEmit with ack,
//! serverCount) with completion callbacks: the same calls and callbacks for both protocols.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use super::emitter::{channel_prefix_arg, parse_target, subscription_mode_arg, SioTarget, SIO_SUBSCRIPTION_DYNAMIC};
use super::host::{CallbackThread, Completion, SioCompletion, SioHostCallbacks};
use super::{arg_str, guard, json_parser_arg, new_runtime, off_runtime, optional_str_arg, ArgError, HandleToken, SioLimits, SioResult, SIO_PARSER_NOTEPACK};
use crate::adapter::{Adapter, Reply};
use crate::config::{AdapterConfig, RedisConfig};
use crate::node::ClusterNode;
use crate::protocol::request::{raw_json, RequestType, Targets};
use crate::protocol::{msgpack, Packet};
use crate::transport::redis::RedisTransport;
use crate::transport::Transport;
use crate::ShardedNode;

/// A namespace of a C/C++ socket.io server in the cluster. Create with [`sio_adapter_new`],
/// release with [`sio_adapter_free`].
pub struct SioAdapter {
    token: Arc<HandleToken>,
    runtime: tokio::runtime::Runtime,
    transport: Arc<RedisTransport>,
    adapter: ClusterNode,
    uid: CString,
    /// Runs the host's callbacks and completions.
    callbacks: CallbackThread,
}

impl SioAdapter {
    /// Runs `work` on the handle's runtime with a completion of `done` to settle; `done` runs on
    /// the callback thread.
    fn spawn<F>(&self, done: SioCompletion, user_data: *mut c_void, work: impl FnOnce(ClusterNode, Completion) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(work(self.adapter.clone(), self.callbacks.completion(done, user_data)));
    }
}

/// # Safety
/// `adapter` is NULL or a live handle from [`sio_adapter_new`].
unsafe fn handle<'a>(adapter: *const SioAdapter) -> Result<&'a SioAdapter, ArgError> {
    // SAFETY: NULL or live per the contract.
    unsafe { adapter.as_ref() }.ok_or_else(|| ArgError(SioResult::SioErrNull, "`adapter` is NULL".into()))
}

fn invalid(what: &str) -> ArgError {
    ArgError(SioResult::SioErrInvalid, what.to_owned())
}

fn json_arg(text: &str, name: &'static str) -> Result<Box<serde_json::value::RawValue>, ArgError> {
    raw_json(text.to_owned(), name).map_err(|_| invalid(&format!("`{name}` is not valid JSON")))
}

/// Joins the cluster of channel prefix `key` (NULL or `""`: `"socket.io"`) on the Redis at `url`
/// (any URL form of [`sio_emitter_new`](super::emitter::sio_emitter_new)) as a node serving namespace `nsp`, with `requests_timeout_ms` for cluster requests (0: 5000).
/// `callbacks` is copied; its function pointers and `user_data` must stay usable from the
/// handle's background thread until [`sio_adapter_free`] returns. Connecting happens in the
/// background (`on_event` reports ready or errors). On success `*out` owns the handle.
///
/// Report the local rooms (socket ids included) with [`sio_adapter_room_created`] /
/// [`sio_adapter_room_deleted`] so that broadcasts nobody local can receive are skipped; a host
/// that never reports rooms receives every broadcast of the namespace. A handle that was told
/// rooms answers other nodes' allRooms requests itself from them: its host no longer receives
/// `SIO_REQUEST_KIND_ALL_ROOMS`.
///
/// # Safety
/// `url`, `nsp` (and `key` unless NULL) are valid C strings; `callbacks` and `out` are valid.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_new(
    url: *const c_char,
    key: *const c_char,
    nsp: *const c_char,
    requests_timeout_ms: u32,
    callbacks: *const SioHostCallbacks,
    out: *mut *mut SioAdapter,
) -> SioResult {
    // SAFETY: the same contract, with the default limits.
    unsafe { sio_adapter_new_with_limits(url, key, nsp, requests_timeout_ms, std::ptr::null(), callbacks, out) }
}

/// [`sio_adapter_new`] with `limits` (NULL, or fields left 0: the defaults). A limit out of
/// range (`max_message_depth` above 1024) gives `SIO_ERR_INVALID`.
///
/// # Safety
/// As [`sio_adapter_new`]; `limits` is NULL or valid for the call.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_new_with_limits(
    url: *const c_char,
    key: *const c_char,
    nsp: *const c_char,
    requests_timeout_ms: u32,
    limits: *const SioLimits,
    callbacks: *const SioHostCallbacks,
    out: *mut *mut SioAdapter,
) -> SioResult {
    let options = SioAdapterOptions { key, requests_timeout_ms, publish_on_specific_response_channel: false, per_room_subscriptions: false, limits, parser: SIO_PARSER_NOTEPACK };
    // SAFETY: the same contract, the arguments gathered in `options`.
    unsafe { sio_adapter_new_with_options(url, nsp, &options, callbacks, out) }
}

/// The options of Node's `createAdapter` for [`sio_adapter_new_with_options`]. Zero fields (and
/// NULL pointers) take the defaults.
#[repr(C)]
pub struct SioAdapterOptions {
    /// Channel prefix (`key`); NULL or `""`: `"socket.io"`.
    pub key: *const c_char,
    /// How long cluster requests wait, in ms (`requestsTimeout`); 0: 5000.
    pub requests_timeout_ms: u32,
    /// Answer requests on the requester's own response channel
    /// (`publishOnSpecificResponseChannel`).
    pub publish_on_specific_response_channel: bool,
    /// SUBSCRIBE to the main broadcast channel and to one channel per room reported with
    /// [`sio_adapter_room_created`] instead of PSUBSCRIBE to every broadcast of the namespace
    /// (`perRoomSubscriptions`): Redis then sends this node only the single-room broadcasts it
    /// can deliver. Report every local room, socket ids included.
    pub per_room_subscriptions: bool,
    /// Limits (NULL: the defaults), as for [`sio_adapter_new_with_limits`].
    pub limits: *const SioLimits,
    /// The cluster's `parser`: `SIO_PARSER_NOTEPACK` (0, the official default) or
    /// `SIO_PARSER_JSON`. The callbacks and functions work in msgpack either way.
    pub parser: u32,
}

/// [`sio_adapter_new`] with every option of Node's `createAdapter` (`options`: NULL for the
/// defaults; see [`SioAdapterOptions`]).
///
/// # Safety
/// `url` and `nsp` are valid C strings; `options` is NULL or valid for the call, its `key` NULL or
/// a valid C string, its `limits` NULL or valid; `callbacks` and `out` are valid.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_new_with_options(
    url: *const c_char,
    nsp: *const c_char,
    options: *const SioAdapterOptions,
    callbacks: *const SioHostCallbacks,
    out: *mut *mut SioAdapter,
) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (url, nsp) = unsafe { new_args(url, nsp, callbacks, out) }?;
        // SAFETY: NULL or valid per the contract.
        let options = unsafe { options.as_ref() };
        let key = options.map_or(std::ptr::null(), |o| o.key);
        // SAFETY: as above; NULL means the default key.
        let key = unsafe { optional_str_arg(key, "key") }?;
        let mut redis = RedisConfig::from_url(url)?;
        // SAFETY: NULL or valid per the contract.
        let limits = unsafe { SioLimits::apply(options.map_or(std::ptr::null(), |o| o.limits), &mut redis) }?;
        let config = AdapterConfig::default()
            .with_key(key)
            .with_requests_timeout(Duration::from_millis(u64::from(options.map_or(0, |o| o.requests_timeout_ms))))
            .with_specific_response_channel(options.is_some_and(|o| o.publish_on_specific_response_channel))
            .with_per_room_subscriptions(options.is_some_and(|o| o.per_room_subscriptions))
            .with_json_parser(json_parser_arg(options.map_or(SIO_PARSER_NOTEPACK, |o| o.parser))?)
            .with_limits(limits)?;
        // SAFETY: valid per the contract.
        unsafe { open(&redis, callbacks, &config, out, |transport, host| ClusterNode::Classic(Adapter::new(nsp, &config, transport, host))) }
    })
}

/// The arguments every constructor of an adapter handle checks: `callbacks` and `out` not NULL,
/// `url` and `nsp` (which must start with `/`) as strings.
///
/// # Safety
/// `url` and `nsp` are NULL or valid C strings.
unsafe fn new_args<'a>(url: *const c_char, nsp: *const c_char, callbacks: *const SioHostCallbacks, out: *mut *mut SioAdapter) -> Result<(&'a str, &'a str), ArgError> {
    if out.is_null() || callbacks.is_null() {
        return Err(ArgError(SioResult::SioErrNull, "`callbacks` or `out` is NULL".into()));
    }
    // SAFETY: NULL or valid C strings per the contract.
    let (url, nsp) = unsafe { (arg_str(url, "url")?, arg_str(nsp, "nsp")?) };
    if !nsp.starts_with('/') {
        return Err(invalid("`nsp` must start with '/'"));
    }
    Ok((url, nsp))
}

/// Starts a handle: its callback thread (receive buffer of `config.limits`), its runtime, a
/// transport for `redis`, and the engine `make` builds on them; `*out` owns it on success.
///
/// # Safety
/// `callbacks` and `out` are valid (checked non-NULL by the caller).
unsafe fn open(
    redis: &RedisConfig,
    callbacks: *const SioHostCallbacks,
    config: &AdapterConfig,
    out: *mut *mut SioAdapter,
    make: impl FnOnce(Arc<dyn Transport>, Arc<dyn crate::Host>) -> ClusterNode + Send,
) -> Result<(), ArgError> {
    // SAFETY: valid per the contract; the struct is plain data, copied here.
    let callbacks = unsafe { std::ptr::read(callbacks) };
    let token = Arc::new(HandleToken::default());
    // Dropped on failure below, the thread ends by itself.
    let callbacks = CallbackThread::start(callbacks, token.clone(), config.limits.max_receive_buffer_bytes)?;
    let handle = off_runtime(move || -> Result<Box<SioAdapter>, ArgError> {
        let runtime = new_runtime()?;
        let transport = Arc::new(runtime.block_on(async { RedisTransport::connect(redis) })?);
        let shared: Arc<dyn Transport> = transport.clone();
        let adapter = runtime.block_on(async { make(shared, callbacks.host()) });
        let uid = CString::new(adapter.uid()).unwrap_or_default();
        Ok(Box::new(SioAdapter { token, runtime, transport, adapter, uid, callbacks }))
    })?;
    // SAFETY: `out` is valid per the contract.
    unsafe { *out = Box::into_raw(handle) };
    Ok(())
}

/// The options of Node's `createShardedAdapter` for [`sio_adapter_new_sharded`]. Zero fields
/// (and NULL pointers) take the defaults.
#[repr(C)]
pub struct SioShardedOptions {
    /// Channel prefix (`channelPrefix`); NULL or `""`: `"socket.io"`.
    pub channel_prefix: *const c_char,
    /// `subscriptionMode`, a `SIO_SUBSCRIPTION_*` value; it must be the cluster's. 0 is
    /// `SIO_SUBSCRIPTION_STATIC`: pass `SIO_SUBSCRIPTION_DYNAMIC` for the official default.
    pub subscription_mode: u32,
    /// How long fetchSockets and serverSideEmit with ack wait, in ms; 0: 5000 (the official
    /// sharded adapter's fixed timeout).
    pub requests_timeout_ms: u32,
    /// Limits (NULL: the defaults), as for [`sio_adapter_new_with_limits`].
    pub limits: *const SioLimits,
}

/// Joins a cluster of sharded adapters (`createShardedAdapter`, official or sioadapter's) as a
/// node serving namespace `nsp`, on a Redis Cluster (`redis+cluster://...`) or a single Redis ≥ 7
/// at `url`, with `options` (NULL: the defaults, see [`SioShardedOptions`]). The handle speaks
/// socket.io's ClusterAdapter protocol (SSUBSCRIBE, SPUBLISH) and is used exactly as one of
/// [`sio_adapter_new`]: the same callbacks receive broadcasts (`[uid, packet, opts]`) and
/// requests (the classic request JSON: `SIO_REQUEST_KIND_REMOTE_JOIN`, `_REMOTE_LEAVE`,
/// `_REMOTE_DISCONNECT`, `_REMOTE_FETCH`, `_SERVER_SIDE_EMIT`), answered with
/// [`sio_adapter_respond`]; the same functions broadcast and ask the cluster. The sharded
/// protocol has no allRooms request: [`sio_adapter_all_rooms`] gathers the rooms from a
/// fetchSockets of every socket.
///
/// In the dynamic modes, report the local rooms (socket ids included) with
/// [`sio_adapter_room_created`] / [`sio_adapter_room_deleted`]: their channels are subscribed
/// as the mode says, and single-room broadcasts for them arrive only through those.
///
/// # Safety
/// As [`sio_adapter_new_with_options`], with `options` NULL or valid for the call, its
/// `channel_prefix` NULL or a valid C string and its `limits` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_new_sharded(
    url: *const c_char,
    nsp: *const c_char,
    options: *const SioShardedOptions,
    callbacks: *const SioHostCallbacks,
    out: *mut *mut SioAdapter,
) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (url, nsp) = unsafe { new_args(url, nsp, callbacks, out) }?;
        // SAFETY: NULL or valid per the contract.
        let options = unsafe { options.as_ref() };
        // SAFETY: NULL or a valid C string per the contract.
        let prefix = unsafe { channel_prefix_arg(options.map_or(std::ptr::null(), |o| o.channel_prefix)) }?;
        let mode = subscription_mode_arg(options.map_or(SIO_SUBSCRIPTION_DYNAMIC, |o| o.subscription_mode))?;
        let mut redis = RedisConfig::from_url(url)?;
        redis.sharded = true;
        // SAFETY: NULL or valid per the contract.
        let limits = unsafe { SioLimits::apply(options.map_or(std::ptr::null(), |o| o.limits), &mut redis) }?;
        let config =
            AdapterConfig::default().with_key(prefix).with_requests_timeout(Duration::from_millis(u64::from(options.map_or(0, |o| o.requests_timeout_ms)))).with_limits(limits)?;
        // SAFETY: valid per the contract.
        unsafe { open(&redis, callbacks, &config, out, |transport, host| ClusterNode::Sharded(ShardedNode::new(nsp, &config, mode, transport, host))) }
    })
}

/// This node's uid in the namespace (6 characters). Owned by the handle, valid until
/// [`sio_adapter_free`]; NULL if `adapter` is NULL.
///
/// # Safety
/// `adapter` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_uid(adapter: *const SioAdapter) -> *const c_char {
    // SAFETY: NULL or live per the contract.
    unsafe { adapter.as_ref() }.map_or(std::ptr::null(), |a| a.uid.as_ptr())
}

/// Counters of an adapter handle since its creation.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SioStats {
    /// Messages handed to the publish queue.
    pub published: u64,
    /// Messages from other nodes handed to the host callbacks.
    pub delivered: u64,
    /// Received messages dropped as malformed.
    pub malformed: u64,
    /// Messages dropped for being over `max_message_bytes` (received, or this node's own).
    pub too_large: u64,
    /// Received messages dropped for being over `max_message_values` or `max_message_depth`.
    pub too_complex: u64,
    /// Broadcasts skipped because no local socket could receive them.
    pub skipped: u64,
    /// Requests of this node waiting for answers.
    pub pending_requests: u64,
    /// Messages Redis confirmed.
    pub redis_published: u64,
    /// Messages dropped by the publish queue (full, closed) or refused by Redis for good.
    pub redis_dropped: u64,
    /// Messages sent without a confirmation from Redis (maybe delivered, never sent again).
    pub redis_unconfirmed: u64,
    /// Messages waiting in the publish queue.
    pub redis_pending: u64,
    /// Bytes waiting in the publish queue.
    pub redis_pending_bytes: u64,
    /// Received messages dropped because the callbacks did not keep up: the receive buffer
    /// (`sio_limits.max_receive_buffer_bytes`) was full.
    pub dropped: u64,
}

/// Fills `*out` with the handle's counters.
///
/// # Safety
/// `adapter` is a live handle; `out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_stats(adapter: *const SioAdapter, out: *mut SioStats) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let adapter = unsafe { handle(adapter) }?;
        if out.is_null() {
            return Err(ArgError(SioResult::SioErrNull, "`out` is NULL".into()));
        }
        let (s, t) = (adapter.adapter.stats(), adapter.transport.stats());
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        let stats = SioStats {
            published: s.published,
            delivered: s.delivered,
            malformed: s.malformed,
            too_large: s.too_large,
            too_complex: s.too_complex,
            skipped: s.skipped,
            pending_requests: s.pending_requests,
            redis_published: load(&t.published),
            redis_dropped: load(&t.dropped),
            redis_unconfirmed: load(&t.unconfirmed),
            redis_pending: load(&t.pending),
            redis_pending_bytes: load(&t.pending_bytes),
            dropped: adapter.callbacks.dropped(),
        };
        // SAFETY: valid for writing per the contract.
        unsafe { out.write(stats) };
        Ok(())
    })
}

/// Reports that a local socket is now in `room` (socket ids are rooms too).
///
/// # Safety
/// `adapter` is a live handle; `room` is a valid C string.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_room_created(adapter: *const SioAdapter, room: *const c_char) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, room) = unsafe { (handle(adapter)?, arg_str(room, "room")?) };
        a.adapter.room_created(room);
        Ok(())
    })
}

/// Reports that the last local socket left `room`.
///
/// # Safety
/// `adapter` is a live handle; `room` is a valid C string.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_room_deleted(adapter: *const SioAdapter, room: *const c_char) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, room) = unsafe { (handle(adapter)?, arg_str(room, "room")?) };
        a.adapter.room_deleted(room);
        Ok(())
    })
}

/// Broadcasts `event` with `args_json` (a JSON array) to the sockets of `target` (NULL:
/// everybody) on the other nodes. Delivering to the local sockets is the host's business.
///
/// # Safety
/// `adapter` is a live handle; `event` and `args_json` are valid C strings; `target` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_broadcast(adapter: *const SioAdapter, event: *const c_char, args_json: *const c_char, target: *const SioTarget) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, event, args, target) = unsafe { (handle(adapter)?, arg_str(event, "event")?, arg_str(args_json, "args_json")?, parse_target(target)?) };
        let args = match serde_json::from_str::<serde_json::Value>(args) {
            Ok(serde_json::Value::Array(items)) => items.iter().map(msgpack::from_json).collect::<Vec<_>>(),
            _ => return Err(invalid("`args_json` must be a JSON array")),
        };
        Ok(a.adapter.broadcast(&Packet::event(a.adapter.namespace(), event, args), &target.options())?)
    })
}

/// Answers request `request_id` of type `kind` from node `requester` (NULL when the request
/// had no uid): `json` is a JSON array of rooms (ALL_ROOMS), socket ids (SOCKETS) or socket
/// details `{id, handshake, rooms, data}` (REMOTE_FETCH), the ack argument (SERVER_SIDE_EMIT;
/// NULL for none), or NULL for a legacy join/leave/disconnect of a local socket.
///
/// # Safety
/// `adapter` is a live handle; `request_id` is a valid C string; `requester` and `json` are
/// NULL or valid C strings.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_respond(adapter: *const SioAdapter, kind: u32, request_id: *const c_char, requester: *const c_char, json: *const c_char) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, request_id) = unsafe { (handle(adapter)?, arg_str(request_id, "request_id")?) };
        // SAFETY: NULL or valid per the contract.
        let requester = if requester.is_null() { None } else { Some(unsafe { arg_str(requester, "requester") }?) };
        // SAFETY: as above.
        let json = if json.is_null() { None } else { Some(json_arg(unsafe { arg_str(json, "json") }?, "json")?) };
        let kind = RequestType::from_wire(i64::from(kind)).ok_or_else(|| invalid("unknown request type"))?;
        let reply = match kind {
            RequestType::ServerSideEmit => Reply::ServerSideEmit(json),
            RequestType::Broadcast | RequestType::BroadcastClientCount | RequestType::BroadcastAck => {
                return Err(invalid("broadcasts with ack are not answered through this function"))
            }
            _ => Reply::List(json),
        };
        Ok(a.adapter.respond(kind, request_id, requester, reply)?)
    })
}

/// Every room of every other node; `done` gets a JSON array (add the local rooms yourself). The
/// sharded protocol has no allRooms request: its handles gather the rooms of a fetchSockets of
/// every socket (socket ids included, as the classic answer).
///
/// # Safety
/// `adapter` is a live handle; `done` is NULL or a valid function; `user_data` may be used on
/// the handle's thread, where `done` runs exactly once.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_all_rooms(adapter: *const SioAdapter, done: SioCompletion, user_data: *mut c_void) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let a = unsafe { handle(adapter)? };
        a.spawn(done, user_data, |engine, completion| async move { completion.outcome(engine.all_rooms().await) });
        Ok(())
    })
}

/// Details `{id, handshake, rooms, data}` of the sockets of `target` on every other node;
/// `timeout_ms` 0 uses the handle's requests timeout.
///
/// # Safety
/// As [`sio_adapter_all_rooms`]; `target` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_fetch_sockets(
    adapter: *const SioAdapter,
    target: *const SioTarget,
    timeout_ms: u32,
    done: SioCompletion,
    user_data: *mut c_void,
) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, target) = unsafe { (handle(adapter)?, parse_target(target)?) };
        let (rooms, except) = target.json()?;
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        a.spawn(done, user_data, |engine, completion| async move { completion.outcome(engine.fetch_sockets(&Targets { rooms: &rooms, except: &except }, timeout).await) });
        Ok(())
    })
}

/// Emits `event` with `args_json` (a JSON array) to the server-side listeners of every other
/// node. With `done` (non-NULL) each node acknowledges and `done` gets the JSON array of their
/// answers (on timeout: `SIO_ERR_TIMEOUT` with the answers received).
///
/// # Safety
/// As [`sio_adapter_all_rooms`]; `event` and `args_json` are valid C strings.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_server_side_emit(
    adapter: *const SioAdapter,
    event: *const c_char,
    args_json: *const c_char,
    done: SioCompletion,
    user_data: *mut c_void,
) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let (a, event, args) = unsafe { (handle(adapter)?, arg_str(event, "event")?, arg_str(args_json, "args_json")?) };
        let mut items = match serde_json::from_str::<serde_json::Value>(args) {
            Ok(serde_json::Value::Array(items)) => items,
            _ => return Err(invalid("`args_json` must be a JSON array")),
        };
        items.insert(0, event.into());
        let data = json_arg(&serde_json::Value::Array(items).to_string(), "args_json")?;
        if done.is_none() {
            return Ok(a.adapter.server_side_emit(&data)?);
        }
        a.spawn(done, user_data, |engine, completion| async move { completion.outcome(engine.server_side_emit_with_ack(&data).await) });
        Ok(())
    })
}

/// The number of nodes serving the namespace (this one included); `done` gets it as JSON text.
///
/// # Safety
/// As [`sio_adapter_all_rooms`].
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_server_count(adapter: *const SioAdapter, done: SioCompletion, user_data: *mut c_void) -> SioResult {
    guard(|| {
        // SAFETY: per the contract.
        let a = unsafe { handle(adapter)? };
        a.spawn(done, user_data, |engine, completion| async move { completion.count(engine.server_count().await) });
        Ok(())
    })
}

/// Leaves the cluster: ends pending requests (their completions get `SIO_ERR_CLOSED`, each
/// exactly once, before this returns), unsubscribes (waiting at most 2 s for Redis), sends what
/// is queued (up to 2 s), closes the connections, stops the handle's threads and frees the
/// handle. Received messages still waiting for the callbacks are discarded. No callback runs
/// after it returns. NULL is ignored.
///
/// Called from one of the handle's own callbacks or completions, it returns at once: no host
/// callback of the handle runs any more, and the handle is freed on another thread once the
/// current callback has returned (completions still waiting run once, with `SIO_ERR_CLOSED`,
/// before the handle is gone).
///
/// # Safety
/// `adapter` is NULL or a live handle, not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn sio_adapter_free(adapter: *mut SioAdapter) {
    guard(|| {
        if adapter.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle created by `Box::into_raw`, released exactly once here.
        let handle = unsafe { Box::from_raw(adapter) };
        if handle.token.is_this_thread() {
            // Its own thread cannot wait for itself to stop.
            handle.token.silence();
            std::thread::Builder::new()
                .name("sioadapter-free".into())
                .spawn(move || free_now(*handle))
                .map_err(|e| ArgError(SioResult::SioErrPanic, format!("cannot start a thread to free the handle: {e}")))?;
            return Ok(());
        }
        off_runtime(move || free_now(*handle));
        Ok(())
    });
}

/// Frees `handle` from a thread that may wait for its runtime (see [`sio_adapter_free`]).
fn free_now(handle: SioAdapter) {
    let SioAdapter { token, runtime, transport, adapter, uid, callbacks } = handle;
    runtime.block_on(async {
        let _ = adapter.close().await;
        // Pending requests were ended by close(): let their completions run.
        callbacks.settled(Duration::from_secs(2)).await;
        transport.close().await;
    });
    // No host callback runs after this; completions still settling reach the stopped queue.
    let stopped = callbacks.stop();
    drop((adapter, transport, uid, token));
    // Dropping the runtime waits for its worker thread; the completions of tasks it drops run
    // there, with SIO_ERR_CLOSED, then those that settled meanwhile run here.
    drop(runtime);
    stopped.finish();
}
