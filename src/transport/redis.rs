//! The Redis transport: one publishing and one subscribing connection, both reconnecting.
//!
//! Publishing is a synchronous enqueue into a bounded queue; a task drains it into pipelines
//! (one round trip for many PUBLISH commands). While Redis is away the current pipeline is
//! retried with backoff and new messages wait in the queue; when the queue is full, publishes
//! fail at once and are counted as dropped, so memory stays bounded.
//!
//! Subscribing uses a RESP3 connection manager with automatic resubscription: after a
//! reconnect every channel and pattern is subscribed again by the redis crate. A health task
//! pings the subscriber every second, which both notices an outage and triggers the
//! reconnection, and reports [`TransportEvent::Error`] / [`TransportEvent::Ready`] transitions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, Notify};

use super::{BoxFuture, Inbound, Router, Subscriber, Subscription, Transport, TransportEvent};
use crate::config::RedisConfig;
use crate::error::{redact, Error};

/// Most PUBLISH commands sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// Time between two health checks of the subscriber connection.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How long `close()` keeps trying to send what is still queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Counters of the transport, readable at any time.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages handed to Redis.
    pub published: AtomicU64,
    /// Messages refused because the queue was full or the transport closed.
    pub dropped: AtomicU64,
    /// Messages received from Redis.
    pub received: AtomicU64,
    /// Messages accepted by `publish` and not yet sent or dropped.
    pub pending: AtomicU64,
}

/// A connection pair to one Redis server.
pub struct RedisTransport {
    queue: mpsc::Sender<(String, Vec<u8>)>,
    publisher: ConnectionManager,
    subscriber: ConnectionManager,
    router: Arc<Router>,
    stats: Arc<TransportStats>,
    closed: Arc<AtomicBool>,
    shutdown: Arc<Notify>,
}

impl RedisTransport {
    /// Prepares both connections and starts the background tasks. Returns without waiting for
    /// Redis: if it cannot be reached, the subscribers get [`TransportEvent::Error`] and the
    /// connections keep retrying. Must be called within a tokio runtime.
    pub fn connect(config: &RedisConfig) -> Result<Self, Error> {
        let client = |resp3: bool| -> Result<redis::Client, Error> {
            let mut info: redis::ConnectionInfo = config.url.as_str().into_connection_info().map_err(|e| invalid_url(&config.url, e))?;
            if resp3 {
                let redis_settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
                info = info.set_redis_settings(redis_settings);
            }
            redis::Client::open(info).map_err(|e| invalid_url(&config.url, e))
        };
        let manager_config = || {
            ConnectionManagerConfig::new()
                .set_number_of_retries(4)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(2))
                .set_connection_timeout(Some(Duration::from_secs(2)))
        };
        // Pushes are handled where the redis crate hands them over, without another channel hop:
        // routing and validation are cheap, and hosts batch what they receive themselves.
        let router = Arc::new(Router::default());
        let stats = Arc::new(TransportStats::default());
        let on_push = {
            let (router, stats) = (router.clone(), stats.clone());
            move |push: PushInfo| -> Result<(), ()> {
                handle_push(push, &router, &stats);
                Ok(())
            }
        };
        let subscriber = ConnectionManager::new_lazy_with_config(client(true)?, manager_config().set_push_sender(on_push).set_automatic_resubscription())?;
        let publisher = ConnectionManager::new_lazy_with_config(client(false)?, manager_config())?;
        let (queue, queue_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let transport = RedisTransport {
            queue,
            publisher,
            subscriber,
            router,
            stats,
            closed: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(Notify::new()),
        };
        tokio::spawn(publish_loop(queue_rx, transport.publisher.clone(), transport.router.clone(), transport.stats.clone(), transport.closed.clone()));
        tokio::spawn(health_loop(transport.subscriber.clone(), transport.router.clone(), transport.stats.clone(), transport.closed.clone(), transport.shutdown.clone()));
        Ok(transport)
    }

    /// Counters: published, dropped, received.
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }
}

use redis::IntoConnectionInfo;

fn invalid_url(url: &str, err: redis::RedisError) -> Error {
    Error::InvalidOption { option: "url", reason: format!("{} ({})", redact(&err.to_string()), redact(url)) }
}

/// Routes one push from the subscriber connection: messages to their subscriber, a lost
/// connection to everybody as an event.
fn handle_push(push: PushInfo, router: &Router, stats: &TransportStats) {
    match push.kind {
        PushKind::Message | PushKind::PMessage => {
            if let Some(entry) = into_message(push) {
                stats.received.fetch_add(1, Ordering::Relaxed);
                router.deliver(vec![entry]);
            }
        }
        PushKind::Disconnection => router.broadcast_event(&TransportEvent::Error("connection to Redis lost; reconnecting".into())),
        _ => {}
    }
}

/// `message`: [channel, payload]; `pmessage`: [pattern, channel, payload]. The route is the
/// pattern for pattern messages and the channel otherwise.
fn into_message(push: PushInfo) -> Option<(String, Inbound)> {
    let mut data = push.data.into_iter();
    let bytes = |v: Option<Value>| match v {
        Some(Value::BulkString(b)) => Some(b),
        Some(Value::SimpleString(s)) => Some(s.into_bytes()),
        _ => None,
    };
    let route = if push.kind == PushKind::PMessage { Some(bytes(data.next())?) } else { None };
    let channel = bytes(data.next())?;
    let payload = bytes(data.next())?;
    let route = String::from_utf8_lossy(route.as_ref().unwrap_or(&channel)).into_owned();
    Some((route, Inbound { channel, payload }))
}

/// Drains the queue into pipelines; a failed pipeline is retried until it goes through, so
/// messages queued during an outage are sent once Redis is back. After `close()` a failing
/// pipeline is given [`CLOSE_GRACE`] and then dropped (and counted).
async fn publish_loop(
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
    mut conn: ConnectionManager,
    router: Arc<Router>,
    stats: Arc<TransportStats>,
    closed: Arc<AtomicBool>,
) {
    let mut messages = Vec::with_capacity(MAX_PIPELINE);
    while rx.recv_many(&mut messages, MAX_PIPELINE).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &messages {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        let mut delay = Duration::from_millis(50);
        let mut waited_after_close = Duration::ZERO;
        let mut reported = false;
        let sent = loop {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => break true,
                Err(err) if closed.load(Ordering::Acquire) && waited_after_close >= CLOSE_GRACE => {
                    tracing::debug!("dropping {} messages at close: {err}", messages.len());
                    break false;
                }
                Err(err) => {
                    if !reported {
                        router.broadcast_event(&TransportEvent::Error(format!("publish failed, will retry: {}", redact(&err.to_string()))));
                        reported = true;
                    }
                    tokio::time::sleep(delay).await;
                    if closed.load(Ordering::Acquire) {
                        waited_after_close += delay;
                    }
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        };
        let counter = if sent { &stats.published } else { &stats.dropped };
        counter.fetch_add(messages.len() as u64, Ordering::Relaxed);
        stats.pending.fetch_sub(messages.len() as u64, Ordering::AcqRel);
        messages.clear();
    }
}

/// Pings the subscriber connection when it has been quiet for a second, which makes the
/// connection manager reconnect (and resubscribe) after an outage, and reports transitions
/// between up and down. While messages flow the connection is evidently up and is left alone.
async fn health_loop(mut conn: ConnectionManager, router: Arc<Router>, stats: Arc<TransportStats>, closed: Arc<AtomicBool>, shutdown: Arc<Notify>) {
    let mut up: Option<bool> = None;
    let mut last_received = u64::MAX;
    while !closed.load(Ordering::Acquire) {
        let received = stats.received.load(Ordering::Relaxed);
        if received == last_received || up != Some(true) {
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<Value>(&mut conn);
            let result = tokio::select! {
                r = tokio::time::timeout(HEALTH_INTERVAL * 2, ping) => r,
                _ = shutdown.notified() => return,
            };
            let now_up = matches!(result, Ok(Ok(_)));
            if up != Some(now_up) {
                match (&result, up) {
                    (Ok(Ok(_)), Some(false)) => router.broadcast_event(&TransportEvent::Ready),
                    (Ok(Err(e)), _) => router.broadcast_event(&TransportEvent::Error(format!("cannot reach Redis: {}", redact(&e.to_string())))),
                    (Err(_), _) => router.broadcast_event(&TransportEvent::Error("Redis did not answer a PING within 2 s".into())),
                    _ => {}
                }
                up = Some(now_up);
            }
        }
        last_received = received;
        tokio::select! {
            _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
            _ = shutdown.notified() => return,
        }
    }
}

impl Transport for RedisTransport {
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        self.stats.pending.fetch_add(1, Ordering::AcqRel);
        self.queue.try_send((channel, payload)).map_err(|e| {
            self.stats.pending.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => Error::Redis("publish queue full (Redis too slow or unreachable); message dropped".into()),
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            }
        })
    }

    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>> {
        self.router.add(&subscription, &subscriber);
        let mut conn = self.subscriber.clone();
        let closed = self.closed.clone();
        Box::pin(async move {
            let first = subscribe_all(&mut conn, &subscription).await;
            match &first {
                Ok(()) => subscriber.on_event(&TransportEvent::Ready),
                Err(err) => {
                    subscriber.on_event(&TransportEvent::Error(format!("subscribe failed, will retry: {err}")));
                    // Keep trying in the background; the redis crate only tracks subscriptions
                    // that reached the server.
                    tokio::spawn(async move {
                        let mut delay = Duration::from_millis(100);
                        while !closed.load(Ordering::Acquire) {
                            tokio::time::sleep(delay).await;
                            if subscribe_all(&mut conn, &subscription).await.is_ok() {
                                subscriber.on_event(&TransportEvent::Ready);
                                return;
                            }
                            delay = (delay * 2).min(Duration::from_secs(2));
                        }
                    });
                }
            }
            first
        })
    }

    fn unsubscribe(&self, subscription: Subscription) -> BoxFuture<'_, Result<(), Error>> {
        self.router.remove(&subscription);
        let mut conn = self.subscriber.clone();
        Box::pin(async move {
            if !subscription.patterns.is_empty() {
                conn.punsubscribe(&subscription.patterns).await?;
            }
            if !subscription.channels.is_empty() {
                conn.unsubscribe(&subscription.channels).await?;
            }
            Ok(())
        })
    }

    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        let mut conn = self.publisher.clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            let reply: Vec<(String, i64)> = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut conn).await?;
            Ok(reply.first().map(|(_, n)| (*n).max(0) as usize).unwrap_or(0))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        let stats = self.stats.clone();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + CLOSE_GRACE * 2;
            while stats.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }
}

async fn subscribe_all(conn: &mut ConnectionManager, subscription: &Subscription) -> Result<(), Error> {
    if !subscription.patterns.is_empty() {
        conn.psubscribe(&subscription.patterns).await?;
    }
    if !subscription.channels.is_empty() {
        conn.subscribe(&subscription.channels).await?;
    }
    Ok(())
}
