//! The link driver: what keeps a set of connections ([`Wire`]) carrying messages whatever the
//! server does. The Redis transport runs it on Redis connections; the in-memory broker's
//! transport runs it on connections that can be made to misbehave, so that every fault is
//! tested in milliseconds.
//!
//! # The link
//!
//! Whether the connections can be trusted is the link state machine's to say
//! (`src/transport/link.rs` documents its states and transitions). Here are its drivers:
//!
//! - the **supervisor** (`supervise`) PINGs both connections, every second while the link is
//!   up and quiet and every 100–250 ms otherwise, feeds the answers to the machine and carries
//!   out what it asks: subscribe everything again (then the link is up, and `Ready` follows the
//!   outage's `Error`), or replace a connection that stalled for good or is stuck on a refused
//!   handshake, closing the old one at the server (`CLIENT KILL ID … ADDR …`) so that it no
//!   longer counts as a subscriber. Only the supervisor, and whoever puts new connections in use
//!   (the Redis transport's Sentinel/cluster follower), bring the link back up;
//! - the **subscriber's pushes**: a disconnection marks the link down and wakes the supervisor;
//!   messages from connections that were replaced meanwhile are ignored; a subscription the
//!   server ended by itself is made again, one confirmed but no longer wanted is undone;
//! - the **publisher** (`publish_loop`), whose failures mark the link down.
//!
//! # Publishing
//!
//! `publish` is a synchronous enqueue into a bounded queue. One task drains it into pipelines
//! of at most 512 messages and 1 MiB, in order, with up to 4 pipelines (1 MiB in all) out at
//! once on the same connection, so that Redis runs one while the next is built and the answers
//! of the one before are read. On a Redis Cluster one batch is one pipeline per slot, sent at
//! once, and one batch is out at a time: the cluster connection sends refused pipelines again
//! by itself, and a later one must not overtake them (each channel's messages keep their
//! order). Pipelines settle in the order they were sent: what Redis refused without running it,
//! from any of them, goes back to the front of the queue in its original order once none is
//! out, before anything new. (Messages of the pipelines out behind a refused one that Redis
//! accepted, when it stopped refusing meanwhile, are not held back: a message sent again can
//! arrive after them, up to 4 pipelines later.) When the link goes down while pipelines are out
//! (even if it is up again by the next look), no new one goes out until those settled, and then
//! publishing waits as after any outage. A request whose caller stopped waiting for its count
//! is not sent.
//!
//! While the link is down nothing is sent: messages wait in the queue and go out in order once
//! it is up again (plus 300 ms, so that the other nodes, reconnecting at the same time, are
//! subscribed again too). A message is never sent twice: a pipeline that may have reached
//! Redis (no answer within 5 s, or the connection broke while it was in flight) is counted as
//! `unconfirmed` and reported, not sent again; only messages that certainly did not run
//! (connection refused, or refused by Redis with `-BUSY`, `-LOADING`, `-MASTERDOWN`,
//! `-READONLY`, `-TRYAGAIN`, `-CLUSTERDOWN`) are sent again. When the queue is full, `publish`
//! fails at once and the message is counted as dropped, so memory stays bounded.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use super::link::{Event, LinkMachine, LinkState, Side, Step};
use super::wire::{ClientInfo, Failure, OnPush, Outgoing, Push, Sent, Wire};
use super::{lock, BoxFuture, Router, Subscriber, Subscription, Transport, TransportEvent};
use crate::error::Error;

/// Most PUBLISH commands sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// Most pipelines out at once (with [`MAX_PIPELINE_BYTES`] in all): the next one is sent while
/// Redis still runs the one before, so that building pipelines and reading answers here
/// overlaps with Redis' own work.
const MAX_IN_FLIGHT: usize = 4;
/// Most payload bytes sent in one pipeline (a single larger message goes alone).
const MAX_PIPELINE_BYTES: usize = 1 << 20;
/// How long a pipeline may go unanswered before its messages count as unconfirmed.
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Time between two probes while the link is up (skipped while messages flow both ways).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe waits for the PONGs while the link is up.
const PROBE_TIMEOUT_UP: Duration = Duration::from_secs(2);
/// How long a probe waits for the PONGs while the link is not up.
const PROBE_TIMEOUT_DOWN: Duration = Duration::from_secs(1);
/// First pause between probes while the link is not up (doubling up to [`RETRY_MAX`]).
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(100);
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
    /// Bytes (channel names and payloads) of the `pending` messages.
    pub pending_bytes: AtomicU64,
}

/// What every task of a transport shares.
pub(crate) struct Link<W: Wire> {
    router: Router,
    stats: TransportStats,
    /// The state machine; reports are made while it is locked, so they keep their order.
    machine: Mutex<LinkMachine>,
    /// The machine's state, for those who wait on it.
    state: watch::Sender<LinkState>,
    closed: AtomicBool,
    /// Wakes the supervisor and the follower at close.
    pub(crate) shutdown: Notify,
    /// Wakes the supervisor when something failed.
    wake: Notify,
    /// Wakes the publish loop to stop, once everything queued was sent (or given up) at close.
    stop_publisher: Notify,
    /// Wakes `close()` when no message is pending any more.
    settled: Notify,
    /// The connections in use: `None` before Sentinel or the cluster named a primary, and after
    /// close. Replaced after a failover or when a connection is replaced.
    conns: watch::Sender<Option<W>>,
    /// The generation of the subscribing connection in use: messages from others are ignored.
    live: AtomicU64,
    /// How many times connections were put in use: a probe of connections replaced meanwhile
    /// is not news.
    installs: AtomicU64,
    /// Every pattern and channel subscribed, to subscribe again after an outage or on new
    /// connections, and to tell what the server should not have (un)subscribed.
    subscribed: Mutex<Wanted>,
    /// Why the link went down last.
    last_error: Mutex<String>,
    /// Subscribing connections opened so far.
    generations: AtomicU64,
    /// How the server knew the connections in use (publisher, subscriber) when the link last
    /// came up, to close them there once they are replaced.
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

    fn contains(&self, pattern: bool, name: &str) -> bool {
        if pattern {
            self.patterns.contains(name)
        } else {
            self.channels.contains(name)
        }
    }

    /// Everything, as one subscription.
    fn all(&self) -> Subscription {
        Subscription { patterns: self.patterns.iter().cloned().collect(), channels: self.channels.iter().cloned().collect() }
    }
}

/// One pattern or one channel, as a subscription.
fn one(pattern: bool, name: String) -> Subscription {
    if pattern {
        Subscription { patterns: vec![name], channels: Vec::new() }
    } else {
        Subscription { patterns: Vec::new(), channels: vec![name] }
    }
}

impl<W: Wire> Link<W> {
    /// A link without connections yet.
    pub(crate) fn new() -> Self {
        Link {
            router: Router::default(),
            stats: TransportStats::default(),
            machine: Mutex::new(LinkMachine::default()),
            state: watch::Sender::new(LinkState::Connecting),
            closed: AtomicBool::new(false),
            shutdown: Notify::new(),
            wake: Notify::new(),
            stop_publisher: Notify::new(),
            settled: Notify::new(),
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
        self.apply_at(event, now())
    }

    /// [`Link::apply`] of an event seen at `at`.
    fn apply_at(&self, event: Event, at: Instant) -> (Vec<Step>, bool) {
        let mut machine = lock(&self.machine);
        let before = machine.state();
        let steps = machine.on(event, at);
        let state = machine.state();
        if state != before {
            tracing::debug!("link {before:?} -> {state:?}");
        }
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
        // Going down wakes the supervisor at once; while down it probes at its own pace (a
        // wake on every failure would make it retry as fast as a refused connection fails).
        if state == LinkState::Down && before != LinkState::Down {
            self.wake.notify_one();
        }
        (rest, reported)
    }

    /// Something failed: the link is down (reported once per outage). True when this call
    /// reported it.
    pub(crate) fn fail(&self, why: String) -> bool {
        self.apply(Event::Failed(why)).1
    }

    /// Like [`Link::fail`], for news about the subscribing connection of `generation`: ignored
    /// once that connection was replaced.
    fn fail_from(&self, generation: u64, why: String) {
        if self.live.load(Ordering::Acquire) == generation {
            self.fail(why);
        }
    }

    /// Everything wanted is subscribed on `conns`, the connections in use: remembers how the
    /// server knows them (to close them there if they are ever replaced; not known when it does
    /// not say within [`PROBE_TIMEOUT_UP`]) and tells the machine.
    pub(crate) async fn subscribed_all(&self, conns: &mut W) {
        // Bounded like every wait of the supervisor: Redis may stall right now.
        *lock(&self.clients) = tokio::time::timeout(PROBE_TIMEOUT_UP, conns.client_infos()).await.unwrap_or_default();
        self.apply(Event::Subscribed);
    }

    fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// True once `close()` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The connections in use, waiting for the first ones; [`Error::Closed`] once closed
    /// without them.
    pub(crate) async fn current(&self) -> Result<W, Error> {
        let mut conns = self.conns.subscribe();
        loop {
            if let Some(current) = conns.borrow_and_update().clone() {
                return Ok(current);
            }
            if self.is_closed() {
                return Err(Error::Closed);
            }
            if conns.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// The connections in use, if there are some now.
    fn current_now(&self) -> Option<W> {
        self.conns.borrow().clone()
    }

    /// Subscribes `conns` to every pattern and channel wanted now (new connections, or after
    /// an outage: subscribing again what is subscribed changes nothing), within
    /// [`RESUBSCRIBE_TIMEOUT`].
    pub(crate) async fn subscribe_everything(&self, conns: &mut W) -> Result<(), Error> {
        let everything = lock(&self.subscribed).all();
        match tokio::time::timeout(RESUBSCRIBE_TIMEOUT, conns.subscribe(&everything)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Redis(format!("Redis did not confirm the subscriptions within {} s", RESUBSCRIBE_TIMEOUT.as_secs()))),
        }
    }

    /// Puts `conns` in use, unless the transport closed meanwhile (they are then dropped, which
    /// closes them). False when closed.
    pub(crate) fn install(&self, conns: W) -> bool {
        let closed = self.is_closed();
        if !closed {
            self.live.store(conns.generation(), Ordering::Release);
            self.conns.send_replace(Some(conns));
            self.installs.fetch_add(1, Ordering::AcqRel);
        }
        !closed
    }

    /// A number for a new subscribing connection.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Waits until no message is pending (each sent, or given up), for at most `within`;
    /// true when none is.
    pub(crate) async fn settled_within(&self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.stats.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            tokio::select! {
                _ = settled => {}
                _ = &mut deadline => return false,
            }
        }
    }

    /// Counts `n` messages as settled in `counter`.
    fn settle(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if self.stats.pending.fetch_sub(n as u64, Ordering::AcqRel) == n as u64 {
            self.settled.notify_waiters();
        }
    }
}

/// The time now, on tokio's clock (which tests can pause and advance) as the machine takes it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Where the pushes of the subscribing connection of `generation` go. They are handled where
/// the connection hands them over, without another channel hop: routing and validation are
/// cheap, and hosts batch what they receive themselves.
pub(crate) fn push_handler<W: Wire>(link: &Arc<Link<W>>, generation: u64) -> OnPush {
    let link = link.clone();
    Box::new(move |push| handle_push(push, &link, generation))
}

/// Routes one push from the subscribing connection of `generation`: messages to their
/// subscriber (unless that connection was replaced meanwhile); a lost connection marks the link
/// down; (un)subscriptions that do not match what is wanted are corrected.
fn handle_push<W: Wire>(push: Push, link: &Link<W>, generation: u64) {
    match push {
        Push::Message(route, message) => {
            if link.live.load(Ordering::Acquire) == generation {
                link.stats.received.fetch_add(1, Ordering::Relaxed);
                link.router.deliver(&route, message);
            }
        }
        Push::Disconnected => link.fail_from(generation, "connection to Redis lost; reconnecting".into()),
        Push::Subscribed { pattern, name } => correct(link, pattern, name, false),
        Push::Unsubscribed { pattern, name } => correct(link, pattern, name, true),
    }
}

/// Makes the server's subscriptions match what is wanted, after it confirmed (`ended` false) or
/// ended (`ended` true) the subscription to `name`: a cluster connection resubscribes, after a
/// reconnect, whatever Redis last confirmed, so a channel whose UNSUBSCRIBE was lost in an
/// outage comes back and is undone here; and Redis ≥ 7 ends shard channel subscriptions whose
/// slot moved away, which are made again here.
fn correct<W: Wire>(link: &Link<W>, pattern: bool, name: String, ended: bool) {
    if lock(&link.subscribed).contains(pattern, &name) != ended {
        return;
    }
    let (Some(mut conns), Ok(runtime)) = (link.current_now(), tokio::runtime::Handle::try_current()) else {
        return;
    };
    runtime.spawn(async move {
        let subscription = one(pattern, name.clone());
        let result = match ended {
            true => tokio::time::timeout(RESUBSCRIBE_TIMEOUT, conns.subscribe(&subscription)).await,
            false => tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, conns.unsubscribe(&subscription)).await,
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::debug!("correcting the subscription to {name} failed: {err}"),
            Err(_) => tracing::debug!("correcting the subscription to {name}: no answer"),
        }
    });
}

/// Takes the next pipeline from the front of `backlog`: at most [`MAX_PIPELINE`] messages, and at
/// most [`MAX_PIPELINE_BYTES`] together with the `out` bytes of the pipelines already out (a
/// single larger message goes alone, when none is out). Empty when the next message does not fit.
fn next_pipeline(backlog: &mut VecDeque<Outgoing>, out: usize) -> Vec<Outgoing> {
    let budget = MAX_PIPELINE_BYTES.saturating_sub(out);
    let mut bytes = 0;
    let mut count = 0;
    for message in backlog.iter() {
        bytes += message.size() as usize;
        if count == MAX_PIPELINE || (bytes > budget && (count > 0 || out > 0)) {
            break;
        }
        count += 1;
    }
    backlog.drain(..count).collect()
}

/// `batch` without the requests whose caller gave up on their count (its deadline passed while
/// they waited, e.g. while Redis was down), which are counted as dropped: the request already
/// failed, and sent now it would run on the other nodes for nobody (the official adapter
/// publishes nothing once its count failed).
fn without_abandoned<W: Wire>(link: &Link<W>, batch: Vec<Outgoing>) -> Vec<Outgoing> {
    let abandoned = |m: &Outgoing| m.count.as_ref().is_some_and(|waiter| waiter.is_closed());
    if !batch.iter().any(abandoned) {
        return batch;
    }
    let (dropped, kept): (Vec<Outgoing>, Vec<Outgoing>) = batch.into_iter().partition(abandoned);
    link.stats.pending_bytes.fetch_sub(dropped.iter().map(Outgoing::size).sum(), Ordering::AcqRel);
    link.settle(&link.stats.dropped, dropped.len());
    kept
}

/// A pipeline handed to the connections and not yet settled.
struct InFlight {
    /// Sending it, or what became of it.
    stage: Stage,
    /// [`Link::installs`] when it was sent.
    installs: u64,
    /// Its messages' bytes (channels and payloads).
    bytes: usize,
}

/// Where a pipeline in flight is.
enum Stage {
    /// Sent; waiting for the answers (within [`PUBLISH_TIMEOUT`]).
    Sending(BoxFuture<'static, (Vec<Outgoing>, Sent)>),
    /// Its messages and what became of them.
    Done(Vec<Outgoing>, Sent),
}

impl InFlight {
    /// Sends `batch` on `conns`.
    fn send<W: Wire>(mut conns: W, batch: Vec<Outgoing>, installs: u64) -> InFlight {
        let bytes = batch.iter().map(|m| m.size() as usize).sum();
        let sending = Box::pin(async move {
            let sent = match tokio::time::timeout(PUBLISH_TIMEOUT, conns.publish(&batch)).await {
                Ok(sent) => sent,
                Err(_) => Sent::unanswered(0..batch.len(), Failure { may_have_run: true, why: format!("no answer within {} s", PUBLISH_TIMEOUT.as_secs()) }),
            };
            (batch, sent)
        });
        InFlight { stage: Stage::Sending(sending), installs, bytes }
    }
}

/// Drives every pipeline in flight, oldest first, so that each is handed to the connection
/// before the ones sent after it (on a single server they queue for the same connection in the
/// order they ask); ready with the oldest's messages, what became of them and its
/// [`Link::installs`] once Redis answered it (or it failed), so pipelines settle in order.
fn poll_oldest(in_flight: &mut VecDeque<InFlight>, cx: &mut std::task::Context<'_>) -> std::task::Poll<(Vec<Outgoing>, Sent, u64)> {
    for pipeline in in_flight.iter_mut() {
        if let Stage::Sending(sending) = &mut pipeline.stage {
            if let std::task::Poll::Ready((batch, sent)) = sending.as_mut().poll(cx) {
                pipeline.stage = Stage::Done(batch, sent);
            }
        }
    }
    if !matches!(in_flight.front(), Some(InFlight { stage: Stage::Done(..), .. })) {
        return std::task::Poll::Pending;
    }
    match in_flight.pop_front() {
        Some(InFlight { stage: Stage::Done(batch, sent), installs, .. }) => std::task::Poll::Ready((batch, sent, installs)),
        _ => std::task::Poll::Pending,
    }
}

/// Drains the queue into pipelines, in order, with up to [`MAX_IN_FLIGHT`] out at once (see
/// the module documentation for what is sent again and what is not). While the link is down,
/// waits for it (messages stay queued); after `close()` what is still queued once
/// [`CLOSE_GRACE`] is spent is dropped (and counted).
async fn publish_loop<W: Wire>(mut rx: mpsc::Receiver<Outgoing>, link: Arc<Link<W>>) {
    let mut backlog: VecDeque<Outgoing> = VecDeque::new();
    let mut incoming = Vec::with_capacity(MAX_PIPELINE);
    let mut state = link.state.subscribe();
    let mut after_outage = false;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // Messages to send again from pipelines settled while later ones were still out: they go
    // back to the front of the queue, in order, once none is out, and nothing new is sent
    // before them.
    let mut held: Vec<Outgoing> = Vec::new();
    let mut queue_open = true;
    // Pipelines out at once on the connections in use (see `Wire::retries_by_itself`).
    let mut max_out = MAX_IN_FLIGHT;
    // The link's state when the queue last looked at it.
    let mut seen = LinkState::Connecting;
    loop {
        if backlog.is_empty() && in_flight.is_empty() {
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
        if in_flight.is_empty() {
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
            seen = *state.borrow_and_update();
            let Ok(conns) = conns else {
                // Closed for good: what is left is dropped.
                while let Ok(message) = rx.try_recv() {
                    backlog.push_back(message);
                }
                link.settle(&link.stats.dropped, backlog.len());
                link.stats.pending_bytes.fetch_sub(backlog.iter().map(Outgoing::size).sum(), Ordering::AcqRel);
                return;
            };
            let installs = link.installs.load(Ordering::Acquire);
            max_out = if conns.retries_by_itself() { 1 } else { MAX_IN_FLIGHT };
            let batch = without_abandoned(&link, next_pipeline(&mut backlog, 0));
            if batch.is_empty() {
                continue;
            }
            in_flight.push_back(InFlight::send(conns, batch, installs));
        }
        // The next pipeline goes out while Redis runs the one before, on the same connections,
        // as long as the link stayed up (when it went down meanwhile, even if it is up again,
        // what is out settles first and then the queue waits as after any outage) and nothing
        // waits to be sent again.
        while in_flight.len() < max_out && held.is_empty() && !backlog.is_empty() {
            if state.has_changed().unwrap_or(true) {
                let now = *state.borrow_and_update();
                // Up after Up: it was down in between.
                if now != LinkState::Up || seen == LinkState::Up {
                    after_outage = true;
                    break;
                }
                seen = now;
            }
            // The connections before their number: a set installed in between is then
            // numbered newer than the pipelines out, and waits for them.
            let Some(conns) = link.current_now() else { break };
            let installs = link.installs.load(Ordering::Acquire);
            if *state.borrow() != LinkState::Up || in_flight.iter().any(|p| p.installs != installs) {
                break;
            }
            let taken = next_pipeline(&mut backlog, in_flight.iter().map(|p| p.bytes).sum());
            if taken.is_empty() {
                break;
            }
            let batch = without_abandoned(&link, taken);
            if !batch.is_empty() {
                in_flight.push_back(InFlight::send(conns, batch, installs));
            }
        }
        // Waits for the oldest pipeline; meanwhile takes new messages when another could go.
        let room = in_flight.len() < max_out && backlog.is_empty() && queue_open;
        let settled = tokio::select! {
            oldest = std::future::poll_fn(|cx| poll_oldest(&mut in_flight, cx)) => Some(oldest),
            received = rx.recv_many(&mut incoming, MAX_PIPELINE), if room => {
                queue_open = received > 0;
                None
            }
        };
        let Some((batch, sent, installs)) = settled else { continue };
        // Refused by connections replaced meanwhile (a failover): sent again without an alarm.
        let replaced = link.installs.load(Ordering::Acquire) != installs;
        held.extend(settle_pipeline(&link, batch, sent, replaced));
        if in_flight.is_empty() {
            for message in held.drain(..).rev() {
                backlog.push_front(message);
            }
        }
    }
}

/// Counts what happened to each message of `batch` and returns those Redis certainly did not
/// run, but may run later, in order: they are sent again. `replaced`: the connections were
/// replaced while the pipeline was out, so their failure says nothing of the new ones.
fn settle_pipeline<W: Wire>(link: &Link<W>, batch: Vec<Outgoing>, sent: Sent, replaced: bool) -> Vec<Outgoing> {
    let total = batch.len();
    let batch_bytes: u64 = batch.iter().map(Outgoing::size).sum();
    let mut again = Vec::new();
    let mut refused_for_good = 0;
    let mut refusal = None;
    // Unanswered messages that may have reached Redis (not sent again), and why; why the others,
    // which certainly did not, are sent again.
    let mut unconfirmed = 0;
    let mut unconfirmed_why = None;
    let mut retry_why = None;
    for (index, mut message) in batch.into_iter().enumerate() {
        // Whoever waits for a count hears what became of it; a message sent again keeps its
        // waiter, one dropped here ends the wait with an error.
        let answer = if let Some(failure) = sent.failure_of(index) {
            if !failure.may_have_run {
                retry_why.get_or_insert(failure.why.as_str());
                again.push(message);
                continue;
            }
            unconfirmed += 1;
            unconfirmed_why.get_or_insert(failure.why.as_str());
            Err(Error::Redis(format!("Redis did not confirm the message: {}", failure.why)))
        } else {
            match sent.refused.iter().find(|(i, _)| *i == index) {
                None => sent.counts.iter().find(|(i, _)| *i == index).map(|(_, n)| *n).ok_or_else(|| Error::Redis("Redis did not count the channel's subscribers".into())),
                Some((_, code)) if TRANSIENT_REFUSALS.contains(&code.as_str()) => {
                    refusal.get_or_insert_with(|| code.clone());
                    again.push(message);
                    continue;
                }
                Some((_, code)) => {
                    refusal.get_or_insert_with(|| code.clone());
                    refused_for_good += 1;
                    Err(Error::Redis(format!("Redis refused the message ({code})")))
                }
            }
        };
        if let Some(waiter) = message.count.take() {
            let _ = waiter.send(answer);
        }
    }
    let failed_to_send = again.len();
    let unanswered: usize = sent.unanswered.iter().map(|(indices, _)| indices.len()).sum();
    link.stats.pending_bytes.fetch_sub(batch_bytes - again.iter().map(Outgoing::size).sum::<u64>(), Ordering::AcqRel);
    link.settle(&link.stats.published, total - unanswered - sent.refused.len());
    link.settle(&link.stats.dropped, refused_for_good);
    if refused_for_good > 0 {
        link.router.broadcast_event(&TransportEvent::Error(format!("Redis refused {refused_for_good} messages ({}); they were dropped", refusal.as_deref().unwrap_or("error"))));
    }
    if let Some(why) = unconfirmed_why {
        link.settle(&link.stats.unconfirmed, unconfirmed);
        let why = format!("{unconfirmed} messages were sent but Redis did not confirm them ({why}): they may or may not have been delivered, and are not sent again");
        // Reported even when the outage already was: it says what was lost.
        if !link.fail(why.clone()) {
            link.router.broadcast_event(&TransportEvent::Error(why));
        }
    }
    match retry_why {
        Some(_) if replaced => {}
        Some(why) => {
            link.fail(format!("cannot publish, will retry {failed_to_send} messages: {why}"));
        }
        None if unconfirmed == 0 && failed_to_send > 0 => {
            link.fail(format!("Redis refused {failed_to_send} messages for now ({}); they are sent again once it accepts them", refusal.unwrap_or_default()));
        }
        None => {}
    }
    again
}

/// Watches the link and brings it back (see the module documentation): probes both
/// connections, feeds the answers to the machine and carries out its steps.
///
/// Where the subscriptions depend on the server's topology (sharded pub/sub on a Redis Cluster)
/// it also watches that (`CLUSTER SLOTS`, one cheap command a second): when a failover or
/// resharding changes it, every wanted channel is subscribed again on its new owner, since the
/// redis crate can resubscribe before the cluster has settled (e.g. on the replica about to be
/// promoted) and lose them afterwards.
async fn supervise<W: Wire>(link: Arc<Link<W>>) {
    let mut last_received = u64::MAX;
    let mut last_published = u64::MAX;
    let mut topology: Option<redis::Value> = None;
    let mut retry = RETRY_MIN;
    while !link.is_closed() {
        let received = link.stats.received.load(Ordering::Relaxed);
        let published = link.stats.published.load(Ordering::Relaxed);
        let up = link.state() == LinkState::Up;
        // No connections yet (Sentinel, cluster lookup in progress): nothing to check.
        if let Some(mut conns) = link.current_now() {
            if up {
                if let Ok(Some(now)) = tokio::time::timeout(PROBE_INTERVAL, conns.topology()).await {
                    if topology.as_ref().is_some_and(|known| *known != now) {
                        if let Err(err) = link.subscribe_everything(&mut conns).await {
                            link.fail(format!("cannot subscribe again after the cluster changed: {}", err.detail()));
                        }
                    }
                    topology = Some(now);
                }
            }
            // While messages flow both ways the connections evidently work.
            if !up || received == last_received || published == last_published {
                let timeout = if up { PROBE_TIMEOUT_UP } else { PROBE_TIMEOUT_DOWN };
                let subscribing = !link.router.is_empty();
                let installs = link.installs.load(Ordering::Acquire);
                // A stall is timed from the first PING left unanswered.
                let sent_at = now();
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
async fn carry_out<W: Wire>(link: &Arc<Link<W>>, steps: Vec<Step>, mut conns: W, installs: u64) {
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

/// Puts new connections in use for `sides` of `conns`, and closes the old ones at the server.
fn replace<W: Wire>(link: &Arc<Link<W>>, conns: &W, sides: &[Side]) {
    let generation = if sides.contains(&Side::Subscriber) { link.next_generation() } else { conns.generation() };
    match conns.replace(sides, generation, push_handler(link, generation)) {
        Some(Ok(mut new)) => {
            tracing::debug!("replacing the {sides:?} connections");
            let old: Vec<ClientInfo> = {
                let mut clients = lock(&link.clients);
                sides.iter().filter_map(|side| clients[*side as usize].take()).collect()
            };
            link.install(new.clone());
            // The old connections may still look alive to the server (a silent network): closed
            // there, they no longer count as subscribers of the channels (`PUBSUB NUMSUB`).
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

/// A transport's engine over connections `W`: the queue into the publish loop and the link its
/// tasks share. [`Linked::start`] starts the tasks; the connections are put in use by whoever
/// opens them ([`Link::install`]).
pub(crate) struct Linked<W: Wire> {
    queue: mpsc::Sender<Outgoing>,
    /// Most messages queued, the publish loop's and those out to Redis included (see
    /// [`TransportStats::pending`]).
    max_queued: u64,
    /// Most bytes queued (see [`TransportStats::pending_bytes`]).
    max_bytes: u64,
    link: Arc<Link<W>>,
}

impl<W: Wire> Linked<W> {
    /// Starts the publish loop (a queue of `max_queued` messages and `max_bytes` bytes) and the
    /// supervisor of `link`. Must be called within a tokio runtime.
    pub(crate) fn start(link: Arc<Link<W>>, max_queued: usize, max_bytes: usize) -> Self {
        let (queue, queue_rx) = mpsc::channel(max_queued.max(1));
        tokio::spawn(publish_loop(queue_rx, link.clone()));
        tokio::spawn(supervise(link.clone()));
        Linked { queue, max_queued: max_queued as u64, max_bytes: max_bytes as u64, link }
    }

    /// The link its tasks share.
    #[cfg(any(test, feature = "cluster"))]
    pub(crate) fn link(&self) -> &Arc<Link<W>> {
        &self.link
    }

    /// Counters: published, dropped, unconfirmed, received, pending.
    pub(crate) fn stats(&self) -> &TransportStats {
        &self.link.stats
    }

    /// The link's state: `connecting` (nothing proven yet), `up` (both connections answer and
    /// every subscription is confirmed), `down` (an outage was reported; publishing waits) or
    /// `closed`.
    /// Waits until every message queued so far was sent or given up, for at most `within`;
    /// true when none is left.
    pub(crate) async fn flushed(&self, within: std::time::Duration) -> bool {
        self.link.settled_within(within).await
    }

    /// The link's state (see [`RedisTransport::link_state`](super::redis::RedisTransport::link_state)).
    pub(crate) fn link_state(&self) -> &'static str {
        match self.link.state() {
            LinkState::Connecting => "connecting",
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Closed => "closed",
        }
    }
}

/// A transport dropped without `close()` (a JS `Connection` collected, a Rust value going out
/// of scope) stops its tasks and releases its connections, without waiting: what is still queued
/// is dropped.
impl<W: Wire> Drop for Linked<W> {
    fn drop(&mut self) {
        let link = &self.link;
        link.closed.store(true, Ordering::Release);
        link.shutdown.notify_waiters();
        link.apply(Event::Closed);
        link.stop_publisher.notify_one();
        link.conns.send_replace(None);
    }
}

impl<W: Wire> Linked<W> {
    /// Queues `message` (see [`Transport::publish`]).
    fn enqueue(&self, message: Outgoing) -> Result<(), Error> {
        let stats = &self.link.stats;
        if self.link.is_closed() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        let size = message.size();
        let before = stats.pending_bytes.fetch_add(size, Ordering::AcqRel);
        let queued = stats.pending.fetch_add(1, Ordering::AcqRel);
        let full = if before > 0 && before + size > self.max_bytes {
            Some(format!("{before} bytes waiting, maxQueuedBytes is {}", self.max_bytes))
        } else if queued >= self.max_queued {
            Some(format!("{queued} messages waiting, maxQueuedPublishes is {}", self.max_queued))
        } else {
            match self.queue.try_send(message) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => Some(format!("{} messages waiting, maxQueuedPublishes", self.queue.max_capacity())),
                Err(mpsc::error::TrySendError::Closed(_)) => None,
            }
        };
        stats.pending_bytes.fetch_sub(size, Ordering::AcqRel);
        self.link.settle(&stats.dropped, 1);
        Err(match full {
            Some(why) => Error::Overloaded(format!("publish queue full ({why}; Redis too slow or unreachable): message dropped")),
            None => Error::Closed,
        })
    }
}

impl<W: Wire> Transport for Linked<W> {
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.enqueue(Outgoing { channel, payload, count: None })
    }

    /// Queued as any message; the pipeline that carries it counts the channel's subscribers
    /// just before it.
    fn publish_counted(&self, channel: String, payload: Vec<u8>) -> BoxFuture<'_, Result<usize, Error>> {
        let (waiter, count) = tokio::sync::oneshot::channel();
        let queued = self.enqueue(Outgoing { channel, payload, count: Some(waiter) });
        Box::pin(async move {
            queued?;
            // Dropped unsent: the transport closed.
            count.await.unwrap_or(Err(Error::Closed))
        })
    }

    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'static, Result<(), Error>> {
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

    fn unsubscribe(&self, subscription: Subscription, subscriber: &Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>> {
        let subscription = self.link.router.remove(&subscription, subscriber);
        lock(&self.link.subscribed).remove(&subscription);
        let conns = self.link.current_now();
        let closed = self.link.is_closed();
        Box::pin(async move {
            if subscription.patterns.is_empty() && subscription.channels.is_empty() {
                return Ok(());
            }
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

    /// `PUBSUB NUMSUB` on the connections in use.
    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        let link = self.link.clone();
        let channel = channel.to_owned();
        Box::pin(async move { link.current().await?.num_sub(&channel).await })
    }

    /// Stops accepting messages, sends what is queued (for a bounded time), then closes the
    /// connections: the server sees them go at once, without waiting for the handle to be dropped.
    fn close(&self) -> BoxFuture<'_, ()> {
        self.link.closed.store(true, Ordering::Release);
        self.link.shutdown.notify_waiters();
        let link = self.link.clone();
        Box::pin(async move {
            link.settled_within(CLOSE_GRACE * 2).await;
            link.apply(Event::Closed);
            link.stop_publisher.notify_one();
            link.conns.send_replace(None);
        })
    }
}
