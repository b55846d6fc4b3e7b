//! The Redis transport: one publishing and one subscribing connection, both reconnecting.
//!
//! Publishing is a synchronous enqueue into a bounded queue; a task drains it into pipelines
//! (one round trip for many PUBLISH commands). When Redis goes away the current pipeline is
//! kept and new messages wait in the queue; once the subscriber has resubscribed (plus a short
//! grace for the other nodes to do the same) the queue is flushed. When the queue is full,
//! publishes fail at once and are counted as dropped, so memory stays bounded.
//!
//! Subscribing uses a RESP3 connection manager with automatic resubscription: after a
//! reconnect every channel and pattern is subscribed again by the redis crate, and the
//! confirmations mark the link up ([`TransportEvent::Ready`]). A health task pings the
//! subscriber when it is quiet, which both notices an outage ([`TransportEvent::Error`]) and
//! makes the connection manager try again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, watch, Notify};

use super::cluster::{ClusterSpec, ClusterView};
use super::connections::{into_message, Conns, OnPush};
use super::locate::Locate;
use super::sentinel::SentinelSpec;
use super::{BoxFuture, Router, Subscriber, Subscription, Transport, TransportEvent};
use crate::config::RedisConfig;
use crate::error::Error;

/// Most PUBLISH commands sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// Time between two health checks of the subscriber connection.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How long publishing waits, after this node resubscribed following an outage, for the other
/// nodes to resubscribe too.
const RESUBSCRIBE_GRACE: Duration = Duration::from_millis(300);
/// How long `close()` keeps trying to send what is still queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a subscription waits for the first server (Sentinel, cluster) before it reports
/// an error and is left to the retries.
const FIRST_SERVER_WAIT: Duration = Duration::from_secs(3);
/// Time between two questions to Sentinel or the cluster about the primary to use.
const LOCATE_INTERVAL: Duration = Duration::from_secs(1);

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

/// Whether the subscriber connection is up with its subscriptions in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    /// Not connected yet.
    Initial,
    /// Subscribed.
    Up,
    /// Lost or unreachable; the connection manager is reconnecting.
    Down,
}

/// What every task of a transport shares.
struct Link {
    router: Router,
    stats: Arc<TransportStats>,
    state: watch::Sender<LinkState>,
    closed: AtomicBool,
    /// Wakes the health loop and subscribe retries at close.
    shutdown: Notify,
    /// Wakes the publish loop once everything queued was sent (or given up) at close.
    stop_publisher: Notify,
    /// The connection pair in use: `None` before Sentinel named a primary, and after close.
    /// Replaced when Sentinel names another primary.
    conns: watch::Sender<Option<Conns>>,
    /// Every pattern and channel subscribed, to subscribe again on a new connection pair and to
    /// tell what the redis crate should not have resubscribed.
    subscribed: std::sync::Mutex<Wanted>,
    /// Why the link went down last.
    last_error: std::sync::Mutex<String>,
    /// Pairs opened so far.
    generations: AtomicU64,
}

/// The patterns and channels the subscribers asked for, as sets.
#[derive(Default)]
struct Wanted {
    patterns: HashSet<String>,
    channels: HashSet<String>,
}

impl Wanted {
    fn add(&mut self, subscription: &Subscription) {
        self.patterns.extend(subscription.patterns.iter().cloned());
        self.channels.extend(subscription.channels.iter().cloned());
    }

    fn remove(&mut self, subscription: &Subscription) {
        for p in &subscription.patterns {
            self.patterns.remove(p);
        }
        for c in &subscription.channels {
            self.channels.remove(c);
        }
    }

    /// The part of `subscription` still wanted.
    fn filter(&self, subscription: &Subscription) -> Subscription {
        Subscription {
            patterns: subscription.patterns.iter().filter(|p| self.patterns.contains(*p)).cloned().collect(),
            channels: subscription.channels.iter().filter(|c| self.channels.contains(*c)).cloned().collect(),
        }
    }

    /// Everything, as one subscription.
    fn all(&self) -> Subscription {
        Subscription { patterns: self.patterns.iter().cloned().collect(), channels: self.channels.iter().cloned().collect() }
    }
}

impl Link {
    /// Marks the link down (reporting `why` once per outage; subscribers arriving during the
    /// outage hear it when they subscribe).
    fn down(&self, why: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why.clone();
        if self.state.send_replace(LinkState::Down) != LinkState::Down {
            self.router.broadcast_event(&TransportEvent::Error(why));
        }
    }

    /// Like [`Link::down`], for news about the pair of `generation`: ignored once that pair was
    /// replaced.
    fn down_from(&self, generation: u64, why: String) {
        if self.conns.borrow().as_ref().is_some_and(|c| c.generation() == generation) {
            self.down(why);
        }
    }

    /// Marks the link up; after an outage every subscriber hears [`TransportEvent::Ready`].
    fn up(&self) {
        if self.state.send_replace(LinkState::Up) == LinkState::Down {
            self.router.broadcast_event(&TransportEvent::Ready);
        }
    }

    /// The connection pair in use, waiting for the first one; [`Error::Closed`] once closed
    /// without one.
    async fn current(&self) -> Result<Conns, Error> {
        let mut conns = self.conns.subscribe();
        loop {
            if let Some(current) = conns.borrow_and_update().clone() {
                return Ok(current);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            if conns.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// The part of `subscription` that is still subscribed (not unsubscribed since).
    fn still_wanted(&self, subscription: &Subscription) -> Subscription {
        self.subscribed.lock().unwrap_or_else(|p| p.into_inner()).filter(subscription)
    }

    /// Subscribes `conns` to every pattern and channel wanted now (new connections, or sharded
    /// ones after an outage: subscribing again what is subscribed changes nothing).
    async fn subscribe_everything(&self, conns: &mut Conns) -> Result<(), Error> {
        let everything = self.subscribed.lock().unwrap_or_else(|p| p.into_inner()).all();
        conns.subscribe(&everything).await
    }

    /// Puts `conns` in use, unless the transport closed meanwhile (they are then dropped, which
    /// closes them). False when closed.
    fn install(&self, conns: Conns) -> bool {
        let closed = self.closed.load(Ordering::Acquire);
        if !closed {
            self.conns.send_replace(Some(conns));
        }
        !closed
    }

    /// The connection pair in use, if there is one now.
    fn current_now(&self) -> Option<Conns> {
        self.conns.borrow().clone()
    }
}

/// A connection pair to one Redis server.
pub struct RedisTransport {
    queue: mpsc::Sender<(String, Vec<u8>)>,
    link: Arc<Link>,
    /// With a Redis Cluster: its primaries, to count subscribers on all of them.
    cluster: Option<Arc<ClusterView>>,
}

impl RedisTransport {
    /// Prepares both connections and starts the background tasks. Returns without waiting for
    /// Redis: if it cannot be reached, the subscribers get [`TransportEvent::Error`] and the
    /// connections keep retrying. Must be called within a tokio runtime.
    pub fn connect(config: &RedisConfig) -> Result<Self, Error> {
        // rustls needs one process-wide crypto provider; another library may have set it already.
        static PROVIDER: std::sync::Once = std::sync::Once::new();
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut cluster = None;
        let mut sharded_seeds = None;
        let locator: Option<Box<dyn Locate>> = match (SentinelSpec::parse(&config.url).transpose()?, ClusterSpec::parse(&config.url).transpose()?) {
            (Some(sentinel), _) => Some(Box::new(sentinel)),
            // Sharded pub/sub on a cluster: the redis crate's cluster connection routes by slot.
            (None, Some(spec)) if config.sharded => {
                sharded_seeds = Some(spec.seeds.iter().map(|addr| spec.node_url(addr)).collect::<Vec<_>>());
                None
            }
            (None, Some(spec)) => {
                cluster = Some(spec.view());
                Some(Box::new(spec))
            }
            (None, None) => None,
        };
        if (locator.is_some() || sharded_seeds.is_some()) && config.tls_ca_pem.is_some() {
            return Err(Error::InvalidOption { option: "url", reason: "TLS with Sentinel or Redis Cluster is not supported".into() });
        }
        let link = Arc::new(Link {
            router: Router::default(),
            stats: Arc::new(TransportStats::default()),
            state: watch::Sender::new(LinkState::Initial),
            closed: AtomicBool::new(false),
            shutdown: Notify::new(),
            stop_publisher: Notify::new(),
            conns: watch::Sender::new(None),
            subscribed: std::sync::Mutex::new(Wanted::default()),
            last_error: std::sync::Mutex::new(String::new()),
            generations: AtomicU64::new(0),
        });
        let (queue, queue_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        match (locator, sharded_seeds) {
            (Some(locator), _) => {
                tokio::spawn(follow(locator, config.clone(), link.clone()));
            }
            (None, Some(seeds)) => {
                tokio::spawn(connect_sharded(seeds, link.clone()));
            }
            (None, None) => {
                link.conns.send_replace(Some(open_pair(config, &link)?));
            }
        }
        tokio::spawn(publish_loop(queue_rx, link.clone()));
        tokio::spawn(health_loop(link.clone()));
        Ok(RedisTransport { queue, link, cluster })
    }

    /// Counters: published, dropped, received, pending.
    pub fn stats(&self) -> &TransportStats {
        &self.link.stats
    }
}

/// Both connections to the server at `config.url` (lazy: nothing is sent yet). Pushes of the
/// subscriber are handled where the redis crate hands them over, without another channel hop:
/// routing and validation are cheap, and hosts batch what they receive themselves.
fn open_pair(config: &RedisConfig, link: &Arc<Link>) -> Result<Conns, Error> {
    let generation = link.generations.fetch_add(1, Ordering::AcqRel) + 1;
    Conns::open_pair(config, generation, push_handler(link, generation))
}

/// Where the pushes of the connections of `generation` go.
fn push_handler(link: &Arc<Link>, generation: u64) -> OnPush {
    let link = link.clone();
    Box::new(move |push| handle_push(push, &link, generation))
}

/// Sharded pub/sub: connects to the cluster of `seeds` (retrying while it cannot be reached)
/// and puts the connection in use. The redis crate then follows the cluster's topology itself.
async fn connect_sharded(seeds: Vec<String>, link: Arc<Link>) {
    let mut delay = Duration::from_millis(100);
    while !link.closed.load(Ordering::Acquire) {
        let generation = link.generations.fetch_add(1, Ordering::AcqRel) + 1;
        match Conns::open_sharded(seeds.clone(), generation, push_handler(&link, generation)).await {
            Ok(mut conns) => {
                match link.subscribe_everything(&mut conns).await {
                    Ok(()) => {
                        if link.install(conns) {
                            link.up();
                        }
                        return;
                    }
                    Err(err) => link.down(format!("cannot subscribe on the Redis Cluster: {}", err.detail())),
                }
            }
            Err(err) => link.down(format!("cannot connect to the Redis Cluster: {}", err.detail())),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = link.shutdown.notified() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Follows the server the locator names (Sentinel's primary, a cluster primary): asks every
/// [`LOCATE_INTERVAL`], and when the answer changes (first lookup, failover) opens a connection
/// pair there, subscribes it to everything subscribed so far and puts it in use. Publishing
/// waits meanwhile, as during an outage.
async fn follow(mut locator: Box<dyn Locate>, config: RedisConfig, link: Arc<Link>) {
    let mut primary: Option<String> = None;
    while !link.closed.load(Ordering::Acquire) {
        match locator.locate(primary.as_deref()).await {
            Ok(addr) if primary.as_ref() != Some(&addr) => {
                let node = RedisConfig { url: locator.node_url(&addr), ..config.clone() };
                match open_pair(&node, &link) {
                    Ok(mut conns) => {
                        if primary.is_some() {
                            link.down(format!("moving to the new primary {addr}"));
                        }
                        match link.subscribe_everything(&mut conns).await {
                            Ok(()) => {
                                primary = Some(addr);
                                if !link.install(conns) {
                                    return;
                                }
                                link.up();
                            }
                            Err(err) => link.down(format!("cannot subscribe on the primary {addr}: {}", err.detail())),
                        }
                    }
                    Err(err) => link.down(err.detail()),
                }
            }
            Ok(_) => {}
            Err(err) => link.down(err.detail()),
        }
        tokio::select! {
            _ = tokio::time::sleep(LOCATE_INTERVAL) => {}
            _ = link.shutdown.notified() => return,
        }
    }
}

/// Routes one push from the subscriber connection: messages to their subscriber; a lost
/// connection and the subscription confirmations after a reconnect change the link state.
fn handle_push(push: PushInfo, link: &Link, generation: u64) {
    match push.kind {
        PushKind::Message | PushKind::PMessage | PushKind::SMessage => {
            if let Some(entry) = into_message(push) {
                link.stats.received.fetch_add(1, Ordering::Relaxed);
                link.router.deliver(vec![entry]);
            }
        }
        PushKind::Disconnection => link.down_from(generation, "connection to Redis lost; reconnecting".into()),
        PushKind::Subscribe | PushKind::PSubscribe => {
            link.up();
            drop_unwanted(&push, link);
        }
        // Sharded: one channel's confirmation says nothing of the other shards; the link is up
        // once every channel is subscribed again (see `health_loop`).
        PushKind::SSubscribe => drop_unwanted(&push, link),
        _ => {}
    }
}

/// The redis crate resubscribes, after a reconnect, whatever Redis last confirmed, so a channel
/// or pattern whose UNSUBSCRIBE was lost in an outage comes back. Such confirmations are
/// answered with an unsubscribe here.
fn drop_unwanted(push: &PushInfo, link: &Link) {
    let Some(Value::BulkString(name)) = push.data.first() else { return };
    let name = String::from_utf8_lossy(name);
    let pattern = push.kind == PushKind::PSubscribe;
    let wanted = {
        let all = link.subscribed.lock().unwrap_or_else(|p| p.into_inner());
        if pattern { all.patterns.contains(name.as_ref()) } else { all.channels.contains(name.as_ref()) }
    };
    if wanted {
        return;
    }
    let (Some(mut conns), Ok(runtime)) = (link.current_now(), tokio::runtime::Handle::try_current()) else { return };
    let name = name.into_owned();
    let unwanted = if pattern { Subscription { patterns: vec![name.clone()], channels: Vec::new() } } else { Subscription { patterns: Vec::new(), channels: vec![name.clone()] } };
    runtime.spawn(async move {
        if let Err(err) = conns.unsubscribe(&unwanted).await {
            tracing::debug!("unsubscribing {name} again failed: {err}");
        }
    });
}

/// Drains the queue into pipelines. A failed pipeline is kept: messages wait (in the bounded
/// queue) until Redis is back, and are sent once this node's subscriber has resubscribed plus a
/// short grace period, so that the other nodes, reconnecting at the same time, are subscribed
/// again too (Redis drops messages nobody is subscribed to). After `close()` a failing pipeline
/// is given [`CLOSE_GRACE`] and then dropped (and counted).
async fn publish_loop(mut rx: mpsc::Receiver<(String, Vec<u8>)>, link: Arc<Link>) {
    let mut messages = Vec::with_capacity(MAX_PIPELINE);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut messages, MAX_PIPELINE) => if received == 0 { return },
            _ = link.stop_publisher.notified() => return,
        }
        let mut waited_after_close = Duration::ZERO;
        let mut failed = false;
        if *link.state.borrow() == LinkState::Down && !link.router.is_empty() {
            // A known outage: the connection manager would send as soon as Redis accepts
            // connections again, before anybody has resubscribed.
            wait_for_resubscription(&link).await;
        }
        let sent = loop {
            let result = match link.current().await {
                Ok(mut conns) => conns.publish(&messages).await,
                Err(err) => Err(err),
            };
            match result {
                Err(Error::Closed) => break false,
                Ok(()) => break true,
                Err(err) if link.closed.load(Ordering::Acquire) && waited_after_close >= CLOSE_GRACE => {
                    tracing::debug!("dropping {} messages at close: {err}", messages.len());
                    break false;
                }
                Err(err) => {
                    if !failed {
                        link.router.broadcast_event(&TransportEvent::Error(format!("publish failed, will retry: {}", err.detail())));
                        failed = true;
                    }
                    let waited = wait_for_resubscription(&link).await;
                    if link.closed.load(Ordering::Acquire) {
                        waited_after_close += waited;
                    }
                }
            }
        };
        let counter = if sent { &link.stats.published } else { &link.stats.dropped };
        counter.fetch_add(messages.len() as u64, Ordering::Relaxed);
        link.stats.pending.fetch_sub(messages.len() as u64, Ordering::AcqRel);
        messages.clear();
    }
}

/// After a failed publish: waits until the subscriber is up again (when there are
/// subscriptions; at most 10 s), then [`RESUBSCRIBE_GRACE`]. Returns the time waited.
async fn wait_for_resubscription(link: &Link) -> Duration {
    let started = tokio::time::Instant::now();
    if link.router.is_empty() || link.closed.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        return started.elapsed();
    }
    let mut state = link.state.subscribe();
    if *state.borrow() == LinkState::Up {
        // The publisher noticed first: give the subscriber a moment to notice too.
        let _ = tokio::time::timeout(Duration::from_millis(200), state.wait_for(|s| *s != LinkState::Up)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| *s == LinkState::Up)).await;
    tokio::time::sleep(RESUBSCRIBE_GRACE).await;
    started.elapsed()
}

/// Sharded pub/sub after an outage: the redis crate resubscribes the channels of the shards it
/// reconnects to, but a failover can leave channels unsubscribed (those of the failed primary,
/// and, when the crate rebuilt its connections meanwhile, others). Everything wanted is
/// subscribed again (SSUBSCRIBE of a subscribed channel changes nothing); the link is up once
/// every channel is, otherwise the next health check tries again.
async fn resubscribe_sharded(conns: &mut Conns, link: &Link) {
    match link.subscribe_everything(conns).await {
        Ok(()) => link.up(),
        Err(err) => tracing::debug!("sharded resubscription incomplete, retrying: {err}"),
    }
}

/// Pings the subscriber connection when it has been quiet for a second, which makes the
/// connection manager reconnect (and resubscribe) after an outage, and marks the link down when
/// Redis does not answer. While messages flow the connection is evidently up and is left alone.
///
/// On a Redis Cluster with sharded pub/sub it also watches the slot map (`CLUSTER SLOTS`, one
/// cheap command a second): when a failover or resharding changes it, every wanted channel is
/// subscribed again on its new owner, since the redis crate can resubscribe before the cluster
/// has settled (e.g. on the replica about to be promoted) and lose them afterwards.
async fn health_loop(link: Arc<Link>) {
    let mut last_received = u64::MAX;
    let mut slot_map: Option<Value> = None;
    while !link.closed.load(Ordering::Acquire) {
        let received = link.stats.received.load(Ordering::Relaxed);
        // No connections yet (Sentinel, cluster lookup in progress): nothing to check.
        if let Some(mut conns) = link.current_now() {
            if conns.is_sharded() {
                if let Ok(Some(slots)) = tokio::time::timeout(HEALTH_INTERVAL, conns.slot_map()).await {
                    if slot_map.as_ref().is_some_and(|known| *known != slots) {
                        resubscribe_sharded(&mut conns, &link).await;
                    }
                    slot_map = Some(slots);
                }
            }
            if received == last_received || *link.state.borrow() != LinkState::Up {
                let generation = conns.generation();
                let result = tokio::select! {
                    r = tokio::time::timeout(HEALTH_INTERVAL * 2, conns.ping()) => r,
                    _ = link.shutdown.notified() => return,
                };
                match result {
                    Ok(Ok(_)) if conns.is_sharded() && *link.state.borrow() == LinkState::Down => resubscribe_sharded(&mut conns, &link).await,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => link.down_from(generation, format!("cannot reach Redis: {}", e.detail())),
                    Err(_) => link.down_from(generation, "Redis did not answer a PING within 2 s".into()),
                }
            }
        }
        last_received = received;
        tokio::select! {
            _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
            _ = link.shutdown.notified() => return,
        }
    }
}

impl Transport for RedisTransport {
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        let stats = &self.link.stats;
        if self.link.closed.load(Ordering::Acquire) {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        stats.pending.fetch_add(1, Ordering::AcqRel);
        self.queue.try_send((channel, payload)).map_err(|e| {
            stats.pending.fetch_sub(1, Ordering::AcqRel);
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => Error::Overloaded("publish queue full (Redis too slow or unreachable); message dropped".into()),
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            }
        })
    }

    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>> {
        self.link.router.add(&subscription, &subscriber);
        self.link.subscribed.lock().unwrap_or_else(|p| p.into_inner()).add(&subscription);
        if *self.link.state.borrow() == LinkState::Down {
            // The outage was reported before this subscriber was there to hear it.
            let why = self.link.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            subscriber.on_event(&TransportEvent::Error(why));
        }
        let link = self.link.clone();
        Box::pin(async move {
            // Without a server yet (Sentinel or the cluster not answering) the subscription is
            // left to the retries below and to the replay when a server is found.
            let first = match tokio::time::timeout(FIRST_SERVER_WAIT, link.current()).await {
                Ok(Ok(mut conns)) => conns.subscribe(&subscription).await,
                Ok(Err(err)) => Err(err),
                Err(_) => Err(Error::Redis(format!("no Redis server found yet: {}", link.last_error.lock().unwrap_or_else(|p| p.into_inner())))),
            };
            match &first {
                Ok(()) => subscriber.on_event(&TransportEvent::Ready),
                Err(Error::Closed) => {}
                Err(err) => {
                    subscriber.on_event(&TransportEvent::Error(format!("subscribe failed, will retry: {}", err.detail())));
                    // Keep trying in the background; the redis crate only tracks subscriptions
                    // that reached the server.
                    tokio::spawn(async move {
                        let mut delay = Duration::from_millis(100);
                        while !link.closed.load(Ordering::Acquire) {
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = link.shutdown.notified() => return,
                            }
                            let Some(mut conns) = link.current_now() else { continue };
                            // Only what is still wanted (a room may have emptied meanwhile).
                            let subscription = link.still_wanted(&subscription);
                            if conns.subscribe(&subscription).await.is_ok() {
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
        self.link.router.remove(&subscription);
        self.link.subscribed.lock().unwrap_or_else(|p| p.into_inner()).remove(&subscription);
        let conns = self.link.current_now();
        let closed = self.link.closed.load(Ordering::Acquire);
        Box::pin(async move {
            match conns {
                Some(mut conns) => conns.unsubscribe(&subscription).await,
                // Not connected yet (Sentinel has not named a primary): nothing to undo there.
                None if !closed => Ok(()),
                None => Err(Error::Closed),
            }
        })
    }

    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        let link = self.link.clone();
        let cluster = self.cluster.clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            let mut conns = link.current().await?;
            if let Some(cluster) = cluster.filter(|c| c.knows_primaries()) {
                return cluster.num_sub(&channel).await;
            }
            conns.num_sub(&channel).await
        })
    }

    /// Stops accepting messages, sends what is queued (for a bounded time), then closes both
    /// connections: Redis sees them go at once, without waiting for the handle to be dropped.
    fn close(&self) -> BoxFuture<'_, ()> {
        self.link.closed.store(true, Ordering::Release);
        self.link.shutdown.notify_waiters();
        let link = self.link.clone();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + CLOSE_GRACE * 2;
            while link.stats.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            link.stop_publisher.notify_one();
            link.conns.send_replace(None);
        })
    }
}

