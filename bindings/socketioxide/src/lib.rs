//! # sioadapter-socketioxide
//!
//! A [socketioxide](https://docs.rs/socketioxide) adapter on the sioadapter core: a Rust
//! socket.io server joins a cluster of Node socket.io servers that use
//! `@socket.io/redis-adapter` (official or sioadapter's), on the same Redis, speaking their wire
//! format byte for byte. A Node node cannot tell it from a Node node: its broadcasts reach the
//! Node servers' clients, theirs reach its clients, and the cluster operations work both ways.
//!
//! Built for socketioxide 0.18 (socketioxide-core 0.20's [`CoreAdapter`]).
//!
//! ```no_run
//! use socketioxide::{adapter::Adapter, extract::SocketRef, SocketIo};
//! use sioadapter_socketioxide::{SioAdapter, SioAdapterCtr};
//!
//! async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
//!     socket.join("room1");
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let state = SioAdapterCtr::new("redis://127.0.0.1:6379")?;
//! let (layer, io) = SocketIo::builder().with_adapter::<SioAdapter<_>>(state).build_layer();
//! io.ns("/", on_connect);
//! // Every client of every server of the cluster, Node ones included:
//! io.emit("hello", &"world").await?;
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! ## What crosses, and what does not (yet)
//!
//! | operation | from this server | to this server (from a Node node or emitter) |
//! |---|---|---|
//! | broadcast (rooms, except, binary, volatile, local) | ✅ | ✅ |
//! | socketsJoin / socketsLeave / disconnectSockets | ✅ | ✅ |
//! | fetchSockets | ✅ (remote sockets usable: emit, join, leave, disconnect) | ✅ (`handshake` and `data` are not known to a socketioxide adapter: left empty) |
//! | allRooms (`rooms()`), serverCount | ✅ | ✅ |
//! | broadcast with acks | ✅ (this server's clients' acks and every other server's: [`AckStream`]; a remote ack has a stand-in socket id) | ✅ (client count, then each ack) |
//! | serverSideEmit (with and without ack) | ✅ [`SioAdapterCtr::server_side_emit`], [`SioAdapterCtr::server_side_emit_with_ack`] | ✅ to [`SioAdapterCtr::on_server_side_emit`]'s listener (without one, not answered) |
//!
//! socketioxide drops a packet for a client whose queue (`max_buffer_size`, 128 packets by
//! default) is full; the adapter counts what other servers' broadcasts could not be sent to local
//! clients and warns at most once a second. A server that receives bursts wants a larger
//! `max_buffer_size`.
//!
//! ## The sharded adapter's protocol
//!
//! [`SioAdapterCtr::new_sharded`] joins a cluster of Node servers that use
//! `@socket.io/redis-adapter`'s `createShardedAdapter` (Redis 7 sharded pub/sub, on a Redis
//! Cluster or a single Redis) with `subscriptionMode: "static"`: every message on the
//! namespace's channel. The dynamic modes put single-room broadcasts on a channel per room,
//! subscribed when a local socket joins the room; socketioxide joins rooms without telling its
//! adapter, so a socketioxide server cannot take part in them (it would miss those broadcasts).
//! Every operation of the table above works, with the ClusterAdapter's semantics: `rooms()`
//! (which that protocol has no request for) gathers the other servers' rooms from a
//! fetchSockets of every socket.
//!
//! Socket ids: socketioxide's are 16 characters, Node's 20. A Node socket returned by
//! `fetch_sockets` gets a 16-character stand-in id, which this adapter maps back when the
//! socket is used (emit, join, leave, disconnect).

#![warn(missing_docs)]

mod acks;
pub mod packet;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use serde_json::value::RawValue;
use sioadapter::adapter::Reply;
use sioadapter::protocol::request::{parse_ack_response, AckReply, RequestHeader, RequestType, Targets};
use sioadapter::protocol::{BroadcastOptions as WireOptions, Packet as WirePacket, Room as WireRoom};
use sioadapter::sharded::SubscriptionMode;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::transport::Transport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, ClusterNode, Delivery, DeliveryKind, Host, RedisConfig, ShardedNode};
use socketioxide_core::adapter::errors::{AdapterError, BroadcastError};
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, RemoteSocketData, Room, RoomParam, SocketEmitter};
use socketioxide_core::packet::Packet;
use socketioxide_core::{Sid, Uid};

pub use acks::AckStream;
use acks::{Answer, Remote, Waiting};

/// What can go wrong in the adapter.
#[derive(Debug)]
pub enum Error {
    /// The core failed: Redis, a timeout, a closed adapter, a message over a limit.
    Core(sioadapter::Error),
    /// A packet could not be carried to or from the cluster.
    Packet(packet::PacketError),
    /// The adapter is used before socketioxide initialised it.
    NotInitialised,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Core(err) => write!(f, "sioadapter: {err}"),
            Error::Packet(err) => write!(f, "sioadapter: {err}"),
            Error::NotInitialised => f.write_str("sioadapter: the adapter is used before socketioxide initialised it"),
        }
    }
}

impl std::error::Error for Error {}

impl From<sioadapter::Error> for Error {
    fn from(err: sioadapter::Error) -> Self {
        Error::Core(err)
    }
}

impl From<packet::PacketError> for Error {
    fn from(err: packet::PacketError) -> Self {
        Error::Packet(err)
    }
}

impl From<Error> for AdapterError {
    fn from(err: Error) -> Self {
        AdapterError(Box::new(err))
    }
}

/// A server-side listener: the event and arguments of another server's `serverSideEmit`. What
/// it returns is the acknowledgement, sent when the emitting server asked for one.
pub type ServerSideListener = dyn Fn(&str, &[serde_json::Value]) -> serde_json::Value + Send + Sync;

/// The state every namespace's adapter shares: the Redis connections, the adapter options, the
/// server-side listener, and the namespaces' engines (for [`SioAdapterCtr::server_side_emit`]).
/// Made once, handed to `SocketIo::builder().with_adapter::<SioAdapter<_>>(state)`; clones
/// share it.
#[derive(Clone)]
pub struct SioAdapterCtr {
    transport: Arc<dyn Transport>,
    config: AdapterConfig,
    /// The sharded adapter's protocol (static subscription mode) rather than the classic one.
    sharded: bool,
    listener: Option<Arc<ServerSideListener>>,
    engines: Arc<Mutex<HashMap<String, ClusterNode>>>,
}

impl SioAdapterCtr {
    /// Connects (in the background) to the Redis at `url` (every URL form of
    /// [`RedisConfig::from_url`]: `redis://`, `rediss://`, Sentinel, Cluster) with the official
    /// adapter's defaults. Must be called within a tokio runtime.
    pub fn new(url: &str) -> Result<Self, sioadapter::Error> {
        Self::with_config(url, AdapterConfig::default())
    }

    /// [`SioAdapterCtr::new`] with the options of Node's `createAdapter`: `key` and the JSON
    /// `parser` (which must match the cluster's), `requestsTimeout`,
    /// `publishOnSpecificResponseChannel`, limits. `perRoomSubscriptions` is refused
    /// ([`SioAdapterCtr::with_transport`]).
    pub fn with_config(url: &str, config: AdapterConfig) -> Result<Self, sioadapter::Error> {
        Self::check(&config, false)?;
        Ok(Self::made(Arc::new(RedisTransport::connect(&RedisConfig::from_url(url)?)?), config, false))
    }

    /// The state over a transport of the caller's (e.g. one shared with an emitter).
    ///
    /// `config.per_room_subscriptions` is refused ([`sioadapter::Error::InvalidOption`]): a node
    /// with it subscribes the channel of each room its sockets are in, and socketioxide joins a
    /// socket to a room (`socket.join`) without telling its adapter, so the node would miss the
    /// broadcasts to its own rooms. Without it the node takes every broadcast of the namespace
    /// (the official adapter's way), and the cluster's other nodes may use it or not alike.
    pub fn with_transport(transport: Arc<dyn Transport>, config: AdapterConfig) -> Result<Self, sioadapter::Error> {
        Self::check(&config, false)?;
        Ok(Self::made(transport, config, false))
    }

    /// Joins a cluster of sharded adapters (Node's `createShardedAdapter` with
    /// `subscriptionMode: "static"`; see the crate docs) through the Redis at `url` (a Redis
    /// Cluster, e.g. `redis+cluster://…`, or a single Redis 7), with the official defaults
    /// (channel prefix `socket.io`). Must be called within a tokio runtime.
    pub fn new_sharded(url: &str) -> Result<Self, sioadapter::Error> {
        Self::sharded_with_config(url, AdapterConfig::default())
    }

    /// [`SioAdapterCtr::new_sharded`] with options: `config.key` is the channel prefix
    /// (`channelPrefix`), `config.requests_timeout` the requests timeout, `config.limits` the
    /// limits of what is received. The classic adapter's `parser`,
    /// `publishOnSpecificResponseChannel` and `perRoomSubscriptions` have no meaning in the
    /// sharded protocol and are refused.
    pub fn sharded_with_config(url: &str, config: AdapterConfig) -> Result<Self, sioadapter::Error> {
        Self::check(&config, true)?;
        let mut redis = RedisConfig::from_url(url)?;
        redis.sharded = true;
        Ok(Self::made(Arc::new(RedisTransport::connect(&redis)?), config, true))
    }

    /// [`SioAdapterCtr::new_sharded`] over a transport of the caller's, which must use sharded
    /// pub/sub ([`RedisConfig::sharded`]).
    pub fn sharded_with_transport(transport: Arc<dyn Transport>, config: AdapterConfig) -> Result<Self, sioadapter::Error> {
        Self::check(&config, true)?;
        Ok(Self::made(transport, config, true))
    }

    /// Refuses the options a socketioxide node cannot honour (see
    /// [`SioAdapterCtr::with_transport`] and [`SioAdapterCtr::sharded_with_config`]), before
    /// anything is connected.
    fn check(config: &AdapterConfig, sharded: bool) -> Result<(), sioadapter::Error> {
        if config.per_room_subscriptions {
            let reason = "socketioxide joins sockets to rooms without telling its adapter, so the rooms' channels could not be subscribed; leave it off (the cluster's other nodes may use it or not)";
            return Err(sioadapter::Error::InvalidOption { option: "perRoomSubscriptions", reason: reason.to_owned() });
        }
        let classic_only = [("parser", config.json_parser), ("publishOnSpecificResponseChannel", config.publish_on_specific_response_channel)];
        match classic_only.into_iter().find(|(_, set)| sharded && *set) {
            Some((option, _)) => {
                Err(sioadapter::Error::InvalidOption { option, reason: "an option of the classic adapter (createAdapter): the sharded protocol has none such".to_owned() })
            }
            None => Ok(()),
        }
    }

    /// The state over `transport`, once `config` was checked.
    fn made(transport: Arc<dyn Transport>, config: AdapterConfig, sharded: bool) -> Self {
        SioAdapterCtr { transport, config, sharded, listener: None, engines: Arc::default() }
    }

    /// Listens to the other servers' `serverSideEmit` (socketioxide has no server-side events of
    /// its own): `listener` gets the event and its arguments, and its return value answers an
    /// emit that asks for an acknowledgement. Without a listener such emits are not answered,
    /// and the emitting server's request times out.
    pub fn on_server_side_emit(mut self, listener: impl Fn(&str, &[serde_json::Value]) -> serde_json::Value + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// `serverSideEmit(event, ...args)` to the other servers of namespace `nsp` (Node's
    /// `io.of(nsp).serverSideEmit`), without acknowledgement.
    pub fn server_side_emit(&self, nsp: &str, event: &str, args: &[serde_json::Value]) -> Result<(), Error> {
        Ok(self.engine_of(nsp)?.server_side_emit(&emit_data(event, args)?)?)
    }

    /// `serverSideEmitWithAck(event, ...args)`: the acknowledgement of every other server of
    /// namespace `nsp`, or the official timeout error with those that arrived.
    pub async fn server_side_emit_with_ack(&self, nsp: &str, event: &str, args: &[serde_json::Value]) -> Result<Vec<serde_json::Value>, Error> {
        let engine = self.engine_of(nsp)?;
        let outcome = engine.server_side_emit_with_ack(&emit_data(event, args)?).await?.into_result()?;
        Ok(outcome.iter().map(|ack| serde_json::from_str(ack.get()).unwrap_or(serde_json::Value::Null)).collect())
    }

    fn engine_of(&self, nsp: &str) -> Result<ClusterNode, Error> {
        self.engines.lock().unwrap_or_else(|p| p.into_inner()).get(nsp).cloned().ok_or(Error::NotInitialised)
    }
}

/// `[event, ...args]` as the JSON a server-side emit carries.
fn emit_data(event: &str, args: &[serde_json::Value]) -> Result<Box<RawValue>, Error> {
    json(&std::iter::once(&serde_json::Value::from(event)).chain(args).collect::<Vec<_>>())
}

/// Most stand-in ids kept for Node sockets returned by `fetch_sockets`; the table is cleared
/// when it is full (a stand-in older than that many fetched sockets is then not mapped back).
const MAX_STAND_INS: usize = 100_000;

/// The adapter of one namespace: socketioxide's local rooms ([`CoreLocalAdapter`]) plus the
/// cluster through a sioadapter [`Adapter`].
pub struct SioAdapter<E> {
    local: CoreLocalAdapter<E>,
    state: SioAdapterCtr,
    engine: OnceLock<ClusterNode>,
    /// socketioxide's `on_success`, called when the engine first reports ready.
    on_ready: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Stand-in ids of Node sockets (see the crate docs).
    stand_ins: Mutex<StandIns>,
    /// This server's broadcasts with acks waiting for other servers' answers.
    waiting: Arc<Waiting>,
    /// Other servers' broadcasts that some local client could not be sent.
    undelivered: Undelivered,
}

impl<E> DefinedAdapter for SioAdapter<E> {}

/// Broadcasts from other servers that socketioxide could not send to some local client (its
/// buffer of `max_buffer_size` packets full, or the client gone): counted, and reported as a
/// warning at most once a second.
#[derive(Default)]
struct Undelivered {
    count: std::sync::atomic::AtomicU64,
    last_warning: Mutex<Option<std::time::Instant>>,
}

impl Undelivered {
    fn note(&self, sent: Result<(), Vec<socketioxide_core::adapter::errors::SocketError>>, ns: &socketioxide_core::Str) {
        let Err(errors) = sent else { return };
        let total = self.count.fetch_add(errors.len() as u64, std::sync::atomic::Ordering::Relaxed) + errors.len() as u64;
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(std::time::Instant::now());
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            tracing::warn!(ns = %ns, "sioadapter: {total} packets of other servers' broadcasts could not be sent to local clients so far ({first}; socketioxide's max_buffer_size bounds each client's queue)");
        }
    }
}

/// Stand-in [`Sid`]s of Node sockets (20-character ids, which a `Sid` cannot hold), both ways.
#[derive(Default)]
struct StandIns {
    real: HashMap<Sid, String>,
    stand_in: HashMap<String, Sid>,
}

impl StandIns {
    /// The stand-in of Node socket `id`: the one it already has, else a new one. The tables are
    /// cleared when full (a stand-in older than [`MAX_STAND_INS`] fetched sockets is then not
    /// mapped back).
    fn for_id(&mut self, id: &str) -> Sid {
        if let Some(sid) = self.stand_in.get(id) {
            return *sid;
        }
        if self.real.len() >= MAX_STAND_INS {
            self.real.clear();
            self.stand_in.clear();
        }
        let sid = Sid::new();
        self.real.insert(sid, id.to_owned());
        self.stand_in.insert(id.to_owned(), sid);
        sid
    }
}

/// The sockets an operation selects on this server.
enum Selection {
    /// socketioxide's own selection.
    Options(Box<BroadcastOptions>),
    /// Computed here: the selection names sockets by id (socketioxide's sockets are not in a
    /// room of their own id, as socket.io's are).
    Sockets(Vec<Sid>),
}

impl<E: SocketEmitter> SioAdapter<E> {
    fn engine(&self) -> Result<&ClusterNode, Error> {
        self.engine.get().ok_or(Error::NotInitialised)
    }

    fn uid(&self) -> Uid {
        self.local.server_id()
    }

    /// Every local socket.
    fn all_sockets(&self) -> Vec<Sid> {
        let mut everybody = BroadcastOptions::default();
        everybody.add_flag(BroadcastFlags::Broadcast);
        self.local.sockets(everybody)
    }

    /// The local sockets that a cluster selection (`rooms`, `except`; empty `rooms`: every
    /// socket) names, as socket.io selects them: a room may be a socket's id.
    fn select(&self, rooms: &[String], except: &[String], volatile: bool) -> Selection {
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        if volatile {
            opts.add_flag(BroadcastFlags::Volatile);
        }
        // The local sockets are gathered only when a room could be one of them.
        let could_be_socket = |room: &String| Sid::from_str(room).is_ok();
        let sockets: HashSet<Sid> = if rooms.iter().chain(except).any(could_be_socket) { self.all_sockets().into_iter().collect() } else { HashSet::new() };
        let is_socket = |room: &String| Sid::from_str(room).is_ok_and(|sid| sockets.contains(&sid));
        if !rooms.iter().chain(except).any(is_socket) {
            opts.rooms = rooms.iter().map(|r| Room::from(r.clone())).collect();
            opts.except = except.iter().map(|r| Room::from(r.clone())).collect();
            return Selection::Options(Box::new(opts));
        }
        let in_rooms = |names: &[String]| -> HashSet<Sid> {
            let (ids, named): (Vec<&String>, Vec<&String>) = names.iter().partition(|r| is_socket(r));
            let mut selected: HashSet<Sid> = ids.into_iter().filter_map(|r| Sid::from_str(r).ok()).collect();
            if !named.is_empty() {
                let mut by_room = opts.clone();
                by_room.rooms = named.into_iter().map(|r| Room::from(r.clone())).collect();
                selected.extend(self.local.sockets(by_room));
            }
            selected
        };
        let targets = if rooms.is_empty() { sockets.clone() } else { in_rooms(rooms) };
        let excluded = in_rooms(except);
        Selection::Sockets(targets.into_iter().filter(|sid| !excluded.contains(sid)).collect())
    }

    /// The cluster's rooms and except for a socketioxide selection: the sender is excepted
    /// from a broadcast, and a single (remote) socket is named by its id.
    fn wire_targets(&self, opts: &BroadcastOptions) -> (Vec<String>, Vec<String>) {
        let mut rooms: Vec<String> = opts.rooms.iter().map(|r| r.to_string()).collect();
        let mut except: Vec<String> = opts.except.iter().map(|r| r.to_string()).collect();
        match opts.sid {
            Some(sid) if opts.has_flag(BroadcastFlags::Broadcast) => except.push(self.wire_id(sid)),
            Some(sid) if rooms.is_empty() => rooms.push(self.wire_id(sid)),
            _ => {}
        }
        (rooms, except)
    }

    /// What the other servers' fetchSockets answers say of the sockets `opts` selects there
    /// (`{id, handshake, rooms, data}` each; an item that is not JSON is left out).
    async fn remote_details(&self, opts: &BroadcastOptions) -> Result<Vec<serde_json::Value>, Error> {
        let (targets, except) = self.wire_json_targets(opts)?;
        let outcome = self.engine()?.fetch_sockets(&Targets { rooms: &targets, except: &except }, None).await?.into_result()?;
        Ok(outcome.iter().filter_map(|item| serde_json::from_str(item.get()).ok()).collect())
    }

    /// The cluster's packet and options for a socketioxide broadcast.
    fn wire_message(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(WirePacket, WireOptions), Error> {
        let (event, args) = packet::to_wire(self.local.parser(), packet)?;
        let (rooms, except) = self.wire_targets(opts);
        let mut wire = WireOptions {
            rooms: rooms.iter().map(|r| WireRoom::from(r.as_str())).collect(),
            except: except.iter().map(|r| WireRoom::from(r.as_str())).collect(),
            ..Default::default()
        };
        if opts.has_flag(BroadcastFlags::Volatile) {
            wire.flags.set("volatile", true);
        }
        Ok((WirePacket::event(self.local.path(), &event, args), wire))
    }

    /// [`Self::wire_targets`] as the JSON arrays the cluster's requests carry.
    fn wire_json_targets(&self, opts: &BroadcastOptions) -> Result<(Box<RawValue>, Box<RawValue>), Error> {
        let (rooms, except) = self.wire_targets(opts);
        Ok((json(&rooms)?, json(&except)?))
    }

    /// Sends the other servers what `publish` makes of the targets of `opts`, unless `opts`
    /// stays on this server.
    fn publish_for(&self, opts: &BroadcastOptions, publish: impl FnOnce(&ClusterNode, &Targets<'_>) -> Result<(), sioadapter::Error>) -> Result<(), Error> {
        if self.stays_local(opts) {
            return Ok(());
        }
        let (rooms, except) = self.wire_json_targets(opts)?;
        Ok(publish(self.engine()?, &Targets { rooms: &rooms, except: &except })?)
    }

    /// The sockets of `opts`, on every server, join (`join`) or leave `rooms`.
    fn change_rooms(&self, opts: BroadcastOptions, rooms: impl RoomParam, join: bool) -> Result<(), Error> {
        let rooms: Vec<String> = rooms.into_room_iter().map(|r| r.to_string()).collect();
        let names = json(&rooms)?;
        self.publish_for(&opts, |engine, targets| if join { engine.sockets_join(targets, &names) } else { engine.sockets_leave(targets, &names) })?;
        match (self.remote_socket(&opts), join) {
            (true, _) => {}
            (false, true) => self.local.add_sockets(opts, rooms),
            (false, false) => self.local.del_sockets(opts, rooms),
        }
        Ok(())
    }

    /// A socket's id as the cluster knows it: its own, or the Node id a stand-in stands for.
    fn wire_id(&self, sid: Sid) -> String {
        self.stand_ins.lock().unwrap_or_else(|p| p.into_inner()).real.get(&sid).cloned().unwrap_or_else(|| sid.to_string())
    }

    /// A socket id from the cluster as a socketioxide [`Sid`]: itself when it is one, else a
    /// stand-in remembered for [`Self::wire_id`].
    fn local_id(&self, id: &str) -> Sid {
        match Sid::from_str(id) {
            Ok(sid) => sid,
            Err(_) => self.stand_ins.lock().unwrap_or_else(|p| p.into_inner()).for_id(id),
        }
    }

    /// Whether an operation with `opts` stays on this server: the `local` flag, or a single
    /// socket of this server.
    fn stays_local(&self, opts: &BroadcastOptions) -> bool {
        opts.is_local(self.uid())
    }

    /// Whether `opts` names a single socket of another server: nothing to do locally.
    fn remote_socket(&self, opts: &BroadcastOptions) -> bool {
        !opts.has_flag(BroadcastFlags::Broadcast) && opts.rooms.is_empty() && opts.server_id.is_some_and(|id| id != self.uid())
    }

    /// Handles what another node sent.
    fn on_delivery(self: &Arc<Self>, delivery: Delivery) {
        let result = match delivery.kind() {
            DeliveryKind::Broadcast => self.on_broadcast(&delivery),
            DeliveryKind::Request(header) if header.kind == RequestType::Broadcast => self.on_broadcast_with_ack(header, delivery.bytes()),
            DeliveryKind::Request(header) => self.on_request(header, delivery.bytes()),
            DeliveryKind::AckResponse => self.on_ack_response(delivery.bytes()),
            _ => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(ns = %self.local.path(), "sioadapter: a message of another node could not be applied: {err}");
        }
    }

    fn on_broadcast(&self, delivery: &Delivery) -> Result<(), Error> {
        let message = delivery.decode().map_err(sioadapter::Error::from)?;
        let packet = packet::from_wire(self.local.parser(), self.local.path(), &message.packet.data)?;
        let names = |rooms: &[WireRoom]| rooms.iter().map(ToString::to_string).collect::<Vec<_>>();
        let volatile = message.opts.flags.get("volatile").and_then(rmpv::Value::as_bool) == Some(true);
        match self.select(&names(&message.opts.rooms), &names(&message.opts.except), volatile) {
            Selection::Options(opts) => {
                self.undelivered.note(self.local.broadcast(packet, *opts), self.local.path());
            }
            Selection::Sockets(sids) => {
                for sid in sids {
                    self.undelivered.note(self.local.broadcast(packet.clone(), BroadcastOptions::new(sid)), self.local.path());
                }
            }
        }
        Ok(())
    }

    /// A broadcast with acks of a Node node: this server's selected clients get it, and the
    /// requester gets their count, then each client's ack (its first argument), as a Node node
    /// answers.
    fn on_broadcast_with_ack(self: &Arc<Self>, header: &RequestHeader, payload: &[u8]) -> Result<(), Error> {
        let (Some(id), Some(requester)) = (header.request_id.clone(), header.uid.clone()) else { return Ok(()) };
        let request = sioadapter::protocol::msgpack::from_slice(payload).map_err(sioadapter::Error::from)?;
        let field =
            |value: &rmpv::Value, key: &str| value.as_map().and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key))).map(|(_, v)| v.clone()).unwrap_or(rmpv::Value::Nil);
        let names = |value: rmpv::Value| -> Vec<String> {
            value.as_array().map_or_else(Vec::new, |rooms| rooms.iter().map(|r| r.as_str().map_or_else(|| r.to_string(), str::to_owned)).collect())
        };
        let (packet, opts) = (field(&request, "packet"), field(&request, "opts"));
        let data = field(&packet, "data");
        let packet = packet::from_wire(self.local.parser(), self.local.path(), data.as_array().map_or(&[][..], Vec::as_slice))?;
        let timeout = field(&field(&opts, "flags"), "timeout").as_u64().map(Duration::from_millis);
        let mut streams = Vec::new();
        let mut count = 0;
        let selection = self.select(&names(field(&opts, "rooms")), &names(field(&opts, "except")), false);
        let selections = match selection {
            Selection::Options(opts) => vec![*opts],
            Selection::Sockets(sids) => sids.into_iter().map(BroadcastOptions::new).collect(),
        };
        for opts in selections {
            let (stream, expected) = self.local.broadcast_with_ack(packet.clone(), opts, timeout);
            streams.push(Box::pin(stream));
            count += u64::from(expected);
        }
        let engine = self.engine()?.clone();
        engine.respond(RequestType::Broadcast, &id, Some(&requester), Reply::ClientCount(count))?;
        let adapter = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut acks = futures_util::stream::select_all(streams);
            while let Some((_, ack)) = acks.next().await {
                let (Some(adapter), Ok(mut value)) = (adapter.upgrade(), ack) else { continue };
                match packet::ack_argument(adapter.local.parser(), &mut value) {
                    Ok(arg) => {
                        if let Err(err) = engine.respond(RequestType::Broadcast, &id, Some(&requester), Reply::Ack(sioadapter::protocol::msgpack::to_vec(&arg))) {
                            tracing::warn!("sioadapter: an ack could not be sent to {requester}: {err}");
                        }
                    }
                    Err(err) => tracing::warn!("sioadapter: an ack could not be read: {err}"),
                }
            }
        });
        Ok(())
    }

    /// Another server's answer to one of this server's broadcasts with acks: to its stream.
    fn on_ack_response(&self, payload: &[u8]) -> Result<(), Error> {
        let (id, reply) = parse_ack_response(payload, &self.state.config.limits).map_err(sioadapter::Error::from)?;
        let answer = match reply {
            AckReply::ClientCount(count) => Answer::ClientCount(count),
            AckReply::Ack(arg) => Answer::Ack(packet::ack_value(self.local.parser(), &arg)?),
        };
        self.waiting.answer(&id, answer);
        Ok(())
    }

    fn on_request(&self, header: &RequestHeader, payload: &[u8]) -> Result<(), Error> {
        let request: serde_json::Value = match header.kind {
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => return Ok(()),
            _ => serde_json::from_slice(payload).map_err(|_| Error::Core(sioadapter::Error::Protocol(sioadapter::protocol::ProtocolError::Shape("request is not JSON"))))?,
        };
        let strings = |value: &serde_json::Value| -> Vec<String> {
            value.as_array().map_or_else(Vec::new, |items| items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect())
        };
        if header.kind == RequestType::ServerSideEmit {
            return self.on_server_side_emit(header, &request);
        }
        let opts = &request["opts"];
        let selection = if header.legacy {
            // The single-socket form: only the node that has the socket acts and answers.
            let Some(sid) = request["sid"].as_str().and_then(|s| Sid::from_str(s).ok()).filter(|sid| self.all_sockets().contains(sid)) else {
                return Ok(());
            };
            Selection::Sockets(vec![sid])
        } else {
            self.select(&strings(&opts["rooms"]), &strings(&opts["except"]), false)
        };
        let sids = |selection: Selection| match selection {
            Selection::Options(opts) => self.local.sockets(*opts),
            Selection::Sockets(sids) => sids,
        };
        match header.kind {
            RequestType::RemoteJoin | RequestType::RemoteLeave => {
                let rooms = if header.legacy { vec![request["room"].as_str().unwrap_or_default().to_owned()] } else { strings(&request["rooms"]) };
                for sid in sids(selection) {
                    if header.kind == RequestType::RemoteJoin {
                        self.local.add_all(sid, rooms.clone());
                    } else {
                        self.local.del(sid, rooms.clone());
                    }
                }
            }
            RequestType::RemoteDisconnect => {
                for sid in sids(selection) {
                    let _ = self.local.disconnect_socket(BroadcastOptions::new(sid));
                }
            }
            RequestType::RemoteFetch => {
                let sockets: Vec<serde_json::Value> = sids(selection).into_iter().map(|sid| self.socket_details(sid)).collect();
                return self.respond(header, Reply::List(Some(json(&sockets)?)));
            }
            RequestType::Sockets => {
                let ids: Vec<String> = sids(Selection::Options(Box::new(self.room_options(&strings(&request["rooms"]))))).iter().map(ToString::to_string).collect();
                return self.respond(header, Reply::List(Some(json(&ids)?)));
            }
            RequestType::AllRooms => {
                let rooms: Vec<String> = self.local_rooms();
                return self.respond(header, Reply::List(Some(json(&rooms)?)));
            }
            _ => return Ok(()),
        }
        if header.legacy {
            return self.respond(header, Reply::List(None));
        }
        Ok(())
    }

    /// Another server's `serverSideEmit`: to the listener, whose return value is the ack.
    fn on_server_side_emit(&self, header: &RequestHeader, request: &serde_json::Value) -> Result<(), Error> {
        let Some(listener) = &self.state.listener else { return Ok(()) };
        let data = request["data"].as_array().map_or(&[][..], Vec::as_slice);
        let Some((event, args)) = data.split_first() else { return Ok(()) };
        let ack = listener(event.as_str().unwrap_or_default(), args);
        self.respond(header, Reply::ServerSideEmit(Some(json(&ack)?)))
    }

    /// Every socket in `rooms` (all of them when empty).
    fn room_options(&self, rooms: &[String]) -> BroadcastOptions {
        let mut opts = BroadcastOptions::default();
        opts.add_flag(BroadcastFlags::Broadcast);
        opts.rooms = rooms.iter().map(|r| Room::from(r.clone())).collect();
        opts
    }

    /// The local rooms as a Node server lists them: its sockets' ids are rooms too.
    fn local_rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = self.local.rooms(self.room_options(&[])).into_iter().map(|r| r.to_string()).collect();
        rooms.extend(self.all_sockets().iter().map(ToString::to_string));
        rooms
    }

    /// What a Node node's fetchSockets answer says of a local socket: its id and rooms (its id
    /// among them, as socket.io's); handshake and data are not known to the adapter.
    fn socket_details(&self, sid: Sid) -> serde_json::Value {
        let mut rooms: Vec<String> = vec![sid.to_string()];
        rooms.extend(self.local.socket_rooms(sid).iter().map(|r| r.to_string()));
        serde_json::json!({
            "id": sid.to_string(),
            "handshake": {"headers": {}, "time": "", "address": "", "xdomain": false, "secure": false, "issued": 0, "url": "", "query": {}, "auth": {}},
            "rooms": rooms,
            "data": {},
        })
    }

    fn respond(&self, header: &RequestHeader, reply: Reply) -> Result<(), Error> {
        let Some(id) = header.request_id.as_deref() else { return Ok(()) };
        Ok(self.engine()?.respond(header.kind, id, header.uid.as_deref(), reply)?)
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, Error> {
    serde_json::value::to_raw_value(value).map_err(|_| Error::Core(sioadapter::Error::Protocol(sioadapter::protocol::ProtocolError::Shape("not writable as JSON"))))
}

/// The engine's host: what other nodes send goes to the adapter, if it is still there.
struct NodeHost<E> {
    adapter: Weak<SioAdapter<E>>,
}

impl<E: SocketEmitter> Host for NodeHost<E> {
    fn deliver(&self, delivery: Delivery) {
        if let Some(adapter) = self.adapter.upgrade() {
            adapter.on_delivery(delivery);
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        let Some(adapter) = self.adapter.upgrade() else { return };
        match event {
            AdapterEvent::Ready => {
                let ready = adapter.on_ready.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(ready) = ready {
                    ready();
                }
            }
            AdapterEvent::Error(err) => tracing::warn!(ns = %adapter.local.path(), "sioadapter: {err}"),
        }
    }
}

impl<E: SocketEmitter> CoreAdapter<E> for SioAdapter<E> {
    type Error = Error;
    type State = SioAdapterCtr;
    type AckStream = AckStream<E::AckStream>;
    type InitRes = ();

    fn new(state: &SioAdapterCtr, local: CoreLocalAdapter<E>) -> Self {
        SioAdapter {
            local,
            state: state.clone(),
            engine: OnceLock::new(),
            on_ready: Mutex::new(None),
            stand_ins: Mutex::default(),
            waiting: Arc::default(),
            undelivered: Undelivered::default(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) {
        *self.on_ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(on_success));
        let host = Arc::new(NodeHost { adapter: Arc::downgrade(&self) });
        let (nsp, config, transport) = (self.local.path(), &self.state.config, self.state.transport.clone());
        let engine = if self.state.sharded {
            ClusterNode::Sharded(ShardedNode::new(nsp, config, SubscriptionMode::Static, transport, host))
        } else {
            ClusterNode::Classic(Adapter::new(nsp, config, transport, host))
        };
        self.state.engines.lock().unwrap_or_else(|p| p.into_inner()).insert(self.local.path().to_string(), engine.clone());
        let _ = self.engine.set(engine);
    }

    async fn close(&self) -> Result<(), Error> {
        self.state.engines.lock().unwrap_or_else(|p| p.into_inner()).remove(self.local.path().as_str());
        match self.engine.get() {
            Some(engine) => Ok(engine.close().await?),
            None => Ok(()),
        }
    }

    async fn server_count(&self) -> Result<u16, Error> {
        let count = self.engine()?.server_count().await?;
        Ok(u16::try_from(count).unwrap_or(u16::MAX))
    }

    async fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        if !self.stays_local(&opts) {
            let (packet, wire) = self.wire_message(&packet, &opts).map_err(AdapterError::from)?;
            let engine = self.engine().map_err(AdapterError::from)?;
            engine.broadcast(&packet, &wire).map_err(|e| AdapterError::from(Error::from(e)))?;
        }
        if self.remote_socket(&opts) {
            return Ok(());
        }
        self.local.broadcast(packet, opts).map_err(BroadcastError::from)
    }

    /// This server's clients' acks, and the other servers' as a Node node collects them: every
    /// other server (counted on Redis, as socket.io counts them) answers with its client count, then each of
    /// those clients' ack, until `timeout` (socketioxide's ack timeout when `None`). An ack from
    /// another server comes with a stand-in socket id: the wire does not say whose it is. A
    /// remote client that does not answer in time yields no item (the wire does not say which
    /// one); this server's own clients yield their timeout errors as socketioxide's do.
    async fn broadcast_with_ack(&self, packet: Packet, opts: BroadcastOptions, timeout: Option<Duration>) -> Result<Self::AckStream, Error> {
        let timeout = timeout.unwrap_or_else(|| self.local.ack_timeout());
        let remote = if self.stays_local(&opts) {
            None
        } else {
            let engine = self.engine()?.clone();
            let (wire_packet, mut wire) = self.wire_message(&packet, &opts)?;
            wire.flags.set("timeout", u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            let id = sioadapter::protocol::new_uid();
            let remote = Remote::register(&self.waiting, id.clone(), timeout);
            engine.broadcast_with_ack(&id, &wire_packet, &wire, timeout)?;
            // Counted while the request goes out and the local clients get it (as socket.io
            // does): a Redis outage delays nothing local; uncounted, the remote half ends at
            // the timeout.
            let waiting = self.waiting.clone();
            tokio::spawn(async move {
                match engine.server_count().await {
                    Ok(servers) => waiting.answer(&id, Answer::Servers(servers.saturating_sub(1))),
                    Err(err) => tracing::debug!("sioadapter: the servers of a broadcast with acks could not be counted: {err}"),
                }
            });
            Some(remote)
        };
        let (local, _) = self.local.broadcast_with_ack(packet, opts, Some(timeout));
        Ok(AckStream::new(local, remote))
    }

    async fn add_sockets(&self, opts: BroadcastOptions, rooms: impl RoomParam) -> Result<(), Error> {
        self.change_rooms(opts, rooms, true)
    }

    async fn del_sockets(&self, opts: BroadcastOptions, rooms: impl RoomParam) -> Result<(), Error> {
        self.change_rooms(opts, rooms, false)
    }

    async fn disconnect_socket(&self, opts: BroadcastOptions) -> Result<(), BroadcastError> {
        self.publish_for(&opts, |engine, targets| engine.disconnect_sockets(targets, false)).map_err(AdapterError::from)?;
        if self.remote_socket(&opts) {
            return Ok(());
        }
        self.local.disconnect_socket(opts).map_err(BroadcastError::Socket)
    }

    async fn rooms(&self, opts: BroadcastOptions) -> Result<Vec<Room>, Error> {
        if self.remote_socket(&opts) {
            // One socket of another server: its rooms, as its server reports them to fetchSockets.
            let details = self.remote_details(&opts).await?.into_iter().next().unwrap_or_default();
            let names = details["rooms"].as_array().map_or_else(Vec::new, |rooms| rooms.iter().filter_map(|r| r.as_str().map(|r| Cow::Owned(r.to_owned()))).collect());
            return Ok(names);
        }
        let mut rooms: HashSet<Room> = self.local.rooms(opts.clone());
        if !self.stays_local(&opts) {
            let outcome = self.engine()?.all_rooms().await?.into_result()?;
            for room in outcome {
                if let Ok(room) = serde_json::from_str::<String>(room.get()) {
                    rooms.insert(Cow::Owned(room));
                }
            }
        }
        Ok(rooms.into_iter().collect())
    }

    async fn fetch_sockets(&self, opts: BroadcastOptions) -> Result<Vec<RemoteSocketData>, Error> {
        let mut sockets = if self.remote_socket(&opts) { Vec::new() } else { self.local.fetch_sockets(opts.clone()) };
        if !self.stays_local(&opts) {
            for details in self.remote_details(&opts).await? {
                let Some(id) = details["id"].as_str() else { continue };
                // The owner is not named in the answer: any server id but this one's makes the
                // socket remote, and operations on it are published to the cluster.
                sockets.push(RemoteSocketData { id: self.local_id(id), server_id: Uid::ZERO, ns: self.local.path().clone() });
            }
        }
        Ok(sockets)
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_a_socketioxide_node_cannot_honour_are_refused() {
        let broker = sioadapter::transport::memory::MemoryBroker::new();
        let config = AdapterConfig::default().with_per_room_subscriptions(true);
        for made in [SioAdapterCtr::with_transport(Arc::new(broker.connect()), config.clone()), SioAdapterCtr::sharded_with_transport(Arc::new(broker.connect()), config)] {
            let Err(err) = made else { panic!("accepted perRoomSubscriptions") };
            assert!(err.to_string().contains("perRoomSubscriptions"), "{err}");
        }
        assert!(SioAdapterCtr::with_transport(Arc::new(broker.connect()), AdapterConfig::default()).is_ok());
        for config in [AdapterConfig::default().with_json_parser(true), AdapterConfig::default().with_specific_response_channel(true)] {
            assert!(SioAdapterCtr::sharded_with_transport(Arc::new(broker.connect()), config.clone()).is_err(), "a classic option refused in the sharded protocol");
            assert!(SioAdapterCtr::with_transport(Arc::new(broker.connect()), config).is_ok());
        }
    }

    #[test]
    fn a_node_socket_keeps_one_stand_in_and_maps_back() {
        let mut stand_ins = StandIns::default();
        let (a, b) = ("AAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBB");
        let sid_a = stand_ins.for_id(a);
        assert_eq!(stand_ins.for_id(a), sid_a);
        let sid_b = stand_ins.for_id(b);
        assert_ne!(sid_a, sid_b);
        assert_eq!(stand_ins.real[&sid_a], a);
        assert_eq!(stand_ins.real[&sid_b], b);
        assert_eq!((stand_ins.real.len(), stand_ins.stand_in.len()), (2, 2));
    }
}
