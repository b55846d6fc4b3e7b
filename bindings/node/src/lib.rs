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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{within_runtime_if_available, Buffer, Function, Uint32Array};
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error as JsError, Result, Status};
use napi_derive::napi;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::transport::Transport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, Host, RedisConfig};

fn js_error(err: sioadapter::Error) -> JsError {
    JsError::new(Status::GenericFailure, err.to_string())
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
}

#[napi]
impl Connection {
    /// Connects (lazily, retrying in the background) to the Redis at `url`. At most
    /// `maxQueuedPublishes` messages wait while Redis is unreachable.
    #[napi(constructor, catch_unwind)]
    pub fn new(url: String, max_queued_publishes: Option<u32>) -> Result<Self> {
        let mut config = RedisConfig::from_url(&url).map_err(js_error)?;
        if let Some(max) = max_queued_publishes {
            config.max_queued_publishes = max as usize;
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
}

/// Counters of an [`Engine`].
#[napi(object)]
pub struct EngineStats {
    /// Broadcasts published.
    pub published: f64,
    /// Broadcasts from other nodes delivered to JS.
    pub delivered: f64,
    /// Malformed messages dropped.
    pub malformed: f64,
    /// Single-room broadcasts skipped (no local socket in the room).
    pub skipped: f64,
}

type BatchFn = ThreadsafeFunction<Vec<Delivery>, (), napi::bindgen_prelude::FnArgs<(Buffer, Uint32Array)>, Status, false, true>;
type EventFn = ThreadsafeFunction<(String, String), (), napi::bindgen_prelude::FnArgs<(String, String)>, Status, false, true>;

/// Delivers the engine's output to JS through weak thread-safe functions.
struct NodeHost {
    on_batch: BatchFn,
    on_event: EventFn,
}

impl Host for NodeHost {
    fn deliver(&self, batch: Vec<Delivery>) {
        self.on_batch.call(batch, ThreadsafeFunctionCallMode::NonBlocking);
    }

    fn on_event(&self, event: AdapterEvent) {
        let payload = match event {
            AdapterEvent::Ready => ("ready".to_owned(), String::new()),
            AdapterEvent::Error(err) => ("error".to_owned(), err.to_string()),
        };
        self.on_event.call(payload, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// Concatenates a batch into one buffer plus the end offset of each message.
fn pack(ctx: ThreadsafeCallContext<Vec<Delivery>>) -> Result<napi::bindgen_prelude::FnArgs<(Buffer, Uint32Array)>> {
    let total = ctx.value.iter().map(|d| d.bytes().len()).sum();
    let mut data = Vec::with_capacity(total);
    let mut ends = Vec::with_capacity(ctx.value.len());
    for delivery in &ctx.value {
        data.extend_from_slice(delivery.bytes());
        ends.push(data.len() as u32);
    }
    Ok((Buffer::from(data), Uint32Array::new(ends)).into())
}

/// One namespace's engine.
#[napi]
pub struct Engine {
    adapter: Adapter,
}

#[napi]
impl Engine {
    /// Creates the engine of namespace `nsp` on `connection`. `onBatch(data, ends)` receives
    /// broadcasts from other nodes; `onEvent(kind, message)` receives `ready` and `error`.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        connection: &Connection,
        nsp: String,
        options: EngineOptions,
        on_batch: Function<'_, napi::bindgen_prelude::FnArgs<(Buffer, Uint32Array)>, ()>,
        on_event: Function<'_, napi::bindgen_prelude::FnArgs<(String, String)>, ()>,
    ) -> Result<Self> {
        let on_batch: BatchFn = on_batch.build_threadsafe_function::<Vec<Delivery>>().weak::<true>().callee_handled::<false>().build_callback(pack)?;
        let on_event: EventFn = on_event
            .build_threadsafe_function::<(String, String)>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<(String, String)>| Ok(ctx.value.into()))?;
        let config = AdapterConfig::default()
            .with_key(&options.key)
            .with_requests_timeout(Duration::from_millis(options.requests_timeout.max(0.0) as u64))
            .with_specific_response_channel(options.publish_on_specific_response_channel);
        let host = Arc::new(NodeHost { on_batch, on_event });
        let transport: Arc<dyn Transport> = connection.transport.clone();
        let adapter = within_runtime_if_available(|| Adapter::new(&nsp, &config, transport, host));
        Ok(Engine { adapter })
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
        EngineStats { published: s.published as f64, delivered: s.delivered as f64, malformed: s.malformed as f64, skipped: s.skipped as f64 }
    }

    /// Unsubscribes this namespace.
    #[napi(catch_unwind)]
    pub async fn close(&self) -> Result<()> {
        self.adapter.close().await.map_err(js_error)
    }
}
