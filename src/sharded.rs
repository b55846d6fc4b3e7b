//! The sharded adapter's engine (docs/protocol.md §1.2 and §4): the channels of one namespace on a
//! Redis Cluster with sharded pub/sub, and what arrives on them.
//!
//! With channel prefix `P`, namespace `N` and server uid `U` (16 hex characters), a node
//! SSUBSCRIBEs `P#N#` (every message of the namespace) and `P#N#U#` (answers to its own
//! requests), plus, in the dynamic subscription modes, `P#N#R#` for the rooms it has local
//! sockets in. Messages are the socket.io ClusterAdapter's (`{type, data, uid, nsp}`, JSON, or
//! msgpack when they carry binary); their meaning is the host's business (the Node binding
//! hands them to socket.io-adapter's `ClusterAdapter`). This engine names the channels,
//! subscribes, publishes and delivers what arrives, bounded in size, in order.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::adapter::AdapterStats;
use crate::channels::{ShardedChannel, ShardedChannels};
use crate::error::Error;
use crate::host::{Delivery, DeliveryKind, Host};
use crate::limits::{DropKind, Limits};
use crate::namespace::{Namespace, RoomChannelOf, Wire};
use crate::protocol::cluster::check_message;
use crate::protocol::msgpack::Reader;
use crate::protocol::request::{check_json, is_json};
use crate::protocol::ProtocolError;
use crate::transport::{Subscription, Transport};

/// How long counting the nodes may take. socket.io's `ClusterAdapter`, which runs the requests
/// of the sharded adapter, starts a request's timeout only once the count is known, so a slow
/// count (Redis paused or unreachable) would make the request late by as much: a healthy Redis
/// answers in milliseconds, so the request fails fast instead.
pub const SERVER_COUNT_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The default channel prefix (`channelPrefix`), as the official sharded adapter's.
pub const DEFAULT_CHANNEL_PREFIX: &str = "socket.io";

/// Which rooms get a channel of their own (`subscriptionMode`, docs/protocol.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// Every message goes through the main channel.
    Static,
    /// Public rooms (not socket ids) get a channel: single-room broadcasts use it.
    #[default]
    Dynamic,
    /// Every room, socket ids included, gets a channel.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Every mode; the default, as officially, is [`SubscriptionMode::Dynamic`].
    pub const ALL: [SubscriptionMode; 3] = [SubscriptionMode::Static, SubscriptionMode::Dynamic, SubscriptionMode::DynamicPrivate];

    /// The official option value.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }

    /// Whether a broadcast to `room` alone goes to the room's own channel (`P#N#R#`) rather
    /// than the main one, as the official sharded adapter decides: in the dynamic modes, except,
    /// in `dynamic`, for a room that looks like a socket id (20 characters).
    pub fn room_has_channel(self, room: &str) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => room.encode_utf16().count() != 20,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

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
    inner: Arc<Namespace<Sharded>>,
}

/// The sharded protocol's side of a namespace engine: its channels and subscription mode.
pub(crate) struct Sharded {
    channels: ShardedChannels,
    mode: SubscriptionMode,
}

impl ShardedAdapter {
    /// Creates the engine of namespace `nsp` for the node whose uid is `uid` (the host's
    /// ClusterAdapter makes it), with channel prefix `prefix`, and subscribes its channels in
    /// the background; what arrives is checked against `limits` before the host sees it. Must
    /// be called within a tokio runtime.
    pub fn new(nsp: &str, prefix: &str, uid: &str, mode: SubscriptionMode, limits: Limits, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> ShardedAdapter {
        let wire = Sharded { channels: ShardedChannels::new(prefix, nsp, uid), mode };
        ShardedAdapter { inner: Namespace::start(nsp, wire, limits, transport, host) }
    }

    /// The channel names of this namespace.
    pub fn channels(&self) -> &ShardedChannels {
        &self.inner.wire.channels
    }

    /// Publishes an encoded message: on the main channel, or, for a BROADCAST without ack whose
    /// only room is `single_room`, on the room's channel when the subscription mode gives it
    /// one ([`ShardedChannels::broadcast`]).
    pub fn publish(&self, single_room: Option<&str>, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.publish(self.inner.wire.channels.broadcast(self.inner.wire.mode, single_room), payload)
    }

    /// Publishes a request on the main channel with the nodes counted in the same pipeline
    /// (`PUBSUB SHARDNUMSUB`, this node included): queued before this returns, the count given
    /// once Redis answered, or an error when it did not within `within`. ClusterAdapter asks for
    /// the count and then publishes: this is one round trip instead of two.
    pub fn publish_counted(&self, payload: Vec<u8>, within: std::time::Duration) -> crate::transport::BoxFuture<'_, Result<usize, Error>> {
        let counted = self.inner.publish_counted(self.inner.wire.channels.main().to_owned(), payload);
        Box::pin(async move { tokio::time::timeout(within, counted).await.unwrap_or_else(|_| Err(crate::transport::not_counted_within(within))) })
    }

    /// Publishes an answer to the node whose uid is `requester`.
    pub fn publish_response(&self, requester: &str, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.publish(self.inner.wire.channels.responses_of(requester), payload)
    }

    /// Subscribes `room`'s channel (dynamic modes; the host picks the rooms the mode covers).
    pub fn room_created(&self, room: &str) {
        self.inner.set_room(room, true);
    }

    /// Unsubscribes `room`'s channel.
    pub fn room_deleted(&self, room: &str) {
        self.inner.set_room(room, false);
    }

    /// Resolves once the rooms reported so far are subscribed.
    pub async fn rooms_synced(&self) {
        self.inner.rooms_synced().await;
    }

    /// Nodes serving the namespace: `PUBSUB SHARDNUMSUB` of the main channel. Fails when Redis
    /// does not answer within [`SERVER_COUNT_WITHIN`].
    pub async fn server_count(&self) -> Result<usize, Error> {
        crate::transport::num_sub_within(self.inner.transport.as_ref(), self.inner.wire.channels.main(), SERVER_COUNT_WITHIN).await
    }

    /// Counters since creation: published, delivered, dropped by reason (the host's
    /// ClusterAdapter runs the requests and skips nothing: those counters stay 0).
    pub fn stats(&self) -> AdapterStats {
        let (ns, drops) = (&self.inner, &self.inner.drops);
        AdapterStats {
            published: ns.published.load(Ordering::Relaxed),
            delivered: ns.delivered.load(Ordering::Relaxed),
            malformed: drops.get(DropKind::Malformed),
            too_large: drops.get(DropKind::TooLarge),
            too_complex: drops.get(DropKind::TooComplex),
            ..AdapterStats::default()
        }
    }

    /// Unsubscribes everything; nothing is delivered afterwards.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

impl Sharded {
    /// Checks a message before the host decodes it: against the limits first (JSON is
    /// measured, msgpack walked), then, within them, that it is a message the host's
    /// ClusterAdapter can handle ([`check_message`]).
    fn check(payload: &[u8], limits: &Limits) -> Result<(), ProtocolError> {
        match payload {
            [] => Err(ProtocolError::Truncated),
            _ if is_json(payload) => check_json(payload, limits),
            _ => {
                let mut reader = Reader::within(payload, limits);
                reader.skip_value().and_then(|()| reader.finish())
            }
        }?;
        check_message(payload)
    }
}

impl Wire for Sharded {
    fn subscription(&self) -> Subscription {
        Subscription { patterns: Vec::new(), channels: vec![self.channels.main().to_owned(), self.channels.responses().to_owned()] }
    }

    /// In the dynamic modes, `P#N#R#` for the rooms the host reports.
    fn room_channels(&self) -> Option<RoomChannelOf> {
        let channels = self.channels.clone();
        (self.mode != SubscriptionMode::Static).then(|| Box::new(move |room: &str| channels.room(room)) as RoomChannelOf)
    }

    fn accept(&self, ns: &Namespace<Self>, channel: &[u8], payload: Vec<u8>) -> Option<Delivery> {
        let kind = match self.channels.classify(channel)? {
            ShardedChannel::Response => DeliveryKind::ClusterResponse,
            ShardedChannel::Message => DeliveryKind::ClusterMessage,
        };
        if let Err(err) = Self::check(&payload, &ns.limits) {
            ns.dropped(DropKind::of(&err), "message", &format_args!("{err}, on {}", String::from_utf8_lossy(channel)));
            return None;
        }
        Some(Delivery::new(kind, payload))
    }
}
