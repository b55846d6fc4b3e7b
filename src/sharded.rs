//! The sharded adapter's engine (protocol.md §1.2 and §4): the channels of one namespace on a
//! Redis Cluster with sharded pub/sub, and what arrives on them.
//!
//! With channel prefix `P`, namespace `N` and server uid `U` (16 hex characters), a node
//! SSUBSCRIBEs `P#N#` (every message of the namespace) and `P#N#U#` (answers to its own
//! requests), plus, in the dynamic subscription modes, `P#N#R#` for the rooms it has local
//! sockets in. Messages are the socket.io ClusterAdapter's (`{type, data, uid, nsp}`, JSON, or
//! msgpack when they carry binary); their meaning is the host's business (the Node binding
//! hands them to socket.io-adapter's `ClusterAdapter`). This engine names the channels,
//! subscribes, publishes and delivers what arrives, bounded in size, in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::Error;
use crate::host::{Delivery, DeliveryKind, EventFilter, Host};
use crate::limits::{DropCounters, DropKind, Limits};
use crate::protocol::msgpack::Reader;
use crate::protocol::request::{check_json, is_json};
use crate::protocol::ProtocolError;
use crate::room_channels::RoomChannels;
use crate::transport::{subscribe_in_background, Inbound, Subscriber, Subscription, Transport, TransportEvent};

/// How long counting the nodes may take. socket.io's `ClusterAdapter`, which runs the requests
/// of the sharded adapter, starts a request's timeout only once the count is known, so a slow
/// count (Redis paused or unreachable) would make the request late by as much: a healthy Redis
/// answers in milliseconds, so the request fails fast instead.
pub const SERVER_COUNT_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Which rooms get a channel of their own (`subscriptionMode`, protocol.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Every message goes through the main channel.
    Static,
    /// Public rooms (not socket ids) get a channel: single-room broadcasts use it.
    Dynamic,
    /// Every room, socket ids included, gets a channel.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Parses the official option value (`"static"`, `"dynamic"`, `"dynamic-private"`).
    pub fn parse(mode: &str) -> Result<Self, Error> {
        match mode {
            "static" => Ok(SubscriptionMode::Static),
            "dynamic" => Ok(SubscriptionMode::Dynamic),
            "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
            other => Err(Error::InvalidOption { option: "subscriptionMode", reason: format!("expected \"static\", \"dynamic\" or \"dynamic-private\", got {other:?}") }),
        }
    }
}

/// The engine of one namespace of a sharded adapter. Cloning shares it.
#[derive(Clone)]
pub struct ShardedAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    /// `P#N#`: every message of the namespace, and the prefix of room channels.
    main: String,
    /// `P#N#U#`: answers to this node's requests.
    responses: String,
    transport: Arc<dyn Transport>,
    host: Arc<dyn Host>,
    /// In the dynamic modes: the task keeping a channel per local room subscribed.
    rooms: OnceLock<Arc<RoomChannels>>,
    events: EventFilter,
    limits: Limits,
    drops: DropCounters,
    closed: AtomicBool,
}

/// Messages a [`ShardedAdapter`] dropped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardedStats {
    /// Larger than `maxMessageBytes`.
    pub too_large: u64,
    /// More values than `maxMessageValues`, or nested deeper than `maxMessageDepth`.
    pub too_complex: u64,
    /// Empty, or msgpack that does not decode.
    pub malformed: u64,
}

impl ShardedAdapter {
    /// Creates the engine of namespace `nsp` for the node whose uid is `uid` (the host's
    /// ClusterAdapter makes it), with channel prefix `prefix`, and subscribes its channels in
    /// the background; what arrives is checked against `limits` before the host sees it. Must
    /// be called within a tokio runtime.
    pub fn new(nsp: &str, prefix: &str, uid: &str, mode: SubscriptionMode, limits: Limits, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> ShardedAdapter {
        let main = format!("{prefix}#{nsp}#");
        let inner = Arc::new(Inner {
            responses: format!("{main}{uid}#"),
            main,
            transport,
            host,
            rooms: OnceLock::new(),
            events: EventFilter::default(),
            limits,
            drops: DropCounters::default(),
            closed: AtomicBool::new(false),
        });
        let subscriber: Arc<dyn Subscriber> = inner.clone();
        if mode != SubscriptionMode::Static {
            let main = inner.main.clone();
            let rooms = RoomChannels::start(inner.transport.clone(), &subscriber, move |room| format!("{main}{room}#"));
            let _ = inner.rooms.set(rooms);
        }
        subscribe_in_background(inner.transport.as_ref(), inner.subscription(), subscriber);
        ShardedAdapter { inner }
    }

    /// Publishes an encoded message on the main channel, or on `room`'s channel (the host
    /// decides, by the subscription mode, which messages go there).
    pub fn publish(&self, room: Option<&str>, payload: Vec<u8>) -> Result<(), Error> {
        let channel = match room {
            Some(room) => format!("{}{room}#", self.inner.main),
            None => self.inner.main.clone(),
        };
        self.send(channel, payload)
    }

    /// Publishes an answer to the node whose uid is `requester`.
    pub fn publish_response(&self, requester: &str, payload: Vec<u8>) -> Result<(), Error> {
        self.send(format!("{}{requester}#", self.inner.main), payload)
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Err(err) = self.inner.limits.check_outgoing(payload.len()) {
            self.inner.drops.add(DropKind::TooLarge);
            return Err(err);
        }
        self.inner.transport.publish(channel, payload)
    }

    /// Subscribes `room`'s channel (dynamic modes; the host picks the rooms the mode covers).
    pub fn room_created(&self, room: &str) {
        if let Some(rooms) = self.inner.rooms.get() {
            rooms.set(room, true);
        }
    }

    /// Unsubscribes `room`'s channel.
    pub fn room_deleted(&self, room: &str) {
        if let Some(rooms) = self.inner.rooms.get() {
            rooms.set(room, false);
        }
    }

    /// Resolves once the rooms reported so far are subscribed.
    pub async fn rooms_synced(&self) {
        if let Some(rooms) = self.inner.rooms.get() {
            rooms.synced().await;
        }
    }

    /// Nodes serving the namespace: `PUBSUB SHARDNUMSUB` of the main channel. Fails when Redis
    /// does not answer within [`SERVER_COUNT_WITHIN`].
    pub async fn server_count(&self) -> Result<usize, Error> {
        crate::transport::num_sub_within(self.inner.transport.as_ref(), &self.inner.main, SERVER_COUNT_WITHIN).await
    }

    /// Messages dropped since creation, by reason.
    pub fn stats(&self) -> ShardedStats {
        let drops = &self.inner.drops;
        ShardedStats { too_large: drops.get(DropKind::TooLarge), too_complex: drops.get(DropKind::TooComplex), malformed: drops.get(DropKind::Malformed) }
    }

    /// Unsubscribes everything; nothing is delivered afterwards.
    pub async fn close(&self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(rooms) = self.inner.rooms.get() {
            rooms.stop().await;
        }
        let subscriber: Arc<dyn Subscriber> = self.inner.clone();
        self.inner.transport.unsubscribe(self.inner.subscription(), &subscriber).await
    }
}

impl Inner {
    fn subscription(&self) -> Subscription {
        Subscription { patterns: Vec::new(), channels: vec![self.main.clone(), self.responses.clone()] }
    }

    /// Checks a message against the limits before the host decodes it: its size, then its
    /// values and nesting (JSON is measured; msgpack is walked, which also finds broken msgpack).
    fn check(&self, payload: &[u8]) -> Result<(), (DropKind, String)> {
        let limits = &self.limits;
        limits.check_size(payload.len()).map_err(|why| (DropKind::TooLarge, why))?;
        let checked = match payload {
            [] => Err(ProtocolError::Truncated),
            _ if is_json(payload) => check_json(payload, limits),
            _ => {
                let mut reader = Reader::within(payload, limits);
                reader.skip_value().and_then(|()| reader.finish())
            }
        };
        checked.map_err(|err| (DropKind::of(&err), err.to_string()))
    }

    /// Counts a dropped message, and reports it when a burst of such drops starts.
    fn dropped(&self, kind: DropKind, channel: &[u8], why: String) {
        tracing::debug!(channel = %String::from_utf8_lossy(channel), "dropping a {kind} message: {why}");
        self.drops.report(kind, self.host.as_ref(), || format!("the last, on {}: {why}", String::from_utf8_lossy(channel)));
    }
}

/// An engine dropped without `close()` stops its room-channel task; the transport stops
/// calling it (it holds subscribers weakly) and goes with its last user.
impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rooms) = self.rooms.get() {
            rooms.abandon();
        }
    }
}

impl Subscriber for Inner {
    fn on_messages(&self, batch: Vec<Inbound>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let deliveries: Vec<Delivery> = batch
            .into_iter()
            .filter_map(|Inbound { channel, payload }| {
                let kind = if channel == self.responses.as_bytes() {
                    DeliveryKind::ClusterResponse
                } else if channel.starts_with(self.main.as_bytes()) {
                    DeliveryKind::ClusterMessage
                } else {
                    return None;
                };
                if let Err((drop, why)) = self.check(&payload) {
                    self.dropped(drop, &channel, why);
                    return None;
                }
                Some(Delivery::new(kind, payload))
            })
            .collect();
        if !deliveries.is_empty() {
            self.host.deliver(deliveries);
        }
    }

    fn on_event(&self, event: &TransportEvent) {
        if !self.closed.load(Ordering::Acquire) {
            self.events.forward(event, self.host.as_ref());
        }
    }
}
