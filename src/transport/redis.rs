//! The Redis transport: one publishing and one subscribing connection (or a Redis Cluster
//! connection for sharded pub/sub), watched over by one supervisor task.
//!
//! # The link
//!
//! Whether the connections can be trusted is the link state machine's to say (`src/transport/link.rs`
//! documents its states and transitions). Here are its drivers:
//!
//! - the **supervisor** (`supervise`) PINGs both connections, every second while the link is
//!   up and quiet and every 100–250 ms otherwise, feeds the answers to the machine and carries
//!   out what it asks: subscribe everything again (then the link is up, and `Ready` follows the
//!   outage's `Error`), or replace a connection that stalled for good or is stuck on a refused
//!   handshake, closing the old one at Redis (`CLIENT KILL ID … ADDR …`) so that it no longer
//!   counts as a subscriber. Only the supervisor, and the Sentinel/cluster follower after moving
//!   to a new primary, bring the link back up;
//! - the **subscriber's pushes**: a disconnection marks the link down and wakes the supervisor;
//!   messages from connections that were replaced meanwhile are ignored;
//! - the **publisher** (`publish_loop`), whose failures mark the link down.
//!
//! # Publishing
//!
//! `publish` is a synchronous enqueue into a bounded queue. One task drains it into pipelines
//! of at most 512 messages and 1 MiB, one pipeline at a time, in
//! order. While the link is down nothing is sent: messages wait in the queue and go out in order
//! once it is up again (plus 300 ms, so that the other nodes, reconnecting at the
//! same time, are subscribed again too). A message is never sent twice: a pipeline that may
//! have reached Redis (no answer within 5 s, or the connection broke while it was
//! in flight) is counted as `unconfirmed` and reported, not sent again; only messages that
//! certainly did not run (connection refused, or refused by Redis with `-BUSY`, `-LOADING`,
//! `-MASTERDOWN`, `-READONLY`, `-TRYAGAIN`, `-CLUSTERDOWN`) are sent again. When the queue is full,
//! `publish` fails at once and the message is counted as dropped, so memory stays bounded.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{PushInfo, PushKind, Value};
use tokio::sync::{mpsc, watch, Notify};

use super::cluster::{ClusterSpec, ClusterView};
use super::connections::{into_message, ClientInfo, Conns, OnPush, Sent};
use super::link::{Event, LinkMachine, LinkState, Side, Step};
use super::locate::Locate;
use super::sentinel::SentinelSpec;
use super::{lock, BoxFuture, Router, Subscriber, Subscription, Transport, TransportEvent};
use crate::config::RedisConfig;
use crate::error::Error;

/// Most PUBLISH commands sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// Most payload bytes sent in one pipeline (a single larger message goes alone).
const MAX_PIPELINE_BYTES: usize = 1 << 20;
/// How long a pipeline may go unanswered before its messages count as unconfirmed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Time between two probes while the link is up (skipped while messages flow both ways).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe waits for the PONGs while the link is up.
const PROBE_TIMEOUT_UP: Duration = Duration::from_secs(2);
/// How long a probe waits for the PONGs while the link is not up.
const PROBE_TIMEOUT_DOWN: Duration = Duration::from_secs(1);
/// First pause between probes while the link is not up (doubling up to [`RETRY_MAX`]).
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest pause between probes while the link is not up: Redis answering again is noticed
/// within it (each probe is also a connection attempt).
const RETRY_MAX: Duration = Duration::from_millis(250);
/// How long subscribing everything again may take before it counts as failed.
const RESUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long publishing waits, after this node resubscribed following an outage, for the other
/// nodes to resubscribe too.
const RESUBSCRIBE_GRACE: Duration = Duration::from_millis(300);
/// How long `close()` keeps trying to send what is still queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a subscription waits for the first server (Sentinel, cluster) or its confirmation
/// before it reports an error and is left to the supervisor.
const FIRST_SERVER_WAIT: Duration = Duration::from_secs(3);
/// How long an unsubscription may take.
const UNSUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time between two questions to Sentinel or the cluster about the primary to use.
const LOCATE_INTERVAL: Duration = Duration::from_secs(1);
/// Error codes with which Redis refuses a command without running it, for a while: messages
/// refused so are sent again.
const TRANSIENT_REFUSALS: [&str; 6] = ["BUSY", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"];

/// Counters of the transport, readable at any time.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages Redis confirmed.
    pub published: AtomicU64,
    /// Messages refused because the queue was full or the transport closed, or refused by Redis
    /// for good (e.g. `-NOPERM`): certainly not delivered.
    pub dropped: AtomicU64,
    /// Messages sent to Redis without a confirmation (no answer in time, or the connection
    /// broke meanwhile): they may or may not have been delivered, and are not sent again.
    pub unconfirmed: AtomicU64,
    /// Messages received from Redis.
    pub received: AtomicU64,
    /// Messages accepted by `publish` and not yet confirmed, unconfirmed or dropped.
    pub pending: AtomicU64,
}

/// What every task of a transport shares.
struct Link {
    router: Router,
    stats: Arc<TransportStats>,
    /// The state machine; reports are made while it is locked, so they keep their order.
    machine: Mutex<LinkMachine>,
    /// The machine's state, for those who wait on it.
    state: watch::Sender<LinkState>,
    closed: AtomicBool,
    /// Wakes the supervisor and the follower at close.
    shutdown: Notify,
    /// Wakes the supervisor when something failed.
    wake: Notify,
    /// Wakes the publish loop to stop, once everything queued was sent (or given up) at close.
    stop_publisher: Notify,
    /// The connections in use: `None` before Sentinel or the cluster named a primary, and after
    /// close. Replaced after a failover or when a connection is replaced.
    conns: watch::Sender<Option<Conns>>,
    /// The generation of the subscribing connection in use: messages from others are ignored.
    live: AtomicU64,
    /// How many times connections were put in use: a probe of connections replaced meanwhile
    /// is not news.
    installs: AtomicU64,
    /// Every pattern and channel subscribed, to subscribe again after an outage or on new
    /// connections, and to tell what the redis crate should not have resubscribed.
    subscribed: Mutex<Wanted>,
    /// Why the link went down last.
    last_error: Mutex<String>,
    /// Subscribing connections opened so far.
    generations: AtomicU64,
    /// How Redis knew the connections in use (publisher, subscriber) when the link last came
    /// up, to close them there once they are replaced.
    clients: Mutex<[Option<ClientInfo>; 2]>,
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

    /// Everything, as one subscription.
    fn all(&self) -> Subscription {
        Subscription { patterns: self.patterns.iter().cloned().collect(), channels: self.channels.iter().cloned().collect() }
    }
}

impl Link {
    fn new() -> Self {
        Link {
            router: Router::default(),
            stats: Arc::new(TransportStats::default()),
            machine: Mutex::new(LinkMachine::default()),
            state: watch::Sender::new(LinkState::Connecting),
            closed: AtomicBool::new(false),
            shutdown: Notify::new(),
            wake: Notify::new(),
            stop_publisher: Notify::new(),
            conns: watch::Sender::new(None),
            live: AtomicU64::new(0),
            installs: AtomicU64::new(0),
            subscribed: Mutex::new(Wanted::default()),
            last_error: Mutex::new(String::new()),
            generations: AtomicU64::new(0),
            clients: Mutex::new([None, None]),
        }
    }

    /// Feeds `event` to the machine, makes its reports and returns the other steps for the
    /// caller to carry out. True in the second place when an error was reported.
    fn apply(&self, event: Event) -> (Vec<Step>, bool) {
        self.apply_at(event, Instant::now())
    }

    /// [`Link::apply`] of an event seen at `at`.
    fn apply_at(&self, event: Event, at: Instant) -> (Vec<Step>, bool) {
        let mut machine = lock(&self.machine);
        let steps = machine.on(event, at);
        let state = machine.state();
        self.state.send_if_modified(|s| std::mem::replace(s, state) != state);
        let mut rest = Vec::new();
        let mut reported = false;
        for step in steps {
            match step {
                Step::Report(event) => {
                    if let TransportEvent::Error(why) = &event {
                        *lock(&self.last_error) = why.clone();
                        reported = true;
                    }
                    self.router.broadcast_event(&event);
                }
                other => rest.push(other),
            }
        }
        drop(machine);
        if state == LinkState::Down {
            self.wake.notify_one();
        }
        (rest, reported)
    }

    /// Something failed: the link is down (reported once per outage). True when this call
    /// reported it.
    fn fail(&self, why: String) -> bool {
        self.apply(Event::Failed(why)).1
    }

    /// Like [`Link::fail`], for news about the subscribing connection of `generation`: ignored
    /// once that connection was replaced.
    fn fail_from(&self, generation: u64, why: String) {
        if self.live.load(Ordering::Acquire) == generation {
            self.fail(why);
        }
    }

    /// Everything wanted is subscribed on `conns`, the connections in use: remembers how Redis
    /// knows them (to close them there if they are ever replaced) and tells the machine.
    async fn subscribed_all(&self, conns: &mut Conns) {
        *lock(&self.clients) = conns.client_infos().await;
        self.apply(Event::Subscribed);
    }

    fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// The connections in use, waiting for the first ones; [`Error::Closed`] once closed
    /// without them.
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

    /// The connections in use, if there are some now.
    fn current_now(&self) -> Option<Conns> {
        self.conns.borrow().clone()
    }

    /// Subscribes `conns` to every pattern and channel wanted now (new connections, or after
    /// an outage: subscribing again what is subscribed changes nothing), within
    /// [`RESUBSCRIBE_TIMEOUT`].
    async fn subscribe_everything(&self, conns: &mut Conns) -> Result<(), Error> {
        let everything = lock(&self.subscribed).all();
        match tokio::time::timeout(RESUBSCRIBE_TIMEOUT, conns.subscribe(&everything)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Redis(format!("Redis did not confirm the subscriptions within {} s", RESUBSCRIBE_TIMEOUT.as_secs()))),
        }
    }

    /// Puts `conns` in use, unless the transport closed meanwhile (they are then dropped, which
    /// closes them). False when closed.
    fn install(&self, conns: Conns) -> bool {
        let closed = self.closed.load(Ordering::Acquire);
        if !closed {
            self.live.store(conns.generation(), Ordering::Release);
            self.conns.send_replace(Some(conns));
            self.installs.fetch_add(1, Ordering::AcqRel);
        }
        !closed
    }

    /// A number for a new subscribing connection.
    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Counts `n` messages as settled in `counter`.
    fn settle(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.pending.fetch_sub(n as u64, Ordering::AcqRel);
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
        let link = Arc::new(Link::new());
        let (queue, queue_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        match (locator, sharded_seeds) {
            (Some(locator), _) => {
                tokio::spawn(follow(locator, config.clone(), link.clone()));
            }
            (None, Some(seeds)) => {
                tokio::spawn(connect_sharded(seeds, link.clone()));
            }
            (None, None) => {
                let generation = link.next_generation();
                link.install(Conns::open_pair(config, generation, push_handler(&link, generation))?);
            }
        }
        tokio::spawn(publish_loop(queue_rx, link.clone()));
        tokio::spawn(supervise(link.clone()));
        Ok(RedisTransport { queue, link, cluster })
    }

    /// Counters: published, dropped, unconfirmed, received, pending.
    pub fn stats(&self) -> &TransportStats {
        &self.link.stats
    }

    /// The link's state: `connecting` (nothing proven yet), `up` (both connections answer and
    /// every subscription is confirmed), `down` (an outage was reported; publishing waits) or
    /// `closed`.
    pub fn link_state(&self) -> &'static str {
        match self.link.state() {
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Closed => "closed",
        }
    }
}

/// Where the pushes of the subscribing connection of `generation` go. They are handled where
/// the redis crate hands them over, without another channel hop: routing and validation are
/// cheap, and hosts batch what they receive themselves.
fn push_handler(link: &Arc<Link>, generation: u64) -> OnPush {
    let link = link.clone();
    Box::new(move |push| handle_push(push, &link, generation))
}

/// Sharded pub/sub: connects to the cluster of `seeds` (retrying while it cannot be reached)
/// and puts the connection in use. The redis crate then follows the cluster's topology itself.
async fn connect_sharded(seeds: Vec<String>, link: Arc<Link>) {
    let mut delay = RETRY_MIN;
    while !link.closed.load(Ordering::Acquire) {
        let generation = link.next_generation();
        match Conns::open_sharded(seeds.clone(), generation, push_handler(&link, generation)).await {
            Ok(mut conns) => match link.subscribe_everything(&mut conns).await {
                Ok(()) => {
                    if link.install(conns.clone()) {
                        link.subscribed_all(&mut conns).await;
                    }
                    return;
                }
                Err(err) => {
                    link.fail(format!("cannot subscribe on the Redis Cluster: {}", err.detail()));
                }
            },
            Err(err) => {
                link.fail(format!("cannot connect to the Redis Cluster: {}", err.detail()));
            }
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
                let generation = link.next_generation();
                match Conns::open_pair(&node, generation, push_handler(&link, generation)) {
                    Ok(mut conns) => {
                        if primary.is_some() {
                            link.fail(format!("moving to the new primary {addr}"));
                        }
                        match link.subscribe_everything(&mut conns).await {
                            Ok(()) => {
                                primary = Some(addr);
                                if !link.install(conns.clone()) {
                                    return;
                                }
                                link.subscribed_all(&mut conns).await;
                            }
                            Err(err) => {
                                link.fail(format!("cannot subscribe on the primary {addr}: {}", err.detail()));
                            }
                        }
                    }
                    Err(err) => {
                        link.fail(err.detail());
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                link.fail(err.detail());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LOCATE_INTERVAL) => {}
            _ = link.shutdown.notified() => return,
        }
    }
}

/// Routes one push from the subscribing connection of `generation`: messages to their
/// subscriber (unless that connection was replaced meanwhile); a lost connection marks the link
/// down.
fn handle_push(push: PushInfo, link: &Link, generation: u64) {
    match push.kind {
        PushKind::Message | PushKind::PMessage | PushKind::SMessage => {
            if link.live.load(Ordering::Acquire) != generation {
                return;
            }
            if let Some(entry) = into_message(push) {
                link.stats.received.fetch_add(1, Ordering::Relaxed);
                link.router.deliver(vec![entry]);
            }
        }
        PushKind::Disconnection => link.fail_from(generation, "connection to Redis lost; reconnecting".into()),
        PushKind::Subscribe | PushKind::PSubscribe | PushKind::SSubscribe => drop_unwanted(&push, link),
        _ => {}
    }
}

/// The redis crate resubscribes, after a reconnect, whatever Redis last confirmed, so a channel
/// or pattern whose UNSUBSCRIBE was lost in an outage comes back. Such confirmations are
/// answered with an unsubscribe here.
fn drop_unwanted(push: &PushInfo, link: &Link) {
    let Some(Value::BulkString(name)) = push.data.first() else {
        return;
    };
    let name = String::from_utf8_lossy(name);
    let pattern = push.kind == PushKind::PSubscribe;
    let wanted = {
        let all = lock(&link.subscribed);
        if pattern {
            all.patterns.contains(name.as_ref())
        } else {
            all.channels.contains(name.as_ref())
        }
    };
    if wanted {
        return;
    }
    let (Some(mut conns), Ok(runtime)) = (link.current_now(), tokio::runtime::Handle::try_current()) else {
        return;
    };
    let name = name.into_owned();
    let unwanted = if pattern { Subscription { patterns: vec![name.clone()], channels: Vec::new() } } else { Subscription { patterns: Vec::new(), channels: vec![name.clone()] } };
    runtime.spawn(async move {
        match tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, conns.unsubscribe(&unwanted)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!("unsubscribing {name} again failed: {err}"),
            Err(_) => tracing::debug!("unsubscribing {name} again: no answer"),
        }
    });
}

/// Takes the next pipeline from the front of `backlog`: at most [`MAX_PIPELINE`] messages and
/// [`MAX_PIPELINE_BYTES`] (at least one message).
fn next_pipeline(backlog: &mut VecDeque<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut bytes = 0;
    let mut count = 0;
    for (channel, payload) in backlog.iter() {
        bytes += channel.len() + payload.len();
        if count == MAX_PIPELINE || (count > 0 && bytes > MAX_PIPELINE_BYTES) {
            break;
        }
        count += 1;
    }
    backlog.drain(..count).collect()
}

/// Drains the queue into pipelines, one at a time and in order (see the module documentation
/// for what is sent again and what is not). While the link is down, waits for it (messages stay
/// queued); after `close()` what is still queued once [`CLOSE_GRACE`] is spent is dropped (and
/// counted).
async fn publish_loop(mut rx: mpsc::Receiver<(String, Vec<u8>)>, link: Arc<Link>) {
    let mut backlog: VecDeque<(String, Vec<u8>)> = VecDeque::new();
    let mut incoming = Vec::with_capacity(MAX_PIPELINE);
    let mut state = link.state.subscribe();
    let mut after_outage = false;
    loop {
        if backlog.is_empty() {
            tokio::select! {
                received = rx.recv_many(&mut incoming, MAX_PIPELINE) => if received == 0 { return },
                _ = link.stop_publisher.notified() => return,
            }
        } else {
            while incoming.len() < MAX_PIPELINE {
                let Ok(message) = rx.try_recv() else { break };
                incoming.push(message);
            }
        }
        backlog.extend(incoming.drain(..));
        let stop = async {
            // Nothing is sent into a link known to be down; the supervisor brings it back.
            if *state.borrow_and_update() == LinkState::Down {
                after_outage = true;
                let _ = state.wait_for(|s| *s != LinkState::Down).await;
            }
            if std::mem::take(&mut after_outage) {
                tokio::time::sleep(RESUBSCRIBE_GRACE).await;
            }
            link.current().await
        };
        let conns = tokio::select! {
            conns = stop => conns,
            _ = link.stop_publisher.notified() => Err(Error::Closed),
        };
        let mut conns = match conns {
            Ok(conns) => conns,
            Err(_) => {
                // Closed for good: what is left is dropped.
                while let Ok(message) = rx.try_recv() {
                    backlog.push_back(message);
                }
                link.settle(&link.stats.dropped, backlog.len());
                return;
            }
        };
        let installs = link.installs.load(Ordering::Acquire);
        let batch = next_pipeline(&mut backlog);
        let sent = match tokio::time::timeout(PUBLISH_TIMEOUT, conns.publish(&batch)).await {
            Ok(sent) => sent,
            Err(_) => Sent::unconfirmed_from(0, format!("no answer within {} s", PUBLISH_TIMEOUT.as_secs())),
        };
        // Refused by connections replaced meanwhile (a failover): sent again without an alarm.
        let replaced = link.installs.load(Ordering::Acquire) != installs;
        settle_pipeline(&link, batch, sent, &mut backlog, replaced);
    }
}

/// Counts what happened to each message of `batch` and puts those Redis certainly did not run,
/// but may run later, back at the front of `backlog`, in order. `replaced`: the connections were
/// replaced while the pipeline was out, so their failure says nothing of the new ones.
fn settle_pipeline(link: &Link, batch: Vec<(String, Vec<u8>)>, sent: Sent, backlog: &mut VecDeque<(String, Vec<u8>)>, replaced: bool) {
    let total = batch.len();
    let mut again = Vec::new();
    let mut refused_for_good = 0;
    let mut refusal = None;
    let (confirmed_until, tail) = match &sent.failure {
        Some((from, _)) => (*from, total - *from),
        None => (total, 0),
    };
    // The unanswered tail is sent again only when it certainly did not reach Redis.
    let tail_again = sent.failure.as_ref().is_some_and(|(_, f)| !f.may_have_run);
    for (index, message) in batch.into_iter().enumerate() {
        if index >= confirmed_until {
            if tail_again {
                again.push(message);
            }
            continue;
        }
        match sent.refused.iter().find(|(i, _)| *i == index) {
            None => {}
            Some((_, code)) if TRANSIENT_REFUSALS.contains(&code.as_str()) => {
                refusal.get_or_insert_with(|| code.clone());
                again.push(message);
            }
            Some((_, code)) => {
                refusal.get_or_insert_with(|| code.clone());
                refused_for_good += 1;
            }
        }
    }
    let failed_to_send = again.len();
    link.settle(&link.stats.published, confirmed_until - sent.refused.len());
    link.settle(&link.stats.dropped, refused_for_good);
    for message in again.into_iter().rev() {
        backlog.push_front(message);
    }
    if refused_for_good > 0 {
        link.router.broadcast_event(&TransportEvent::Error(format!("Redis refused {refused_for_good} messages ({}); they were dropped", refusal.as_deref().unwrap_or("error"))));
    }
    match sent.failure {
        Some((_, failure)) if failure.may_have_run => {
            link.settle(&link.stats.unconfirmed, tail);
            let why = format!("{tail} messages were sent but Redis did not confirm them ({}): they may or may not have been delivered, and are not sent again", failure.why);
            // Reported even when the outage already was: it says what was lost.
            if !link.fail(why.clone()) {
                link.router.broadcast_event(&TransportEvent::Error(why));
            }
        }
        Some(_) if replaced => {}
        Some((_, failure)) => {
            link.fail(format!("cannot publish, will retry {failed_to_send} messages: {}", failure.why));
        }
        None if failed_to_send > 0 => {
            link.fail(format!("Redis refused {failed_to_send} messages for now ({}); they are sent again once it accepts them", refusal.unwrap_or_default()));
        }
        None => {}
    }
}

/// Watches the link and brings it back (see the module documentation): probes both
/// connections, feeds the answers to the machine and carries out its steps.
///
/// On a Redis Cluster with sharded pub/sub it also watches the slot map (`CLUSTER SLOTS`, one
/// cheap command a second): when a failover or resharding changes it, every wanted channel is
/// subscribed again on its new owner, since the redis crate can resubscribe before the cluster
/// has settled (e.g. on the replica about to be promoted) and lose them afterwards.
async fn supervise(link: Arc<Link>) {
    let mut last_received = u64::MAX;
    let mut last_published = u64::MAX;
    let mut slot_map: Option<Value> = None;
    let mut retry = RETRY_MIN;
    while !link.closed.load(Ordering::Acquire) {
        let received = link.stats.received.load(Ordering::Relaxed);
        let published = link.stats.published.load(Ordering::Relaxed);
        let up = link.state() == LinkState::Up;
        // No connections yet (Sentinel, cluster lookup in progress): nothing to check.
        if let Some(mut conns) = link.current_now() {
            if up && conns.is_sharded() {
                if let Ok(Some(slots)) = tokio::time::timeout(PROBE_INTERVAL, conns.slot_map()).await {
                    if slot_map.as_ref().is_some_and(|known| *known != slots) {
                        if let Err(err) = link.subscribe_everything(&mut conns).await {
                            link.fail(format!("cannot subscribe again after the cluster changed: {}", err.detail()));
                        }
                    }
                    slot_map = Some(slots);
                }
            }
            // While messages flow both ways the connections evidently work.
            if !up || received == last_received || published == last_published {
                let timeout = if up { PROBE_TIMEOUT_UP } else { PROBE_TIMEOUT_DOWN };
                let subscribing = !link.router.is_empty();
                let installs = link.installs.load(Ordering::Acquire);
                // A stall is timed from the first PING left unanswered.
                let sent_at = Instant::now();
                let answers = tokio::select! {
                    answers = conns.probe(timeout, subscribing) => answers,
                    _ = link.shutdown.notified() => return,
                };
                // Connections replaced meanwhile (a failover): their answers are not news.
                if link.installs.load(Ordering::Acquire) == installs {
                    let (publisher, subscriber) = answers;
                    let (steps, _) = link.apply_at(Event::Probed { publisher, subscriber }, sent_at);
                    carry_out(&link, steps, conns, installs).await;
                }
            }
        }
        last_received = received;
        last_published = published;
        let pause = if link.state() == LinkState::Up {
            retry = RETRY_MIN;
            PROBE_INTERVAL
        } else {
            let pause = retry;
            retry = (retry * 2).min(RETRY_MAX);
            pause
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = link.wake.notified() => {}
            _ = link.shutdown.notified() => return,
        }
    }
}

/// Carries out the machine's steps on `conns` (the connections that were probed, the
/// `installs`-th put in use); stops when others were put in use meanwhile.
async fn carry_out(link: &Arc<Link>, steps: Vec<Step>, mut conns: Conns, installs: u64) {
    let stale = || link.installs.load(Ordering::Acquire) != installs;
    let mut sides = Vec::new();
    for step in steps {
        match step {
            Step::Resubscribe => {
                let result = link.subscribe_everything(&mut conns).await;
                if stale() {
                    return;
                }
                match result {
                    Ok(()) => link.subscribed_all(&mut conns).await,
                    Err(err) => {
                        link.fail(format!("cannot subscribe again: {}", err.detail()));
                    }
                }
            }
            Step::Replace(side) => sides.push(side),
            Step::Report(_) => {}
        }
    }
    if !sides.is_empty() && !stale() {
        replace(link, &conns, &sides);
    }
}

/// Puts new connections in use for `sides` of `conns`, and closes the old ones at Redis.
fn replace(link: &Arc<Link>, conns: &Conns, sides: &[Side]) {
    let generation = if sides.contains(&Side::Subscriber) { link.next_generation() } else { conns.generation() };
    match conns.replace(sides, generation, push_handler(link, generation)) {
        Some(Ok(mut new)) => {
            tracing::debug!("replacing the {sides:?} connections");
            let old: Vec<ClientInfo> = {
                let mut clients = lock(&link.clients);
                sides.iter().filter_map(|side| clients[*side as usize].take()).collect()
            };
            link.install(new.clone());
            // The old connections may still look alive to Redis (a silent network): closed there,
            // they no longer count as subscribers of the channels (`PUBSUB NUMSUB`).
            tokio::spawn(async move {
                for client in old {
                    if let Ok(Err(err)) = tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, new.kill_client(&client)).await {
                        tracing::debug!("closing the replaced connection {} at Redis failed: {err}", client.id);
                    }
                }
            });
        }
        None => {}
        Some(Err(err)) => tracing::debug!("cannot open new {sides:?} connections: {err}"),
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
        lock(&self.link.subscribed).add(&subscription);
        if self.link.state() == LinkState::Down {
            // The outage was reported before this subscriber was there to hear it.
            subscriber.on_event(&TransportEvent::Error(lock(&self.link.last_error).clone()));
        }
        let link = self.link.clone();
        Box::pin(async move {
            // Without a server yet (Sentinel or the cluster not answering), or without an answer,
            // the subscription is left to the supervisor, which subscribes everything again once
            // Redis answers.
            let first = match tokio::time::timeout(FIRST_SERVER_WAIT, async { link.current().await?.subscribe(&subscription).await }).await {
                Ok(result) => result,
                Err(_) => Err(Error::Redis(format!("no answer from Redis yet: {}", lock(&link.last_error)))),
            };
            match &first {
                // Down: the supervisor's `Ready` ends the outage for everybody.
                Ok(()) if link.state() != LinkState::Down => subscriber.on_event(&TransportEvent::Ready),
                Ok(()) | Err(Error::Closed) => {}
                Err(err) => {
                    let why = format!("subscribe failed, will retry: {}", err.detail());
                    // Already down: this subscriber still hears why its subscription waits.
                    if !link.fail(why.clone()) {
                        subscriber.on_event(&TransportEvent::Error(why));
                    }
                }
            }
            first
        })
    }

    fn unsubscribe(&self, subscription: Subscription) -> BoxFuture<'_, Result<(), Error>> {
        self.link.router.remove(&subscription);
        lock(&self.link.subscribed).remove(&subscription);
        let conns = self.link.current_now();
        let closed = self.link.closed.load(Ordering::Acquire);
        Box::pin(async move {
            match conns {
                Some(mut conns) => match tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, conns.unsubscribe(&subscription)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Redis(format!("Redis did not confirm the unsubscription within {} s", UNSUBSCRIBE_TIMEOUT.as_secs()))),
                },
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
            link.apply(Event::Closed);
            link.stop_publisher.notify_one();
            link.conns.send_replace(None);
        })
    }
}
