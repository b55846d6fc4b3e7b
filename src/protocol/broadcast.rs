//! The classic broadcast envelope `[uid, packet, opts]` (docs/protocol.md §2 and §5).

use std::fmt;
use std::ops::Range;

use rmp::Marker;
use rmpv::Value;

use super::msgpack::{self, Reader};
use super::ProtocolError;
use crate::limits::Limits;

/// socket.io-parser's EVENT packet type, the only one the adapters publish.
pub const EVENT: i64 = 2;

/// A room: socket.io rooms are strings, but JS servers may also join numbers (`socket.join(123)`),
/// which travel as msgpack integers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Room {
    /// A room name (socket ids are rooms too).
    Name(String),
    /// A numeric room, as JS `socket.join(123)` makes.
    Number(i64),
}

impl fmt::Display for Room {
    /// The room as it appears in a channel name (`K#N#R#`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Name(name) => f.write_str(name),
            Room::Number(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for Room {
    fn from(name: &str) -> Self {
        Room::Name(name.to_owned())
    }
}

impl From<String> for Room {
    fn from(name: String) -> Self {
        Room::Name(name)
    }
}

impl From<i64> for Room {
    fn from(n: i64) -> Self {
        Room::Number(n)
    }
}

impl Room {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Room::Name(name) => msgpack::write_str(out, name),
            Room::Number(n) => msgpack::write_int(out, *n),
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Room, ProtocolError> {
        match reader.read_value()? {
            Value::String(s) => s.into_str().map(Room::Name).ok_or(ProtocolError::InvalidUtf8),
            Value::Integer(i) => i.as_i64().map(Room::Number).ok_or(ProtocolError::Shape("room number out of range")),
            _ => Err(ProtocolError::Shape("a room must be a string or an integer")),
        }
    }
}

/// Broadcast flags (`volatile`, `compress`, `timeout`, ...), kept in the order they were set,
/// because that order is part of the bytes on the wire. Unknown flags are carried as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags(Vec<(String, Value)>);

impl Flags {
    /// No flags (`{}` on the wire).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a flag, replacing an earlier value of the same name in place.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
        self
    }

    /// The value of a flag, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// `volatile`: the message may be dropped for clients that are not ready.
    pub fn volatile(&self) -> bool {
        self.get("volatile").and_then(Value::as_bool).unwrap_or(false)
    }

    /// `compress`, when set.
    pub fn compress(&self) -> Option<bool> {
        self.get("compress").and_then(Value::as_bool)
    }

    /// `timeout` in milliseconds, when set (broadcasts with acknowledgements).
    pub fn timeout(&self) -> Option<u64> {
        self.get("timeout").and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The flags in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        msgpack::write_map_len(out, self.0.len());
        for (k, v) in &self.0 {
            msgpack::write_str(out, k);
            msgpack::encode_value(out, v);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Flags, ProtocolError> {
        let n = reader.read_map_len()?;
        let mut flags = Vec::with_capacity(n);
        for _ in 0..n {
            let key = reader.read_str()?.to_owned();
            flags.push((key, reader.read_value()?));
        }
        Ok(Flags(flags))
    }
}

/// Who wrote the `opts` map: the adapter writes `rooms, except, flags`, the emitter
/// `rooms, flags, except`. Both are accepted; the layout is kept so re-encoding is byte-identical.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OptsLayout {
    /// `{rooms, except, flags}` (socket.io adapters).
    #[default]
    Adapter,
    /// `{rooms, flags, except}` (`@socket.io/redis-emitter`).
    Emitter,
}

/// Where a broadcast goes: rooms (empty = everybody), rooms excluded, and flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastOptions {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Rooms (socket ids included) whose sockets must not receive the packet.
    pub except: Vec<Room>,
    /// Flags such as `volatile` and `compress`.
    pub flags: Flags,
}

impl BroadcastOptions {
    /// Writes the `opts` map in the given key order.
    pub fn encode(&self, out: &mut Vec<u8>, layout: OptsLayout) {
        msgpack::write_map_len(out, 3);
        write_rooms(out, "rooms", &self.rooms);
        match layout {
            OptsLayout::Adapter => {
                write_rooms(out, "except", &self.except);
                msgpack::write_str(out, "flags");
                self.flags.encode(out);
            }
            OptsLayout::Emitter => {
                msgpack::write_str(out, "flags");
                self.flags.encode(out);
                write_rooms(out, "except", &self.except);
            }
        }
    }

    /// The room a single-room broadcast is published on (`K#N#R#`), if there is exactly one.
    pub fn single_room(&self) -> Option<&Room> {
        match self.rooms.as_slice() {
            [room] => Some(room),
            _ => None,
        }
    }
}

fn write_rooms(out: &mut Vec<u8>, key: &str, rooms: &[Room]) {
    msgpack::write_str(out, key);
    msgpack::write_array_len(out, rooms.len());
    for room in rooms {
        room.encode(out);
    }
}

/// A socket.io packet as it travels inside a broadcast: `{type, data, nsp}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// socket.io-parser packet type; [`EVENT`] (2) for everything the adapters send.
    pub kind: i64,
    /// `[eventName, ...args]`.
    pub data: Vec<Value>,
    /// The namespace; absent in messages of very old emitters (then `/` is meant).
    pub nsp: Option<String>,
}

impl Packet {
    /// An EVENT packet for `nsp` with `data = [event, ...args]`.
    pub fn event(nsp: &str, event: &str, args: impl IntoIterator<Item = Value>) -> Self {
        let data = std::iter::once(Value::from(event)).chain(args).collect();
        Packet { kind: EVENT, data, nsp: Some(nsp.to_owned()) }
    }

    /// Writes the `{type, data, nsp}` map.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_packet(out, self.kind, None, &self.data, self.nsp.as_deref());
    }
}

/// Writes a `{type, data, nsp}` packet map whose `data` is `event` (when given) followed by
/// `items`.
fn write_packet(out: &mut Vec<u8>, kind: i64, event: Option<&str>, items: &[Value], nsp: Option<&str>) {
    msgpack::write_map_len(out, if nsp.is_some() { 3 } else { 2 });
    msgpack::write_str(out, "type");
    msgpack::write_int(out, kind);
    msgpack::write_str(out, "data");
    msgpack::write_array_len(out, items.len() + usize::from(event.is_some()));
    if let Some(event) = event {
        msgpack::write_str(out, event);
    }
    for item in items {
        msgpack::encode_value(out, item);
    }
    if let Some(nsp) = nsp {
        msgpack::write_str(out, "nsp");
        msgpack::write_str(out, nsp);
    }
}

/// Encodes the EVENT broadcast `[uid, {type: 2, data: [event, ...args], nsp}, opts]` exactly as
/// [`Broadcast::encode`] does, without building a [`Broadcast`] first (no copy of the uid, the
/// namespace, the options or the arguments): what an emitter sends for every `emit`.
pub fn encode_event(uid: &str, nsp: &str, event: &str, args: &[Value], opts: &BroadcastOptions, layout: OptsLayout) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(0x93);
    msgpack::write_str(&mut out, uid);
    write_packet(&mut out, EVENT, Some(event), args, Some(nsp));
    opts.encode(&mut out, layout);
    out
}

/// A complete broadcast message, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The publishing server's uid (`"emitter"` for the Redis emitter).
    pub uid: String,
    /// The packet to deliver.
    pub packet: Packet,
    /// Rooms, excepts and flags.
    pub opts: BroadcastOptions,
    /// Key order of `opts` on the wire.
    pub layout: OptsLayout,
}

impl Broadcast {
    /// Encodes the envelope as notepack.io would.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(0x93);
        msgpack::write_str(&mut out, &self.uid);
        self.packet.encode(&mut out);
        self.opts.encode(&mut out, self.layout);
        out
    }

    /// Decodes and validates a broadcast received from Redis.
    pub fn decode(bytes: &[u8]) -> Result<Broadcast, ProtocolError> {
        BroadcastRef::parse(bytes)?.to_owned()
    }
}

/// Frames `[uid, packet, opts]` around bytes that already hold `[packet, opts]` as a msgpack
/// 2-array (what the Node binding gets from notepack.io): msgpack is concatenative, so only the
/// array header changes and the uid is inserted.
pub fn frame_with_uid(uid: &str, packet_and_opts: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    match packet_and_opts.split_first() {
        Some((0x92, rest)) => {
            let mut out = Vec::with_capacity(packet_and_opts.len() + uid.len() + 2);
            out.push(0x93);
            msgpack::write_str(&mut out, uid);
            out.extend_from_slice(rest);
            Ok(out)
        }
        _ => Err(ProtocolError::Shape("expected [packet, opts] as a msgpack 2-array")),
    }
}

/// Frames an EVENT broadcast `[uid, {type: 2, data, nsp}, opts]` from two encoded parts (what
/// the Node emitter has): `data`, the packet's `[event, ...args]` msgpack array, and `tail`,
/// everything after it: the packet's `nsp` entry and the `opts` map. The encoding of `[packet,
/// opts]` is then only the arguments' each time, as the rest stays the same for a namespace and
/// its targets; the bytes are those of one encoding of the whole message.
pub fn frame_event(uid: &str, data: &[u8], tail: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if !matches!(data.first(), Some(0x91..=0x9f | 0xdc | 0xdd)) {
        return Err(ProtocolError::Shape("expected the packet's data as a non-empty msgpack array"));
    }
    if !tail.starts_with(b"\xa3nsp") {
        return Err(ProtocolError::Shape("expected the packet's nsp entry and the opts map after its data"));
    }
    let mut out = Vec::with_capacity(uid.len() + data.len() + tail.len() + 16);
    out.push(0x93);
    msgpack::write_str(&mut out, uid);
    msgpack::write_map_len(&mut out, 3);
    msgpack::write_str(&mut out, "type");
    msgpack::write_int(&mut out, EVENT);
    msgpack::write_str(&mut out, "data");
    out.extend_from_slice(data);
    out.extend_from_slice(tail);
    Ok(out)
}

/// A validated broadcast that borrows the received bytes: cheap to make, so the receive path
/// can check every message and filter on uid and namespace without building values.
#[derive(Debug, Clone)]
pub struct BroadcastRef<'a> {
    bytes: &'a [u8],
    /// The publishing server's uid.
    pub uid: &'a str,
    /// `packet.nsp`, when present.
    pub nsp: Option<&'a str>,
    /// `packet.type`.
    pub kind: i64,
    data: Range<usize>,
    opts: OptsSpans,
}

/// Where the parts of a validated `packet` map are.
pub(crate) struct PacketSpans<'a> {
    pub(crate) kind: i64,
    pub(crate) data: Range<usize>,
    pub(crate) nsp: Option<&'a str>,
}

/// Where the parts of a validated `opts` map are.
#[derive(Debug, Clone)]
pub(crate) struct OptsSpans {
    rooms: Option<Range<usize>>,
    except: Option<Range<usize>>,
    flags: Option<Range<usize>>,
    layout: OptsLayout,
}

/// Validates a packet map: integer `type`, array `data`, optional string `nsp`.
pub(crate) fn parse_packet<'a>(r: &mut Reader<'a>) -> Result<PacketSpans<'a>, ProtocolError> {
    let (mut kind, mut data, mut nsp) = (None, None, None);
    for _ in 0..r.read_map_len()? {
        match r.read_str_bytes()? {
            b"type" => kind = Some(read_int(r)?),
            b"data" => data = Some(span(r, skip_array)?),
            b"nsp" => nsp = Some(r.read_str()?),
            _ => r.skip_value()?,
        }
    }
    Ok(PacketSpans { kind: kind.ok_or(ProtocolError::Shape("packet without type"))?, data: data.ok_or(ProtocolError::Shape("packet without data"))?, nsp })
}

/// Validates an opts map as leniently as the official adapter reads it (`new Set(opts.rooms)`):
/// `rooms` and `except` are arrays of rooms, or strings (whose characters are then the rooms, so
/// an older emitter's `""` means none), or nil or missing (none); `flags` is a map with string
/// keys, or anything else (then no flags, e.g. an older emitter's `""`).
pub(crate) fn parse_opts(r: &mut Reader<'_>) -> Result<OptsSpans, ProtocolError> {
    let (mut rooms, mut except, mut flags, mut layout) = (None, None, None, OptsLayout::Adapter);
    for _ in 0..r.read_map_len()? {
        match r.read_str_bytes()? {
            b"rooms" => rooms = rooms_value(r)?,
            b"except" => except = rooms_value(r)?,
            b"flags" => {
                if except.is_none() {
                    layout = OptsLayout::Emitter;
                }
                let start = r.position();
                let is_flags_map = {
                    let mut probe = r.clone();
                    probe.read_map_len().and_then(|n| (0..n).try_for_each(|_| probe.read_str().and_then(|_| probe.skip_value()))).is_ok()
                };
                r.skip_value()?;
                flags = is_flags_map.then(|| start..r.position());
            }
            _ => r.skip_value()?,
        }
    }
    if except.is_none() {
        layout = OptsLayout::Adapter;
    }
    Ok(OptsSpans { rooms, except, flags, layout })
}

/// The span of a `rooms` or `except` value: an array (of anything: what is not a string or an
/// integer names no room) or a string; `None` for nil.
fn rooms_value(r: &mut Reader<'_>) -> Result<Option<Range<usize>>, ProtocolError> {
    let start = r.position();
    let kind = r.peek_marker()?;
    r.skip_value()?;
    match kind {
        Marker::Null => Ok(None),
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => Ok(Some(start..r.position())),
        kind if is_str(kind) => Ok(Some(start..r.position())),
        _ => Err(ProtocolError::Shape("rooms and except must be arrays (or strings)")),
    }
}

/// True for a string marker.
fn is_str(marker: Marker) -> bool {
    matches!(marker, Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32)
}

/// The rooms of a `rooms`/`except` span: the array's, or the string's characters.
fn read_rooms(bytes: &[u8]) -> Result<Vec<Room>, ProtocolError> {
    let mut r = Reader::new(bytes);
    if is_str(r.peek_marker()?) {
        return Ok(r.read_str()?.chars().map(|c| Room::Name(c.to_string())).collect());
    }
    (0..r.read_array_len()?).map(|_| Room::read(&mut r)).collect()
}

impl<'a> BroadcastRef<'a> {
    /// Validates the whole envelope: a 3-array of the uid string, the packet map (integer
    /// `type`, array `data`, optional string `nsp`) and the opts map (`rooms` and optional
    /// `except` arrays of strings or integers, optional `flags` map), with nothing after it.
    ///
    /// ```
    /// use sioadapter::protocol::{Broadcast, BroadcastOptions, BroadcastRef, OptsLayout, Packet};
    /// let message = Broadcast {
    ///     uid: "AAAAAA".into(),
    ///     packet: Packet::event("/", "hello", vec!["world".into()]),
    ///     opts: BroadcastOptions::default(),
    ///     layout: OptsLayout::Adapter,
    /// };
    /// let bytes = message.encode();
    /// let parsed = BroadcastRef::parse(&bytes).unwrap();
    /// assert_eq!((parsed.uid, parsed.namespace()), ("AAAAAA", "/"));
    /// assert!(BroadcastRef::parse(&bytes[..bytes.len() - 1]).is_err());
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ProtocolError> {
        Self::parse_within(bytes, &Limits::default())
    }

    /// [`BroadcastRef::parse`] within `limits` (values and nesting).
    pub fn parse_within(bytes: &'a [u8], limits: &Limits) -> Result<Self, ProtocolError> {
        let mut r = Reader::within(bytes, limits);
        let len = r.read_array_len()?;
        if len < 3 {
            return Err(ProtocolError::Shape("a broadcast is a 3-element array"));
        }
        // As lenient as the official adapter's `const [uid, packet, opts] = decode(msg)`: a uid
        // that is not a string is nobody's (so never this node's), elements after opts are ignored.
        let uid = if is_str(r.peek_marker()?) {
            r.read_str()?
        } else {
            r.skip_value()?;
            ""
        };
        let packet = parse_packet(&mut r)?;
        let opts = parse_opts(&mut r)?;
        for _ in 3..len {
            r.skip_value()?;
        }
        r.finish()?;
        Ok(BroadcastRef { bytes, uid, nsp: packet.nsp, kind: packet.kind, data: packet.data, opts })
    }

    /// The namespace the packet is for (`/` when an old emitter left it out).
    pub fn namespace(&self) -> &'a str {
        self.nsp.unwrap_or("/")
    }

    /// True when the broadcast targets everybody (no rooms) or `is_local_room` holds for one of
    /// its rooms (given as they appear in channel names: numbers in decimal).
    pub fn targets_any(&self, mut is_local_room: impl FnMut(&[u8]) -> bool) -> bool {
        let Some(span) = &self.opts.rooms else { return true };
        let mut r = Reader::new(&self.bytes[span.clone()]);
        if r.peek_marker().is_ok_and(is_str) {
            let rooms = r.read_str().unwrap_or_default();
            let mut buf = [0u8; 4];
            return rooms.is_empty() || rooms.chars().any(|c| is_local_room(c.encode_utf8(&mut buf).as_bytes()));
        }
        let Ok(count) = r.read_array_len() else {
            return true;
        };
        if count == 0 {
            return true;
        }
        (0..count).any(|_| match Room::read(&mut r) {
            Ok(Room::Name(name)) => is_local_room(name.as_bytes()),
            Ok(Room::Number(n)) => is_local_room(n.to_string().as_bytes()),
            Err(_) => true,
        })
    }

    /// The raw msgpack bytes of the message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Builds the owned message.
    pub fn to_owned(&self) -> Result<Broadcast, ProtocolError> {
        // Checked by `parse_within`, maybe against limits above the defaults.
        let data = match msgpack::from_slice_within(&self.bytes[self.data.clone()], &Limits::ALREADY_CHECKED)? {
            Value::Array(items) => items,
            _ => return Err(ProtocolError::Shape("packet data must be an array")),
        };
        let rooms = |range: &Option<Range<usize>>| -> Result<Vec<Room>, ProtocolError> { range.as_ref().map_or(Ok(Vec::new()), |range| read_rooms(&self.bytes[range.clone()])) };
        let opts = &self.opts;
        Ok(Broadcast {
            uid: self.uid.to_owned(),
            packet: Packet { kind: self.kind, data, nsp: self.nsp.map(str::to_owned) },
            opts: BroadcastOptions {
                rooms: rooms(&opts.rooms)?,
                except: rooms(&opts.except)?,
                flags: match &opts.flags {
                    Some(range) => Flags::read(&mut Reader::new(&self.bytes[range.clone()]))?,
                    None => Flags::new(),
                },
            },
            layout: opts.layout,
        })
    }
}

fn read_int(r: &mut Reader<'_>) -> Result<i64, ProtocolError> {
    r.read_value()?.as_i64().ok_or(ProtocolError::Shape("expected an integer"))
}

/// Runs `f` and returns the byte range it consumed.
fn span<'a>(r: &mut Reader<'a>, f: impl FnOnce(&mut Reader<'a>) -> Result<(), ProtocolError>) -> Result<Range<usize>, ProtocolError> {
    let start = r.position();
    f(r)?;
    Ok(start..r.position())
}

fn skip_array(r: &mut Reader<'_>) -> Result<(), ProtocolError> {
    for _ in 0..r.read_array_len()? {
        r.skip_value()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Every broadcast PUBLISHed in the captures of the official adapter and emitter.
    fn fixture_broadcasts() -> Vec<(String, Vec<u8>)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/test/fixtures/official");
        let mut found = Vec::new();
        for name in ["capture-default.json", "capture-specific.json", "capture-emitter.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).expect("fixtures in test/fixtures/official");
            let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            for e in entries {
                let channel = e["channel"].as_str().unwrap_or_default();
                let is_broadcast = channel.starts_with("socket.io#");
                if is_broadcast && e["kind"] == "binary" {
                    found.push((channel.to_owned(), unhex(e["payload"].as_str().unwrap())));
                }
            }
        }
        assert!(found.len() >= 8, "expected the fixture broadcasts, found {}", found.len());
        found
    }

    #[test]
    fn every_fixture_broadcast_reencodes_to_the_same_bytes() {
        for (channel, bytes) in fixture_broadcasts() {
            let decoded = Broadcast::decode(&bytes).unwrap_or_else(|e| panic!("{channel}: {e}"));
            assert_eq!(decoded.encode(), bytes, "{channel}: {decoded:?}");
            let expected_room = channel.trim_start_matches("socket.io#").split_once('#').map(|(_, rest)| rest.trim_end_matches('#'));
            let single = decoded.opts.single_room().map(ToString::to_string);
            assert_eq!(single.as_deref().filter(|s| !s.is_empty()), expected_room.filter(|s| !s.is_empty()), "{channel}");
        }
    }

    #[test]
    fn encode_event_writes_the_official_bytes_of_every_fixture_event() {
        let mut events = 0;
        for (channel, bytes) in fixture_broadcasts() {
            let b = Broadcast::decode(&bytes).unwrap_or_else(|e| panic!("{channel}: {e}"));
            let (Some(nsp), Some((Value::String(event), args))) = (b.packet.nsp.as_deref(), b.packet.data.split_first()) else { continue };
            if b.packet.kind != EVENT {
                continue;
            }
            let event = event.as_str().expect("a UTF-8 event name");
            assert_eq!(encode_event(&b.uid, nsp, event, args, &b.opts, b.layout), bytes, "{channel}: {b:?}");
            events += 1;
        }
        assert!(events >= 8, "expected the fixture events, found {events}");
    }

    #[test]
    fn worked_example_9_2_decodes_to_its_values() {
        let bytes = unhex("93a641414141414183a47479706502a46461746198a36d736701cb4004000000000000fdc3c081a161a162c403010203a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380");
        let b = Broadcast::decode(&bytes).unwrap();
        assert_eq!(b.uid, "AAAAAA");
        assert_eq!(b.packet.nsp.as_deref(), Some("/"));
        assert_eq!(b.packet.data[2], Value::F64(2.5));
        assert_eq!(b.packet.data[7], Value::Binary(vec![1, 2, 3]));
        assert_eq!(b.opts.rooms, vec![Room::from("room1")]);
        let built = Broadcast {
            uid: "AAAAAA".into(),
            packet: Packet::event(
                "/",
                "msg",
                vec![1.into(), Value::F64(2.5), (-3).into(), true.into(), Value::Nil, Value::Map(vec![("a".into(), "b".into())]), Value::Binary(vec![1, 2, 3])],
            ),
            opts: BroadcastOptions { rooms: vec!["room1".into()], ..Default::default() },
            layout: OptsLayout::Adapter,
        };
        assert_eq!(built.encode(), bytes);
    }

    #[test]
    fn old_emitter_messages_without_except_or_nsp_and_numeric_rooms_decode() {
        let mut bytes = vec![0x93];
        msgpack::write_str(&mut bytes, "emitter");
        bytes.extend_from_slice(&[0x82]);
        msgpack::write_str(&mut bytes, "type");
        bytes.push(2);
        msgpack::write_str(&mut bytes, "data");
        bytes.extend_from_slice(&[0x91, 0xa1, b'x', 0x82]);
        msgpack::write_str(&mut bytes, "rooms");
        bytes.extend_from_slice(&[0x91, 0x7b]);
        msgpack::write_str(&mut bytes, "flags");
        bytes.push(0x80);
        let parsed = BroadcastRef::parse(&bytes).unwrap();
        assert_eq!(parsed.namespace(), "/");
        let owned = parsed.to_owned().unwrap();
        assert_eq!(owned.opts.rooms, vec![Room::Number(123)]);
        assert!(owned.opts.except.is_empty());
        assert_eq!(owned.opts.single_room().unwrap().to_string(), "123");
    }

    #[test]
    fn frame_with_uid_splices_the_uid_into_packet_and_opts() {
        let full = unhex("93a641414141414183a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380");
        let mut inner = vec![0x92];
        inner.extend_from_slice(&full[8..]);
        assert_eq!(frame_with_uid("AAAAAA", &inner).unwrap(), full);
        assert!(frame_with_uid("AAAAAA", &full).is_err());
    }

    #[test]
    fn frame_event_puts_data_and_tail_in_the_packet() {
        let full = unhex("93a641414141414183a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380");
        let data_at = full.windows(5).position(|w| w == b"\xa4data").unwrap() + 5;
        let tail_at = full.windows(4).position(|w| w == b"\xa3nsp").unwrap();
        let (data, tail) = (&full[data_at..tail_at], &full[tail_at..]);
        assert_eq!(frame_event("AAAAAA", data, tail).unwrap(), full);
        assert!(BroadcastRef::parse(&frame_event("emitter", data, tail).unwrap()).is_ok());
        for (data, tail) in [(&b"\x90"[..], tail), (b"\xa1x", tail), (b"", tail), (data, &b"\x80"[..]), (data, b"")] {
            assert!(frame_event("AAAAAA", data, tail).is_err(), "{data:?} {tail:?}");
        }
    }

    #[test]
    fn malformed_envelopes_are_errors_not_panics() {
        let good = fixture_broadcasts().remove(0).1;
        for cut in 0..good.len() {
            assert!(BroadcastRef::parse(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(BroadcastRef::parse(&trailing).unwrap_err(), ProtocolError::TrailingBytes(1));
        let wrong_shapes: &[&[u8]] = &[
            &[0x92, 0xa1, b'a', 0x80],
            &[0x93, 0x01, 0x80, 0x80],
            &[0x93, 0xa1, b'a', 0x80, 0x80],
            // rooms: 1 (the official adapter's `new Set(1)` throws)
            &[0x93, 0xa1, b'a', 0x82, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a', 0x90, 0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0x01],
            &[0x81, 0xa1, b'a', 0x01],
            &[0xc1],
            b"garbage",
        ];
        for bytes in wrong_shapes {
            assert!(BroadcastRef::parse(bytes).is_err(), "{bytes:02x?}");
        }
    }

    /// Encodes `[uid, {type: 2, data: ["e"], nsp: "/"}, opts]` with `opts` given as msgpack bytes.
    fn with_opts(uid: &[u8], opts: &[u8]) -> Vec<u8> {
        let mut out = vec![0x93];
        out.extend_from_slice(uid);
        out.extend_from_slice(&[0x83, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a', 0x91, 0xa1, b'e', 0xa3, b'n', b's', b'p', 0xa1, b'/']);
        out.extend_from_slice(opts);
        out
    }

    #[test]
    fn opts_are_read_as_leniently_as_the_official_adapter_does() {
        let uid: &[u8] = &[0xa6, b'A', b'A', b'A', b'A', b'A', b'A'];
        // {rooms: "", except: "", flags: ""}: an older emitter's empty values.
        let empty_strings =
            with_opts(uid, &[0x83, 0xa5, b'r', b'o', b'o', b'm', b's', 0xa0, 0xa6, b'e', b'x', b'c', b'e', b'p', b't', 0xa0, 0xa5, b'f', b'l', b'a', b'g', b's', 0xa0]);
        let b = BroadcastRef::parse(&empty_strings).unwrap().to_owned().unwrap();
        assert_eq!((b.opts.rooms.len(), b.opts.except.len(), b.opts.flags.is_empty()), (0, 0, true));
        assert!(BroadcastRef::parse(&empty_strings).unwrap().targets_any(|_| false), "no rooms: everybody");
        // {} (no keys at all), and {rooms: nil}
        for opts in [&[0x80][..], &[0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0xc0]] {
            let b = BroadcastRef::parse(&with_opts(uid, opts)).unwrap().to_owned().unwrap();
            assert!(b.opts.rooms.is_empty() && b.opts.except.is_empty());
        }
        // {rooms: [7, "r"]}: numbers as rooms.
        let numbers = with_opts(uid, &[0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0x92, 0x07, 0xa1, b'r']);
        let parsed = BroadcastRef::parse(&numbers).unwrap();
        assert!(parsed.targets_any(|room| room == b"7") && !parsed.targets_any(|room| room == b"x"));
        assert_eq!(parsed.to_owned().unwrap().opts.rooms, vec![Room::Number(7), Room::from("r")]);
        // {rooms: "ab"}: `new Set("ab")` is the rooms "a" and "b".
        let string = with_opts(uid, &[0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0xa2, b'a', b'b']);
        assert_eq!(BroadcastRef::parse(&string).unwrap().to_owned().unwrap().opts.rooms, vec![Room::from("a"), Room::from("b")]);
        // A uid that is not a string, and elements after opts.
        let mut odd = with_opts(&[0x01], &[0x80]);
        odd[0] = 0x94;
        odd.push(0xc0);
        assert_eq!(BroadcastRef::parse(&odd).unwrap().uid, "");
    }
}
