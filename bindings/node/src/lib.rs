//! The napi-rs addon behind the `sioadapter` npm package: a thin layer over the core crate.
//!
//! JS sees two classes. [`Connection`] owns the Redis connections of one `createAdapter(...)`
//! call and is shared by its namespaces. [`Engine`] is one namespace's engine: broadcasts go in
//! as synchronous calls carrying bytes that notepack.io already produced (no Promise and no walk
//! of JS objects per message), and broadcasts from other nodes come out in batches: one call
//! with one Buffer holding every message and a `Uint32Array` of their end offsets.
//!
//! Every export catches panics (`catch_unwind`), so a bug surfaces as a JS exception instead
//! of aborting the process; callbacks into JS are weak thread-safe functions, so they never
//! keep the Node process alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{within_runtime_if_available, BufferSlice, Function};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsValue;
use napi::{Error as JsError, Result, Status};
use napi_derive::napi;
use sioadapter::adapter::Reply;
use sioadapter::emitter::ClusterCommands;
use sioadapter::limits::{Burst, Limits};
use sioadapter::protocol::request::{raw_json, RawJson, RequestType, SocketAction, Targets};
use sioadapter::sharded::{ShardedAdapter, SubscriptionMode};
use sioadapter::transport::redis::RedisTransport;
use sioadapter::transport::Transport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, DeliveryKind, Emitter, Host, Outcome, RedisConfig};

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

/// The default of every limit option, and the ceiling of `maxMessageDepth` (the core owns them).
#[napi(object)]
pub struct LimitDefaults {
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
    /// The largest `maxMessageDepth` accepted.
    pub max_message_depth_ceiling: f64,
}

/// The defaults of the limit options.
#[napi(catch_unwind)]
pub fn limit_defaults() -> LimitDefaults {
    let limits = Limits::default();
    let redis = RedisConfig::default();
    LimitDefaults {
        max_message_bytes: limits.max_message_bytes as f64,
        max_message_values: limits.max_message_values as f64,
        max_message_depth: limits.max_message_depth as f64,
        max_receive_buffer_bytes: limits.max_receive_buffer_bytes as f64,
        max_queued_publishes: redis.max_queued_publishes as f64,
        max_queued_bytes: redis.max_queued_bytes as f64,
        max_message_depth_ceiling: sioadapter::limits::MAX_MESSAGE_DEPTH_CEILING as f64,
    }
}

fn js_error(err: impl Into<sioadapter::Error>) -> JsError {
    JsError::new(Status::GenericFailure, err.into().to_string())
}

/// JSON text from JS (`JSON.stringify` output), checked once.
fn json(text: String, what: &'static str) -> Result<RawJson> {
    raw_json(text, what).map_err(js_error)
}

/// Runs `op` with the targets JS gave as JSON arrays (`rooms`, `except`).
fn with_targets<T>(rooms: String, except: String, op: impl FnOnce(&Targets<'_>) -> std::result::Result<T, sioadapter::Error>) -> Result<T> {
    let (rooms, except) = (json(rooms, "rooms")?, json(except, "except")?);
    op(&Targets { rooms: &rooms, except: &except }).map_err(js_error)
}

/// `socketsJoin` (`join`) or `socketsLeave` through an engine or an emitter; JSON arrays.
fn change_rooms(commands: &impl ClusterCommands, join: bool, rooms: String, except: String, target_rooms: String) -> Result<()> {
    let target_rooms = json(target_rooms, "rooms")?;
    with_targets(rooms, except, |t| if join { commands.sockets_join(t, &target_rooms) } else { commands.sockets_leave(t, &target_rooms) })
}

/// `serverSideEmit(...)` through an engine or an emitter; `data` is `[event, ...args]` as JSON.
fn server_side_emit(commands: &impl ClusterCommands, data: String) -> Result<()> {
    commands.server_side_emit(&json(data, "data")?).map_err(js_error)
}

fn request_type(kind: u32) -> Result<RequestType> {
    RequestType::from_wire(i64::from(kind)).ok_or_else(|| JsError::new(Status::InvalidArg, format!("unknown request type {kind}")))
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
    /// Set when the request did not complete: the official timeout text, or `adapter closed`.
    pub error: Option<String>,
    /// `ERR_SIO_TIMEOUT` or `ERR_SIO_CLOSED` with `error`.
    pub code: Option<String>,
}

impl From<Outcome> for RequestResult {
    fn from(outcome: Outcome) -> Self {
        let code = outcome.error.as_ref().map(|err| match err {
            sioadapter::Error::Timeout { .. } => "ERR_SIO_TIMEOUT".to_owned(),
            sioadapter::Error::Closed => "ERR_SIO_CLOSED".to_owned(),
            _ => "ERR_SIO_REDIS".to_owned(),
        });
        RequestResult {
            items: serde_json::to_string(&outcome.items).unwrap_or_else(|_| "[]".to_owned()),
            expected: outcome.expected as u32,
            received: outcome.received as u32,
            error: outcome.error.map(|e| e.to_string()),
            code,
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
    /// `maxQueuedPublishes` messages and `maxQueuedBytes` bytes wait while Redis is unreachable;
    /// `tlsCa` (PEM) replaces the system's certificate authorities for `rediss://`; `sharded`
    /// uses sharded pub/sub on the Redis Cluster of a `redis+cluster://` URL.
    #[napi(constructor, catch_unwind)]
    pub fn new(url: String, max_queued_publishes: Option<u32>, max_queued_bytes: Option<f64>, tls_ca: Option<String>, sharded: Option<bool>) -> Result<Self> {
        let mut config = RedisConfig::from_url(&url).map_err(js_error)?;
        config.tls_ca_pem = tls_ca.map(String::into_bytes);
        config.sharded = sharded.unwrap_or(false);
        if let Some(max) = max_queued_publishes {
            config.max_queued_publishes = max as usize;
        }
        if let Some(max) = max_queued_bytes {
            config.max_queued_bytes = max as usize;
        }
        let transport = within_runtime_if_available(|| RedisTransport::connect(&config)).map_err(js_error)?;
        Ok(Connection { transport: Arc::new(transport) })
    }

    /// Sends what is still queued (for a short while at most) and stops the connections' tasks.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        self.transport.close().await;
        Ok(())
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

/// Options of one namespace engine (validated by the JS layer).
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
    /// What the engine accepts from other nodes.
    pub limits: LimitOptions,
}

/// The limits of [`sioadapter::limits::Limits`], in JS numbers (validated by the JS layer and
/// again by the core).
#[napi(object)]
pub struct LimitOptions {
    /// `maxMessageBytes`.
    pub max_message_bytes: f64,
    /// `maxMessageValues`.
    pub max_message_values: f64,
    /// `maxMessageDepth`.
    pub max_message_depth: f64,
    /// `maxReceiveBufferBytes`.
    pub max_receive_buffer_bytes: f64,
}

impl LimitOptions {
    /// The core's limits, checked.
    fn to_limits(&self) -> Result<Limits> {
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

/// Counters of an [`Engine`].
#[napi(object)]
pub struct EngineStats {
    /// Broadcasts published.
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

/// Kinds of records in a batch, as the JS layer reads them.
const KIND_BROADCAST: u32 = 0;
const KIND_REQUEST: u32 = 1;
const KIND_ACK_RESPONSE: u32 = 2;
const KIND_CLUSTER_MESSAGE: u32 = 3;
const KIND_CLUSTER_RESPONSE: u32 = 4;

type BatchFn = ThreadsafeFunction<Arc<Outbox>, (), napi::bindgen_prelude::FnArgs<(napi::sys::napi_value, u32, u32)>, Status, false, true>;

/// Most messages handed to JS in one call.
const BATCH_MESSAGES: usize = 128;
/// Most bytes handed to JS in one call (unless a single message is larger).
const BATCH_BYTES: usize = 1024 * 1024;

/// Messages waiting for the JS thread. At most one call into JS is scheduled at a time and it
/// takes a bounded batch of what accumulated meanwhile: a busy event loop gets fewer, larger
/// batches, and gets back to its I/O between two batches (so writes to clients complete and
/// their buffers are freed instead of piling up across a huge batch). At most
/// `maxReceiveBufferBytes` wait: a slow event loop must not grow memory without bound (Redis
/// itself cuts off a subscriber that lets 32 MiB pile up); a single larger message is accepted
/// when nothing waits.
struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    limit: usize,
}

#[derive(Default)]
struct OutboxState {
    items: Vec<Delivery>,
    bytes: usize,
    scheduled: bool,
}

impl Outbox {
    /// Adds a batch; true when a call into JS must be scheduled. Returns the number of
    /// messages dropped for lack of room, too.
    fn push(&self, batch: Vec<Delivery>) -> (bool, u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut dropped = 0;
        for delivery in batch {
            let len = delivery.bytes().len();
            if state.bytes + len > self.limit && !state.items.is_empty() {
                dropped += 1;
                continue;
            }
            state.bytes += len;
            state.items.push(delivery);
        }
        let schedule = !state.scheduled && !state.items.is_empty();
        state.scheduled |= schedule;
        (schedule, dropped)
    }

    /// Takes up to [`BATCH_MESSAGES`] messages / [`BATCH_BYTES`] bytes (on the JS thread), and
    /// whether more wait; while more wait the outbox stays scheduled, and JS asks for the rest
    /// with `Engine.more()` once it has handled this batch.
    fn take(&self) -> (Vec<Delivery>, bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = 0;
        let count = state
            .items
            .iter()
            .take(BATCH_MESSAGES)
            .take_while(|d| {
                let first = bytes == 0;
                bytes += d.bytes().len();
                first || bytes <= BATCH_BYTES
            })
            .count();
        let items: Vec<Delivery> = state.items.drain(..count).collect();
        state.bytes -= items.iter().map(|d| d.bytes().len()).sum::<usize>();
        let more = !state.items.is_empty();
        state.scheduled = more;
        (items, more)
    }
}
type EventFn = ThreadsafeFunction<(String, String), (), napi::bindgen_prelude::FnArgs<(String, String)>, Status, false, true>;

/// Delivers the engine's output to JS through weak thread-safe functions.
struct NodeHost {
    outbox: Arc<Outbox>,
    on_batch: BatchFn,
    on_event: EventFn,
    /// Messages dropped because the outbox was full, in all.
    dropped: AtomicU64,
    /// Reports those drops once per burst.
    drops: Burst,
}

/// `onBatch(buffer, count, more)`, as JS passes it.
type BatchCallback<'a> = Function<'a, napi::bindgen_prelude::FnArgs<(napi::sys::napi_value, u32, u32)>, ()>;
/// `onEvent(kind, message)`, as JS passes it.
type EventCallback<'a> = Function<'a, napi::bindgen_prelude::FnArgs<(String, String)>, ()>;

impl NodeHost {
    /// A host calling `on_batch` with packed batches and `on_event` with events, through weak
    /// thread-safe functions (they do not keep the process alive), with an outbox of at most
    /// `limits.max_receive_buffer_bytes`.
    fn new(limits: &Limits, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Arc<Self>> {
        let on_batch: BatchFn = on_batch.build_threadsafe_function::<Arc<Outbox>>().weak::<true>().callee_handled::<false>().build_callback(pack)?;
        let on_event: EventFn = on_event
            .build_threadsafe_function::<(String, String)>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<(String, String)>| Ok(ctx.value.into()))?;
        let outbox = Arc::new(Outbox { state: std::sync::Mutex::default(), limit: limits.max_receive_buffer_bytes });
        Ok(Arc::new(NodeHost { outbox, on_batch, on_event, dropped: AtomicU64::new(0), drops: Burst::default() }))
    }

    /// Counts dropped messages and reports them once per burst (not once per message).
    fn report_drops(&self, dropped: u64) {
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        if let Some(count) = self.drops.add(dropped) {
            let message = format!("receive buffer full (maxReceiveBufferBytes, {} bytes, waiting for the event loop): dropped {count} messages", self.outbox.limit);
            self.on_event(AdapterEvent::Error(sioadapter::Error::Overloaded(message)));
        }
    }

    /// Queues a call of `onBatch` on the JS thread.
    fn schedule(&self) {
        self.on_batch.call(self.outbox.clone(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl Host for NodeHost {
    fn deliver(&self, batch: Vec<Delivery>) {
        let (schedule, dropped) = self.outbox.push(batch);
        if dropped > 0 {
            self.report_drops(dropped);
        }
        if schedule {
            self.schedule();
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        let payload = match event {
            AdapterEvent::Ready => ("ready".to_owned(), String::new()),
            AdapterEvent::Error(err) => (err.code().to_owned(), err.to_string()),
        };
        self.on_event.call(payload, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// The record kind JS reads for a delivery.
fn kind_code(kind: &DeliveryKind) -> Option<u32> {
    Some(match kind {
        DeliveryKind::Broadcast => KIND_BROADCAST,
        DeliveryKind::Request(_) => KIND_REQUEST,
        DeliveryKind::AckResponse => KIND_ACK_RESPONSE,
        DeliveryKind::ClusterMessage => KIND_CLUSTER_MESSAGE,
        DeliveryKind::ClusterResponse => KIND_CLUSTER_RESPONSE,
        _ => return None,
    })
}

/// Takes what waits in the outbox and packs it into one Buffer: a header of `count` records
/// `[kind: u32 LE, end: u32 LE]` (end offsets counted from the end of the header), then the
/// messages back to back. JS gets `(buffer, count)`.
///
/// The Buffer is V8-managed (a copy): an external buffer or typed array per batch, each with its
/// finalizer, made the garbage collector several times busier on a receiving node.
fn pack(ctx: ThreadsafeCallContext<Arc<Outbox>>) -> Result<napi::bindgen_prelude::FnArgs<(napi::sys::napi_value, u32, u32)>> {
    let (items, more) = ctx.value.take();
    // The engines deliver only the kinds JS knows; anything else would be skipped whole.
    let items: Vec<(u32, Delivery)> = items.into_iter().filter_map(|d| kind_code(d.kind()).map(|k| (k, d))).collect();
    let header = items.len() * 8;
    let total: usize = items.iter().map(|(_, d)| d.bytes().len()).sum();
    let mut data = Vec::with_capacity(header + total);
    let mut end = 0u32;
    for (kind, delivery) in &items {
        end += delivery.bytes().len() as u32;
        data.extend_from_slice(&kind.to_le_bytes());
        data.extend_from_slice(&end.to_le_bytes());
    }
    for (_, delivery) in &items {
        data.extend_from_slice(delivery.bytes());
    }
    let buffer = BufferSlice::copy_from(&ctx.env, &data)?;
    Ok((buffer.raw(), items.len() as u32, u32::from(more)).into())
}

/// One namespace's engine.
#[napi]
pub struct Engine {
    adapter: Adapter,
    host: Arc<NodeHost>,
}

#[napi]
impl Engine {
    /// Creates the engine of namespace `nsp` on `connection`. `onBatch(data, count)` receives
    /// messages from other nodes packed as [`pack`] describes (kinds: 0 broadcast, 1 request,
    /// 2 ack response); `onEvent(kind, message)` receives `ready`, and errors with their code
    /// as the kind.
    #[napi(constructor, catch_unwind)]
    pub fn new(connection: &Connection, nsp: String, options: EngineOptions, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Self> {
        let limits = options.limits.to_limits()?;
        let host = NodeHost::new(&limits, on_batch, on_event)?;
        let config = AdapterConfig::default()
            .with_key(&options.key)
            .with_requests_timeout(Duration::from_millis(options.requests_timeout.max(0.0) as u64))
            .with_specific_response_channel(options.publish_on_specific_response_channel)
            .with_per_room_subscriptions(options.per_room_subscriptions)
            .with_limits(limits)
            .map_err(js_error)?;
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let adapter = within_runtime_if_available(|| Adapter::new(&nsp, &config, transport, host.clone()));
        Ok(Engine { adapter, host })
    }

    /// Asks for the next batch after one delivered with `more` set.
    #[napi(catch_unwind)]
    pub fn more(&self) {
        self.host.schedule();
    }

    /// This node's uid for the namespace.
    #[napi(getter, catch_unwind)]
    pub fn uid(&self) -> String {
        self.adapter.uid().to_owned()
    }

    /// Publishes a broadcast: `packetAndOpts` is notepack's encoding of `[packet, opts]`,
    /// `room` the single target room when there is exactly one. Synchronous: it only enqueues.
    #[napi(catch_unwind)]
    pub fn broadcast(&self, room: Option<String>, packet_and_opts: &[u8]) -> Result<()> {
        self.adapter.broadcast_encoded(room.as_deref(), packet_and_opts).map_err(js_error)
    }

    /// A local socket joined `room`, which had none before.
    #[napi(catch_unwind)]
    pub fn room_created(&self, room: String) {
        self.adapter.room_created(&room);
    }

    /// The last local socket left `room`.
    #[napi(catch_unwind)]
    pub fn room_deleted(&self, room: String) {
        self.adapter.room_deleted(&room);
    }

    /// Counters since creation.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> EngineStats {
        let s = self.adapter.stats();
        EngineStats {
            published: s.published as f64,
            delivered: s.delivered as f64,
            malformed: s.malformed as f64,
            too_large: s.too_large as f64,
            too_complex: s.too_complex as f64,
            skipped: s.skipped as f64,
            pending_requests: s.pending_requests as f64,
            pending_acks: s.pending_acks as f64,
            dropped: self.host.dropped.load(Ordering::Relaxed) as f64,
        }
    }

    /// Resolves once the channels of the rooms reported so far are subscribed (immediately
    /// without per-room subscriptions).
    #[napi(catch_unwind)]
    pub async fn rooms_synced(&self) {
        self.adapter.rooms_synced().await;
    }

    /// Nodes serving the namespace (`PUBSUB NUMSUB` of the request channel).
    #[napi(catch_unwind)]
    pub async fn server_count(&self) -> Result<u32> {
        self.adapter.server_count().await.map(|n| n as u32).map_err(js_error)
    }

    /// Rooms of every other node.
    #[napi(catch_unwind)]
    pub async fn all_rooms(&self) -> Result<RequestResult> {
        self.adapter.all_rooms().await.map(RequestResult::from).map_err(js_error)
    }

    /// Socket details of every other node; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub async fn fetch_sockets(&self, rooms: String, except: String, timeout_ms: Option<f64>) -> Result<RequestResult> {
        let (rooms, except) = (json(rooms, "rooms")?, json(except, "except")?);
        let timeout = timeout_ms.filter(|t| *t > 0.0).map(|t| Duration::from_millis(t as u64));
        let targets = Targets { rooms: &rooms, except: &except };
        self.adapter.fetch_sockets(&targets, timeout).await.map(RequestResult::from).map_err(js_error)
    }

    /// Ids of the matching sockets of every other node (legacy SOCKETS); `rooms` is a JSON array.
    #[napi(catch_unwind)]
    pub async fn sockets(&self, rooms: String) -> Result<RequestResult> {
        let rooms = json(rooms, "rooms")?;
        self.adapter.sockets(&rooms).await.map(RequestResult::from).map_err(js_error)
    }

    /// The seeds' remoteJoin (`action` "join", `room` JSON), remoteLeave ("leave") and
    /// remoteDisconnect ("disconnect", `close`) for a socket on another node.
    #[napi(catch_unwind)]
    pub async fn remote_socket(&self, action: String, sid: String, room: Option<String>, close: Option<bool>) -> Result<RequestResult> {
        let room = json(room.unwrap_or_else(|| "null".to_owned()), "room")?;
        let action = match action.as_str() {
            "join" => SocketAction::Join(&room),
            "leave" => SocketAction::Leave(&room),
            "disconnect" => SocketAction::Disconnect(close.unwrap_or(false)),
            other => return Err(JsError::new(Status::InvalidArg, format!("unknown socket action {other}"))),
        };
        self.adapter.remote_socket(&sid, action).await.map(RequestResult::from).map_err(js_error)
    }

    /// Server-side emit with ack; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub async fn server_side_emit_with_ack(&self, data: String) -> Result<RequestResult> {
        let data = json(data, "data")?;
        self.adapter.server_side_emit_with_ack(&data).await.map(RequestResult::from).map_err(js_error)
    }

    /// Server-side emit without ack; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub fn server_side_emit(&self, data: String) -> Result<()> {
        server_side_emit(&self.adapter, data)
    }

    /// `socketsJoin` (`join`) or `socketsLeave` on the other nodes; arguments are JSON arrays.
    #[napi(catch_unwind)]
    pub fn change_rooms(&self, join: bool, rooms: String, except: String, target_rooms: String) -> Result<()> {
        change_rooms(&self.adapter, join, rooms, except, target_rooms)
    }

    /// `disconnectSockets(close)` on the other nodes; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub fn disconnect_sockets(&self, rooms: String, except: String, close: bool) -> Result<()> {
        with_targets(rooms, except, |t| ClusterCommands::disconnect_sockets(&self.adapter, t, close))
    }

    /// Publishes a broadcast with ack (`[packet, opts]` from notepack) and returns its request id.
    #[napi(catch_unwind)]
    pub fn broadcast_with_ack(&self, packet_and_opts: &[u8], timeout_ms: f64) -> Result<String> {
        self.adapter.broadcast_with_ack_encoded(packet_and_opts, Duration::from_millis(timeout_ms.max(0.0) as u64)).map_err(js_error)
    }

    /// Answers an ALL_ROOMS, REMOTE_FETCH or SOCKETS request (`items`: JSON array), or a legacy
    /// single-socket request (`items` null).
    #[napi(catch_unwind)]
    pub fn respond_list(&self, kind: u32, request_id: String, requester: Option<String>, items: Option<String>) -> Result<()> {
        let items = items.map(|text| json(text, "items")).transpose()?;
        self.adapter.respond(request_type(kind)?, &request_id, requester.as_deref(), Reply::List(items)).map_err(js_error)
    }

    /// Answers a server-side emit with ack (`data`: JSON of the first ack argument, or null).
    #[napi(catch_unwind)]
    pub fn respond_server_side_emit(&self, request_id: String, requester: Option<String>, data: Option<String>) -> Result<()> {
        let data = data.map(|text| json(text, "data")).transpose()?;
        self.adapter.respond(RequestType::ServerSideEmit, &request_id, requester.as_deref(), Reply::ServerSideEmit(data)).map_err(js_error)
    }

    /// Answers a broadcast with ack with the number of local clients it reached.
    #[napi(catch_unwind)]
    pub fn respond_client_count(&self, request_id: String, requester: Option<String>, count: u32) -> Result<()> {
        self.adapter.respond(RequestType::Broadcast, &request_id, requester.as_deref(), Reply::ClientCount(u64::from(count))).map_err(js_error)
    }

    /// Forwards one client's acknowledgement (notepack encoding of its first argument).
    #[napi(catch_unwind)]
    pub fn respond_ack(&self, request_id: String, requester: Option<String>, packet: &[u8]) -> Result<()> {
        self.adapter.respond(RequestType::Broadcast, &request_id, requester.as_deref(), Reply::Ack(packet.to_vec())).map_err(js_error)
    }

    /// Unsubscribes this namespace.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        self.adapter.close().await.map_err(js_error)
    }
}

/// The publish-only emitter of the npm package's `Emitter` (like `@socket.io/redis-emitter`).
#[napi]
pub struct NativeEmitter {
    emitter: Emitter,
}

#[napi]
impl NativeEmitter {
    /// An emitter for namespace `nsp` with channel prefix `key`, publishing through `connection`;
    /// messages larger than `maxMessageBytes` (default 16 MiB) are refused.
    #[napi(constructor, catch_unwind)]
    pub fn new(connection: &Connection, key: String, nsp: String, max_message_bytes: Option<f64>) -> Self {
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let limits = Limits { max_message_bytes: max_message_bytes.map_or(Limits::default().max_message_bytes, |max| max as usize), ..Limits::default() };
        NativeEmitter { emitter: Emitter::new(transport, &key, &nsp).with_limits(limits) }
    }

    /// Publishes a broadcast: `packetAndOpts` is notepack's encoding of `[packet, opts]`, `room`
    /// the single target room when there is exactly one.
    #[napi(catch_unwind)]
    pub fn broadcast(&self, room: Option<String>, packet_and_opts: &[u8]) -> Result<()> {
        self.emitter.emit_encoded(room.as_deref(), packet_and_opts).map_err(js_error)
    }

    /// `socketsJoin` (`join`) or `socketsLeave`; arguments are JSON arrays.
    #[napi(catch_unwind)]
    pub fn change_rooms(&self, join: bool, rooms: String, except: String, target_rooms: String) -> Result<()> {
        change_rooms(&self.emitter, join, rooms, except, target_rooms)
    }

    /// `disconnectSockets(close)`; `rooms`/`except` are JSON arrays.
    #[napi(catch_unwind)]
    pub fn disconnect_sockets(&self, rooms: String, except: String, close: bool) -> Result<()> {
        with_targets(rooms, except, |t| self.emitter.disconnect_sockets(t, close))
    }

    /// `serverSideEmit(...)`; `data` is `[event, ...args]` as JSON.
    #[napi(catch_unwind)]
    pub fn server_side_emit(&self, data: String) -> Result<()> {
        server_side_emit(&self.emitter, data)
    }
}

/// Options of one namespace's sharded engine (validated by the JS layer).
#[napi(object)]
pub struct ShardedEngineOptions {
    /// Channel prefix (`channelPrefix`).
    pub channel_prefix: String,
    /// This node's uid, made by socket.io-adapter's ClusterAdapter.
    pub uid: String,
    /// `static`, `dynamic` or `dynamic-private`.
    pub subscription_mode: String,
    /// What the engine accepts from other nodes.
    pub limits: LimitOptions,
}

/// Counters of a [`ShardedEngine`]: messages dropped, by reason.
#[napi(object)]
pub struct ShardedEngineStats {
    /// Malformed messages dropped.
    pub malformed: f64,
    /// Messages over `maxMessageBytes`.
    pub too_large: f64,
    /// Messages over `maxMessageValues` or `maxMessageDepth`.
    pub too_complex: f64,
    /// Messages dropped because the event loop did not take them in time (receive buffer full).
    pub dropped: f64,
}

/// One namespace's engine of the sharded adapter: channels, SSUBSCRIBE/SPUBLISH and delivery
/// of ClusterAdapter messages (records of kind 3: a message, 4: a response to this node).
#[napi]
pub struct ShardedEngine {
    adapter: ShardedAdapter,
    host: Arc<NodeHost>,
}

#[napi]
impl ShardedEngine {
    /// Joins the cluster through `connection` (made with `sharded: true`) for namespace `nsp`.
    #[napi(constructor, catch_unwind)]
    pub fn new(connection: &Connection, nsp: String, options: ShardedEngineOptions, on_batch: BatchCallback<'_>, on_event: EventCallback<'_>) -> Result<Self> {
        let mode = SubscriptionMode::parse(&options.subscription_mode).map_err(js_error)?;
        let limits = options.limits.to_limits()?;
        let host = NodeHost::new(&limits, on_batch, on_event)?;
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let adapter = within_runtime_if_available(|| ShardedAdapter::new(&nsp, &options.channel_prefix, &options.uid, mode, limits, transport, host.clone()));
        Ok(ShardedEngine { adapter, host })
    }

    /// Messages dropped since creation, by reason.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> ShardedEngineStats {
        let s = self.adapter.stats();
        ShardedEngineStats {
            malformed: s.malformed as f64,
            too_large: s.too_large as f64,
            too_complex: s.too_complex as f64,
            dropped: self.host.dropped.load(Ordering::Relaxed) as f64,
        }
    }

    /// Asks for the next batch after one delivered with `more` set.
    #[napi(catch_unwind)]
    pub fn more(&self) {
        self.host.schedule();
    }

    /// Publishes an encoded ClusterAdapter message on the main channel, or on `room`'s.
    #[napi(catch_unwind)]
    pub fn publish(&self, room: Option<String>, payload: &[u8]) -> Result<()> {
        self.adapter.publish(room.as_deref(), payload.to_vec()).map_err(js_error)
    }

    /// Publishes an encoded response to the node `requester`.
    #[napi(catch_unwind)]
    pub fn publish_response(&self, requester: String, payload: &[u8]) -> Result<()> {
        self.adapter.publish_response(&requester, payload.to_vec()).map_err(js_error)
    }

    /// Subscribes `room`'s channel (dynamic modes).
    #[napi(catch_unwind)]
    pub fn room_created(&self, room: String) {
        self.adapter.room_created(&room);
    }

    /// Unsubscribes `room`'s channel.
    #[napi(catch_unwind)]
    pub fn room_deleted(&self, room: String) {
        self.adapter.room_deleted(&room);
    }

    /// Resolves once the rooms reported so far are subscribed.
    #[napi(catch_unwind)]
    pub async fn rooms_synced(&self) {
        self.adapter.rooms_synced().await;
    }

    /// Nodes serving the namespace (`PUBSUB SHARDNUMSUB` of the main channel).
    #[napi(catch_unwind)]
    pub async fn server_count(&self) -> Result<u32> {
        self.adapter.server_count().await.map(|n| n as u32).map_err(js_error)
    }

    /// Unsubscribes everything.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        self.adapter.close().await.map_err(js_error)
    }
}
