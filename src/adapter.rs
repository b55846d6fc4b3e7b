//! The per-namespace engine: subscriptions, the receive path and the public broadcast API.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::channels::{ChannelKind, Channels};
use crate::config::AdapterConfig;
use crate::error::Error;
use crate::host::{Delivery, DeliveryKind, Host};
use crate::limits::DropKind;
use crate::namespace::{Namespace, RoomChannelOf, Wire};
use crate::protocol::broadcast::frame_with_uid;
use crate::protocol::client_text::client_text;
use crate::protocol::request::{self as req, RequestHeader, RequestType, ResponseBody, SocketAction, Targets};
use crate::protocol::{new_uid, Broadcast, BroadcastOptions, BroadcastRef, OptsLayout, Packet};
use crate::requests::{AckRequests, Outcome, PendingRequests, SentRequest};
use crate::transport::{Subscription, Transport};

/// A node's answer to a request, for [`Adapter::respond`].
#[derive(Debug)]
pub enum Reply {
    /// ALL_ROOMS (`rooms`), REMOTE_FETCH or SOCKETS (`sockets`): a JSON array; `None` for the
    /// bare `{requestId}` answer of legacy single-socket join/leave/disconnect.
    List(Option<Box<RawValue>>),
    /// SERVER_SIDE_EMIT acknowledgement: the ack's first argument as JSON (`None`: no argument).
    ServerSideEmit(Option<Box<RawValue>>),
    /// BROADCAST: how many local clients the broadcast reached.
    ClientCount(u64),
    /// BROADCAST: one client's acknowledgement, msgpack-encoded (notepack).
    Ack(Vec<u8>),
}

/// Counters of one namespace adapter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AdapterStats {
    /// Broadcasts handed to the transport.
    pub published: u64,
    /// Broadcasts from other nodes handed to the host.
    pub delivered: u64,
    /// Messages dropped because they could not be decoded.
    pub malformed: u64,
    /// Messages dropped for being larger than `maxMessageBytes`: received ones, and this node's
    /// own, which are not published.
    pub too_large: u64,
    /// Messages dropped for holding more values than `maxMessageValues` or nesting deeper than
    /// `maxMessageDepth`.
    pub too_complex: u64,
    /// Single-room broadcasts skipped because no local socket is in the room.
    pub skipped: u64,
    /// Requests of this node waiting for responses.
    pub pending_requests: u64,
    /// Broadcasts with ack of this node whose acknowledgements are still awaited.
    pub pending_acks: u64,
}

/// The engine of one namespace on one node: it publishes this node's broadcasts and delivers
/// the other nodes' broadcasts and requests to the [`Host`].
///
/// Cloning is cheap and shares the engine.
///
/// ```no_run
/// use std::sync::Arc;
/// use sioadapter::protocol::{BroadcastOptions, Packet};
/// use sioadapter::transport::redis::RedisTransport;
/// use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, Host, RedisConfig};
///
/// struct Printer;
/// impl Host for Printer {
///     fn deliver(&self, d: Delivery) {
///         println!("{:?}: {} bytes", d.kind(), d.bytes().len());
///     }
///     fn on_event(&self, event: AdapterEvent) {
///         println!("{event:?}");
///     }
/// }
///
/// # async fn demo() -> Result<(), sioadapter::Error> {
/// let transport = Arc::new(RedisTransport::connect(&RedisConfig::from_url("redis://127.0.0.1:6379")?)?);
/// let adapter = Adapter::new("/", &AdapterConfig::default(), transport, Arc::new(Printer));
/// adapter.broadcast(&Packet::event("/", "hello", vec!["world".into()]), &BroadcastOptions::default())?;
/// let rooms = adapter.all_rooms().await?.into_result()?;
/// println!("rooms of the other nodes: {rooms:?}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Namespace<Classic>>,
}

/// The classic protocol's side of a namespace engine: its channels, the rooms with local
/// sockets, and the requests in flight.
pub(crate) struct Classic {
    nsp: String,
    uid: String,
    config: AdapterConfig,
    channels: Channels,
    pending: PendingRequests,
    acks: AckRequests,
    /// Rooms with at least one local socket, kept by the host through
    /// [`Adapter::room_created`] / [`Adapter::room_deleted`].
    rooms: RwLock<HashSet<Box<[u8]>>>,
    /// Rooms that remote joins (`socketsJoin`) named, for a short while: see [`ExpectedRooms`].
    expected: std::sync::Mutex<ExpectedRooms>,
    /// Until when (milliseconds after `created`) some room may be expected: while none is, the
    /// receive path does not lock `expected`.
    expected_until: AtomicU64,
    created: Instant,
    /// Set once the host reported a room: from then on the room set is trusted to be complete,
    /// and broadcasts no local socket can receive are skipped. Hosts that never report rooms
    /// get every broadcast of the namespace.
    tracks_rooms: AtomicBool,
    /// Single-room broadcasts skipped (no local socket in the room).
    skipped: AtomicU64,
    /// Becomes true at close: requests still counting the nodes end then.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Adapter {
    /// Creates the engine of namespace `nsp` and subscribes to its channels in the background
    /// (the host hears [`AdapterEvent::Ready`](crate::AdapterEvent::Ready) once subscribed). Must be called within a tokio
    /// runtime.
    pub fn new(nsp: &str, config: &AdapterConfig, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> Adapter {
        let uid = new_uid();
        let wire = Classic {
            nsp: nsp.to_owned(),
            channels: Channels::new(&config.key, nsp, &uid),
            uid,
            config: config.clone(),
            pending: PendingRequests::default(),
            acks: AckRequests::default(),
            rooms: RwLock::new(HashSet::new()),
            expected: std::sync::Mutex::new(ExpectedRooms::default()),
            expected_until: AtomicU64::new(0),
            created: Instant::now(),
            tracks_rooms: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
            closing: tokio::sync::watch::Sender::new(false),
        };
        Adapter { inner: Namespace::start(nsp, wire, config.limits, transport, host) }
    }

    /// This node's uid for the namespace (6 characters, as the official adapter's).
    pub fn uid(&self) -> &str {
        &self.inner.wire.uid
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.wire.nsp
    }

    /// The channel names of this namespace.
    pub fn channels(&self) -> &Channels {
        &self.inner.wire.channels
    }

    /// Publishes a broadcast to the other nodes (local delivery is the host's business).
    /// Nothing is published when the `local` flag is set.
    pub fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), Error> {
        if opts.flags.get("local").and_then(rmpv::Value::as_bool) == Some(true) {
            return Ok(());
        }
        let mut packet = packet.clone();
        packet.nsp = Some(self.inner.wire.nsp.clone());
        let message = Broadcast { uid: self.inner.wire.uid.clone(), packet, opts: opts.clone(), layout: OptsLayout::Adapter };
        let room = opts.single_room().map(ToString::to_string);
        self.publish(self.inner.wire.channels.broadcast_for(room.as_deref()), self.parser_encoded(message.encode())?)
    }

    /// A message given in msgpack, as this node's parser encodes it: unchanged, or as JSON
    /// text with [`AdapterConfig::json_parser`].
    fn parser_encoded(&self, msgpack: Vec<u8>) -> Result<Vec<u8>, Error> {
        match self.inner.wire.config.json_parser {
            true => Ok(crate::protocol::msgpack::to_json_text(&msgpack)?),
            false => Ok(msgpack),
        }
    }

    /// Publishes a broadcast whose `[packet, opts]` the caller already encoded as a msgpack
    /// 2-array (the Node binding gets it from notepack.io); `single_room` is the room when
    /// `opts.rooms` has exactly one element. The uid is spliced in here.
    pub fn broadcast_encoded(&self, single_room: Option<&str>, packet_and_opts: &[u8]) -> Result<(), Error> {
        let message = frame_with_uid(&self.inner.wire.uid, packet_and_opts)?;
        self.publish(self.inner.wire.channels.broadcast_for(single_room), self.parser_encoded(message)?)
    }

    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.inner.publish(channel, payload)
    }

    /// Publishes a broadcast that the host encoded with its own parser
    /// ([`AdapterConfig::host_parser`]): `message` is the parser's encoding of `[uid, packet,
    /// opts]` (this node's [`uid`](Self::uid)), `single_room` the room when there is exactly one.
    pub fn broadcast_host_encoded(&self, single_room: Option<&str>, message: Vec<u8>) -> Result<(), Error> {
        self.publish(self.inner.wire.channels.broadcast_for(single_room), message)
    }

    /// Publishes a broadcast with ack that the host encoded with its own parser
    /// ([`AdapterConfig::host_parser`]): `request` is the parser's encoding of `{ uid, requestId,
    /// type: 7, packet, opts }`, `request_id` its `requestId` (unique, e.g. from
    /// [`new_uid`]). The other nodes' client counts and
    /// acknowledgements for it are delivered until `timeout`.
    pub fn broadcast_with_ack_host_encoded(&self, request_id: &str, request: Vec<u8>, timeout: Duration) -> Result<(), Error> {
        self.inner.wire.acks.insert(request_id, timeout);
        self.publish_request(request)
    }

    /// Answers a broadcast with ack of node `requester` (its uid, when the request carried one)
    /// with a client's acknowledgement that the host encoded with its own parser
    /// ([`AdapterConfig::host_parser`]): `{ type: 9, requestId, packet }`.
    pub fn respond_host_encoded(&self, requester: Option<&str>, response: Vec<u8>) -> Result<(), Error> {
        self.publish(self.inner.wire.response_channel(RequestType::Broadcast, requester), response)
    }

    /// Tells the engine a local socket is now in `room` (socket ids are rooms too). Once a host
    /// reports rooms it must report them all: broadcasts for rooms it did not report are skipped,
    /// and the engine answers other nodes' allRooms requests itself, from the reported rooms (the
    /// host no longer receives them).
    ///
    /// With per-room subscriptions this also subscribes the room's channel, in the background:
    /// [`Adapter::rooms_synced`] says when it is in place.
    pub fn room_created(&self, room: &str) {
        self.inner.wire.rooms.write().unwrap_or_else(|p| p.into_inner()).insert(room.as_bytes().into());
        self.inner.wire.tracks_rooms.store(true, Ordering::Release);
        self.inner.set_room(room, true);
    }

    /// Tells the engine the last local socket left `room`.
    pub fn room_deleted(&self, room: &str) {
        self.inner.wire.rooms.write().unwrap_or_else(|p| p.into_inner()).remove(room.as_bytes());
        self.inner.set_room(room, false);
    }

    /// Resolves once the channels of every room reported so far are subscribed (or, Redis being
    /// away, their subscription is left to the transport's retries). Immediate without
    /// per-room subscriptions.
    pub async fn rooms_synced(&self) {
        self.inner.rooms_synced().await;
    }

    /// Counters since creation.
    pub fn stats(&self) -> AdapterStats {
        let (ns, wire) = (&self.inner, &self.inner.wire);
        AdapterStats {
            published: ns.published.load(Ordering::Relaxed),
            delivered: ns.delivered.load(Ordering::Relaxed),
            malformed: ns.drops.get(DropKind::Malformed),
            too_large: ns.drops.get(DropKind::TooLarge),
            too_complex: ns.drops.get(DropKind::TooComplex),
            skipped: wire.skipped.load(Ordering::Relaxed),
            pending_requests: wire.pending.len() as u64,
            pending_acks: wire.acks.len() as u64,
        }
    }

    /// Unsubscribes and ends every waiting request with [`Error::Closed`]; nothing is delivered
    /// to the host afterwards. The transport stays open for other namespaces sharing it.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }

    /// The number of nodes serving this namespace: subscribers of the request channel
    /// (`PUBSUB NUMSUB`), this node included. Fails when Redis does not answer within
    /// `requestsTimeout`.
    pub async fn server_count(&self) -> Result<usize, Error> {
        self.count_before(self.deadline(None), self.inner.transport.num_sub(self.inner.wire.channels.request())).await
    }

    /// When a request started now with `timeout` (default `requestsTimeout`) must have settled.
    fn deadline(&self, timeout: Option<Duration>) -> tokio::time::Instant {
        tokio::time::Instant::now() + timeout.unwrap_or(self.inner.wire.config.requests_timeout)
    }

    /// The number of nodes that `count` gives, before `deadline`; [`Error::Closed`] as soon as
    /// the adapter closes.
    async fn count_before(&self, deadline: tokio::time::Instant, count: impl std::future::Future<Output = Result<usize, Error>>) -> Result<usize, Error> {
        let mut closing = self.inner.wire.closing.subscribe();
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::select! {
            count = tokio::time::timeout(within, count) => count.unwrap_or_else(|_| Err(crate::transport::not_counted_within(within))),
            _ = closing.wait_for(|closing| *closing) => Err(Error::Closed),
        }
    }

    /// Sends a request that every other node answers, and waits for the answers or the
    /// deadline. Counting the nodes and waiting for the answers share the one deadline, so the
    /// request settles within its timeout whatever state Redis is in.
    async fn request(&self, kind: RequestType, timeout: Option<Duration>, build: impl FnOnce(&str) -> Vec<u8>) -> Result<Outcome, Error> {
        let deadline = self.deadline(timeout);
        let sent = self.send_counted(kind, deadline, build).await?;
        match sent.nodes.saturating_sub(1) {
            0 => Ok(sent.forget(Outcome::nobody_to_ask())),
            expected => Ok(sent.wait(expected, deadline).await),
        }
    }

    /// Registers and publishes a request (built by `build` from its id), with the nodes counted
    /// in the same round trip, just before it (`PUBSUB NUMSUB` and `PUBLISH` in one pipeline; the
    /// official adapter asks first and then publishes, two round trips). A node alone thus
    /// publishes a request that only it receives, and ignores. Fails, and forgets the request,
    /// when the nodes cannot be counted before `deadline`.
    async fn send_counted(&self, kind: RequestType, deadline: tokio::time::Instant, build: impl FnOnce(&str) -> Vec<u8>) -> Result<SentRequest<'_>, Error> {
        let channel = self.inner.wire.channels.request().to_owned();
        self.inner.wire.pending.send_counted(kind, new_uid(), |id| self.count_before(deadline, self.inner.publish_counted(channel, build(id)))).await
    }

    fn publish_request(&self, payload: Vec<u8>) -> Result<(), Error> {
        self.publish(self.inner.wire.channels.request().to_owned(), payload)
    }

    /// `allRooms()`: the rooms of every other node (local rooms are the host's to add).
    pub async fn all_rooms(&self) -> Result<Outcome, Error> {
        let uid = self.inner.wire.uid.clone();
        self.request(RequestType::AllRooms, None, |id| req::all_rooms_request(&uid, id)).await
    }

    /// `fetchSockets()`: details (`{id, handshake, rooms, data}`) of the matching sockets of
    /// every other node. `timeout` overrides `requestsTimeout` (socket.io's `flags.timeout`).
    pub async fn fetch_sockets(&self, targets: &Targets<'_>, timeout: Option<Duration>) -> Result<Outcome, Error> {
        let uid = self.inner.wire.uid.clone();
        self.request(RequestType::RemoteFetch, timeout, |id| req::fetch_sockets_request(&uid, id, targets)).await
    }

    /// The legacy cluster-wide `sockets(rooms)`: ids of the matching sockets of every other node.
    pub async fn sockets(&self, rooms: &RawValue) -> Result<Outcome, Error> {
        let uid = self.inner.wire.uid.clone();
        self.request(RequestType::Sockets, None, |id| req::sockets_request(&uid, id, rooms)).await
    }

    /// The seeds' `remoteJoin` / `remoteLeave` / `remoteDisconnect` for a socket that is not
    /// local: only the node owning `sid` acts and answers, so the first answer completes the
    /// request; with no answer (or no other node) the outcome is the official timeout error.
    pub async fn remote_socket(&self, sid: &str, action: SocketAction<'_>) -> Result<Outcome, Error> {
        let kind = action.request_type();
        let deadline = self.deadline(None);
        let uid = self.inner.wire.uid.clone();
        let sent = self.send_counted(kind, deadline, |id| req::socket_request(&uid, id, sid, action)).await?;
        if sent.nodes <= 1 {
            let message = crate::requests::timeout_message(kind, 0, 1, false);
            return Ok(sent.forget(Outcome { error: Some(Error::Timeout { message, received: 0, expected: 1 }), expected: 1, ..Outcome::nobody_to_ask() }));
        }
        Ok(sent.wait(1, deadline).await)
    }

    /// `serverSideEmit(...)` with an acknowledgement: the first ack argument of every other
    /// node. On timeout the outcome carries the official error and the answers received.
    pub async fn server_side_emit_with_ack(&self, data: &RawValue) -> Result<Outcome, Error> {
        let uid = self.inner.wire.uid.clone();
        self.request(RequestType::ServerSideEmit, None, |id| req::server_side_emit_request(&uid, Some(id), data)).await
    }

    /// `serverSideEmit(...)` without acknowledgement (`data` = `[event, ...args]` as JSON).
    pub fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
        self.publish_request(req::server_side_emit_request(&self.inner.wire.uid, None, data))
    }

    /// `socketsJoin(rooms)` on the other nodes (the host applies it locally itself).
    pub fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.publish_request(req::rooms_request(&self.inner.wire.uid, true, targets, rooms))
    }

    /// `socketsLeave(rooms)` on the other nodes (the host applies it locally itself).
    pub fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.publish_request(req::rooms_request(&self.inner.wire.uid, false, targets, rooms))
    }

    /// `disconnectSockets(close)` on the other nodes (the host applies it locally itself).
    pub fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
        self.publish_request(req::disconnect_request(&self.inner.wire.uid, targets, close))
    }

    /// Publishes a broadcast with acknowledgements of `packet` to the targets of `opts`, as
    /// request `request_id` (e.g. [`crate::protocol::new_uid`]; the host registers it before
    /// this call, so that no answer comes before it waits). `opts.flags.timeout` (ms) is carried
    /// as socket.io carries it (official nodes do not time their clients' acks with it; the
    /// socketioxide adapter does); `timeout` is how long the other nodes' client counts and
    /// acknowledgements are taken, as [`DeliveryKind::AckResponse`] deliveries (read
    /// them with [`crate::protocol::request::parse_ack_response`]).
    pub fn broadcast_with_ack(&self, request_id: &str, packet: &Packet, opts: &BroadcastOptions, timeout: Duration) -> Result<(), Error> {
        let mut packet = packet.clone();
        packet.nsp = Some(self.inner.wire.nsp.clone());
        let mut packet_and_opts = vec![0x92];
        packet.encode(&mut packet_and_opts);
        opts.encode(&mut packet_and_opts, OptsLayout::Adapter);
        self.publish_broadcast_with_ack(request_id, &packet_and_opts, timeout)
    }

    /// Publishes a broadcast with acknowledgements (`[packet, opts]` pre-encoded as for
    /// [`Adapter::broadcast_encoded`]) and returns its request id. Client counts and
    /// acknowledgements of other nodes reach the host as [`DeliveryKind::AckResponse`] for
    /// `timeout` (socket.io's `flags.timeout`).
    pub fn broadcast_with_ack_encoded(&self, packet_and_opts: &[u8], timeout: Duration) -> Result<String, Error> {
        let id = new_uid();
        self.publish_broadcast_with_ack(&id, packet_and_opts, timeout)?;
        Ok(id)
    }

    fn publish_broadcast_with_ack(&self, request_id: &str, packet_and_opts: &[u8], timeout: Duration) -> Result<(), Error> {
        let request = self.parser_encoded(req::broadcast_with_ack_request(&self.inner.wire.uid, request_id, packet_and_opts)?)?;
        self.broadcast_with_ack_host_encoded(request_id, request, timeout)
    }

    /// Answers request `request_id` of type `kind` sent by node `requester` (its uid, when the
    /// request carried one). The channel follows `publishOnSpecificResponseChannel`, except for
    /// server-side-emit acks, which always use the shared channel (as the official adapter does).
    pub fn respond(&self, kind: RequestType, request_id: &str, requester: Option<&str>, reply: Reply) -> Result<(), Error> {
        let payload = match reply {
            Reply::List(items) => {
                let key = if kind == RequestType::AllRooms { "rooms" } else { "sockets" };
                req::list_response(request_id, key, items.as_deref())
            }
            Reply::ServerSideEmit(data) => req::server_side_emit_response(request_id, data.as_deref()),
            Reply::ClientCount(count) => req::client_count_response(request_id, count),
            Reply::Ack(packet) => self.parser_encoded(req::broadcast_ack_response(request_id, &packet)?)?,
        };
        self.publish(self.inner.wire.response_channel(kind, requester), payload)
    }
}

impl Wire for Classic {
    /// The namespace's fixed subscriptions: the broadcast pattern (or, with per-room
    /// subscriptions, the main broadcast channel) and the request and response channels.
    fn subscription(&self) -> Subscription {
        let mut channels: Vec<String> = self.channels.subscriptions().iter().map(|c| (*c).to_owned()).collect();
        let mut patterns = Vec::new();
        if self.config.per_room_subscriptions {
            channels.push(self.channels.broadcast().to_owned());
        } else {
            patterns.push(self.channels.broadcast_pattern().to_owned());
        }
        Subscription { patterns, channels }
    }

    /// With per-room subscriptions, `K#N#R#` for each room with local sockets.
    fn room_channels(&self) -> Option<RoomChannelOf> {
        let channels = self.channels.clone();
        self.config.per_room_subscriptions.then(|| Box::new(move |room: &str| channels.broadcast_for(Some(room))) as RoomChannelOf)
    }

    fn accept(&self, ns: &Namespace<Self>, channel: &[u8], payload: Vec<u8>) -> Option<Delivery> {
        match self.channels.classify(channel)? {
            ChannelKind::Broadcast(room) => self.accept_broadcast(ns, room, payload),
            ChannelKind::Request => self.accept_request(ns, payload),
            ChannelKind::Response => self.accept_response(ns, payload),
        }
    }

    /// Requests still counting the nodes end, waiting ones end with [`Error::Closed`].
    fn closing(&self) {
        self.closing.send_replace(true);
        self.pending.cancel_all();
        self.acks.clear();
    }
}

impl Classic {
    /// Where the answer to a request of type `kind` from `requester` goes: its own response
    /// channel with `publishOnSpecificResponseChannel`, except for server-side-emit acks, which
    /// always use the shared channel (as the official adapter does).
    fn response_channel(&self, kind: RequestType, requester: Option<&str>) -> String {
        match requester {
            Some(uid) if self.config.publish_on_specific_response_channel && kind != RequestType::ServerSideEmit => self.channels.response_for(uid),
            _ => self.channels.response().to_owned(),
        }
    }

    /// Answers another node's allRooms request from the rooms the host reported (socket ids
    /// included, as socket.io's adapter keeps them), as the host would: the answer does not
    /// wait for the host's thread.
    fn answer_all_rooms(&self, ns: &Namespace<Self>, header: &RequestHeader) {
        let Some(id) = header.request_id.as_deref() else { return };
        let rooms: Vec<String> = self.rooms.read().unwrap_or_else(|p| p.into_inner()).iter().map(|room| String::from_utf8_lossy(room).into_owned()).collect();
        let Ok(rooms) = serde_json::value::to_raw_value(&rooms) else { return };
        let answer = req::list_response(id, "rooms", Some(&rooms));
        if let Err(err) = ns.publish(self.response_channel(RequestType::AllRooms, header.uid.as_deref()), answer) {
            ns.host.on_event(crate::AdapterEvent::Error(err));
        }
    }

    fn has_room(&self, room: &[u8]) -> bool {
        let now = Instant::now();
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).contains(room) || (self.may_expect(now) && self.expected().expects(room, now))
    }

    /// False when the host tracks rooms, has no socket at all and expects none.
    fn may_have_sockets(&self) -> bool {
        !self.tracks_rooms.load(Ordering::Acquire) || !self.rooms.read().unwrap_or_else(|p| p.into_inner()).is_empty() || self.may_expect(Instant::now())
    }

    /// Whether a room named by a remote join may still be expected at `now`.
    fn may_expect(&self, now: Instant) -> bool {
        (now.saturating_duration_since(self.created).as_millis() as u64) < self.expected_until.load(Ordering::Acquire)
    }

    fn expected(&self) -> std::sync::MutexGuard<'_, ExpectedRooms> {
        self.expected.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks one broadcast; returns it when it must be delivered locally. Once the host
    /// reports rooms, messages that no local socket can receive (no socket at all, or none in
    /// any target room) are skipped: single-room ones before decoding, as the official adapter
    /// does. A host that never reports rooms gets every broadcast of the namespace.
    fn accept_broadcast(&self, ns: &Namespace<Self>, room: Option<&[u8]>, payload: Vec<u8>) -> Option<Delivery> {
        let tracks_rooms = self.tracks_rooms.load(Ordering::Acquire);
        if room.is_some_and(|r| tracks_rooms && !self.has_room(r)) || !self.may_have_sockets() {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.config.host_parser {
            return Self::host_encoded(ns, "broadcast", DeliveryKind::Broadcast, payload);
        }
        // The JSON parser's text, read as the msgpack of the same value (`[` opens it; anything
        // else is read as msgpack, which the default parser writes).
        let payload = match payload.first() {
            Some(b'[') if self.config.json_parser => match crate::protocol::msgpack::from_json_text(&payload, &ns.limits) {
                Ok(msgpack) => msgpack,
                Err(err) => {
                    ns.dropped(DropKind::of(&err), "broadcast", &err);
                    return None;
                }
            },
            _ => payload,
        };
        match BroadcastRef::parse_within(&payload, &ns.limits) {
            Err(err) => {
                ns.dropped(DropKind::of(&err), "broadcast", &err);
                None
            }
            Ok(message) if message.uid == self.uid || message.namespace() != self.nsp => None,
            Ok(message) if self.tracks_rooms.load(Ordering::Acquire) && !message.targets_any(|r| self.has_room(r)) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            Ok(_) => Some(match self.config.client_text.then(|| client_text(&payload, &self.nsp)).flatten() {
                Some(text) => Delivery::with_client_text(text),
                None => Delivery::new(DeliveryKind::Broadcast, payload),
            }),
        }
    }

    /// Requests of other nodes go to the host; this node's own (same uid) are ignored, since
    /// its local effects were applied when it sent them.
    fn accept_request(&self, ns: &Namespace<Self>, payload: Vec<u8>) -> Option<Delivery> {
        if self.config.host_parser && !req::is_json(&payload) {
            return Self::host_encoded(ns, "request", DeliveryKind::Request(RequestHeader::host_encoded()), payload);
        }
        match req::parse_request(&payload, &ns.limits) {
            Err(err) => {
                ns.dropped(DropKind::of(&err), "request", &err);
                None
            }
            Ok(header) if header.uid.as_deref() == Some(self.uid.as_str()) => None,
            Ok(header) if header.request_id.as_deref().is_some_and(|id| self.pending.contains(id) || self.acks.contains(id)) => None,
            Ok(header) if header.kind == RequestType::AllRooms && self.tracks_rooms.load(Ordering::Acquire) => {
                self.answer_all_rooms(ns, &header);
                None
            }
            Ok(header) => {
                self.expect_rooms(&header.joins);
                Some(Delivery::new(DeliveryKind::Request(header), payload))
            }
        }
    }

    /// A message for the host's parser ([`AdapterConfig::host_parser`]), passed on unread when
    /// its size is within the limits.
    fn host_encoded(ns: &Namespace<Self>, what: &'static str, kind: DeliveryKind, payload: Vec<u8>) -> Option<Delivery> {
        match ns.limits.check_size(payload.len()) {
            Ok(()) => Some(Delivery::new(kind, payload)),
            Err(why) => {
                ns.dropped(DropKind::TooLarge, what, &why);
                None
            }
        }
    }

    /// A join request is applied by the host later than its broadcasts are filtered here, so
    /// the rooms it joins are expected for a while ([`EXPECT_FOR`]): a broadcast to them right
    /// after the join must not be skipped. If a local socket did join, the host reports the room
    /// meanwhile; if none did (the join targeted sockets of other nodes), the room is forgotten,
    /// so remote joins do not grow this node's memory.
    fn expect_rooms(&self, rooms: &[String]) {
        if rooms.is_empty() || !self.tracks_rooms.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let mut expected = self.expected();
        for room in rooms {
            expected.expect(room.as_bytes().into(), now);
        }
        let until = (now + EXPECT_FOR).saturating_duration_since(self.created).as_millis() as u64 + 1;
        self.expected_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Responses complete pending requests; acknowledgements of broadcasts go to the host.
    fn accept_response(&self, ns: &Namespace<Self>, payload: Vec<u8>) -> Option<Delivery> {
        if self.config.host_parser && !req::is_json(&payload) {
            return Self::host_encoded(ns, "response", DeliveryKind::AckResponse, payload);
        }
        match req::parse_response(&payload, &ns.limits) {
            Err(err) => {
                ns.dropped(DropKind::of(&err), "response", &err);
                None
            }
            Ok(response) => match response.body {
                ResponseBody::ClientCount(_) | ResponseBody::Ack => self.acks.contains(&response.request_id).then(|| Delivery::new(DeliveryKind::AckResponse, payload)),
                _ => {
                    self.pending.on_response(response);
                    None
                }
            },
        }
    }
}

/// How long a room named by a remote join counts as possibly local.
const EXPECT_FOR: Duration = Duration::from_secs(5);
/// Most rooms expected at once; beyond it every room counts as possibly local until the
/// expectations lapse (nothing is skipped wrongly, memory stays bounded).
const MAX_EXPECTED_ROOMS: usize = 65_536;

/// Rooms named by remote joins, each until a deadline; lapsed ones are dropped every
/// [`EXPECT_FOR`], so the set holds about the rooms of the last few seconds' joins.
#[derive(Default)]
struct ExpectedRooms {
    until: HashMap<Box<[u8]>, Instant>,
    /// When lapsed rooms are dropped next.
    next_purge: Option<Instant>,
    /// Set when [`MAX_EXPECTED_ROOMS`] was reached: every room is expected until then.
    all_until: Option<Instant>,
}

impl ExpectedRooms {
    fn expect(&mut self, room: Box<[u8]>, now: Instant) {
        if self.next_purge.is_none_or(|at| now >= at) || self.until.len() >= MAX_EXPECTED_ROOMS {
            self.until.retain(|_, until| *until > now);
            self.next_purge = Some(now + EXPECT_FOR);
        }
        let deadline = now + EXPECT_FOR;
        if self.until.len() >= MAX_EXPECTED_ROOMS {
            self.all_until = Some(deadline);
        } else {
            self.until.insert(room, deadline);
        }
    }

    fn expects(&self, room: &[u8], now: Instant) -> bool {
        self.all_until.is_some_and(|until| until > now) || self.until.get(room).is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::host::AdapterEvent;
    use crate::limits::Limits;
    use crate::protocol::Room;
    use crate::transport::memory::MemoryBroker;

    #[derive(Default)]
    struct Recorder {
        delivered: Mutex<Vec<Broadcast>>,
        texts: Mutex<Vec<Option<crate::protocol::client_text::ClientText>>>,
        events: Mutex<Vec<AdapterEvent>>,
    }

    impl Host for Recorder {
        fn deliver(&self, delivery: Delivery) {
            if *delivery.kind() == DeliveryKind::Broadcast {
                // A broadcast comes as its message or as its client text, never both.
                match delivery.client_text() {
                    Some(_) => assert!(delivery.bytes().is_empty(), "a text delivery keeps its message"),
                    None => self.delivered.lock().unwrap().push(delivery.decode().unwrap()),
                }
                self.texts.lock().unwrap().push(delivery.client_text().cloned());
            }
        }
        fn on_event(&self, event: AdapterEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    fn node(broker: &MemoryBroker, nsp: &str) -> (Adapter, Arc<Recorder>) {
        let host = Arc::new(Recorder::default());
        let adapter = Adapter::new(nsp, &AdapterConfig::default(), Arc::new(broker.connect()), host.clone());
        (adapter, host)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn with_the_json_parser_broadcasts_are_json_text_on_the_wire_and_reach_the_host_as_msgpack() {
        let broker = MemoryBroker::new();
        let config = AdapterConfig::default().with_json_parser(true);
        let (host_a, host_b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let a = Adapter::new("/", &config, Arc::new(broker.connect()), host_a.clone());
        let _b = Adapter::new("/", &config, Arc::new(broker.connect()), host_b.clone());
        let tap = broker.connect();
        let wire = Arc::new(Mutex::new(Vec::new()));
        struct Tap(Arc<Mutex<Vec<Vec<u8>>>>);
        impl crate::transport::Subscriber for Tap {
            fn on_message(&self, message: crate::transport::Inbound) {
                self.0.lock().unwrap().push(message.payload);
            }
            fn on_event(&self, _: &crate::transport::TransportEvent) {}
        }
        let listener = Arc::new(Tap(wire.clone()));
        tap.subscribe(Subscription { patterns: vec!["socket.io#/#*".into()], channels: Vec::new() }, listener.clone()).await.unwrap();
        settle().await;
        a.broadcast(&Packet::event("/", "hello", vec!["world".into(), rmpv::Value::Binary(vec![1, 2])]), &BroadcastOptions::default()).unwrap();
        // What an official node with the JSON parser publishes.
        broker.publish("socket.io#/#", br#"["OFFICL",{"type":2,"data":["from-js",2.5],"nsp":"/"},{"rooms":[],"except":[],"flags":{}}]"#);
        settle().await;
        let sent: serde_json::Value = serde_json::from_slice(&wire.lock().unwrap()[0]).expect("JSON text on the wire");
        assert_eq!(sent[1]["data"], serde_json::json!(["hello", "world", {"type": "Buffer", "data": [1, 2]}]));
        let got = host_b.delivered.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].uid, "OFFICL");
        assert_eq!(got[1].packet.data, vec![rmpv::Value::from("from-js"), rmpv::Value::F64(2.5)]);
    }

    #[tokio::test]
    async fn broadcasts_reach_other_nodes_but_not_the_sender() {
        let broker = MemoryBroker::new();
        let (a, host_a) = node(&broker, "/");
        let (_b, host_b) = node(&broker, "/");
        settle().await;
        a.broadcast(&Packet::event("/", "hello", vec!["world".into()]), &BroadcastOptions::default()).unwrap();
        assert!(host_a.delivered.lock().unwrap().is_empty());
        let got = host_b.delivered.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].uid, a.uid());
        assert_eq!(got[0].packet.data, vec![rmpv::Value::from("hello"), "world".into()]);
        assert!(host_b.events.lock().unwrap().contains(&AdapterEvent::Ready));
    }

    #[tokio::test]
    async fn client_text_comes_with_the_broadcasts_that_allow_it_when_asked_for() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/chat");
        let (_plain, host_plain) = node(&broker, "/chat");
        let host = Arc::new(Recorder::default());
        let _b = Adapter::new("/chat", &AdapterConfig::default().with_client_text(true), Arc::new(broker.connect()), host.clone());
        settle().await;
        let opts = BroadcastOptions { except: vec![Room::from("x")], ..Default::default() };
        a.broadcast(&Packet::event("/chat", "hello", vec!["world".into(), 1.5.into()]), &opts).unwrap();
        a.broadcast(&Packet::event("/chat", "bytes", vec![rmpv::Value::Binary(vec![1])]), &opts).unwrap();
        let texts = host.texts.lock().unwrap().clone();
        let first = texts[0].as_ref().expect("a text for the plain event");
        assert_eq!(first.text, r#"2/chat,["hello","world",1.5]"#);
        assert_eq!(first.opts, r#"{"rooms":[],"except":["x"],"flags":{}}"#);
        assert_eq!(texts[1], None, "binary is left to the host");
        let delivered = host.delivered.lock().unwrap().clone();
        assert_eq!(delivered.len(), 1, "only the binary one comes as its message");
        assert_eq!(delivered[0].packet.data[0], rmpv::Value::from("bytes"));
        assert_eq!(*host_plain.texts.lock().unwrap(), vec![None, None], "not asked for");
    }

    #[tokio::test]
    async fn single_room_broadcasts_are_skipped_without_a_local_socket_in_the_room() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (b, host_b) = node(&broker, "/");
        settle().await;
        let to_room = BroadcastOptions { rooms: vec![Room::from("r1")], ..Default::default() };
        // A host that never reported a room gets everything (it may not know its rooms).
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!((b.stats().skipped, host_b.delivered.lock().unwrap().len()), (0, 1));
        b.room_created("other");
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(b.stats().skipped, 1);
        b.room_created("r1");
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(host_b.delivered.lock().unwrap().len(), 2);
        b.room_deleted("r1");
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(host_b.delivered.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn per_room_subscriptions_receive_only_the_rooms_with_local_sockets() {
        let broker = MemoryBroker::new();
        let config = AdapterConfig::default().with_per_room_subscriptions(true);
        let per_room = |broker: &MemoryBroker| {
            let host = Arc::new(Recorder::default());
            (Adapter::new("/", &config, Arc::new(broker.connect()), host.clone()), host)
        };
        let (a, _) = per_room(&broker);
        let (b, host_b) = per_room(&broker);
        settle().await;
        let to = |room: &str| BroadcastOptions { rooms: vec![Room::from(room)], ..Default::default() };
        // Nobody subscribed r1's channel: Redis would not even send it.
        assert_eq!(broker.publish("socket.io#/#r1#", b"x"), 0);
        b.room_created("r1");
        b.room_created("r1");
        b.rooms_synced().await;
        assert_eq!(broker.publish("socket.io#/#r2#", b"x"), 0);
        a.broadcast(&Packet::event("/", "to-r1", vec![]), &to("r1")).unwrap();
        a.broadcast(&Packet::event("/", "to-all", vec![]), &BroadcastOptions::default()).unwrap();
        let events: Vec<_> = host_b.delivered.lock().unwrap().iter().map(|m| m.packet.data[0].clone()).collect();
        assert_eq!(events, vec![rmpv::Value::from("to-r1"), "to-all".into()]);
        // Deleted, then created and deleted again before the task ran: the last report wins.
        b.room_deleted("r1");
        b.room_created("r1");
        b.room_deleted("r1");
        b.rooms_synced().await;
        assert_eq!(broker.publish("socket.io#/#r1#", b"x"), 0);
        assert_eq!(b.stats().skipped, 0);
        // Room subscriptions do not repeat the Ready event.
        assert_eq!(host_b.events.lock().unwrap().iter().filter(|e| **e == AdapterEvent::Ready).count(), 1);
        b.room_created("r3");
        b.rooms_synced().await;
        assert_eq!(broker.publish("socket.io#/#r3#", b"x"), 1);
        b.close().await.unwrap();
        assert_eq!(broker.publish("socket.io#/#r3#", b"x"), 0);
        assert_eq!(broker.publish("socket.io#/#", b"x"), 1, "only a is left on the main channel");
    }

    #[tokio::test]
    async fn once_rooms_are_tracked_broadcasts_nobody_local_can_receive_are_skipped() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (b, host_b) = node(&broker, "/");
        settle().await;
        b.room_created("sid1");
        let two_rooms = BroadcastOptions { rooms: vec![Room::from("x"), Room::from("y")], ..Default::default() };
        a.broadcast(&Packet::event("/", "nobody", vec![]), &two_rooms).unwrap();
        b.room_created("y");
        a.broadcast(&Packet::event("/", "to-y", vec![]), &two_rooms).unwrap();
        b.room_deleted("y");
        b.room_deleted("sid1");
        a.broadcast(&Packet::event("/", "empty-node", vec![]), &BroadcastOptions::default()).unwrap();
        let got: Vec<_> = host_b.delivered.lock().unwrap().iter().map(|m| m.packet.data[0].clone()).collect();
        assert_eq!(got, vec![rmpv::Value::from("to-y")]);
        assert_eq!(b.stats().skipped, 2);
    }

    #[tokio::test]
    async fn a_room_broadcast_right_after_a_join_request_is_not_skipped() {
        let broker = MemoryBroker::new();
        let (b, host_b) = node(&broker, "/");
        settle().await;
        b.room_created("sid1");
        let emitter = crate::Emitter::new(Arc::new(broker.connect()), "socket.io", "/");
        let none = serde_json::value::RawValue::from_string("[]".into()).unwrap();
        let joined = serde_json::value::RawValue::from_string(r#"["joined"]"#.into()).unwrap();
        emitter.sockets_join(&Targets { rooms: &none, except: &none }, &joined).unwrap();
        emitter.emit("after-join", vec![], &BroadcastOptions { rooms: vec![Room::from("joined")], ..Default::default() }).unwrap();
        assert_eq!(host_b.delivered.lock().unwrap().len(), 1, "the host has not applied the join yet, but the broadcast must reach it");
    }

    #[tokio::test]
    async fn namespaces_are_isolated_and_local_is_never_published() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (_admin, host_admin) = node(&broker, "/admin");
        settle().await;
        a.broadcast(&Packet::event("/", "x", vec![]), &BroadcastOptions::default()).unwrap();
        let mut local = BroadcastOptions::default();
        local.flags.set("local", true);
        a.broadcast(&Packet::event("/", "x", vec![]), &local).unwrap();
        assert_eq!(a.stats().published, 1);
        assert!(host_admin.delivered.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_payloads_are_counted_and_later_messages_still_arrive() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (b, host_b) = node(&broker, "/");
        settle().await;
        for bad in [&b""[..], b"\xc1", b"\x93\xa1a", b"garbage", b"\xdb\xff\xff\xff\xff"] {
            broker.publish("socket.io#/#", bad);
        }
        a.broadcast(&Packet::event("/", "after", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!(b.stats().malformed, 5);
        assert_eq!(host_b.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn messages_over_the_limits_are_dropped_counted_and_reported_once_per_burst() {
        let broker = MemoryBroker::new();
        let limits = crate::limits::Limits { max_message_bytes: 200, max_message_values: 20, max_message_depth: 4, ..Default::default() };
        let host = Arc::new(Recorder::default());
        let b = Adapter::new("/", &AdapterConfig::default().with_limits(limits).unwrap(), Arc::new(broker.connect()), host.clone());
        let (a, _) = node(&broker, "/");
        settle().await;
        let with_data = |data: Vec<rmpv::Value>| {
            Broadcast { uid: "xxxxxx".into(), packet: Packet::event("/", "x", data), opts: BroadcastOptions::default(), layout: OptsLayout::Adapter }.encode()
        };
        let nested = (0..6).fold(rmpv::Value::Nil, |inner, _| rmpv::Value::Array(vec![inner]));
        for _ in 0..3 {
            broker.publish("socket.io#/#", &with_data(vec![rmpv::Value::from("y".repeat(300))]));
            broker.publish("socket.io#/#", &with_data(vec![rmpv::Value::Array(vec![rmpv::Value::Nil; 30])]));
            broker.publish("socket.io#/#", &with_data(vec![nested.clone()]));
            broker.publish("socket.io-request#/#", format!(r#"{{"type":2,"opts":{{"rooms":[],"except":[]}},"rooms":[{}]}}"#, vec!["1"; 30].join(",")).as_bytes());
        }
        a.broadcast(&Packet::event("/", "fine", vec![]), &BroadcastOptions::default()).unwrap();
        let stats = b.stats();
        assert_eq!((stats.too_large, stats.too_complex, stats.malformed), (3, 9, 0));
        assert_eq!(host.delivered.lock().unwrap().len(), 1, "traffic goes on");
        let codes: Vec<&str> = host.events.lock().unwrap().iter().filter_map(|e| if let AdapterEvent::Error(err) = e { Some(err.code().as_str()) } else { None }).collect();
        assert_eq!(codes, ["ERR_SIO_TOO_LARGE", "ERR_SIO_TOO_COMPLEX"], "one report per kind and burst");
        // This node's own message over the limit fails at once, and is counted.
        let err = b.broadcast(&Packet::event("/", "big", vec![rmpv::Value::from("z".repeat(300))]), &BroadcastOptions::default()).unwrap_err();
        assert_eq!(err.code(), "ERR_SIO_TOO_LARGE");
        assert!(err.to_string().contains("maxMessageBytes"), "{err}");
        assert_eq!(b.stats().too_large, 4);
    }

    #[tokio::test]
    async fn an_adapter_dropped_without_close_lets_go_of_its_transport() {
        let broker = MemoryBroker::new();
        let transport: Arc<dyn Transport> = Arc::new(broker.connect());
        let host = Arc::new(Recorder::default());
        let config = AdapterConfig::default().with_per_room_subscriptions(true);
        let adapter = Adapter::new("/", &config, transport.clone(), host.clone());
        adapter.room_created("r");
        adapter.rooms_synced().await;
        let (other, _) = node(&broker, "/");
        settle().await;
        other.broadcast(&Packet::event("/", "before", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!(host.delivered.lock().unwrap().len(), 1);
        drop(adapter);
        settle().await;
        assert_eq!(Arc::strong_count(&transport), 1, "no task, route or cycle keeps the transport");
        other.broadcast(&Packet::event("/", "after", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!(host.delivered.lock().unwrap().len(), 1, "a dropped adapter is not called");
        assert_eq!(Arc::strong_count(&host), 1, "nor is its host kept");
    }

    /// A host that answers ALL_ROOMS requests with a fixed room list.
    struct Answering {
        adapter: std::sync::OnceLock<Adapter>,
        rooms: &'static str,
    }

    impl Host for Answering {
        fn deliver(&self, d: Delivery) {
            if let DeliveryKind::Request(h) = d.kind() {
                let items = serde_json::value::RawValue::from_string(self.rooms.to_owned()).unwrap();
                let adapter = self.adapter.get().unwrap();
                adapter.respond(h.kind, h.request_id.as_deref().unwrap(), h.uid.as_deref(), Reply::List(Some(items))).unwrap();
            }
        }
        fn on_event(&self, _: AdapterEvent) {}
    }

    #[tokio::test]
    async fn two_servers_sharing_one_connection_both_receive_and_survive_each_others_close() {
        let broker = MemoryBroker::new();
        let shared: Arc<dyn Transport> = Arc::new(broker.connect());
        let server = || {
            let host = Arc::new(Recorder::default());
            (Adapter::new("/", &AdapterConfig::default(), shared.clone(), host.clone()), host)
        };
        let (one, host_one) = server();
        let (_two, host_two) = server();
        let (other, _) = node(&broker, "/");
        settle().await;
        other.broadcast(&Packet::event("/", "both", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!((host_one.delivered.lock().unwrap().len(), host_two.delivered.lock().unwrap().len()), (1, 1));
        one.close().await.unwrap();
        other.broadcast(&Packet::event("/", "still", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!((host_one.delivered.lock().unwrap().len(), host_two.delivered.lock().unwrap().len()), (1, 2));
    }

    #[test]
    fn rooms_named_by_remote_joins_are_forgotten_and_bounded() {
        let t0 = Instant::now();
        let mut expected = ExpectedRooms::default();
        // 100,000 joins to rooms no local socket joins, one per millisecond ("game-" + uuid).
        for i in 0..100_000u64 {
            expected.expect(format!("game-{i}").into_bytes().into(), t0 + Duration::from_millis(i));
        }
        let now = t0 + Duration::from_millis(100_000);
        assert!(expected.until.len() <= 2 * 5_000 + 1, "{} rooms kept", expected.until.len());
        assert!(expected.expects(b"game-99999", now) && !expected.expects(b"game-1", now));
        assert!(!expected.expects(b"game-99999", now + EXPECT_FOR));
        // A burst beyond the cap: every room counts as expected for a while, memory stays bounded.
        let mut burst = ExpectedRooms::default();
        for i in 0..(MAX_EXPECTED_ROOMS + 10) {
            burst.expect(format!("r{i}").into_bytes().into(), t0);
        }
        assert_eq!(burst.until.len(), MAX_EXPECTED_ROOMS);
        assert!(burst.expects(b"never-named", t0) && !burst.expects(b"never-named", t0 + EXPECT_FOR));
    }

    fn answering_node(broker: &MemoryBroker, rooms: &'static str) -> Adapter {
        let host = Arc::new(Answering { adapter: std::sync::OnceLock::new(), rooms });
        let adapter = Adapter::new("/", &AdapterConfig::default(), Arc::new(broker.connect()), host.clone());
        host.adapter.set(adapter.clone()).ok();
        adapter
    }

    #[tokio::test]
    async fn all_rooms_collects_one_answer_per_other_node_over_the_transport() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let _b = answering_node(&broker, r#"["b1","b2"]"#);
        let _c = answering_node(&broker, r#"["c1"]"#);
        settle().await;
        assert_eq!(a.server_count().await.unwrap(), 3);
        let outcome = a.all_rooms().await.unwrap();
        assert_eq!(outcome.error, None);
        assert_eq!((outcome.received, outcome.expected), (2, 2));
        let mut rooms: Vec<String> = outcome.parse_items().unwrap();
        rooms.sort();
        assert_eq!(rooms, ["b1", "b2", "c1"]);
        assert_eq!(a.stats().pending_requests, 0);
    }

    #[tokio::test]
    async fn a_node_whose_host_reports_rooms_answers_all_rooms_itself_from_them() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        // Its host would answer otherwise: the answer must come from the reported rooms.
        let b = answering_node(&broker, r#"["from-the-host"]"#);
        settle().await;
        for room in ["sid-b", "r1"] {
            b.room_created(room);
        }
        let mut rooms: Vec<String> = a.all_rooms().await.unwrap().into_result().map(|items| items.iter().map(|r| serde_json::from_str(r.get()).unwrap()).collect()).unwrap();
        rooms.sort();
        assert_eq!(rooms, ["r1", "sid-b"]);
        b.room_deleted("r1");
        let rooms: Vec<String> = a.all_rooms().await.unwrap().parse_items().unwrap();
        assert_eq!(rooms, ["sid-b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_node_makes_the_request_time_out_with_the_official_text() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (_silent, _) = node(&broker, "/");
        settle().await;
        let outcome = a.all_rooms().await.unwrap();
        assert_eq!(outcome.error.unwrap().to_string(), "timeout reached while waiting for allRooms response");
        assert_eq!(a.stats().pending_requests, 0);
    }

    #[tokio::test]
    async fn pre_encoded_broadcasts_are_framed_with_the_uid() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (_b, host_b) = node(&broker, "/");
        settle().await;
        let full = Broadcast { uid: "xxxxxx".into(), packet: Packet::event("/", "e", vec![1.into()]), opts: BroadcastOptions::default(), layout: OptsLayout::Adapter }.encode();
        let mut inner = vec![0x92];
        inner.extend_from_slice(&full[8..]);
        a.broadcast_encoded(None, &inner).unwrap();
        let got = host_b.delivered.lock().unwrap().clone();
        assert_eq!(got[0].uid, a.uid());
        assert_eq!(got[0].packet.data[1], rmpv::Value::from(1));
    }

    /// Every delivery, as its kind and bytes.
    #[derive(Default)]
    struct Everything(Mutex<Vec<(DeliveryKind, Vec<u8>)>>);

    impl Host for Everything {
        fn deliver(&self, delivery: Delivery) {
            self.0.lock().unwrap().push((delivery.kind().clone(), delivery.bytes().to_vec()));
        }
        fn on_event(&self, _: AdapterEvent) {}
    }

    #[tokio::test]
    async fn with_a_host_parser_its_messages_pass_through_unread_and_json_requests_stay_the_engines() {
        let broker = MemoryBroker::new();
        let config = AdapterConfig::default().with_host_parser(true).with_limits(Limits { max_message_bytes: 400, ..Limits::default() }).unwrap();
        let (host_a, host_b) = (Arc::new(Everything::default()), Arc::new(Everything::default()));
        let a = Adapter::new("/", &config, Arc::new(broker.connect()), host_a.clone());
        let b = Adapter::new("/", &config, Arc::new(broker.connect()), host_b.clone());
        settle().await;
        // What a JSON parser writes for a broadcast and a broadcast with ack, and what another
        // parser writes for an ack (bytes the engine could not read).
        let broadcast = format!(r#"["{}",{{"type":2,"data":["e",1],"nsp":"/"}},{{"rooms":[],"except":[],"flags":{{}}}}]"#, a.uid()).into_bytes();
        let request = format!(r#"{{"uid":"{}","requestId":"req1","type":7,"packet":{{"type":2,"data":["q"],"nsp":"/"}},"opts":{{"rooms":[],"except":[]}}}}"#, a.uid()).into_bytes();
        a.broadcast_host_encoded(None, broadcast.clone()).unwrap();
        a.broadcast_with_ack_host_encoded("req1", request.clone(), Duration::from_secs(5)).unwrap();
        broker.publish("socket.io#/#", &[0xc1; 401]);
        let got = std::mem::take(&mut *host_b.0.lock().unwrap());
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], (DeliveryKind::Broadcast, broadcast), "passed through unread");
        assert!(matches!(&got[1], (DeliveryKind::Request(h), bytes) if h.kind == RequestType::Broadcast && h.request_id.as_deref() == Some("req1") && *bytes == request));
        assert_eq!(b.stats().too_large, 1, "only the size is checked");
        // Its own broadcast comes back unread (the host drops it by uid); its own JSON request not.
        let own = std::mem::take(&mut *host_a.0.lock().unwrap());
        assert_eq!(own.iter().map(|(kind, _)| kind.clone()).collect::<Vec<_>>(), [DeliveryKind::Broadcast]);

        let opaque_ack = b"\x83\xa4type\x09".to_vec();
        b.respond_host_encoded(Some(a.uid()), opaque_ack.clone()).unwrap();
        b.respond(RequestType::Broadcast, "req1", Some(a.uid()), Reply::ClientCount(2)).unwrap();
        broker.publish("socket.io-response#/#", br#"{"type":9,"requestId":"req1","packet":"json ack"}"#);
        broker.publish("socket.io-response#/#", br#"{"type":9,"requestId":"unknown","packet":1}"#);
        let got = std::mem::take(&mut *host_a.0.lock().unwrap());
        let acks: Vec<&[u8]> = got.iter().filter(|(kind, _)| *kind == DeliveryKind::AckResponse).map(|(_, bytes)| &bytes[..]).collect();
        assert_eq!(acks, [&opaque_ack[..], br#"{"type":8,"requestId":"req1","clientCount":2}"#, br#"{"type":9,"requestId":"req1","packet":"json ack"}"#]);
    }
}
