//! A node of a cluster of sharded adapters for a server that does not run socket.io's
//! `ClusterAdapter` (a C/C++ or Rust server): the ClusterAdapter protocol (docs/protocol.md §4)
//! runs here, over the [`ShardedAdapter`] engine, behind the host interface of the classic
//! [`Adapter`](crate::Adapter). A host written for one serves the other.
//!
//! What arrives is handed over as a classic host receives it:
//! - a BROADCAST as a [`DeliveryKind::Broadcast`], msgpack `[uid, packet, opts]`;
//! - SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS, FETCH_SOCKETS, SERVER_SIDE_EMIT and a
//!   BROADCAST with ack as a [`DeliveryKind::Request`] holding the classic request (JSON, or
//!   msgpack for the broadcast with ack), answered with [`ShardedNode::respond`] as with
//!   [`Adapter::respond`](crate::Adapter::respond);
//! - answers to this node's own requests are correlated here. fetchSockets and serverSideEmit
//!   with ack expect an answer from every other node (`PUBSUB SHARDNUMSUB` of the main channel,
//!   counted in the request's own pipeline, minus this node) and time out with the
//!   ClusterAdapter's text (`timeout reached: only X responses received out of Y`);
//! - the client counts and acknowledgements that answer this node's broadcasts with acks
//!   ([`ShardedNode::broadcast_with_ack`]) as [`DeliveryKind::AckResponse`] deliveries, in the
//!   classic adapter's form (read them with
//!   [`parse_ack_response`](crate::protocol::request::parse_ack_response)).
//!
//! The ClusterAdapter has no `allRooms` request: [`ShardedNode::all_rooms`] gathers the rooms of
//! every other node's sockets with a fetchSockets.

use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use serde_json::value::RawValue;

use crate::adapter::{AdapterStats, Reply};
use crate::config::AdapterConfig;
use crate::error::Error;
use crate::host::{AdapterEvent, Delivery, DeliveryKind, Host};
use crate::limits::Limits;
use crate::protocol::cluster::{self, kind};
use crate::protocol::request::{self as req, is_json, parse_request, RawJson, RequestType, Response, ResponseBody, Targets};
use crate::protocol::{msgpack, new_cluster_uid, BroadcastOptions, Packet, ProtocolError};
use crate::requests::{AckRequests, Outcome, PendingRequests};
use crate::sharded::{ShardedAdapter, SubscriptionMode, SERVER_COUNT_WITHIN};
use crate::transport::Transport;

/// One namespace of a server in a cluster of sharded adapters (official `createShardedAdapter`
/// nodes or ours), for a host that serves its own sockets. Cloning shares it.
///
/// ```no_run
/// # async fn demo(host: std::sync::Arc<dyn sioadapter::Host>) -> Result<(), sioadapter::Error> {
/// use std::sync::Arc;
/// use sioadapter::{sharded::SubscriptionMode, AdapterConfig, RedisConfig, ShardedNode};
/// use sioadapter::transport::redis::RedisTransport;
///
/// let mut redis = RedisConfig::from_url("redis://127.0.0.1:6379")?;
/// redis.sharded = true;
/// let transport = Arc::new(RedisTransport::connect(&redis)?);
/// let node = ShardedNode::new("/", &AdapterConfig::default(), SubscriptionMode::Dynamic, transport, host);
/// println!("{} nodes", node.server_count().await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ShardedNode {
    inner: Arc<Inner>,
}

struct Inner {
    engine: ShardedAdapter,
    uid: String,
    nsp: String,
    mode: SubscriptionMode,
    requests_timeout: Duration,
    pending: Arc<PendingRequests>,
    /// This node's broadcasts with acks whose answers are still taken.
    acks: Arc<AckRequests>,
}

impl ShardedNode {
    /// Joins the cluster as a node serving namespace `nsp`: channel prefix `config.key`
    /// (`channelPrefix`), requests timing out after `config.requests_timeout`, received
    /// messages checked against `config.limits`; `mode` must be the cluster's
    /// `subscriptionMode`. `transport` must use sharded pub/sub
    /// ([`RedisConfig::sharded`](crate::RedisConfig::sharded)). Subscribes in the background (the
    /// host hears [`AdapterEvent::Ready`]); must be called within a tokio runtime.
    pub fn new(nsp: &str, config: &AdapterConfig, mode: SubscriptionMode, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> ShardedNode {
        let uid = new_cluster_uid();
        let pending = Arc::new(PendingRequests::cluster());
        let acks = Arc::new(AckRequests::default());
        let translator = Arc::new(Translator { uid: uid.clone(), nsp: nsp.to_owned(), pending: pending.clone(), acks: acks.clone(), host });
        let engine = ShardedAdapter::new(nsp, &config.key, &uid, mode, config.limits, transport, translator);
        ShardedNode { inner: Arc::new(Inner { engine, uid, nsp: nsp.to_owned(), mode, requests_timeout: config.requests_timeout, pending, acks }) }
    }

    /// This node's uid (16 hex characters, as the ClusterAdapter's).
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// Broadcasts `packet` to the sockets selected by `opts` on the other nodes (delivering to
    /// the local sockets is the host's business): on the room's channel when the subscription
    /// mode gives the only room one.
    pub fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), Error> {
        let message = cluster::broadcast_message(packet, opts, &self.inner.uid, &self.inner.nsp)?;
        let room = opts.single_room().map(ToString::to_string);
        self.inner.engine.publish(room.as_deref(), message)
    }

    /// Publishes a broadcast with acknowledgements of `packet` to the sockets selected by `opts`
    /// on the other nodes, as request `request_id` (e.g. [`crate::protocol::new_uid`]; the host
    /// registers it before this call, so that no answer comes before it waits), on the main
    /// channel in every mode (as the official adapter: each node answers, and the nodes are
    /// counted on the main channel). `opts.flags.timeout` (ms) is carried as socket.io carries
    /// it (official nodes do not time their clients' acks with it; the socketioxide adapter
    /// does); `timeout` is how long the other nodes' client counts and acknowledgements are
    /// taken, as [`DeliveryKind::AckResponse`] deliveries.
    pub fn broadcast_with_ack(&self, request_id: &str, packet: &Packet, opts: &BroadcastOptions, timeout: Duration) -> Result<(), Error> {
        let message = cluster::broadcast_with_ack_message(packet, opts, request_id, &self.inner.uid, &self.inner.nsp)?;
        self.inner.acks.insert(request_id, timeout);
        self.publish_main(message)
    }

    /// Answers request `request_id` of type `kind` from node `requester`, as
    /// [`Adapter::respond`](crate::Adapter::respond) does: the sockets of a fetch
    /// ([`Reply::List`]), a server-side emit's ack ([`Reply::ServerSideEmit`]), or, for a
    /// broadcast with ack, the client count and each client's ack. Every sharded request names
    /// its requester: `requester` is required.
    pub fn respond(&self, kind: RequestType, request_id: &str, requester: Option<&str>, reply: Reply) -> Result<(), Error> {
        let requester = requester.ok_or_else(|| invalid("requester", "a sharded request is answered to its requester's uid"))?;
        let (uid, nsp) = (self.inner.uid.as_str(), self.inner.nsp.as_str());
        let message = match (kind, reply) {
            (RequestType::RemoteFetch, Reply::List(sockets)) => cluster::fetch_sockets_response(request_id, &sockets.unwrap_or_else(empty_array), uid, nsp),
            (RequestType::ServerSideEmit, Reply::ServerSideEmit(data)) => cluster::server_side_emit_response(request_id, data.as_deref(), uid, nsp),
            (RequestType::Broadcast, Reply::ClientCount(count)) => cluster::client_count_message(request_id, count, uid, nsp),
            (RequestType::Broadcast, Reply::Ack(packet)) => cluster::broadcast_ack_message(request_id, &packet, uid, nsp)?,
            (kind, _) => return Err(invalid("reply", &format!("a sharded node does not answer {} requests with this reply", kind.operation()))),
        };
        self.inner.engine.publish_response(requester, message)
    }

    /// `fetchSockets()`: details (`{id, handshake, rooms, data}`) of the matching sockets of
    /// every other node. `timeout` overrides the requests timeout (socket.io's `flags.timeout`).
    pub async fn fetch_sockets(&self, targets: &Targets<'_>, timeout: Option<Duration>) -> Result<Outcome, Error> {
        let (uid, nsp) = (&self.inner.uid, &self.inner.nsp);
        self.request(RequestType::RemoteFetch, timeout, |id| cluster::fetch_sockets_message(targets, id, uid, nsp)).await
    }

    /// The rooms of every other node, as the classic adapter's `allRooms` gives them (socket ids
    /// included; each room once, as JSON, whatever its type): the ClusterAdapter has no such
    /// request, so they are gathered from a fetchSockets of every socket (each answer names its
    /// sockets' rooms). That costs what a fetchSockets costs: every socket's details (handshake
    /// headers included) cross Redis, and a node whose answer is over the receive limits
    /// (`maxMessageBytes`, about 10,000 sockets at the defaults) is not counted. A timeout gives
    /// the fetch's text (`timeout reached: only X responses received out of Y`) and the rooms
    /// of the answers that came.
    pub async fn all_rooms(&self) -> Result<Outcome, Error> {
        let everybody = empty_array();
        let fetched = self.fetch_sockets(&Targets { rooms: &everybody, except: &everybody }, None).await?;
        let mut seen = std::collections::HashSet::new();
        let mut rooms = Vec::new();
        for socket in &fetched.items {
            let Ok(details) = serde_json::from_str::<SocketRooms>(socket.get()) else { continue };
            rooms.extend(details.rooms.into_iter().filter(|room| seen.insert(room.get().to_owned())));
        }
        Ok(Outcome { items: rooms, ..fetched })
    }

    /// `serverSideEmit(...)` with an acknowledgement (`data` = `[event, ...args]` as JSON): the
    /// first ack argument of every other node.
    pub async fn server_side_emit_with_ack(&self, data: &RawValue) -> Result<Outcome, Error> {
        let (uid, nsp) = (&self.inner.uid, &self.inner.nsp);
        self.request(RequestType::ServerSideEmit, None, |id| cluster::server_side_emit_message(data, Some(id), uid, nsp)).await
    }

    /// `serverSideEmit(...)` without acknowledgement.
    pub fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
        self.publish_main(cluster::server_side_emit_message(data, None, &self.inner.uid, &self.inner.nsp))
    }

    /// `socketsJoin(rooms)` on the other nodes (the host applies it locally itself).
    pub fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.publish_main(cluster::sockets_message(true, targets, rooms, &self.inner.uid, &self.inner.nsp))
    }

    /// `socketsLeave(rooms)` on the other nodes (the host applies it locally itself).
    pub fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.publish_main(cluster::sockets_message(false, targets, rooms, &self.inner.uid, &self.inner.nsp))
    }

    /// `disconnectSockets(close)` on the other nodes (the host applies it locally itself).
    pub fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
        self.publish_main(cluster::disconnect_message(targets, close, &self.inner.uid, &self.inner.nsp))
    }

    /// Nodes serving the namespace, this one included (`PUBSUB SHARDNUMSUB` of the main
    /// channel).
    pub async fn server_count(&self) -> Result<usize, Error> {
        self.inner.engine.server_count().await
    }

    /// Reports that a local socket is now in `room` (socket ids are rooms too): in the dynamic
    /// modes, the room's channel is subscribed when the mode gives it one.
    pub fn room_created(&self, room: &str) {
        if self.inner.mode.room_has_channel(room) {
            self.inner.engine.room_created(room);
        }
    }

    /// Reports that the last local socket left `room`.
    pub fn room_deleted(&self, room: &str) {
        if self.inner.mode.room_has_channel(room) {
            self.inner.engine.room_deleted(room);
        }
    }

    /// Resolves once the rooms reported so far are subscribed.
    pub async fn rooms_synced(&self) {
        self.inner.engine.rooms_synced().await;
    }

    /// Counters since creation.
    pub fn stats(&self) -> AdapterStats {
        AdapterStats { pending_requests: self.inner.pending.len() as u64, pending_acks: self.inner.acks.len() as u64, ..self.inner.engine.stats() }
    }

    /// Ends the waiting requests ([`Error::Closed`]) and unsubscribes; nothing is delivered
    /// afterwards.
    pub async fn close(&self) -> Result<(), Error> {
        self.inner.pending.cancel_all();
        self.inner.acks.clear();
        self.inner.engine.close().await
    }

    fn publish_main(&self, message: Vec<u8>) -> Result<(), Error> {
        self.inner.engine.publish(None, message)
    }

    /// Publishes a request (built by `build` from its id) with the nodes counted in the same
    /// pipeline, and waits for an answer from every other node until the timeout.
    async fn request(&self, kind: RequestType, timeout: Option<Duration>, build: impl FnOnce(&str) -> Vec<u8>) -> Result<Outcome, Error> {
        let timeout = timeout.unwrap_or(self.inner.requests_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        // Counting is bounded as the ClusterAdapter's nodes bound it (a paused Redis fails the
        // request fast), and within the request's own timeout.
        let within = timeout.min(SERVER_COUNT_WITHIN);
        let engine = &self.inner.engine;
        let sent = self.inner.pending.send_counted(kind, new_cluster_uid(), |id| engine.publish_counted(build(id), within)).await?;
        Ok(match sent.nodes.saturating_sub(1) {
            0 => sent.forget(Outcome::nobody_to_ask()),
            expected => sent.wait(expected, deadline).await,
        })
    }
}

fn invalid(option: &'static str, reason: &str) -> Error {
    Error::InvalidOption { option, reason: reason.to_owned() }
}

/// `[]`, the sockets of an answer that has none.
fn empty_array() -> RawJson {
    RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// What [`ShardedNode::all_rooms`] reads of a fetched socket.
#[derive(serde::Deserialize)]
struct SocketRooms {
    #[serde(default)]
    rooms: Vec<RawJson>,
}

/// The engine's host: turns ClusterAdapter messages into what a classic host receives, and
/// records the answers to this node's requests.
struct Translator {
    uid: String,
    nsp: String,
    pending: Arc<PendingRequests>,
    acks: Arc<AckRequests>,
    host: Arc<dyn Host>,
}

impl Host for Translator {
    fn deliver(&self, delivery: Delivery) {
        match self.translate(delivery.bytes()) {
            Ok(Some(delivery)) => self.host.deliver(delivery),
            Ok(None) => {}
            Err(err) => self.host.on_event(AdapterEvent::Error(err.into())),
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        self.host.on_event(event);
    }
}

/// `key`'s value in `map`, if it is a map that has it.
fn field<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    map.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

/// `value` as JSON text (binary as an array of its bytes).
fn raw(value: Option<&Value>) -> RawJson {
    let json = value.map_or(serde_json::Value::Null, msgpack::to_json);
    serde_json::value::to_raw_value(&json).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl Translator {
    /// The delivery for the host, if any, of one checked message ([`cluster::check_message`]
    /// passed: the fields its type needs are there). Own echoes, other namespaces' messages,
    /// heartbeats and answers to requests that do not wait (any more) give none.
    fn translate(&self, bytes: &[u8]) -> Result<Option<Delivery>, ProtocolError> {
        let message = if is_json(bytes) {
            msgpack::from_json(&serde_json::from_slice(bytes).map_err(|_| ProtocolError::Shape("not a JSON message"))?)
        } else {
            msgpack::from_slice_within(bytes, &Limits::ALREADY_CHECKED)?
        };
        let uid = field(&message, "uid").and_then(Value::as_str).unwrap_or_default();
        if uid == self.uid || field(&message, "nsp").and_then(Value::as_str) != Some(self.nsp.as_str()) {
            return Ok(None);
        }
        let Some(data) = field(&message, "data") else { return Ok(None) };
        let request_id = field(data, "requestId").and_then(Value::as_str);
        let opts = field(data, "opts");
        let (rooms, except) = (raw(opts.and_then(|o| field(o, "rooms"))), raw(opts.and_then(|o| field(o, "except"))));
        let targets = Targets { rooms: &rooms, except: &except };
        let kind = field(&message, "type").and_then(Value::as_u64).unwrap_or_default();
        let request = match (u8::try_from(kind).unwrap_or_default(), request_id) {
            (kind::BROADCAST, None) => {
                let [packet, opts] = self.packet_and_opts(data);
                return Ok(Some(Delivery::new(DeliveryKind::Broadcast, msgpack::to_vec(&Value::Array(vec![uid.into(), packet, opts])))));
            }
            (kind::BROADCAST, Some(id)) => req::broadcast_with_ack_request(uid, id, &msgpack::to_vec(&Value::Array(self.packet_and_opts(data).into())))?,
            (kind::SOCKETS_JOIN, _) => req::rooms_request(uid, true, &targets, &raw(field(data, "rooms"))),
            (kind::SOCKETS_LEAVE, _) => req::rooms_request(uid, false, &targets, &raw(field(data, "rooms"))),
            (kind::DISCONNECT_SOCKETS, _) => req::disconnect_request(uid, &targets, field(data, "close").and_then(Value::as_bool).unwrap_or(false)),
            (kind::FETCH_SOCKETS, Some(id)) => req::fetch_sockets_request(uid, id, &targets),
            (kind::SERVER_SIDE_EMIT, id) => req::server_side_emit_request(uid, id, &raw(field(data, "packet"))),
            (kind::FETCH_SOCKETS_RESPONSE, Some(id)) => {
                let sockets = field(data, "sockets").and_then(Value::as_array).map_or_else(Vec::new, |items| items.iter().map(|s| raw(Some(s))).collect());
                self.answer(id, ResponseBody::Sockets(sockets));
                return Ok(None);
            }
            (kind::SERVER_SIDE_EMIT_RESPONSE, Some(id)) => {
                self.answer(id, ResponseBody::ServerSideEmit(field(data, "packet").map(|p| raw(Some(p)))));
                return Ok(None);
            }
            (kind::BROADCAST_CLIENT_COUNT, Some(id)) if self.acks.contains(id) => {
                let count = field(data, "clientCount").and_then(|c| c.as_u64().or_else(|| c.as_f64().map(|f| f as u64))).unwrap_or_default();
                return Ok(Some(Delivery::new(DeliveryKind::AckResponse, req::client_count_response(id, count))));
            }
            (kind::BROADCAST_ACK, Some(id)) if self.acks.contains(id) => {
                let packet = msgpack::to_vec(field(data, "packet").unwrap_or(&Value::Nil));
                return Ok(Some(Delivery::new(DeliveryKind::AckResponse, req::broadcast_ack_response(id, &packet)?)));
            }
            _ => return Ok(None),
        };
        let header = parse_request(&request, &Limits::ALREADY_CHECKED)?;
        Ok(Some(Delivery::new(DeliveryKind::Request(header), request)))
    }

    /// The packet and opts of a BROADCAST's `data`, as a classic broadcast carries them: the
    /// packet with its namespace.
    fn packet_and_opts(&self, data: &Value) -> [Value; 2] {
        let mut packet = field(data, "packet").cloned().unwrap_or(Value::Nil);
        if let Value::Map(entries) = &mut packet {
            if !entries.iter().any(|(k, _)| k.as_str() == Some("nsp")) {
                entries.push(("nsp".into(), self.nsp.as_str().into()));
            }
        }
        [packet, field(data, "opts").cloned().unwrap_or(Value::Nil)]
    }

    fn answer(&self, request_id: &str, body: ResponseBody) {
        self.pending.on_response(Response { request_id: request_id.to_owned(), body });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, OnceLock};

    use super::*;
    use crate::transport::memory::MemoryBroker;

    /// Records what it is handed; answers fetches and server-side emits when `answers`.
    #[derive(Default)]
    struct Recorder {
        node: OnceLock<ShardedNode>,
        answers: bool,
        got: Mutex<Vec<Delivery>>,
    }

    impl Host for Recorder {
        fn deliver(&self, delivery: Delivery) {
            if let (DeliveryKind::Request(header), Some(node)) = (delivery.kind(), self.node.get().filter(|_| self.answers)) {
                let replies = match header.kind {
                    RequestType::RemoteFetch => vec![Reply::List(RawValue::from_string(r#"[{"id":"s1","handshake":{},"rooms":["s1","r",7],"data":{}}]"#.into()).ok())],
                    RequestType::Broadcast => vec![Reply::ClientCount(1), Reply::Ack(msgpack::to_vec(&Value::from("ok")))],
                    _ => vec![Reply::ServerSideEmit(RawValue::from_string(r#""pong""#.into()).ok())],
                };
                for reply in replies {
                    if let Some(id) = header.request_id.as_deref() {
                        node.respond(header.kind, id, header.uid.as_deref(), reply).unwrap();
                    }
                }
            }
            self.got.lock().unwrap().push(delivery);
        }
        fn on_event(&self, _: AdapterEvent) {}
    }

    fn node(broker: &MemoryBroker, answers: bool, timeout_ms: u64) -> (ShardedNode, Arc<Recorder>) {
        let host = Arc::new(Recorder { answers, ..Recorder::default() });
        let config = AdapterConfig::default().with_requests_timeout(Duration::from_millis(timeout_ms));
        let node = ShardedNode::new("/", &config, SubscriptionMode::Dynamic, Arc::new(broker.connect()), host.clone());
        host.node.set(node.clone()).ok();
        (node, host)
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn everybody() -> RawJson {
        RawValue::from_string("[]".into()).unwrap()
    }

    #[tokio::test]
    async fn a_broadcast_reaches_the_other_node_as_a_classic_broadcast_and_not_the_sender() {
        let broker = MemoryBroker::new();
        let (a, host_a) = node(&broker, false, 1000);
        let (_b, host_b) = node(&broker, false, 1000);
        settle().await;
        a.broadcast(&Packet::event("/", "hello", vec!["world".into()]), &BroadcastOptions::default()).unwrap();
        settle().await;
        assert!(host_a.got.lock().unwrap().is_empty(), "its own echo is dropped");
        let got = host_b.got.lock().unwrap();
        assert_eq!(got.len(), 1);
        let broadcast = got[0].decode().unwrap();
        assert_eq!((broadcast.uid.as_str(), broadcast.packet.nsp.as_deref()), (a.uid(), Some("/")));
        assert_eq!(msgpack::to_json(&Value::Array(broadcast.packet.data.clone())), serde_json::json!(["hello", "world"]));
    }

    #[tokio::test]
    async fn a_fetch_is_a_classic_request_to_the_host_and_its_answer_completes_the_request() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, false, 1000);
        let (_b, host_b) = node(&broker, true, 1000);
        settle().await;
        let (rooms, except) = (everybody(), everybody());
        let outcome = a.fetch_sockets(&Targets { rooms: &rooms, except: &except }, None).await.unwrap();
        assert_eq!((outcome.expected, outcome.received, &outcome.error), (1, 1, &None));
        assert_eq!(outcome.parse_items::<serde_json::Value>().unwrap()[0]["id"], "s1");
        let got = host_b.got.lock().unwrap();
        let DeliveryKind::Request(header) = got[0].kind() else { panic!("not a request: {:?}", got[0]) };
        assert_eq!((header.kind, header.uid.as_deref()), (RequestType::RemoteFetch, Some(a.uid())));
        let request: serde_json::Value = serde_json::from_slice(got[0].bytes()).unwrap();
        assert_eq!(request["opts"], serde_json::json!({"rooms": [], "except": []}));
    }

    #[tokio::test]
    async fn a_broadcast_with_ack_brings_each_nodes_count_and_acks_as_classic_ack_responses() {
        let broker = MemoryBroker::new();
        let (a, host_a) = node(&broker, false, 1000);
        let (_b, host_b) = node(&broker, true, 1000);
        settle().await;
        let mut opts = BroadcastOptions::default();
        opts.flags.set("timeout", 1000u64);
        a.broadcast_with_ack("req-1", &Packet::event("/", "ask", vec![1.into()]), &opts, Duration::from_secs(5)).unwrap();
        settle().await;
        let asked = host_b.got.lock().unwrap()[0].clone();
        let DeliveryKind::Request(header) = asked.kind() else { panic!("not a request: {asked:?}") };
        assert_eq!((header.kind, header.request_id.as_deref(), header.uid.as_deref()), (RequestType::Broadcast, Some("req-1"), Some(a.uid())));
        let answers: Vec<_> = host_a.got.lock().unwrap().iter().map(|d| (d.kind().clone(), req::parse_ack_response(d.bytes(), &Limits::default()).unwrap())).collect();
        assert_eq!(
            answers,
            vec![
                (DeliveryKind::AckResponse, ("req-1".to_owned(), req::AckReply::ClientCount(1))),
                (DeliveryKind::AckResponse, ("req-1".to_owned(), req::AckReply::Ack(Value::from("ok")))),
            ]
        );
        assert_eq!(a.stats().pending_acks, 1);
        // Answers to a broadcast this node did not send are not handed over; one to its own is.
        for id in ["nobody", "req-1"] {
            let count = format!(r#"{{"type":11,"data":{{"requestId":"{id}","clientCount":3}},"uid":"0123456789abcdef","nsp":"/"}}"#);
            broker.publish(a.inner.engine.channels().responses(), count.as_bytes());
        }
        settle().await;
        assert_eq!(host_a.got.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn all_rooms_are_the_rooms_of_every_fetched_socket_each_once_whatever_their_type() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, false, 1000);
        let (_b, _) = node(&broker, true, 1000);
        let (_c, _) = node(&broker, true, 1000);
        settle().await;
        let outcome = a.all_rooms().await.unwrap();
        assert_eq!((outcome.expected, outcome.received, &outcome.error), (2, 2, &None));
        assert_eq!(outcome.parse_items::<serde_json::Value>().unwrap(), [serde_json::json!("s1"), serde_json::json!("r"), serde_json::json!(7)]);
    }

    #[tokio::test]
    async fn a_request_without_every_answer_times_out_with_the_cluster_adapters_text() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, false, 100);
        let (_b, _) = node(&broker, false, 100);
        settle().await;
        let outcome = a.server_side_emit_with_ack(&RawValue::from_string(r#"["ping"]"#.into()).unwrap()).await.unwrap();
        match outcome.error {
            Some(Error::Timeout { message, .. }) => assert_eq!(message, "timeout reached: only 0 responses received out of 1"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // Alone, nobody is asked.
        let broker = MemoryBroker::new();
        let (alone, _) = node(&broker, false, 100);
        settle().await;
        let outcome = alone.server_side_emit_with_ack(&RawValue::from_string(r#"["ping"]"#.into()).unwrap()).await.unwrap();
        assert_eq!((outcome.expected, outcome.error), (0, None));
    }

    #[tokio::test]
    async fn other_namespaces_heartbeats_and_unknown_answers_are_not_handed_over() {
        let broker = MemoryBroker::new();
        let (a, host) = node(&broker, false, 1000);
        settle().await;
        for message in [
            r#"{"type":3,"data":{"packet":{"type":2,"data":["x"]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"0123456789abcdef","nsp":"/other"}"#,
            r#"{"type":2,"uid":"0123456789abcdef","nsp":"/"}"#,
            r#"{"type":8,"data":{"requestId":"nobody","sockets":[]},"uid":"0123456789abcdef","nsp":"/"}"#,
        ] {
            broker.publish(a.inner.engine.channels().main(), message.as_bytes());
        }
        broker.publish(a.inner.engine.channels().main(), br#"{"type":4,"data":{"opts":{"rooms":["r"],"except":[]},"rooms":["j"]},"uid":"0123456789abcdef","nsp":"/"}"#);
        settle().await;
        let got = host.got.lock().unwrap();
        assert_eq!(got.len(), 1, "only the join: {got:?}");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(got[0].bytes()).unwrap(),
            serde_json::json!({"uid": "0123456789abcdef", "type": 2, "opts": {"rooms": ["r"], "except": []}, "rooms": ["j"]})
        );
        assert!(a.respond(RequestType::RemoteFetch, "id", None, Reply::List(None)).is_err(), "a sharded answer needs its requester");
    }
}
