//! The napi-rs addon behind the `sioadapter` npm package: a thin layer over the core crate.
//!
//! JS sees three classes. [`Connection`] owns the Redis connections of one `createAdapter(...)`
//! call and is shared by its namespaces. [`Engine`] is one namespace's engine, classic or
//! sharded (one class, two factories): broadcasts go in
//! as synchronous calls carrying bytes that notepack.io already produced (no Promise and no walk
//! of JS objects per message), and broadcasts from other nodes come out in batches: one call
//! with one Buffer holding every message and a `Uint32Array` of their end offsets.
//!
//! Every export catches panics (`catch_unwind`), so a bug surfaces as a JS exception instead
//! of aborting the process; callbacks into JS are weak thread-safe functions, so they never
//! keep the Node process alive. Errors carry the core's code ([`sioadapter::error::ErrorCode`]):
//! thrown ones as `err.code`, those of asynchronous calls as the `code` of the result they
//! resolve to (napi rejects promises with its own codes only). [`protocol`] hands JS every
//! other fact the core owns: defaults, limits, error codes, request types, reserved events.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{within_runtime_if_available, BufferSlice, Function};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsValue;
use napi::{Error as JsError, Result, Status};
use napi_derive::napi;
use sioadapter::adapter::Reply;
use sioadapter::emitter::{AnyEmitter, ClusterCommands, RESERVED_EVENTS};
use sioadapter::error::ErrorCode;
use sioadapter::limits::Limits;
use sioadapter::outbox::Outbox;
use sioadapter::protocol::request::{raw_json, RawJson, RequestType, SocketAction, Targets};
use sioadapter::sharded::{ShardedAdapter, SubscriptionMode, DEFAULT_CHANNEL_PREFIX};
use sioadapter::transport::redis::RedisTransport;
use sioadapter::transport::Transport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, DeliveryKind, Emitter, Host, Outcome, RedisConfig, ShardedEmitter};

/// The error of a synchronous export: thrown with the core's code as `err.code`.
type Code = &'static str;

/// Hides the secrets of every Redis URL in `text` (userinfo passwords, `password`/`pass`/
/// `sentinelPassword` parameters): the one redaction, shared with the JS layer's messages.
#[napi(catch_unwind)]
pub fn redact(text: String) -> String {
    sioadapter::error::redact(&text)
}

/// Remembers the secrets of a Redis URL the user gave, so that [`redact`] hides them in any form.
#[napi(catch_unwind)]
pub fn note_secrets(url: String) {
    sioadapter::error::note_secrets(&url);
}

/// Returns the allocator's free pages to the system (on a thread of the core's): the second half
/// of `releaseMemoryWhenIdle`, after the JS layer's full collection.
#[napi(catch_unwind)]
pub fn release_free_memory() {
    sioadapter::release_free_memory();
}

/// Every limit option, in JS numbers: the defaults [`protocol`] gives, and what JS passes back
/// (checked for form by the JS layer, and again by the core).
#[napi(object)]
pub struct LimitValues {
    /// `maxMessageBytes`.
    pub max_message_bytes: f64,
    /// `maxMessageValues`.
    pub max_message_values: f64,
    /// `maxMessageDepth`.
    pub max_message_depth: f64,
    /// `maxReceiveBufferBytes`.
    pub max_receive_buffer_bytes: f64,
    /// `maxQueuedPublishes`.
    pub max_queued_publishes: f64,
    /// `maxQueuedBytes`.
    pub max_queued_bytes: f64,
}

impl LimitValues {
    /// The core's defaults.
    fn defaults() -> Self {
        let (limits, redis) = (Limits::default(), RedisConfig::default());
        LimitValues {
            max_message_bytes: limits.max_message_bytes as f64,
            max_message_values: limits.max_message_values as f64,
            max_message_depth: limits.max_message_depth as f64,
            max_receive_buffer_bytes: limits.max_receive_buffer_bytes as f64,
            max_queued_publishes: redis.max_queued_publishes as f64,
            max_queued_bytes: redis.max_queued_bytes as f64,
        }
    }

    /// The core's limits of what is received and published, checked.
    fn limits(&self) -> Result<Limits, Code> {
        let limits = Limits {
            max_message_bytes: self.max_message_bytes as usize,
            max_message_values: self.max_message_values as usize,
            max_message_depth: self.max_message_depth as usize,
            max_receive_buffer_bytes: self.max_receive_buffer_bytes as usize,
        };
        limits.validate().map_err(js_error)?;
        Ok(limits)
    }
}

/// The option defaults of both adapters, as the core has them.
#[napi(object)]
pub struct Defaults {
    /// `key`.
    pub key: String,
    /// `requestsTimeout`, in milliseconds.
    pub requests_timeout: f64,
    /// `publishOnSpecificResponseChannel`.
    pub publish_on_specific_response_channel: bool,
    /// `perRoomSubscriptions`.
    pub per_room_subscriptions: bool,
    /// `channelPrefix` (sharded adapter).
    pub channel_prefix: String,
    /// `subscriptionMode` (sharded adapter).
    pub subscription_mode: String,
    /// The Redis used when no client or URL is given.
    pub redis_url: String,
}

/// The facts the core owns and JS reads instead of repeating them.
#[napi(object)]
pub struct Protocol {
    /// Option defaults.
    pub defaults: Defaults,
    /// Limit option defaults.
    pub limits: LimitValues,
    /// The largest `maxMessageDepth` accepted.
    pub max_message_depth_ceiling: f64,
    /// Every error code the core gives (`err.code`).
    pub error_codes: Vec<String>,
    /// Request types on the wire, by their official name (`ALL_ROOMS`: 1, ...).
    pub request_types: HashMap<String, u32>,
    /// Kinds of the records of a batch (`broadcast`, `request`, `ackResponse`,
    /// `clusterMessage`, `clusterResponse`).
    pub record_kinds: HashMap<String, u32>,
    /// Event names the emitter refuses.
    pub reserved_events: Vec<String>,
    /// Values of `subscriptionMode`.
    pub subscription_modes: Vec<String>,
}

/// The facts of [`Protocol`].
#[napi(catch_unwind)]
pub fn protocol() -> Protocol {
    let config = AdapterConfig::default();
    Protocol {
        defaults: Defaults {
            key: config.key.clone(),
            requests_timeout: config.requests_timeout.as_millis() as f64,
            publish_on_specific_response_channel: config.publish_on_specific_response_channel,
            per_room_subscriptions: config.per_room_subscriptions,
            channel_prefix: DEFAULT_CHANNEL_PREFIX.to_owned(),
            subscription_mode: SubscriptionMode::default().as_str().to_owned(),
            redis_url: sioadapter::config::DEFAULT_REDIS_URL.to_owned(),
        },
        limits: LimitValues::defaults(),
        max_message_depth_ceiling: sioadapter::limits::MAX_MESSAGE_DEPTH_CEILING as f64,
        error_codes: ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect(),
        request_types: RequestType::ALL.iter().map(|t| (t.name().to_owned(), *t as u32)).collect(),
        record_kinds: RECORD_KINDS.iter().map(|(name, kind)| ((*name).to_owned(), *kind)).collect(),
        reserved_events: RESERVED_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
        subscription_modes: SubscriptionMode::ALL.iter().map(|m| m.as_str().to_owned()).collect(),
    }
}

/// A core error as a JS error whose `code` is the core's.
fn js_error(err: impl Into<sioadapter::Error>) -> JsError<Code> {
    let err = err.into();
    JsError::new(err.code().as_str(), err.to_string())
}

/// A failure of napi itself (making a callback thread-safe), with the options code: it only
/// happens when the JS layer passes what the export does not take.
fn napi_failure(err: JsError) -> JsError<Code> {
    JsError::new(ErrorCode::Option.as_str(), err.reason.clone())
}

/// `log(level, target, text)`, as JS passes it to [`set_logger`].
type LogCallback<'a> = Function<'a, napi::bindgen_prelude::FnArgs<(u32, String, String)>, ()>;
type LogFn = ThreadsafeFunction<(u32, String, String), (), napi::bindgen_prelude::FnArgs<(u32, String, String)>, Status, false, true>;

/// Sends the core's log events up to `level` (0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace)
/// to `log(level, target, text)` on the JS thread (through a weak thread-safe function: it never
/// keeps the process alive), or stops (`log` absent, or `level` 0). Returns false when another
/// logger owned the addon's events already (it never does: the addon has its own copy of the
/// core).
#[napi(catch_unwind)]
pub fn set_logger(level: u32, log: Option<LogCallback<'_>>) -> Result<bool, Code> {
    let sink: Option<sioadapter::log::Sink> = match log {
        None => None,
        Some(log) => {
            let log: LogFn = log
                .build_threadsafe_function::<(u32, String, String)>()
                .weak::<true>()
                .callee_handled::<false>()
                .build_callback(|ctx: ThreadsafeCallContext<(u32, String, String)>| Ok(ctx.value.into()))
                .map_err(napi_failure)?;
            Some(Arc::new(move |level: sioadapter::log::Level, target: &str, text: &str| {
                log.call((sioadapter::log::rank(&level) as u32, target.to_owned(), text.to_owned()), ThreadsafeFunctionCallMode::NonBlocking);
            }))
        }
    };
    sioadapter::log::set_sink(level as usize, sink).map_err(|e| JsError::new(e.code().as_str(), e.to_string()))
}

/// JSON text from JS (`JSON.stringify` output), checked once.
fn json(text: String, what: &'static str) -> Result<RawJson, Code> {
    raw_json(text, what).map_err(js_error)
}

/// Runs `op` with the targets JS gave as JSON arrays (`rooms`, `except`).
fn with_targets<T>(rooms: String, except: String, op: impl FnOnce(&Targets<'_>) -> std::result::Result<T, sioadapter::Error>) -> Result<T, Code> {
    let (rooms, except) = (json(rooms, "rooms")?, json(except, "except")?);
    op(&Targets { rooms: &rooms, except: &except }).map_err(js_error)
}

/// `socketsJoin` (`join`) or `socketsLeave` through an engine or an emitter; JSON arrays.
fn change_rooms(commands: &(impl ClusterCommands + ?Sized), join: bool, rooms: String, except: String, target_rooms: String) -> Result<(), Code> {
    let target_rooms = json(target_rooms, "rooms")?;
    with_targets(rooms, except, |t| if join { commands.sockets_join(t, &target_rooms) } else { commands.sockets_leave(t, &target_rooms) })
}

/// `serverSideEmit(...)` through an engine or an emitter; `data` is `[event, ...args]` as JSON.
fn server_side_emit(commands: &(impl ClusterCommands + ?Sized), data: String) -> Result<(), Code> {
    commands.server_side_emit(&json(data, "data")?).map_err(js_error)
}

fn request_type(kind: u32) -> Result<RequestType, Code> {
    RequestType::from_wire(i64::from(kind)).ok_or_else(|| js_error(sioadapter::Error::InvalidOption { option: "kind", reason: format!("unknown request type {kind}") }))
}

/// What a cluster request brought back, for the JS layer to turn into results or errors.
#[napi(object)]
pub struct RequestResult {
    /// Every item of every answer, as one JSON array.
    pub items: String,
    /// Answers expected (other nodes).
    pub expected: u32,
    /// Answers received.
    pub received: u32,
    /// Set when the request did not complete: the official timeout text, `adapter closed`, or
    /// why it could not be sent (Redis could not count the nodes, a bad argument).
    pub error: Option<String>,
    /// The core's code of `error` (`ERR_SIO_TIMEOUT`, `ERR_SIO_CLOSED`, ...).
    pub code: Option<String>,
}

impl From<std::result::Result<Outcome, sioadapter::Error>> for RequestResult {
    fn from(outcome: std::result::Result<Outcome, sioadapter::Error>) -> Self {
        let outcome = outcome.unwrap_or_else(|err| Outcome { error: Some(err), ..Outcome::nobody_to_ask() });
        RequestResult {
            items: serde_json::to_string(&outcome.items).unwrap_or_else(|_| "[]".to_owned()),
            expected: outcome.expected as u32,
            received: outcome.received as u32,
            code: outcome.error.as_ref().map(|e| e.code().as_str().to_owned()),
            error: outcome.error.map(|e| e.to_string()),
        }
    }
}

/// What an asynchronous call that can fail resolves to: `error` and its core `code` when it
/// failed, and `count` for `serverCount()`.
#[napi(object)]
pub struct Settled {
    /// The result of a count.
    pub count: Option<u32>,
    /// Why the call failed.
    pub error: Option<String>,
    /// The core's code of `error`.
    pub code: Option<String>,
}

impl Settled {
    fn of<T>(result: std::result::Result<T, sioadapter::Error>, count: impl FnOnce(T) -> Option<u32>) -> Self {
        match result {
            Ok(value) => Settled { count: count(value), error: None, code: None },
            Err(err) => Settled { count: None, code: Some(err.code().as_str().to_owned()), error: Some(err.to_string()) },
        }
    }
}

/// The Redis connections (one to publish, one to subscribe) of one `createAdapter` call.
#[napi]
pub struct Connection {
    transport: Arc<RedisTransport>,
}

/// Counters of a [`Connection`].
#[napi(object)]
pub struct ConnectionStats {
    /// Messages handed to Redis.
    pub published: f64,
    /// Messages dropped (queue full, or closed).
    pub dropped: f64,
    /// Messages received from Redis.
    pub received: f64,
    /// Messages queued and not yet sent.
    pub pending: f64,
    /// Messages sent without a confirmation from Redis (may or may not have been delivered;
    /// never sent again).
    pub unconfirmed: f64,
    /// Bytes of the queued messages.
    pub pending_bytes: f64,
    /// The link's state: `connecting`, `up`, `down` or `closed`.
    pub link: String,
}

#[napi]
impl Connection {
    /// Connects (lazily, retrying in the background) to the Redis at `url`. At most
    /// `limits.maxQueuedPublishes` messages and `limits.maxQueuedBytes` bytes wait while Redis
    /// is unreachable; `tlsCa` (PEM) replaces the system's certificate authorities for
    /// `rediss://`; `sharded` uses sharded pub/sub on the Redis Cluster of a
    /// `redis+cluster://` URL.
    #[napi(constructor, catch_unwind)]
    pub fn new(url: String, limits: LimitValues, tls_ca: Option<String>, sharded: Option<bool>) -> Result<Self, Code> {
        let mut config = RedisConfig::from_url(&url).map_err(js_error)?;
        config.tls_ca_pem = tls_ca.map(String::into_bytes);
        config.sharded = sharded.unwrap_or(false);
        config.max_queued_publishes = limits.max_queued_publishes as usize;
        config.max_queued_bytes = limits.max_queued_bytes as usize;
        let transport = within_runtime_if_available(|| RedisTransport::connect(&config)).map_err(js_error)?;
        Ok(Connection { transport: Arc::new(transport) })
    }

    /// Sends what is still queued (for a short while at most) and stops the connections' tasks.
    #[napi(catch_unwind)]
    pub async fn close(&self) {
        self.transport.close().await;
    }

    /// Counters since creation.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> ConnectionStats {
        let s = self.transport.stats();
        ConnectionStats {
            published: s.published.load(Ordering::Relaxed) as f64,
            dropped: s.dropped.load(Ordering::Relaxed) as f64,
            received: s.received.load(Ordering::Relaxed) as f64,
            pending: s.pending.load(Ordering::Relaxed) as f64,
            unconfirmed: s.unconfirmed.load(Ordering::Relaxed) as f64,
            pending_bytes: s.pending_bytes.load(Ordering::Relaxed) as f64,
            link: self.transport.link_state().to_owned(),
        }
    }
}

/// Options of a classic namespace engine (validated by the JS layer).
#[napi(object)]
pub struct EngineOptions {
    /// Channel key prefix.
    pub key: String,
    /// Requests timeout in milliseconds.
    pub requests_timeout: f64,
    /// Answer on the requester's own response channel.
    pub publish_on_specific_response_channel: bool,
    /// Subscribe per room instead of with the broadcast pattern.
    pub per_room_subscriptions: bool,
    /// Deliver broadcasts as `clientText` records where possible (the server uses
    /// socket.io-parser).
    pub client_text: bool,
    /// The `parser` option is not notepack.io: JS encodes and decodes broadcasts, broadcasts
    /// with ack and their acks itself; the engine passes them through unread.
    pub host_parser: bool,
    /// What the engine accepts from other nodes.
    pub limits: LimitValues,
}

/// Options of a sharded namespace engine (validated by the JS layer).
#[napi(object)]
pub struct ShardedEngineOptions {
    /// Channel prefix (`channelPrefix`).
    pub channel_prefix: String,
    /// This node's uid, made by socket.io-adapter's ClusterAdapter.
    pub uid: String,
    /// `static`, `dynamic` or `dynamic-private`.
    pub subscription_mode: String,
    /// What the engine accepts from other nodes.
    pub limits: LimitValues,
}

/// Counters of an [`Engine`] (a sharded engine has no requests of its own and skips nothing:
/// those stay 0).
#[napi(object)]
pub struct EngineStats {
    /// Messages published.
    pub published: f64,
    /// Messages from other nodes handed towards JS (those the receive buffer then dropped, see
    /// `dropped`, included).
    pub delivered: f64,
    /// Malformed messages dropped.
    pub malformed: f64,
    /// Messages dropped for being over `maxMessageBytes` (received, or this node's own).
    pub too_large: f64,
    /// Messages dropped for being over `maxMessageValues` or `maxMessageDepth`.
    pub too_complex: f64,
    /// Single-room broadcasts skipped (no local socket in the room).
    pub skipped: f64,
    /// Requests waiting for answers.
    pub pending_requests: f64,
    /// Broadcasts with ack whose acknowledgements are still awaited.
    pub pending_acks: f64,
    /// Messages dropped because the event loop did not take them in time (receive buffer full).
    pub dropped: f64,
}

/// Kinds of records in a batch, as JS reads them (through [`protocol`]).
const RECORD_KINDS: [(&str, u32); 6] = [("broadcast", 0), ("request", 1), ("ackResponse", 2), ("clusterMessage", 3), ("clusterResponse", 4), ("clientText", 5)];

/// The record kind JS reads for a delivery.
fn kind_code(delivery: &Delivery) -> Option<u32> {
    let name = match delivery.kind() {
        DeliveryKind::Broadcast if delivery.client_text().is_some() => "clientText",
        DeliveryKind::Broadcast => "broadcast",
        DeliveryKind::Request(_) => "request",
        DeliveryKind::AckResponse => "ackResponse",
        DeliveryKind::ClusterMessage => "clusterMessage",
        DeliveryKind::ClusterResponse => "clusterResponse",
        _ => return None,
    };
    RECORD_KINDS.iter().find(|(n, _)| *n == name).map(|(_, kind)| *kind)
}

type BatchFn = ThreadsafeFunction<Arc<Outbox>, (), BatchArgs, Status, false, true>;
/// `onBatch`'s arguments: the packed Buffer, the record count, whether more is waiting, and the
/// client texts of the batch's `clientText` records, in order.
type BatchArgs = napi::bindgen_prelude::FnArgs<(napi::sys::napi_value, u32, u32, Vec<String>)>;
type EventFn = ThreadsafeFunction<(String, String), (), napi::bindgen_prelude::FnArgs<(String, String)>, Status, false, true>;

/// Delivers the engine's output to JS through the core's receive buffer ([`Outbox`]) and weak
/// thread-safe functions.
struct NodeHost {
    outbox: Arc<Outbox>,
    on_batch: BatchFn,
    on_event: EventFn,
}

/// `onBatch(buffer, count, more, texts)`, as JS passes it.
type BatchCallback<'a> = Function<'a, BatchArgs, ()>;
/// `onEvent(kind, message)`, as JS passes it.
type EventCallback<'a> = Function<'a, napi::bindgen_prelude::FnArgs<(String, String)>, ()>;

impl NodeHost {
    /// A host calling `on_batch` with packed batches and `on_event` with events, through weak
    /// thread-safe functions (they do not keep the process alive), with a receive buffer of at
    /// most `limits.max_receive_buffer_bytes`.
    fn new(limits: &Limits, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Arc<Self>, Code> {
        let on_batch: BatchFn = on_batch.build_threadsafe_function::<Arc<Outbox>>().weak::<true>().callee_handled::<false>().build_callback(pack).map_err(napi_failure)?;
        let on_event: EventFn = on_event
            .build_threadsafe_function::<(String, String)>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<(String, String)>| Ok(ctx.value.into()))
            .map_err(napi_failure)?;
        Ok(Arc::new(NodeHost { outbox: Arc::new(Outbox::new(limits.max_receive_buffer_bytes)), on_batch, on_event }))
    }

    /// Queues a call of `onBatch` on the JS thread.
    fn schedule(&self) {
        self.on_batch.call(self.outbox.clone(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl Host for NodeHost {
    fn deliver(&self, delivery: Delivery) {
        let pushed = self.outbox.push(delivery);
        if let Some(err) = pushed.report {
            self.on_event(AdapterEvent::Error(err));
        }
        if pushed.schedule {
            self.schedule();
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        let payload = match event {
            AdapterEvent::Ready => ("ready".to_owned(), String::new()),
            AdapterEvent::Error(err) => (err.code().as_str().to_owned(), err.to_string()),
        };
        self.on_event.call(payload, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// Takes a batch from the receive buffer and packs it into one Buffer: a header of `count`
/// records `[kind: u32 LE, end: u32 LE]` (end offsets counted from the end of the header), then
/// the messages back to back. A `clientText` record is a broadcast delivered as its text made
/// ahead: the record holds the websocket frame that carries the text to a client, then its
/// `opts` JSON; the text goes to JS as a string of its own too (`texts`, in record order), for
/// clients on another transport and for whoever reads the packet.
/// JS gets `(buffer, count, more, texts)`; with `more` set it asks for the next batch with
/// `Engine.more()` once it has handled this one.
///
/// The Buffer is V8-managed (a copy): an external buffer or typed array per batch, each with its
/// finalizer, made the garbage collector several times busier on a receiving node.
fn pack(ctx: ThreadsafeCallContext<Arc<Outbox>>) -> Result<BatchArgs> {
    let (items, more) = ctx.value.take();
    // The engines deliver only the kinds JS knows; anything else would be skipped whole.
    let items: Vec<(u32, Delivery)> = items.into_iter().filter_map(|d| kind_code(&d).map(|k| (k, d))).collect();
    let header = items.len() * 8;
    let record_len = |d: &Delivery| d.client_text().map_or(d.bytes().len(), |t| t.websocket_frame_len() + t.opts.len());
    let total: usize = items.iter().map(|(_, d)| record_len(d)).sum();
    let mut data = Vec::with_capacity(header + total);
    let mut end = 0u32;
    for (kind, delivery) in &items {
        end += record_len(delivery) as u32;
        data.extend_from_slice(&kind.to_le_bytes());
        data.extend_from_slice(&end.to_le_bytes());
    }
    let count = items.len() as u32;
    let mut texts = Vec::new();
    for (_, mut delivery) in items {
        match delivery.take_client_text() {
            Some(client_text) => {
                client_text.write_websocket_frame(&mut data);
                data.extend_from_slice(client_text.opts.as_bytes());
                texts.push(client_text.text);
            }
            None => data.extend_from_slice(delivery.bytes()),
        }
    }
    debug_assert_eq!(data.len(), header + total, "the records' ends were counted from their lengths");
    let buffer = BufferSlice::copy_from(&ctx.env, &data)?;
    Ok((buffer.raw(), count, u32::from(more), texts).into())
}

/// The wire an [`Engine`] speaks.
enum Flavour {
    /// The classic protocol: broadcasts, requests and responses of `@socket.io/redis-adapter`.
    Classic(Adapter),
    /// The sharded adapter's: socket.io's ClusterAdapter messages, which JS builds and reads.
    Sharded(ShardedAdapter),
}

/// One namespace's engine, classic ([`Engine::classic`]) or sharded ([`Engine::sharded`]).
/// The lifecycle (rooms, counters, `serverCount`, close) is the same for both; the classic
/// protocol's requests and broadcasts are refused on a sharded engine, and `publish` on a
/// classic one.
#[napi]
pub struct Engine {
    flavour: Flavour,
    host: Arc<NodeHost>,
}

/// The error of a call a flavour does not have (a bug of the JS layer, not of the user).
fn wrong_flavour(what: &'static str) -> JsError<Code> {
    js_error(sioadapter::Error::InvalidOption { option: what, reason: "not available on this kind of engine".to_owned() })
}

#[napi]
impl Engine {
    /// The classic engine of namespace `nsp` on `connection`. `onBatch(data, count, more)`
    /// receives messages from other nodes packed as [`pack`] describes; `onEvent(kind,
    /// message)` receives `ready`, and errors with their code as the kind.
    #[napi(factory, catch_unwind)]
    pub fn classic(connection: &Connection, nsp: String, options: EngineOptions, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Self, Code> {
        let limits = options.limits.limits()?;
        let host = NodeHost::new(&limits, on_batch, on_event)?;
        let config = AdapterConfig::default()
            .with_key(&options.key)
            .with_requests_timeout(Duration::from_millis(options.requests_timeout.max(0.0) as u64))
            .with_specific_response_channel(options.publish_on_specific_response_channel)
            .with_per_room_subscriptions(options.per_room_subscriptions)
            .with_client_text(options.client_text)
            .with_host_parser(options.host_parser)
            .with_limits(limits)
            .map_err(js_error)?;
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let adapter = within_runtime_if_available(|| Adapter::new(&nsp, &config, transport, host.clone()));
        Ok(Engine { flavour: Flavour::Classic(adapter), host })
    }

    /// The sharded engine of namespace `nsp` on `connection` (made with `sharded: true`);
    /// records are of kind `clusterMessage` or `clusterResponse`.
    #[napi(factory, catch_unwind)]
    pub fn sharded(connection: &Connection, nsp: String, options: ShardedEngineOptions, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Self, Code> {
        let mode = SubscriptionMode::parse(&options.subscription_mode).map_err(js_error)?;
        let limits = options.limits.limits()?;
        let host = NodeHost::new(&limits, on_batch, on_event)?;
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let adapter = within_runtime_if_available(|| ShardedAdapter::new(&nsp, &options.channel_prefix, &options.uid, mode, limits, transport, host.clone()));
        Ok(Engine { flavour: Flavour::Sharded(adapter), host })
    }

    fn adapter(&self) -> Result<&Adapter, Code> {
        match &self.flavour {
            Flavour::Classic(adapter) => Ok(adapter),
            Flavour::Sharded(_) => Err(wrong_flavour("classic engine call")),
        }
    }

    /// The classic adapter and `text` parsed as JSON (`what`), for a request; or the failed
    /// request.
    fn classic_with(&self, text: String, what: &'static str) -> std::result::Result<(&Adapter, RawJson), RequestResult> {
        Ok((self.adapter().map_err(failed)?, json(text, what).map_err(failed)?))
    }

    fn sharded_adapter(&self) -> Result<&ShardedAdapter, Code> {
        match &self.flavour {
            Flavour::Sharded(adapter) => Ok(adapter),
            Flavour::Classic(_) => Err(wrong_flavour("sharded engine call")),
        }
    }

    /// Asks for the next batch after one delivered with `more` set.
    #[napi(catch_unwind)]
    pub fn more(&self) {
        self.host.schedule();
    }

    /// This node's uid for the namespace.
    #[napi(getter, catch_unwind)]
    pub fn uid(&self) -> Result<String, Code> {
        Ok(self.adapter()?.uid().to_owned())
    }

    /// The channel names of the namespace: `{main, responses}` (`P#N#`, `P#N#U#`) of a sharded
    /// engine, `{main, responses}` (`K#N#`, `K-response#N#U#`) of a classic one.
    #[napi(getter, catch_unwind)]
    pub fn channels(&self) -> HashMap<String, String> {
        let (main, responses) = match &self.flavour {
            Flavour::Classic(adapter) => (adapter.channels().broadcast().to_owned(), adapter.channels().own_response().to_owned()),
            Flavour::Sharded(adapter) => (adapter.channels().main().to_owned(), adapter.channels().responses().to_owned()),
        };
        HashMap::from([("main".to_owned(), main), ("responses".to_owned(), responses)])
    }

    /// A local socket joined `room`, which had none before.
    #[napi(catch_unwind)]
    pub fn room_created(&self, room: String) {
        match &self.flavour {
            Flavour::Classic(adapter) => adapter.room_created(&room),
            Flavour::Sharded(adapter) => adapter.room_created(&room),
        }
    }

    /// The last local socket left `room`.
    #[napi(catch_unwind)]
    pub fn room_deleted(&self, room: String) {
        match &self.flavour {
            Flavour::Classic(adapter) => adapter.room_deleted(&room),
            Flavour::Sharded(adapter) => adapter.room_deleted(&room),
        }
    }

    /// Resolves once the channels of the rooms reported so far are subscribed (immediately
    /// without room channels).
    #[napi(catch_unwind)]
    pub async fn rooms_synced(&self) {
        match &self.flavour {
            Flavour::Classic(adapter) => adapter.rooms_synced().await,
            Flavour::Sharded(adapter) => adapter.rooms_synced().await,
        }
    }

    /// Nodes serving the namespace (`PUBSUB NUMSUB` of the request channel, or `PUBSUB
    /// SHARDNUMSUB` of the sharded main channel), as `count`.
    #[napi(catch_unwind)]
    pub async fn server_count(&self) -> Settled {
        let count = match &self.flavour {
            Flavour::Classic(adapter) => adapter.server_count().await,
            Flavour::Sharded(adapter) => adapter.server_count().await,
        };
        Settled::of(count, |n| Some(n as u32))
    }

    /// Counters since creation.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> EngineStats {
        let s = match &self.flavour {
            Flavour::Classic(adapter) => adapter.stats(),
            Flavour::Sharded(adapter) => adapter.stats(),
        };
        EngineStats {
            published: s.published as f64,
            delivered: s.delivered as f64,
            malformed: s.malformed as f64,
            too_large: s.too_large as f64,
            too_complex: s.too_complex as f64,
            skipped: s.skipped as f64,
            pending_requests: s.pending_requests as f64,
            pending_acks: s.pending_acks as f64,
            dropped: self.host.outbox.dropped() as f64,
        }
    }

    /// Unsubscribes this namespace.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Settled {
        let closed = match &self.flavour {
            Flavour::Classic(adapter) => adapter.close().await,
            Flavour::Sharded(adapter) => adapter.close().await,
        };
        Settled::of(closed, |()| None)
    }

    /// Sharded: publishes an encoded ClusterAdapter message; `room` is the only room of a
    /// BROADCAST without ack, whose channel the subscription mode may give it.
    #[napi(catch_unwind)]
    pub fn publish(&self, room: Option<String>, payload: &[u8]) -> Result<(), Code> {
        self.sharded_adapter()?.publish(room.as_deref(), payload.to_vec()).map_err(js_error)
    }

    /// Sharded: publishes an encoded request (FETCH_SOCKETS, SERVER_SIDE_EMIT with ack) on the
    /// main channel with the nodes counted in the same pipeline; resolves with `count` (this
    /// node included) once Redis answered, or with an error when it did not within 500 ms.
    #[napi(catch_unwind)]
    pub async fn publish_request(&self, payload: napi::bindgen_prelude::Buffer) -> Settled {
        let Flavour::Sharded(adapter) = &self.flavour else {
            let err = sioadapter::Error::InvalidOption { option: "publishRequest", reason: "not available on a classic engine".to_owned() };
            return Settled::of(Err::<usize, _>(err), |_| None);
        };
        let count = adapter.publish_counted(payload.to_vec(), sioadapter::sharded::SERVER_COUNT_WITHIN).await;
        Settled::of(count, |n| Some(n as u32))
    }

    /// Sharded: publishes an encoded response to the node `requester`.
    #[napi(catch_unwind)]
    pub fn publish_response(&self, requester: String, payload: &[u8]) -> Result<(), Code> {
        self.sharded_adapter()?.publish_response(&requester, payload.to_vec()).map_err(js_error)
    }

    /// Publishes a broadcast: `packetAndOpts` is notepack's encoding of `[packet, opts]`,
    /// `room` the single target room when there is exactly one. Synchronous: it only enqueues.
    #[napi(catch_unwind)]
    pub fn broadcast(&self, room: Option<String>, packet_and_opts: &[u8]) -> Result<(), Code> {
        self.adapter()?.broadcast_encoded(room.as_deref(), packet_and_opts).map_err(js_error)
    }

    /// Publishes a broadcast that JS encoded with its `parser` (`[uid, packet, opts]`); `room`
    /// the single target room when there is exactly one.
    #[napi(catch_unwind)]
    pub fn broadcast_host_encoded(&self, room: Option<String>, message: &[u8]) -> Result<(), Code> {
        self.adapter()?.broadcast_host_encoded(room.as_deref(), message.to_vec()).map_err(js_error)
    }

    /// Publishes a broadcast with ack that JS encoded with its `parser` (`{ uid, requestId,
    /// type, packet, opts }`, `requestId` given here too).
    #[napi(catch_unwind)]
    pub fn broadcast_with_ack_host_encoded(&self, request_id: String, request: &[u8], timeout_ms: f64) -> Result<(), Code> {
        self.adapter()?.broadcast_with_ack_host_encoded(&request_id, request.to_vec(), Duration::from_millis(timeout_ms.max(0.0) as u64)).map_err(js_error)
    }

    /// Forwards one client's acknowledgement that JS encoded with its `parser` (`{ type,
    /// requestId, packet }`) to node `requester`.
    #[napi(catch_unwind)]
    pub fn respond_host_encoded(&self, requester: Option<String>, response: &[u8]) -> Result<(), Code> {
        self.adapter()?.respond_host_encoded(requester.as_deref(), response.to_vec()).map_err(js_error)
    }

    /// Rooms of every other node.
    #[napi(catch_unwind)]
    pub async fn all_rooms(&self) -> RequestResult {
        match self.adapter() {
            Ok(adapter) => adapter.all_rooms().await.into(),
            Err(err) => failed(err),
        }
    }

    /// Socket details of every other node; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub async fn fetch_sockets(&self, rooms: String, except: String, timeout_ms: Option<f64>) -> RequestResult {
        let (adapter, rooms) = match self.classic_with(rooms, "rooms") {
            Ok(ready) => ready,
            Err(failed) => return failed,
        };
        let except = match json(except, "except") {
            Ok(except) => except,
            Err(err) => return failed(err),
        };
        let timeout = timeout_ms.filter(|t| *t > 0.0).map(|t| Duration::from_millis(t as u64));
        adapter.fetch_sockets(&Targets { rooms: &rooms, except: &except }, timeout).await.into()
    }

    /// Ids of the matching sockets of every other node (legacy SOCKETS); `rooms` is a JSON array.
    #[napi(catch_unwind)]
    pub async fn sockets(&self, rooms: String) -> RequestResult {
        match self.classic_with(rooms, "rooms") {
            Ok((adapter, rooms)) => adapter.sockets(&rooms).await.into(),
            Err(failed) => failed,
        }
    }

    /// The seeds' remoteJoin (`action` "join", `room` JSON), remoteLeave ("leave") and
    /// remoteDisconnect ("disconnect", `close`) for a socket on another node.
    #[napi(catch_unwind)]
    pub async fn remote_socket(&self, action: String, sid: String, room: Option<String>, close: Option<bool>) -> RequestResult {
        let (adapter, room) = match self.classic_with(room.unwrap_or_else(|| "null".to_owned()), "room") {
            Ok(ready) => ready,
            Err(failed) => return failed,
        };
        let action = match action.as_str() {
            "join" => SocketAction::Join(&room),
            "leave" => SocketAction::Leave(&room),
            "disconnect" => SocketAction::Disconnect(close.unwrap_or(false)),
            other => return RequestResult::from(Err(sioadapter::Error::InvalidOption { option: "action", reason: format!("unknown socket action {other}") })),
        };
        adapter.remote_socket(&sid, action).await.into()
    }

    /// Server-side emit with ack; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub async fn server_side_emit_with_ack(&self, data: String) -> RequestResult {
        match self.classic_with(data, "data") {
            Ok((adapter, data)) => adapter.server_side_emit_with_ack(&data).await.into(),
            Err(failed) => failed,
        }
    }

    /// Server-side emit without ack; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub fn server_side_emit(&self, data: String) -> Result<(), Code> {
        server_side_emit(self.adapter()?, data)
    }

    /// `socketsJoin` (`join`) or `socketsLeave` on the other nodes; arguments are JSON arrays.
    #[napi(catch_unwind)]
    pub fn change_rooms(&self, join: bool, rooms: String, except: String, target_rooms: String) -> Result<(), Code> {
        change_rooms(self.adapter()?, join, rooms, except, target_rooms)
    }

    /// `disconnectSockets(close)` on the other nodes; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub fn disconnect_sockets(&self, rooms: String, except: String, close: bool) -> Result<(), Code> {
        let adapter = self.adapter()?;
        with_targets(rooms, except, |t| ClusterCommands::disconnect_sockets(adapter, t, close))
    }

    /// Publishes a broadcast with ack (`[packet, opts]` from notepack) and returns its request id.
    #[napi(catch_unwind)]
    pub fn broadcast_with_ack(&self, packet_and_opts: &[u8], timeout_ms: f64) -> Result<String, Code> {
        self.adapter()?.broadcast_with_ack_encoded(packet_and_opts, Duration::from_millis(timeout_ms.max(0.0) as u64)).map_err(js_error)
    }

    /// Answers an ALL_ROOMS, REMOTE_FETCH or SOCKETS request (`items`: JSON array), or a legacy
    /// single-socket request (`items` null).
    #[napi(catch_unwind)]
    pub fn respond_list(&self, kind: u32, request_id: String, requester: Option<String>, items: Option<String>) -> Result<(), Code> {
        let items = items.map(|text| json(text, "items")).transpose()?;
        self.respond(request_type(kind)?, &request_id, requester, Reply::List(items))
    }

    /// Answers a server-side emit with ack (`data`: JSON of the first ack argument, or null).
    #[napi(catch_unwind)]
    pub fn respond_server_side_emit(&self, request_id: String, requester: Option<String>, data: Option<String>) -> Result<(), Code> {
        let data = data.map(|text| json(text, "data")).transpose()?;
        self.respond(RequestType::ServerSideEmit, &request_id, requester, Reply::ServerSideEmit(data))
    }

    /// Answers a broadcast with ack with the number of local clients it reached.
    #[napi(catch_unwind)]
    pub fn respond_client_count(&self, request_id: String, requester: Option<String>, count: u32) -> Result<(), Code> {
        self.respond(RequestType::Broadcast, &request_id, requester, Reply::ClientCount(u64::from(count)))
    }

    /// Forwards one client's acknowledgement (notepack encoding of its first argument).
    #[napi(catch_unwind)]
    pub fn respond_ack(&self, request_id: String, requester: Option<String>, packet: &[u8]) -> Result<(), Code> {
        self.respond(RequestType::Broadcast, &request_id, requester, Reply::Ack(packet.to_vec()))
    }

    fn respond(&self, kind: RequestType, request_id: &str, requester: Option<String>, reply: Reply) -> Result<(), Code> {
        self.adapter()?.respond(kind, request_id, requester.as_deref(), reply).map_err(js_error)
    }
}

/// A request that could not be made, as JS reads it.
fn failed(err: JsError<Code>) -> RequestResult {
    RequestResult { items: "[]".to_owned(), expected: 0, received: 0, error: Some(err.reason.clone()), code: Some(err.status.to_owned()) }
}

/// The publish-only emitter of the npm package's `Emitter` (like `@socket.io/redis-emitter`)
/// and `ShardedEmitter` (for clusters of sharded adapters).
#[napi]
pub struct NativeEmitter {
    emitter: AnyEmitter,
}

#[napi]
impl NativeEmitter {
    /// An emitter for namespace `nsp` with channel prefix `key`, publishing through `connection`;
    /// messages larger than `limits.maxMessageBytes` are refused.
    #[napi(constructor, catch_unwind)]
    pub fn new(connection: &Connection, key: String, nsp: String, limits: LimitValues) -> Result<Self, Code> {
        let transport: Arc<dyn Transport> = connection.transport.clone();
        Ok(NativeEmitter { emitter: AnyEmitter::Classic(Emitter::new(transport, &key, &nsp).with_limits(limits.limits()?)) })
    }

    /// An emitter to the sharded adapters of namespace `nsp` with channel prefix
    /// `channelPrefix` and `subscriptionMode` (`static`, `dynamic` or `dynamic-private`), through
    /// `connection` (made with `sharded: true`).
    #[napi(factory, catch_unwind)]
    pub fn sharded(connection: &Connection, channel_prefix: String, nsp: String, subscription_mode: String, limits: LimitValues) -> Result<Self, Code> {
        let mode = SubscriptionMode::parse(&subscription_mode).map_err(js_error)?;
        let transport: Arc<dyn Transport> = connection.transport.clone();
        Ok(NativeEmitter { emitter: AnyEmitter::Sharded(ShardedEmitter::new(transport, &channel_prefix, &nsp, mode).with_limits(limits.limits()?)) })
    }

    fn classic(&self) -> Result<&Emitter, Code> {
        self.emitter.classic().ok_or_else(|| wrong_flavour("classic emitter call"))
    }

    fn commands(&self) -> &dyn ClusterCommands {
        self.emitter.commands()
    }

    /// Publishes an EVENT broadcast: `data` is notepack's encoding of `[event, ...args]`, `tail`
    /// that of the packet's `nsp` entry followed by the `opts` map (the same for every emit to the
    /// same targets), `room` the single target room when there is exactly one.
    #[napi(catch_unwind)]
    pub fn broadcast(&self, room: Option<String>, data: &[u8], tail: &[u8]) -> Result<(), Code> {
        self.classic()?.emit_encoded(room.as_deref(), data, tail).map_err(js_error)
    }

    /// Publishes, in order, the EVENT broadcasts of one run of JavaScript, packed as
    /// `Emitter::emit_packed` reads them; `rooms`: each target selection's single room (or
    /// null). Throws the first failure; the other messages are still published.
    #[napi(catch_unwind)]
    pub fn broadcast_packed(&self, rooms: Vec<Option<String>>, packed: &[u8]) -> Result<(), Code> {
        self.classic()?.emit_packed(&rooms, packed).map_err(js_error)
    }

    /// Publishes a broadcast that JS encoded whole: with its `parser`, `["emitter", packet,
    /// opts]`; for the sharded adapters, the ClusterAdapter's BROADCAST message (its channel
    /// follows the subscription mode). `room`: the single target room when there is exactly one.
    #[napi(catch_unwind)]
    pub fn broadcast_host_encoded(&self, room: Option<String>, message: &[u8]) -> Result<(), Code> {
        self.emitter.emit_host_encoded(room.as_deref(), message.to_vec()).map_err(js_error)
    }

    /// `socketsJoin` (`join`) or `socketsLeave`; arguments are JSON arrays.
    #[napi(catch_unwind)]
    pub fn change_rooms(&self, join: bool, rooms: String, except: String, target_rooms: String) -> Result<(), Code> {
        change_rooms(self.commands(), join, rooms, except, target_rooms)
    }

    /// `disconnectSockets(close)`; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub fn disconnect_sockets(&self, rooms: String, except: String, close: bool) -> Result<(), Code> {
        with_targets(rooms, except, |t| self.commands().disconnect_sockets(t, close))
    }

    /// `serverSideEmit(...)`; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub fn server_side_emit(&self, data: String) -> Result<(), Code> {
        server_side_emit(self.commands(), data)
    }
}
