//! The messages of socket.io's `ClusterAdapter`, which the sharded adapter carries
//! (docs/protocol.md §4): `{uid, type, data, nsp}` as JSON text, or as msgpack when they carry
//! binary.
//!
//! The engine does not interpret them (the host's ClusterAdapter does), but it is the trust
//! boundary: [`check_message`] makes sure a message has, for its type, every field the
//! ClusterAdapter reads, with the kind of value it uses, so that the host never meets a message
//! it would throw on. Call it after the limits were checked (it walks the whole message).

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use rmpv::Value;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{msgpack, BroadcastOptions, OptsLayout, Packet, ProtocolError};
use crate::protocol::request::{is_json, Targets};

/// A BROADCAST message `{ type: 3, data: { packet, opts }, uid, nsp }` (the ClusterAdapter's:
/// `opts` as `{ rooms, except, flags }`), JSON or msgpack as [`encode_message`] decides.
pub fn broadcast_message(packet: &Packet, opts: &BroadcastOptions, uid: &str, nsp: &str) -> Result<Vec<u8>, ProtocolError> {
    broadcast(packet, opts, None, uid, nsp)
}

/// A BROADCAST with acknowledgements `{ type: 3, data: { packet, requestId, opts }, uid, nsp }`:
/// the nodes answer to the requester's own channel with BROADCAST_CLIENT_COUNT, then a
/// BROADCAST_ACK per client (`opts.flags.timeout`, in ms, as socket.io carries it).
pub fn broadcast_with_ack_message(packet: &Packet, opts: &BroadcastOptions, request_id: &str, uid: &str, nsp: &str) -> Result<Vec<u8>, ProtocolError> {
    broadcast(packet, opts, Some(request_id), uid, nsp)
}

fn broadcast(packet: &Packet, opts: &BroadcastOptions, request_id: Option<&str>, uid: &str, nsp: &str) -> Result<Vec<u8>, ProtocolError> {
    let mut data = Vec::with_capacity(128);
    msgpack::write_map_len(&mut data, 2 + usize::from(request_id.is_some()));
    msgpack::write_str(&mut data, "packet");
    packet.encode(&mut data);
    if let Some(id) = request_id {
        msgpack::write_str(&mut data, "requestId");
        msgpack::write_str(&mut data, id);
    }
    msgpack::write_str(&mut data, "opts");
    opts.encode(&mut data, OptsLayout::Adapter);
    encode_message(kind::BROADCAST, &data, uid, nsp)
}

/// A JSON message `{ type, data, uid, nsp }`, in the ClusterAdapter's key order.
#[derive(Serialize)]
struct JsonMessage<'a, D: Serialize> {
    #[serde(rename = "type")]
    kind: u8,
    data: D,
    uid: &'a str,
    nsp: &'a str,
}

impl<D: Serialize> JsonMessage<'_, D> {
    fn to_vec(&self) -> Vec<u8> {
        // Only strings, numbers and valid raw JSON: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `data` of SOCKETS_JOIN / SOCKETS_LEAVE.
#[derive(Serialize)]
struct RoomsData<'a> {
    opts: &'a Targets<'a>,
    rooms: &'a RawValue,
}

/// `data` of DISCONNECT_SOCKETS.
#[derive(Serialize)]
struct DisconnectData<'a> {
    opts: &'a Targets<'a>,
    close: bool,
}

/// `data` of SERVER_SIDE_EMIT, with the request id when acknowledgements are wanted.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerSideEmitData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    packet: &'a RawValue,
}

/// `data.opts` of FETCH_SOCKETS: the targets, and the flags the ClusterAdapter always sends
/// (none that matter to a fetch: empty).
#[derive(Serialize)]
struct FetchOpts<'a> {
    rooms: &'a RawValue,
    except: &'a RawValue,
    flags: NoFlags,
}

/// An empty `flags` object.
#[derive(Serialize)]
struct NoFlags {}

/// `data` of FETCH_SOCKETS.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FetchData<'a> {
    opts: FetchOpts<'a>,
    request_id: &'a str,
}

/// `data` of an answer: FETCH_SOCKETS_RESPONSE (`sockets`), BROADCAST_CLIENT_COUNT
/// (`clientCount`) or SERVER_SIDE_EMIT_RESPONSE (`packet`, left out when the ack had no
/// argument, as `JSON.stringify` leaves out `undefined`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AnswerData<'a> {
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sockets: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<&'a RawValue>,
}

impl<'a> AnswerData<'a> {
    fn to(request_id: &'a str) -> Self {
        AnswerData { request_id, sockets: None, client_count: None, packet: None }
    }
}

/// SOCKETS_JOIN (`join`) or SOCKETS_LEAVE: the sockets selected by `targets` join or leave
/// `rooms` (a JSON array).
pub fn sockets_message(join: bool, targets: &Targets<'_>, rooms: &RawValue, uid: &str, nsp: &str) -> Vec<u8> {
    let kind = if join { kind::SOCKETS_JOIN } else { kind::SOCKETS_LEAVE };
    JsonMessage { kind, data: RoomsData { opts: targets, rooms }, uid, nsp }.to_vec()
}

/// DISCONNECT_SOCKETS of the sockets selected by `targets`.
pub fn disconnect_message(targets: &Targets<'_>, close: bool, uid: &str, nsp: &str) -> Vec<u8> {
    JsonMessage { kind: kind::DISCONNECT_SOCKETS, data: DisconnectData { opts: targets, close }, uid, nsp }.to_vec()
}

/// SERVER_SIDE_EMIT: `data` is `[event, ...args]` (a JSON array); with `request_id`, every
/// other node acknowledges with a SERVER_SIDE_EMIT_RESPONSE ([`server_side_emit_response`]).
pub fn server_side_emit_message(data: &RawValue, request_id: Option<&str>, uid: &str, nsp: &str) -> Vec<u8> {
    JsonMessage { kind: kind::SERVER_SIDE_EMIT, data: ServerSideEmitData { request_id, packet: data }, uid, nsp }.to_vec()
}

/// FETCH_SOCKETS of the sockets selected by `targets`, answered by FETCH_SOCKETS_RESPONSE
/// ([`fetch_sockets_response`]) on the requester's response channel.
pub fn fetch_sockets_message(targets: &Targets<'_>, request_id: &str, uid: &str, nsp: &str) -> Vec<u8> {
    let opts = FetchOpts { rooms: targets.rooms, except: targets.except, flags: NoFlags {} };
    JsonMessage { kind: kind::FETCH_SOCKETS, data: FetchData { opts, request_id }, uid, nsp }.to_vec()
}

/// FETCH_SOCKETS_RESPONSE: `sockets` is a JSON array of `{id, handshake, rooms, data}`.
pub fn fetch_sockets_response(request_id: &str, sockets: &RawValue, uid: &str, nsp: &str) -> Vec<u8> {
    JsonMessage { kind: kind::FETCH_SOCKETS_RESPONSE, data: AnswerData { sockets: Some(sockets), ..AnswerData::to(request_id) }, uid, nsp }.to_vec()
}

/// SERVER_SIDE_EMIT_RESPONSE: the ack's first argument (`None`: the ack had none).
pub fn server_side_emit_response(request_id: &str, packet: Option<&RawValue>, uid: &str, nsp: &str) -> Vec<u8> {
    JsonMessage { kind: kind::SERVER_SIDE_EMIT_RESPONSE, data: AnswerData { packet, ..AnswerData::to(request_id) }, uid, nsp }.to_vec()
}

/// BROADCAST_CLIENT_COUNT: how many local clients a broadcast with ack reached.
pub fn client_count_message(request_id: &str, count: u64, uid: &str, nsp: &str) -> Vec<u8> {
    JsonMessage { kind: kind::BROADCAST_CLIENT_COUNT, data: AnswerData { client_count: Some(count), ..AnswerData::to(request_id) }, uid, nsp }.to_vec()
}

/// BROADCAST_ACK: one client's acknowledgement, its argument given as msgpack (notepack); JSON
/// or msgpack as [`encode_message`] decides.
pub fn broadcast_ack_message(request_id: &str, packet: &[u8], uid: &str, nsp: &str) -> Result<Vec<u8>, ProtocolError> {
    let mut data = Vec::with_capacity(packet.len() + request_id.len() + 24);
    msgpack::write_map_len(&mut data, 2);
    msgpack::write_str(&mut data, "requestId");
    msgpack::write_str(&mut data, request_id);
    msgpack::write_str(&mut data, "packet");
    data.extend_from_slice(packet);
    encode_message(kind::BROADCAST_ACK, &data, uid, nsp)
}

/// A ClusterAdapter message `{ type, data, uid, nsp }` whose `data` is given as notepack's
/// msgpack bytes, encoded as the official sharded adapter publishes its messages: JSON, or
/// msgpack when `data` holds binary (which JSON would not carry).
pub fn encode_message(kind: u8, data: &[u8], uid: &str, nsp: &str) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(data.len() + uid.len() + nsp.len() + 24);
    msgpack::write_map_len(&mut out, 4);
    msgpack::write_str(&mut out, "type");
    msgpack::write_uint(&mut out, u64::from(kind));
    msgpack::write_str(&mut out, "data");
    out.extend_from_slice(data);
    msgpack::write_str(&mut out, "uid");
    msgpack::write_str(&mut out, uid);
    msgpack::write_str(&mut out, "nsp");
    msgpack::write_str(&mut out, nsp);
    let value = msgpack::from_slice(&out)?;
    if has_binary(&value) {
        return Ok(out);
    }
    serde_json::to_vec(&msgpack::to_json(&value)).map_err(|_| ProtocolError::Shape("message not writable as JSON"))
}

/// True when `value` holds binary anywhere (socket.io's `hasBinary`).
fn has_binary(value: &Value) -> bool {
    match value {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(k, v)| has_binary(k) || has_binary(v)),
        _ => false,
    }
}

/// Message types of the ClusterAdapter.
pub mod kind {
    #![allow(missing_docs)]
    pub const INITIAL_HEARTBEAT: u8 = 1;
    pub const HEARTBEAT: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const SOCKETS_JOIN: u8 = 4;
    pub const SOCKETS_LEAVE: u8 = 5;
    pub const DISCONNECT_SOCKETS: u8 = 6;
    pub const FETCH_SOCKETS: u8 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u8 = 8;
    pub const SERVER_SIDE_EMIT: u8 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u8 = 10;
    pub const BROADCAST_CLIENT_COUNT: u8 = 11;
    pub const BROADCAST_ACK: u8 = 12;
    pub const ADAPTER_CLOSE: u8 = 13;
}

/// The kind of a value, its content skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A map; binary too, which JS also sees as an object (a Buffer).
    Object,
    Array,
    String,
    /// A number, with its value when it is a whole number that could be a message type.
    Number(Option<u8>),
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Array)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Shape, E> {
        Ok(Shape::Object)
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::String)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Shape, E> {
        Ok(Shape::Number(u8::try_from(v).ok()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Shape, E> {
        Ok(Shape::Number(u8::try_from(v).ok()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Shape, E> {
        Ok(Shape::Number((v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
    /// A msgpack extension (notepack's `undefined`, a date): not an object to the checks.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Shape::Other)
    }
}

/// What the engine reads of a message: the fields any type needs, each as its kind.
#[derive(serde::Deserialize)]
struct Message {
    uid: Option<Shape>,
    /// Only small whole numbers are types.
    #[serde(rename = "type")]
    kind: Option<Shape>,
    data: Option<Data>,
}

/// `data`: an object whose fields are read by type; anything else counts as absent.
#[derive(Default)]
struct Data {
    fields: Option<DataFields>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DataFields {
    opts: Option<Opts>,
    packet: Option<Shape>,
    rooms: Option<Shape>,
    request_id: Option<Shape>,
    sockets: Option<Shape>,
    client_count: Option<Shape>,
}

/// `data.opts`: an object with `rooms` and `except` (anything else counts as absent).
struct Opts(Option<(Option<Shape>, Option<Shape>)>);

#[derive(serde::Deserialize)]
struct OptsFields {
    rooms: Option<Shape>,
    except: Option<Shape>,
}

/// Reads a map into `T`, or any other value as `None`.
fn object_or_other<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    struct ObjectVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
            ShapeVisitor.visit_seq(seq).map(|_| None)
        }
        fn visit_bytes<E>(self, _: &[u8]) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
            IgnoredAny::deserialize(deserializer).map(|_| None)
        }
    }
    deserializer.deserialize_any(ObjectVisitor(std::marker::PhantomData))
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object_or_other(deserializer).map(|fields| Data { fields })
    }
}

impl<'de> Deserialize<'de> for Opts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object_or_other::<D, OptsFields>(deserializer).map(|o| Opts(o.map(|o| (o.rooms, o.except))))
    }
}

impl DataFields {
    fn has_opts(&self) -> bool {
        matches!(self.opts, Some(Opts(Some((Some(Shape::Array), Some(Shape::Array))))))
    }

    fn has_request_id(&self) -> bool {
        self.request_id == Some(Shape::String)
    }
}

/// Checks that `payload` (JSON when it starts with `{`, else msgpack) is a ClusterAdapter
/// message that its host can handle: an object with a string `uid`, a known `type`, and the
/// fields of `data` that type reads.
pub fn check_message(payload: &[u8]) -> Result<(), ProtocolError> {
    let message: Option<Message> = if is_json(payload) {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let message = object_or_other(&mut de).map_err(|_| ProtocolError::Shape("not a JSON message"))?;
        de.end().map_err(|_| ProtocolError::Shape("bytes after the JSON message"))?;
        message
    } else {
        let mut de = rmp_serde::Deserializer::new(payload);
        let message = object_or_other(&mut de).map_err(|_| ProtocolError::Shape("not a msgpack message"))?;
        match de.get_ref().len() {
            0 => message,
            left => return Err(ProtocolError::TrailingBytes(left)),
        }
    };
    let Some(message) = message else {
        return Err(ProtocolError::Shape("a cluster message is an object"));
    };
    if message.uid != Some(Shape::String) {
        return Err(ProtocolError::Shape("a cluster message needs a string uid"));
    }
    let Some(Shape::Number(Some(kind))) = message.kind else {
        return Err(ProtocolError::Shape("unknown cluster message type"));
    };
    let data = message.data.and_then(|d| d.fields);
    let ok = match (kind, &data) {
        (kind::INITIAL_HEARTBEAT | kind::HEARTBEAT | kind::ADAPTER_CLOSE, _) => true,
        (_, None) => false,
        (kind::BROADCAST, Some(d)) => d.has_opts() && d.packet == Some(Shape::Object),
        (kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE, Some(d)) => d.has_opts() && d.rooms == Some(Shape::Array),
        (kind::DISCONNECT_SOCKETS, Some(d)) => d.has_opts(),
        (kind::FETCH_SOCKETS, Some(d)) => d.has_opts() && d.has_request_id(),
        (kind::FETCH_SOCKETS_RESPONSE, Some(d)) => d.has_request_id() && d.sockets == Some(Shape::Array),
        (kind::SERVER_SIDE_EMIT, Some(d)) => d.packet == Some(Shape::Array),
        (kind::SERVER_SIDE_EMIT_RESPONSE | kind::BROADCAST_ACK, Some(d)) => d.has_request_id(),
        (kind::BROADCAST_CLIENT_COUNT, Some(d)) => d.has_request_id() && matches!(d.client_count, Some(Shape::Number(_))),
        _ => return Err(ProtocolError::Shape("unknown cluster message type")),
    };
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::Shape("a cluster message lacks a field its type needs"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const UID: &str = "0123456789abcdef";

    /// A well-formed message of every type.
    fn messages() -> Vec<(u8, Value)> {
        let opts = json!({"rooms": ["r1"], "except": [], "flags": {}});
        [
            (1, json!(null)),
            (2, json!(null)),
            (3, json!({"packet": {"type": 2, "data": ["ev", 1]}, "opts": opts})),
            (4, json!({"opts": opts, "rooms": ["r2"]})),
            (5, json!({"opts": opts, "rooms": ["r2"]})),
            (6, json!({"opts": opts, "close": true})),
            (7, json!({"opts": opts, "requestId": "req"})),
            (8, json!({"requestId": "req", "sockets": []})),
            (9, json!({"packet": ["hello", 1]})),
            (10, json!({"requestId": "req", "packet": [1]})),
            (11, json!({"requestId": "req", "clientCount": 4})),
            (12, json!({"requestId": "req", "packet": [1]})),
            (13, json!(null)),
        ]
        .into_iter()
        .map(|(kind, data)| {
            let mut message = json!({"uid": UID, "type": kind, "nsp": "/"});
            if !data.is_null() {
                message["data"] = data;
            }
            (kind, message)
        })
        .collect()
    }

    #[test]
    fn requests_and_answers_are_the_cluster_adapters_bytes() {
        let (empty, rooms) = (RawValue::from_string("[]".into()).unwrap(), RawValue::from_string(r#"["r1"]"#.into()).unwrap());
        let uid = "aaaaaaaaaaaaaaaa";
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        assert_eq!(
            text(fetch_sockets_message(&Targets { rooms: &empty, except: &empty }, "0000000000000002", uid, "/")),
            r#"{"type":7,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"requestId":"0000000000000002"},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#
        );
        assert_eq!(text(fetch_sockets_response("req", &rooms, uid, "/")), r#"{"type":8,"data":{"requestId":"req","sockets":["r1"]},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        assert_eq!(text(server_side_emit_message(&rooms, Some("req"), uid, "/")), r#"{"type":9,"data":{"requestId":"req","packet":["r1"]},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        assert_eq!(text(server_side_emit_message(&rooms, None, uid, "/")), r#"{"type":9,"data":{"packet":["r1"]},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        assert_eq!(text(server_side_emit_response("req", Some(&rooms), uid, "/")), r#"{"type":10,"data":{"requestId":"req","packet":["r1"]},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        assert_eq!(text(server_side_emit_response("req", None, uid, "/")), r#"{"type":10,"data":{"requestId":"req"},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        assert_eq!(text(client_count_message("req", 1, uid, "/")), r#"{"type":11,"data":{"requestId":"req","clientCount":1},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        let mut ack = Vec::new();
        msgpack::write_str(&mut ack, "ackB");
        assert_eq!(text(broadcast_ack_message("req", &ack, uid, "/").unwrap()), r#"{"type":12,"data":{"requestId":"req","packet":"ackB"},"uid":"aaaaaaaaaaaaaaaa","nsp":"/"}"#);
        // A binary ack stays msgpack.
        let mut binary = Vec::new();
        msgpack::write_bin(&mut binary, &[1, 2]);
        assert_eq!(broadcast_ack_message("req", &binary, uid, "/").unwrap()[0], 0x84);
    }

    /// Both encodings of `message`.
    fn encodings(message: &Value) -> [Vec<u8>; 2] {
        [serde_json::to_vec(message).unwrap(), rmp_serde::to_vec_named(message).unwrap()]
    }

    #[test]
    fn every_type_well_formed_passes_in_both_encodings() {
        for (kind, message) in messages() {
            for bytes in encodings(&message) {
                assert_eq!(check_message(&bytes), Ok(()), "type {kind}: {message}");
            }
        }
        // A msgpack message whose packet is binary (a Buffer is an object to JS).
        let mut writer = Vec::new();
        rmpv::encode::write_value(
            &mut writer,
            &rmpv::Value::Map(vec![
                ("uid".into(), UID.into()),
                ("type".into(), 3.into()),
                (
                    "data".into(),
                    rmpv::Value::Map(vec![
                        (
                            "opts".into(),
                            rmpv::Value::Map(vec![
                                ("rooms".into(), rmpv::Value::Array(vec![])),
                                ("except".into(), rmpv::Value::Array(vec![])),
                                ("flags".into(), rmpv::Value::Map(vec![("timeout".into(), rmpv::Value::Ext(0, vec![0]))])),
                            ]),
                        ),
                        ("packet".into(), rmpv::Value::Binary(vec![1, 2])),
                    ]),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(check_message(&writer), Ok(()));
    }

    #[test]
    fn a_missing_or_wrong_field_of_each_type_is_refused_in_both_encodings() {
        type Change = fn(&mut Value);
        let broken: Vec<(u8, Vec<Change>)> = vec![
            (
                3,
                vec![
                    |m| drop(m.as_object_mut().unwrap().remove("data")),
                    |m| m["data"] = Value::Null,
                    |m| m["data"] = json!([m["data"].clone()]),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("opts")),
                    |m| m["data"]["opts"] = json!([]),
                    |m| drop(m["data"]["opts"].as_object_mut().unwrap().remove("rooms")),
                    |m| m["data"]["opts"]["rooms"] = json!("room"),
                    |m| drop(m["data"]["opts"].as_object_mut().unwrap().remove("except")),
                    |m| m["data"]["opts"]["except"] = json!({}),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("packet")),
                    |m| m["data"]["packet"] = json!(["not", "an", "object"]),
                    |m| m["data"]["packet"] = json!("p"),
                ],
            ),
            (
                4,
                vec![
                    |m| drop(m.as_object_mut().unwrap().remove("data")),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("opts")),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("rooms")),
                    |m| m["data"]["rooms"] = json!("r1"),
                ],
            ),
            (
                5,
                vec![|m| drop(m["data"].as_object_mut().unwrap().remove("opts")), |m| drop(m["data"].as_object_mut().unwrap().remove("rooms")), |m| {
                    m["data"]["rooms"] = Value::Null
                }],
            ),
            (
                6,
                vec![|m| drop(m.as_object_mut().unwrap().remove("data")), |m| drop(m["data"].as_object_mut().unwrap().remove("opts")), |m| {
                    m["data"]["opts"]["except"] = Value::Null
                }],
            ),
            (
                7,
                vec![|m| drop(m["data"].as_object_mut().unwrap().remove("opts")), |m| drop(m["data"].as_object_mut().unwrap().remove("requestId")), |m| {
                    m["data"]["requestId"] = json!(7)
                }],
            ),
            (
                8,
                vec![
                    |m| drop(m.as_object_mut().unwrap().remove("data")),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("requestId")),
                    |m| drop(m["data"].as_object_mut().unwrap().remove("sockets")),
                    |m| m["data"]["sockets"] = json!({}),
                ],
            ),
            (
                9,
                vec![|m| drop(m.as_object_mut().unwrap().remove("data")), |m| m["data"] = json!("hello"), |m| drop(m["data"].as_object_mut().unwrap().remove("packet")), |m| {
                    m["data"]["packet"] = json!({"0": "hello"})
                }],
            ),
            (
                10,
                vec![|m| drop(m.as_object_mut().unwrap().remove("data")), |m| drop(m["data"].as_object_mut().unwrap().remove("requestId")), |m| {
                    m["data"]["requestId"] = json!(["req"])
                }],
            ),
            (
                11,
                vec![|m| drop(m["data"].as_object_mut().unwrap().remove("requestId")), |m| drop(m["data"].as_object_mut().unwrap().remove("clientCount")), |m| {
                    m["data"]["clientCount"] = json!("4")
                }],
            ),
            (
                12,
                vec![|m| drop(m.as_object_mut().unwrap().remove("data")), |m| drop(m["data"].as_object_mut().unwrap().remove("requestId")), |m| {
                    m["data"]["requestId"] = Value::Null
                }],
            ),
        ];
        let all = messages();
        for (kind, changes) in broken {
            let original = &all.iter().find(|(k, _)| *k == kind).unwrap().1;
            for (i, change) in changes.iter().enumerate() {
                let mut message = original.clone();
                change(&mut message);
                for bytes in encodings(&message) {
                    assert!(check_message(&bytes).is_err(), "type {kind}, change #{i}: {message}");
                }
            }
        }
    }

    #[test]
    fn uid_and_type_are_required_and_checked() {
        let base = json!({"uid": UID, "type": 1, "nsp": "/"});
        let cases: Vec<Value> = vec![
            json!({"type": 1}),
            json!({"uid": 42, "type": 1}),
            json!({"uid": null, "type": 1}),
            json!({"uid": UID}),
            json!({"uid": UID, "type": 0}),
            json!({"uid": UID, "type": 14}),
            json!({"uid": UID, "type": -1}),
            json!({"uid": UID, "type": 3.5}),
            json!({"uid": UID, "type": null}),
            json!({"uid": UID, "type": "BROADCAST"}),
            json!({"uid": UID, "type": "valueOf"}),
            json!({"uid": UID, "type": "__proto__"}),
            json!({"uid": UID, "type": "constructor"}),
            json!({"uid": UID, "type": "3"}),
            json!([base.clone()]),
            json!(null),
            json!("x"),
        ];
        assert_eq!(check_message(&serde_json::to_vec(&base).unwrap()), Ok(()));
        for case in cases {
            for bytes in encodings(&case) {
                assert!(check_message(&bytes).is_err(), "{case}");
            }
        }
    }

    #[test]
    fn undecodable_input_is_refused() {
        let full = rmp_serde::to_vec_named(&messages()[2].1).unwrap();
        let mut trailing = full.clone();
        trailing.push(1);
        for bytes in [&b"{"[..], b"{\"uid\":\"x\",\"type\":1", b"{\"uid\":\"x\",\"type\":1}}", &[0xc1], &[0xff, 0x00, 0x13], b"", &full[..full.len() - 3], &trailing] {
            assert!(check_message(bytes).is_err(), "{bytes:?}");
        }
    }
}
