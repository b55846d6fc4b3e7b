//! A publish-only client for processes that are not socket.io servers, speaking exactly what
//! `@socket.io/redis-emitter` 5 publishes (docs/protocol.md §5): broadcasts from uid `"emitter"`
//! with opts in the emitter's key order, and uid-less bulk requests.

use std::sync::Arc;

use rmpv::Value;
use serde_json::value::RawValue;

use crate::channels::{Channels, ShardedChannels};
use crate::error::Error;
use crate::limits::Limits;
use crate::protocol::broadcast::encode_event;
use crate::protocol::request::{self as req, Targets};
use crate::protocol::{cluster, BroadcastOptions, OptsLayout, Packet, ProtocolError};
use crate::sharded::SubscriptionMode;
use crate::transport::Transport;

/// The uid every emitter message carries.
pub const EMITTER_UID: &str = "emitter";

/// Event names socket.io reserves; emitting them is refused, as the official emitter does.
pub const RESERVED_EVENTS: [&str; 6] = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// Emits into a socket.io cluster through Redis, for one namespace.
///
/// ```no_run
/// # async fn demo() -> Result<(), sioadapter::Error> {
/// use std::sync::Arc;
/// use sioadapter::{emitter::Emitter, protocol::BroadcastOptions, RedisConfig};
/// use sioadapter::transport::redis::RedisTransport;
///
/// let transport = Arc::new(RedisTransport::connect(&RedisConfig::from_url("redis://127.0.0.1:6379")?)?);
/// let emitter = Emitter::new(transport, "socket.io", "/");
/// emitter.emit("news", vec!["hello".into()], &BroadcastOptions::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    transport: Arc<dyn Transport>,
    key: String,
    channels: Channels,
    nsp: String,
    /// Messages larger than its `max_message_bytes` fail: the nodes would drop them.
    limits: Limits,
    /// Broadcasts as JSON text ([`Emitter::with_json_parser`]).
    json_parser: bool,
}

impl Emitter {
    /// An emitter for namespace `nsp` (a leading `/` is added when missing) with key prefix `key`.
    pub fn new(transport: Arc<dyn Transport>, key: &str, nsp: &str) -> Self {
        let nsp = if nsp.starts_with('/') { nsp.to_owned() } else { format!("/{nsp}") };
        Emitter { channels: Channels::new(key, &nsp, EMITTER_UID), transport, key: key.to_owned(), nsp, limits: Limits::default(), json_parser: false }
    }

    /// The same emitter, refusing messages larger than `limits.max_message_bytes` (default
    /// 16 MiB, the nodes' default `maxMessageBytes`).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same emitter speaking the official JSON `parser` (`{ encode: JSON.stringify, decode:
    /// JSON.parse }`): broadcasts are published as JSON text, for nodes configured with that
    /// parser ([`AdapterConfig::json_parser`](crate::AdapterConfig::json_parser)).
    pub fn with_json_parser(mut self, on: bool) -> Self {
        self.json_parser = on;
        self
    }

    /// The same emitter for another namespace.
    pub fn of(&self, nsp: &str) -> Self {
        Emitter::new(self.transport.clone(), &self.key, nsp).with_limits(self.limits).with_json_parser(self.json_parser)
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// Emits `event` with `args` to the sockets selected by `opts` (rooms, except, flags
    /// `volatile`/`compress`) on every node.
    pub fn emit(&self, event: &str, args: Vec<Value>, opts: &BroadcastOptions) -> Result<(), Error> {
        check_event(event)?;
        let message = encode_event(EMITTER_UID, &self.nsp, event, &args, opts, OptsLayout::Emitter);
        let room = opts.single_room().map(ToString::to_string);
        self.send_broadcast(room.as_deref(), message)
    }

    /// Emits an EVENT broadcast from its encoded parts (see
    /// [`frame_event`](crate::protocol::broadcast::frame_event)): `data`, the msgpack array
    /// `[event, ...args]`, and `tail`, the packet's `nsp` entry and the `opts` map (in the
    /// emitter's key order); `single_room` is the room when there is exactly one.
    pub fn emit_encoded(&self, single_room: Option<&str>, data: &[u8], tail: &[u8]) -> Result<(), Error> {
        let message = crate::protocol::broadcast::frame_event(EMITTER_UID, data, tail)?;
        self.send_broadcast(single_room, message)
    }

    /// Publishes a broadcast given in msgpack, as this emitter's parser encodes it.
    fn send_broadcast(&self, single_room: Option<&str>, message: Vec<u8>) -> Result<(), Error> {
        let message = if self.json_parser { crate::protocol::msgpack::to_json_text(&message)? } else { message };
        self.send(self.channels.broadcast_for(single_room), message)
    }

    /// Publishes a broadcast that the host encoded with its own parser (the official emitter's
    /// `parser` option): `message` is the parser's encoding of `["emitter", { type: 2, data, nsp
    /// }, { rooms, flags, except }]`, `single_room` the room when there is exactly one.
    pub fn emit_host_encoded(&self, single_room: Option<&str>, message: Vec<u8>) -> Result<(), Error> {
        self.send(self.channels.broadcast_for(single_room), message)
    }

    /// Emits, in order, EVENT broadcasts that a host packed into one buffer (the Node `Emitter`
    /// hands over the emits of one run of JavaScript in one call). `packed` holds, for each of
    /// the `single_rooms.len()` target selections, a little-endian `u32` length and the
    /// selection's `tail`; then, for each message, the `u32` index of its selection, a `u32`
    /// length and its `data` (`data`, `tail` and the single room as for
    /// [`emit_encoded`](Self::emit_encoded)). A message that fails (too large, queue full,
    /// closed) is dropped and counted as one emitted alone would be; the others are still sent,
    /// and the first failure is returned. A malformed `packed` fails at the first bad field,
    /// after the messages before it were sent.
    pub fn emit_packed(&self, single_rooms: &[Option<String>], packed: &[u8]) -> Result<(), Error> {
        let mut fields = PackedFields(packed);
        let selections = single_rooms.iter().map(|room| Ok((room.as_deref(), fields.chunk()?))).collect::<Result<Vec<_>, ProtocolError>>()?;
        let mut first_failure = None;
        while !fields.0.is_empty() {
            let selection = fields.u32()? as usize;
            let (room, tail) = *selections.get(selection).ok_or(ProtocolError::Shape("packed emit names a target selection that is not there"))?;
            let data = fields.chunk()?;
            if let Err(err) = self.emit_encoded(room, data, tail) {
                first_failure.get_or_insert(err);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// `socketsJoin(rooms)`: sockets selected by `targets` join `rooms` (JSON array).
    pub fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.request(req::emitter_rooms_request(true, targets, rooms))
    }

    /// `socketsLeave(rooms)`: sockets selected by `targets` leave `rooms` (JSON array).
    pub fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.request(req::emitter_rooms_request(false, targets, rooms))
    }

    /// `disconnectSockets(close)` for the sockets selected by `targets`.
    pub fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
        self.request(req::emitter_disconnect_request(targets, close))
    }

    /// `serverSideEmit(event, ...args)` to every server (`data` = `[event, ...args]` as JSON).
    /// Acknowledgements are not supported, as in the official emitter.
    pub fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
        check_server_side_event(data)?;
        self.request(req::server_side_emit_request(EMITTER_UID, None, data))
    }

    fn request(&self, payload: Vec<u8>) -> Result<(), Error> {
        self.send(self.channels.request().to_owned(), payload)
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.limits.check_outgoing(payload.len())?;
        self.transport.publish(channel, payload)
    }
}

/// Emits into a cluster of sharded adapters (`createShardedAdapter`, official or ours), for one
/// namespace: the socket.io ClusterAdapter's messages from uid `"emitter"` (which its nodes do
/// not count as a server), published with `SPUBLISH` on the main channel `P#N#`, or, for a
/// broadcast to a single room in a dynamic subscription mode, on the room's channel `P#N#R#`
/// as the official adapter does. `transport` must publish with sharded pub/sub
/// ([`RedisConfig::sharded`](crate::RedisConfig::sharded)), on a Redis Cluster or a single
/// Redis ≥ 7, and `mode` must be the nodes' `subscriptionMode`.
///
/// ```no_run
/// # async fn demo() -> Result<(), sioadapter::Error> {
/// use std::sync::Arc;
/// use sioadapter::{emitter::ShardedEmitter, protocol::BroadcastOptions, sharded::SubscriptionMode, RedisConfig};
/// use sioadapter::transport::redis::RedisTransport;
///
/// let mut config = RedisConfig::from_url("redis://127.0.0.1:6379")?;
/// config.sharded = true;
/// let transport = Arc::new(RedisTransport::connect(&config)?);
/// let emitter = ShardedEmitter::new(transport, "socket.io", "/", SubscriptionMode::Dynamic);
/// emitter.emit("news", vec!["hello".into()], &BroadcastOptions::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ShardedEmitter {
    transport: Arc<dyn Transport>,
    prefix: String,
    channels: ShardedChannels,
    nsp: String,
    mode: SubscriptionMode,
    /// Messages larger than its `max_message_bytes` fail: the nodes would drop them.
    limits: Limits,
}

impl ShardedEmitter {
    /// An emitter for namespace `nsp` (a leading `/` is added when missing) of the sharded
    /// adapters with channel prefix `prefix` and subscription mode `mode`.
    pub fn new(transport: Arc<dyn Transport>, prefix: &str, nsp: &str, mode: SubscriptionMode) -> Self {
        let nsp = if nsp.starts_with('/') { nsp.to_owned() } else { format!("/{nsp}") };
        ShardedEmitter { channels: ShardedChannels::new(prefix, &nsp, EMITTER_UID), transport, prefix: prefix.to_owned(), nsp, mode, limits: Limits::default() }
    }

    /// The same emitter, refusing messages larger than `limits.max_message_bytes`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same emitter for another namespace.
    pub fn of(&self, nsp: &str) -> Self {
        ShardedEmitter::new(self.transport.clone(), &self.prefix, nsp, self.mode).with_limits(self.limits)
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// Emits `event` with `args` to the sockets selected by `opts` on every node: JSON, or
    /// msgpack when an argument is binary, as the official sharded adapter encodes.
    pub fn emit(&self, event: &str, args: Vec<Value>, opts: &BroadcastOptions) -> Result<(), Error> {
        check_event(event)?;
        let message = cluster::broadcast_message(&Packet::event(&self.nsp, event, args), opts, EMITTER_UID, &self.nsp)?;
        let room = opts.single_room().map(ToString::to_string);
        self.emit_encoded(room.as_deref(), message)
    }

    /// Publishes a BROADCAST message that the host encoded (`{ type: 3, data: { packet, opts },
    /// uid: "emitter", nsp }`, JSON or msgpack), `single_room` the room when there is exactly
    /// one: the subscription mode picks the channel.
    pub fn emit_encoded(&self, single_room: Option<&str>, message: Vec<u8>) -> Result<(), Error> {
        self.send(self.channels.broadcast(self.mode, single_room), message)
    }

    /// `socketsJoin(rooms)`: sockets selected by `targets` join `rooms` (JSON array).
    pub fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.send_main(cluster::sockets_message(true, targets, rooms, EMITTER_UID, &self.nsp))
    }

    /// `socketsLeave(rooms)`: sockets selected by `targets` leave `rooms` (JSON array).
    pub fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        self.send_main(cluster::sockets_message(false, targets, rooms, EMITTER_UID, &self.nsp))
    }

    /// `disconnectSockets(close)` for the sockets selected by `targets`.
    pub fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
        self.send_main(cluster::disconnect_message(targets, close, EMITTER_UID, &self.nsp))
    }

    /// `serverSideEmit(event, ...args)` to every server (`data` = `[event, ...args]` as JSON),
    /// without acknowledgement.
    pub fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
        check_server_side_event(data)?;
        self.send_main(cluster::server_side_emit_message(data, None, EMITTER_UID, &self.nsp))
    }

    fn send_main(&self, payload: Vec<u8>) -> Result<(), Error> {
        self.send(self.channels.main().to_owned(), payload)
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.limits.check_outgoing(payload.len())?;
        self.transport.publish(channel, payload)
    }
}

/// An emitter to classic nodes or to sharded ones, for code that serves both (the C and Node
/// bindings make one or the other from their options).
#[derive(Clone)]
pub enum AnyEmitter {
    /// To classic adapters (`@socket.io/redis-emitter`'s protocol).
    Classic(Emitter),
    /// To sharded adapters (ClusterAdapter messages on shard channels).
    Sharded(ShardedEmitter),
}

impl AnyEmitter {
    /// Emits `event` with `args` to the sockets selected by `opts` on every node.
    pub fn emit(&self, event: &str, args: Vec<Value>, opts: &BroadcastOptions) -> Result<(), Error> {
        match self {
            AnyEmitter::Classic(emitter) => emitter.emit(event, args, opts),
            AnyEmitter::Sharded(emitter) => emitter.emit(event, args, opts),
        }
    }

    /// Publishes a broadcast that the host encoded whole: for classic nodes with its parser
    /// ([`Emitter::emit_host_encoded`]), for sharded ones as a ClusterAdapter BROADCAST message
    /// ([`ShardedEmitter::emit_encoded`]).
    pub fn emit_host_encoded(&self, single_room: Option<&str>, message: Vec<u8>) -> Result<(), Error> {
        match self {
            AnyEmitter::Classic(emitter) => emitter.emit_host_encoded(single_room, message),
            AnyEmitter::Sharded(emitter) => emitter.emit_encoded(single_room, message),
        }
    }

    /// The classic emitter, for the calls only it has (e.g. [`Emitter::emit_packed`]).
    pub fn classic(&self) -> Option<&Emitter> {
        match self {
            AnyEmitter::Classic(emitter) => Some(emitter),
            AnyEmitter::Sharded(_) => None,
        }
    }

    /// The fire-and-forget commands (socketsJoin, ...), whichever the protocol.
    pub fn commands(&self) -> &dyn ClusterCommands {
        match self {
            AnyEmitter::Classic(emitter) => emitter,
            AnyEmitter::Sharded(emitter) => emitter,
        }
    }
}

/// Reads the fields of [`Emitter::emit_packed`]'s buffer from the front.
struct PackedFields<'a>(&'a [u8]);

impl<'a> PackedFields<'a> {
    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let (word, rest) = self.0.split_first_chunk::<4>().ok_or(ProtocolError::Truncated)?;
        self.0 = rest;
        Ok(u32::from_le_bytes(*word))
    }

    /// A `u32` length and that many bytes.
    fn chunk(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.u32()? as usize;
        if self.0.len() < len {
            return Err(ProtocolError::Truncated);
        }
        let (chunk, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(chunk)
    }
}

/// Refuses a server-side emit (`[event, ...args]`, JSON) of a reserved event.
fn check_server_side_event(data: &RawValue) -> Result<(), Error> {
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(data.get()) {
        if let Some(event) = items.first().and_then(serde_json::Value::as_str) {
            check_event(event)?;
        }
    }
    Ok(())
}

fn check_event(event: &str) -> Result<(), Error> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(Error::InvalidOption { option: "event", reason: format!("\"{event}\" is a reserved event name") });
    }
    Ok(())
}

/// The fire-and-forget requests both an [`Emitter`] and an [`Adapter`](crate::Adapter) send to
/// the nodes of a cluster, so that code driving either (the Node binding) is written once.
pub trait ClusterCommands {
    /// `socketsJoin(rooms)` for the sockets selected by `targets` (`rooms`: JSON array).
    fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error>;
    /// `socketsLeave(rooms)` for the sockets selected by `targets` (`rooms`: JSON array).
    fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error>;
    /// `disconnectSockets(close)` for the sockets selected by `targets`.
    fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error>;
    /// `serverSideEmit(event, ...args)` without acknowledgement (`data`: `[event, ...args]`).
    fn server_side_emit(&self, data: &RawValue) -> Result<(), Error>;
}

/// Implements [`ClusterCommands`] for types whose inherent methods of the same names do the work.
macro_rules! cluster_commands_by_inherent_methods {
    ($($kind:ty),*) => {$(
        impl ClusterCommands for $kind {
            fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
                <$kind>::sockets_join(self, targets, rooms)
            }
            fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
                <$kind>::sockets_leave(self, targets, rooms)
            }
            fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
                <$kind>::disconnect_sockets(self, targets, close)
            }
            fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
                <$kind>::server_side_emit(self, data)
            }
        }
    )*};
}

cluster_commands_by_inherent_methods!(Emitter, ShardedEmitter, crate::Adapter, crate::ShardedNode);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Room;
    use crate::transport::memory::MemoryBroker;
    use crate::transport::{Inbound, Subscriber, Subscription, TransportEvent};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Tap(Mutex<Vec<Inbound>>);

    impl Subscriber for Tap {
        fn on_message(&self, message: Inbound) {
            self.0.lock().unwrap().push(message);
        }
        fn on_event(&self, _: &TransportEvent) {}
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[tokio::test]
    async fn emits_exactly_what_the_official_emitter_publishes() {
        let broker = MemoryBroker::new();
        let tap = Arc::new(Tap::default());
        let listener = broker.connect();
        listener.subscribe(Subscription { patterns: vec!["socket.io*".into()], channels: vec![] }, tap.clone()).await.unwrap();
        let emitter = Emitter::new(Arc::new(broker.connect()), "socket.io", "/");
        emitter.emit("hello", vec!["world".into()], &BroadcastOptions::default()).unwrap();
        let mut opts = BroadcastOptions { rooms: vec![Room::from("r1"), Room::from("r2")], except: vec![Room::from("r3")], ..Default::default() };
        opts.flags.set("volatile", true).set("compress", true);
        emitter.of("admin").emit("x", vec![Value::Binary(vec![1])], &opts).unwrap();
        let rooms = RawValue::from_string(r#"["room2"]"#.into()).unwrap();
        let (room1, none) = (RawValue::from_string(r#"["room1"]"#.into()).unwrap(), RawValue::from_string("[]".into()).unwrap());
        emitter.sockets_join(&Targets { rooms: &room1, except: &none }, &rooms).unwrap();
        let vip = RawValue::from_string(r#"["vip"]"#.into()).unwrap();
        emitter.disconnect_sockets(&Targets { rooms: &none, except: &vip }, true).unwrap();
        emitter.server_side_emit(&RawValue::from_string(r#"["srv",{"a":1}]"#.into()).unwrap()).unwrap();
        assert!(emitter.emit("disconnect", vec![], &BroadcastOptions::default()).unwrap_err().to_string().contains("\"disconnect\" is a reserved event name"));

        let got = tap.0.lock().unwrap().clone();
        let expected: [(&str, Vec<u8>); 5] = [
            ("socket.io#/#", unhex("93a7656d697474657283a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490")),
            ("socket.io#/admin#", unhex("93a7656d697474657283a47479706502a46461746192a178c40101a36e7370a62f61646d696e83a5726f6f6d7392a27231a27232a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c3a665786365707491a27233")),
            ("socket.io-request#/#", br#"{"type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["room2"]}"#.to_vec()),
            ("socket.io-request#/#", br#"{"type":4,"opts":{"rooms":[],"except":["vip"]},"close":true}"#.to_vec()),
            ("socket.io-request#/#", br#"{"uid":"emitter","type":6,"data":["srv",{"a":1}]}"#.to_vec()),
        ];
        assert_eq!(got.len(), expected.len());
        for (message, (channel, payload)) in got.iter().zip(expected) {
            assert_eq!(message.channel, channel.as_bytes());
            assert_eq!(message.payload, payload, "{channel}");
        }
    }

    #[tokio::test]
    async fn with_the_json_parser_broadcasts_are_what_json_stringify_writes() {
        let broker = MemoryBroker::new();
        let tap = Arc::new(Tap::default());
        broker.connect().subscribe(Subscription { patterns: vec!["socket.io*".into()], channels: vec![] }, tap.clone()).await.unwrap();
        let emitter = Emitter::new(Arc::new(broker.connect()), "socket.io", "/").with_json_parser(true);
        emitter.emit("hello", vec!["world".into(), Value::Binary(vec![1])], &BroadcastOptions::default()).unwrap();
        emitter.of("admin").emit("x", vec![], &BroadcastOptions::default()).unwrap();
        let got = tap.0.lock().unwrap().clone();
        let text = |i: usize| String::from_utf8(got[i].payload.clone()).unwrap();
        assert_eq!(text(0), r#"["emitter",{"type":2,"data":["hello","world",{"type":"Buffer","data":[1]}],"nsp":"/"},{"rooms":[],"flags":{},"except":[]}]"#);
        assert_eq!((got[1].channel.as_slice(), text(1).contains(r#""nsp":"/admin""#)), (&b"socket.io#/admin#"[..], true), "of() keeps the parser");
    }

    /// `[u32 LE len, bytes]`.
    fn chunk(bytes: &[u8]) -> Vec<u8> {
        [&(bytes.len() as u32).to_le_bytes()[..], bytes].concat()
    }

    #[tokio::test]
    async fn packed_emits_publish_what_single_emits_publish_in_order() {
        let broker = MemoryBroker::new();
        let tap = Arc::new(Tap::default());
        broker.connect().subscribe(Subscription { patterns: vec!["socket.io*".into()], channels: vec![] }, tap.clone()).await.unwrap();
        let emitter = Emitter::new(Arc::new(broker.connect()), "socket.io", "/");
        let everyone = unhex("a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490");
        let room1 = unhex("a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490");
        let (a, b, c) = (unhex("92a161a131"), unhex("92a162c40102"), unhex("91a163"));
        let rooms = [None, Some("room1".to_owned())];
        let mut packed = [chunk(&everyone), chunk(&room1)].concat();
        for (selection, data) in [(1u32, &a), (0, &b), (1, &c)] {
            packed.extend([&selection.to_le_bytes()[..], &chunk(data)].concat());
        }
        emitter.emit_packed(&rooms, &packed).unwrap();
        let packed_ones = std::mem::take(&mut *tap.0.lock().unwrap());
        for (room, data, tail) in [(Some("room1"), &a, &room1), (None, &b, &everyone), (Some("room1"), &c, &room1)] {
            emitter.emit_encoded(room, data, tail).unwrap();
        }
        let single_ones = tap.0.lock().unwrap().clone();
        assert_eq!(packed_ones.len(), 3);
        for (packed, single) in packed_ones.iter().zip(&single_ones) {
            assert_eq!((&packed.channel, &packed.payload), (&single.channel, &single.payload));
        }
        assert_eq!(packed_ones[0].channel, b"socket.io#/#room1#");

        // Every cut of the buffer and a bad selection fail with an error, after what came before.
        for cut in 0..packed.len() {
            let _ = emitter.emit_packed(&rooms, &packed[..cut]);
        }
        let mut bad = [chunk(&everyone), chunk(&room1)].concat();
        bad.extend([&7u32.to_le_bytes()[..], &chunk(&a)].concat());
        assert!(emitter.emit_packed(&rooms, &bad).unwrap_err().to_string().contains("selection"));
        assert!(emitter.emit_packed(&rooms, &packed[..packed.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn the_sharded_emitter_publishes_cluster_adapter_messages_on_the_channels_of_its_mode() {
        let broker = MemoryBroker::new();
        let tap = Arc::new(Tap::default());
        broker.connect().subscribe(Subscription { patterns: vec!["p#*".into()], channels: vec![] }, tap.clone()).await.unwrap();
        let transport: Arc<dyn Transport> = Arc::new(broker.connect());
        let to = |room: &str| BroadcastOptions { rooms: vec![Room::from(room)], ..Default::default() };
        let socket_id = "abcdefghij0123456789";
        for mode in SubscriptionMode::ALL {
            let emitter = ShardedEmitter::new(transport.clone(), "p", "/", mode);
            emitter.emit("hello", vec!["world".into()], &BroadcastOptions::default()).unwrap();
            emitter.emit("r", vec![], &to("room1")).unwrap();
            emitter.emit("s", vec![], &to(socket_id)).unwrap();
        }
        let got: Vec<(String, Vec<u8>)> = std::mem::take(&mut *tap.0.lock().unwrap()).into_iter().map(|m| (String::from_utf8(m.channel).unwrap(), m.payload)).collect();
        let channels: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
        let sid_channel = format!("p#/#{socket_id}#");
        assert_eq!(channels, ["p#/#", "p#/#", "p#/#", "p#/#", "p#/#room1#", "p#/#", "p#/#", "p#/#room1#", &sid_channel[..]]);
        assert_eq!(
            std::str::from_utf8(&got[0].1).unwrap(),
            r#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}"#
        );

        let emitter = ShardedEmitter::new(transport, "p", "admin", SubscriptionMode::Dynamic);
        emitter.emit("bin", vec![Value::Binary(vec![1, 2])], &BroadcastOptions::default()).unwrap();
        let (room1, none) = (RawValue::from_string(r#"["room1"]"#.into()).unwrap(), RawValue::from_string("[]".into()).unwrap());
        let joined = RawValue::from_string(r#"["joined"]"#.into()).unwrap();
        emitter.sockets_join(&Targets { rooms: &room1, except: &none }, &joined).unwrap();
        emitter.sockets_leave(&Targets { rooms: &none, except: &none }, &joined).unwrap();
        emitter.disconnect_sockets(&Targets { rooms: &none, except: &room1 }, true).unwrap();
        emitter.server_side_emit(&RawValue::from_string(r#"["srv",1]"#.into()).unwrap()).unwrap();
        assert!(emitter.server_side_emit(&RawValue::from_string(r#"["disconnect"]"#.into()).unwrap()).is_err());
        let got = std::mem::take(&mut *tap.0.lock().unwrap());
        assert!(got.iter().all(|m| m.channel == b"p#/admin#"));
        assert_ne!(got[0].payload[0], b'{', "binary: msgpack");
        for message in &got {
            assert_eq!(cluster::check_message(&message.payload), Ok(()), "{:?}", String::from_utf8_lossy(&message.payload));
        }
        let texts: Vec<String> = got[1..].iter().map(|m| String::from_utf8(m.payload.clone()).unwrap()).collect();
        assert_eq!(
            texts,
            [
                r#"{"type":4,"data":{"opts":{"rooms":["room1"],"except":[]},"rooms":["joined"]},"uid":"emitter","nsp":"/admin"}"#,
                r#"{"type":5,"data":{"opts":{"rooms":[],"except":[]},"rooms":["joined"]},"uid":"emitter","nsp":"/admin"}"#,
                r#"{"type":6,"data":{"opts":{"rooms":[],"except":["room1"]},"close":true},"uid":"emitter","nsp":"/admin"}"#,
                r#"{"type":9,"data":{"packet":["srv",1]},"uid":"emitter","nsp":"/admin"}"#,
            ]
        );
    }
}
