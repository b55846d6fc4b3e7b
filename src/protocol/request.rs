//! Requests and responses on `K-request#N#` / `K-response#N#[U#]` (docs/protocol.md §3).
//!
//! Everything is JSON except the broadcast-with-ack request (type 7) and its acknowledgements
//! (type 9), which are msgpack; receivers tell them apart by the first byte (`{` is JSON).
//! Builders write keys in the official adapter's order; parsers accept what v6–v8 nodes and
//! emitters send and reject anything else with a [`ProtocolError`].

use rmpv::Value;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use super::broadcast::{parse_opts, parse_packet};
use super::msgpack::{self, Reader};
use super::ProtocolError;
use crate::limits::Limits;

/// The request types of the classic adapter, with their wire values (in C: `sio_request_kind`,
/// the values of `sio_request.kind`).
///
/// cbindgen:prefix-with-name
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RequestType {
    /// Socket ids in rooms (legacy, still answered).
    Sockets = 0,
    /// Every room of every node.
    AllRooms = 1,
    /// Make matching sockets join rooms.
    RemoteJoin = 2,
    /// Make matching sockets leave rooms.
    RemoteLeave = 3,
    /// Disconnect matching sockets.
    RemoteDisconnect = 4,
    /// Details of matching sockets.
    RemoteFetch = 5,
    /// An event for the other servers, with or without acknowledgement.
    ServerSideEmit = 6,
    /// A broadcast whose clients acknowledge (msgpack).
    Broadcast = 7,
    /// Response: how many clients a broadcast-with-ack reached on a node.
    BroadcastClientCount = 8,
    /// Response: one client's acknowledgement (msgpack).
    BroadcastAck = 9,
}

impl RequestType {
    /// The type for a wire value.
    pub fn from_wire(value: i64) -> Option<Self> {
        use RequestType::*;
        Some(match value {
            0 => Sockets,
            1 => AllRooms,
            2 => RemoteJoin,
            3 => RemoteLeave,
            4 => RemoteDisconnect,
            5 => RemoteFetch,
            6 => ServerSideEmit,
            7 => Broadcast,
            8 => BroadcastClientCount,
            9 => BroadcastAck,
            _ => return None,
        })
    }

    /// Every type, in wire order.
    pub const ALL: [RequestType; 10] = [
        RequestType::Sockets,
        RequestType::AllRooms,
        RequestType::RemoteJoin,
        RequestType::RemoteLeave,
        RequestType::RemoteDisconnect,
        RequestType::RemoteFetch,
        RequestType::ServerSideEmit,
        RequestType::Broadcast,
        RequestType::BroadcastClientCount,
        RequestType::BroadcastAck,
    ];

    /// The official adapter's name of the type (`RequestType.ALL_ROOMS`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RequestType::Sockets => "SOCKETS",
            RequestType::AllRooms => "ALL_ROOMS",
            RequestType::RemoteJoin => "REMOTE_JOIN",
            RequestType::RemoteLeave => "REMOTE_LEAVE",
            RequestType::RemoteDisconnect => "REMOTE_DISCONNECT",
            RequestType::RemoteFetch => "REMOTE_FETCH",
            RequestType::ServerSideEmit => "SERVER_SIDE_EMIT",
            RequestType::Broadcast => "BROADCAST",
            RequestType::BroadcastClientCount => "BROADCAST_CLIENT_COUNT",
            RequestType::BroadcastAck => "BROADCAST_ACK",
        }
    }

    /// The name used in the official timeout messages (`... waiting for allRooms response`).
    pub fn operation(self) -> &'static str {
        match self {
            RequestType::Sockets => "sockets",
            RequestType::AllRooms => "allRooms",
            RequestType::RemoteJoin => "remoteJoin",
            RequestType::RemoteLeave => "remoteLeave",
            RequestType::RemoteDisconnect => "remoteDisconnect",
            RequestType::RemoteFetch => "fetchSockets",
            RequestType::ServerSideEmit => "serverSideEmit",
            RequestType::Broadcast | RequestType::BroadcastClientCount | RequestType::BroadcastAck => "broadcastWithAck",
        }
    }
}

/// The fields of a received request that the engine acts on; the rest is left to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The request type.
    pub kind: RequestType,
    /// The requester's uid (absent in requests of v6 nodes and of the emitter).
    pub uid: Option<String>,
    /// The correlation id (absent in fire-and-forget requests).
    pub request_id: Option<String>,
    /// True for the legacy single-socket form of join/leave/disconnect (`sid` instead of `opts`).
    pub legacy: bool,
    /// The rooms a REMOTE_JOIN makes sockets join (`rooms`, or the legacy `room`), as room
    /// names (a number is its decimal text, as socket.io makes it); empty for other types.
    pub joins: Vec<String>,
}

impl RequestHeader {
    /// The header of a request that the host's own parser encoded (not JSON; see
    /// [`AdapterConfig::host_parser`](crate::AdapterConfig::host_parser)): the engine did not read
    /// it, so only its type is known, the one such requests have (a broadcast with ack).
    pub fn host_encoded() -> Self {
        RequestHeader { kind: RequestType::Broadcast, uid: None, request_id: None, legacy: false, joins: Vec::new() }
    }
}

/// True when a request/response payload is JSON (it starts with `{`), false for msgpack.
pub fn is_json(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

fn field<'a>(obj: &'a serde_json::Map<String, Json>, name: &'static str) -> Option<&'a Json> {
    obj.get(name).filter(|v| !v.is_null())
}

/// A string field; anything else counts as absent, as the official adapter, which only ever
/// compares these, reads it (a uid that is not a string is nobody's).
fn string_field(obj: &serde_json::Map<String, Json>, name: &'static str) -> Option<String> {
    match field(obj, name) {
        Some(Json::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The request type, also when written as a float (`2.0`, which `JSON.parse` reads as 2).
fn request_type(obj: &serde_json::Map<String, Json>) -> Option<RequestType> {
    let kind = field(obj, "type")?;
    let number = kind.as_i64().or_else(|| kind.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e9).map(|f| f as i64))?;
    RequestType::from_wire(number)
}

/// Checks JSON text against `limits` before anything is built from it: counts the values
/// (every scalar, array, object and object key) and the nesting of arrays and objects in one
/// pass over the bytes. Meant for text about to be parsed: invalid JSON passes here and fails
/// the parser.
pub fn check_json(text: &[u8], limits: &Limits) -> Result<(), ProtocolError> {
    let (mut values, mut depth) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    // The last byte outside strings and whitespace: a scalar starts right after `[`, `,`, `:`
    // or at the beginning.
    let mut previous = b'[';
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'"' => {
                in_string = true;
                values += 1;
            }
            b'[' | b'{' => {
                values += 1;
                depth += 1;
                if depth > limits.max_message_depth {
                    return Err(ProtocolError::TooDeep(limits.max_message_depth));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b':' => {}
            _ if matches!(previous, b'[' | b',' | b':') => values += 1,
            _ => {}
        }
        if values > limits.max_message_values {
            return Err(ProtocolError::TooManyValues(limits.max_message_values));
        }
        previous = byte;
    }
    Ok(())
}

/// A value the official adapter takes as a set of rooms (`new Set(value)`): an array, a string
/// (its characters), or nothing.
fn is_room_set(value: Option<&Json>) -> bool {
    matches!(value, None | Some(Json::Null | Json::Array(_) | Json::String(_)))
}

/// Checks `opts: {rooms?, except?}` of the bulk and fetch requests.
fn has_targets(obj: &serde_json::Map<String, Json>) -> bool {
    match obj.get("opts") {
        Some(Json::Object(opts)) => is_room_set(opts.get("rooms")) && is_room_set(opts.get("except")),
        _ => false,
    }
}

/// Parses and validates a request received on the request channel: JSON, or msgpack (the
/// broadcast with ack, or any other request an emitter wrote in msgpack, which the official
/// adapter decodes too). Values and nesting beyond `limits` are refused before anything is built.
pub fn parse_request(payload: &[u8], limits: &Limits) -> Result<RequestHeader, ProtocolError> {
    let json: Json = if is_json(payload) {
        check_json(payload, limits)?;
        serde_json::from_slice(payload).map_err(|_| ProtocolError::Shape("request is not valid JSON"))?
    } else {
        match msgpack::from_slice_within(payload, limits)? {
            Value::Map(entries) if entries.iter().any(|(k, v)| k.as_str() == Some("type") && v.as_i64() == Some(RequestType::Broadcast as i64)) => {
                return parse_msgpack_request(payload)
            }
            other => msgpack::to_json(&other),
        }
    };
    let Json::Object(obj) = json else {
        return Err(ProtocolError::Shape("request is not a map"));
    };
    let kind = request_type(&obj).ok_or(ProtocolError::Shape("unknown request type"))?;
    let uid = string_field(&obj, "uid");
    let request_id = string_field(&obj, "requestId");
    let legacy = matches!(kind, RequestType::RemoteJoin | RequestType::RemoteLeave | RequestType::RemoteDisconnect) && !obj.contains_key("opts");
    let valid = match kind {
        RequestType::AllRooms => request_id.is_some(),
        RequestType::Sockets => request_id.is_some() && is_room_set(obj.get("rooms")),
        RequestType::RemoteFetch => request_id.is_some() && has_targets(&obj),
        RequestType::RemoteJoin | RequestType::RemoteLeave if legacy => {
            request_id.is_some() && matches!(obj.get("sid"), Some(Json::String(_))) && matches!(obj.get("room"), Some(Json::String(_) | Json::Number(_)))
        }
        // `socket.join(rooms)` takes anything (one room, or even none: the room `undefined`);
        // leaving does `rooms.forEach(...)`.
        RequestType::RemoteJoin => has_targets(&obj),
        RequestType::RemoteLeave => has_targets(&obj) && matches!(obj.get("rooms"), Some(Json::Array(_))),
        RequestType::RemoteDisconnect if legacy => request_id.is_some() && matches!(obj.get("sid"), Some(Json::String(_))),
        RequestType::RemoteDisconnect => has_targets(&obj),
        RequestType::ServerSideEmit => {
            matches!(obj.get("data"), Some(Json::Array(items)) if !items.is_empty())
        }
        // A broadcast with ack written by a JSON `parser` (the official adapter reads a request
        // that starts with `{` as JSON whatever its type).
        RequestType::Broadcast => request_id.is_some() && has_targets(&obj) && matches!(obj.get("packet"), Some(Json::Object(_))),
        RequestType::BroadcastClientCount | RequestType::BroadcastAck => false,
    };
    if !valid {
        return Err(ProtocolError::Shape("request fields do not match its type"));
    }
    let joins = match kind {
        RequestType::RemoteJoin => joined_rooms(&obj),
        _ => Vec::new(),
    };
    Ok(RequestHeader { kind, uid, request_id, legacy, joins })
}

/// The room names of a join request: its `rooms` (an array, or one room) or legacy `room`.
fn joined_rooms(obj: &serde_json::Map<String, Json>) -> Vec<String> {
    let name = |room: &Json| match room {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (obj.get("rooms"), obj.get("room")) {
        (Some(Json::Array(rooms)), _) => rooms.iter().map(name).collect(),
        (Some(room), _) | (_, Some(room)) => vec![name(room)],
        _ => Vec::new(),
    }
}

/// The msgpack request: only BROADCAST (7) `{uid, requestId, type, packet, opts}`.
fn parse_msgpack_request(payload: &[u8]) -> Result<RequestHeader, ProtocolError> {
    // Checked by `parse_request` already.
    let mut r = Reader::within(payload, &Limits::ALREADY_CHECKED);
    let (mut uid, mut request_id, mut kind, mut packet, mut opts) = (None, None, None, false, false);
    for _ in 0..r.read_map_len()? {
        match r.read_str_bytes()? {
            b"uid" => uid = Some(r.read_str()?.to_owned()),
            b"requestId" => request_id = Some(r.read_str()?.to_owned()),
            b"type" => kind = r.read_value()?.as_i64(),
            b"packet" => {
                parse_packet(&mut r)?;
                packet = true;
            }
            b"opts" => {
                parse_opts(&mut r)?;
                opts = true;
            }
            _ => r.skip_value()?,
        }
    }
    r.finish()?;
    match (kind.and_then(RequestType::from_wire), request_id, packet && opts) {
        (Some(RequestType::Broadcast), Some(request_id), true) => {
            Ok(RequestHeader { kind: RequestType::Broadcast, uid, request_id: Some(request_id), legacy: false, joins: Vec::new() })
        }
        _ => Err(ProtocolError::Shape("a msgpack request must be a broadcast with ack")),
    }
}

/// What a response carries. Items stay JSON text as the answering node wrote it (validated, not
/// parsed into a tree): the requester hands them on as they are.
#[derive(Debug, Clone)]
pub enum ResponseBody {
    /// `rooms` of an ALL_ROOMS answer.
    Rooms(Vec<RawJson>),
    /// `sockets` of a REMOTE_FETCH (details) or SOCKETS (ids) answer.
    Sockets(Vec<RawJson>),
    /// `data` of a SERVER_SIDE_EMIT acknowledgement (`None` when the ack had no argument).
    ServerSideEmit(Option<RawJson>),
    /// BROADCAST_CLIENT_COUNT; the raw payload goes to the host.
    ClientCount(u64),
    /// BROADCAST_ACK; the raw payload goes to the host.
    Ack,
    /// Anything else with a requestId (legacy `{requestId}` answers, answers without an array).
    Other,
}

/// A received response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request it answers.
    pub request_id: String,
    /// What it says.
    pub body: ResponseBody,
}

/// The fields of a JSON response that matter, each still as the text it was sent as.
#[derive(Deserialize)]
struct JsonResponse<'a> {
    #[serde(rename = "requestId", borrow)]
    request_id: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(rename = "clientCount", borrow)]
    client_count: Option<&'a RawValue>,
    #[serde(borrow)]
    rooms: Option<&'a RawValue>,
    #[serde(borrow)]
    sockets: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// `raw` read as a `T`, if it is one.
fn raw_as<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
}

/// The items of `raw`, if it is an array.
fn raw_items(raw: Option<&RawValue>) -> Option<Vec<RawJson>> {
    let items: Vec<&RawValue> = raw_as(raw)?;
    Some(items.into_iter().map(RawValue::to_owned).collect())
}

/// Parses and validates a response; values and nesting beyond `limits` are refused before
/// anything is built.
pub fn parse_response(payload: &[u8], limits: &Limits) -> Result<Response, ProtocolError> {
    if !is_json(payload) {
        let (request_id, _) = read_msgpack_ack(payload, limits, false)?;
        return Ok(Response { request_id, body: ResponseBody::Ack });
    }
    check_json(payload, limits)?;
    let fields: JsonResponse<'_> = serde_json::from_slice(payload).map_err(|_| ProtocolError::Shape("response is not valid JSON"))?;
    let request_id = raw_as(fields.request_id).ok_or(ProtocolError::Shape("response without requestId"))?;
    let body = match raw_as::<i64>(fields.kind) {
        Some(6) => ResponseBody::ServerSideEmit(fields.data.map(RawValue::to_owned)),
        Some(8) => ResponseBody::ClientCount(raw_as(fields.client_count).ok_or(ProtocolError::Shape("clientCount must be a number"))?),
        // A client's acknowledgement written by a JSON `parser`.
        Some(9) => ResponseBody::Ack,
        _ => match (raw_items(fields.rooms), raw_items(fields.sockets)) {
            (Some(rooms), _) => ResponseBody::Rooms(rooms),
            (_, Some(sockets)) => ResponseBody::Sockets(sockets),
            _ => ResponseBody::Other,
        },
    };
    Ok(Response { request_id, body })
}

/// An answer to one of this node's broadcasts with acknowledgements (a
/// [`crate::DeliveryKind::AckResponse`] delivery), read by [`parse_ack_response`].
#[derive(Debug, Clone, PartialEq)]
pub enum AckReply {
    /// How many clients a node sent the broadcast to.
    ClientCount(u64),
    /// One client's acknowledgement: its first argument (nil when it had none).
    Ack(Value),
}

/// Reads an answer to a broadcast with acknowledgements: the request it answers and what it says
/// (a msgpack BROADCAST_ACK, or either kind as JSON, as a JSON `parser` writes them).
pub fn parse_ack_response(payload: &[u8], limits: &Limits) -> Result<(String, AckReply), ProtocolError> {
    if !is_json(payload) {
        let (request_id, packet) = read_msgpack_ack(payload, limits, true)?;
        return Ok((request_id, AckReply::Ack(packet)));
    }
    let response = parse_response(payload, limits)?;
    let reply = match response.body {
        ResponseBody::ClientCount(count) => AckReply::ClientCount(count),
        ResponseBody::Ack => {
            let json: Json = serde_json::from_slice(payload).map_err(|_| ProtocolError::Shape("response is not valid JSON"))?;
            AckReply::Ack(msgpack::from_json(&json["packet"]))
        }
        _ => return Err(ProtocolError::Shape("not an answer to a broadcast with ack")),
    };
    Ok((response.request_id, reply))
}

/// A msgpack response, which must be a BROADCAST_ACK: its request id and, with `keep_packet`,
/// its packet (skipped otherwise; nil also when the client acknowledged without an argument).
fn read_msgpack_ack(payload: &[u8], limits: &Limits, keep_packet: bool) -> Result<(String, Value), ProtocolError> {
    let mut r = Reader::within(payload, limits);
    let (mut kind, mut request_id, mut packet) = (None, None, Value::Nil);
    for _ in 0..r.read_map_len()? {
        match r.read_str_bytes()? {
            b"type" => kind = r.read_value()?.as_i64(),
            b"requestId" => request_id = Some(r.read_str()?.to_owned()),
            b"packet" if keep_packet => packet = r.read_value()?,
            _ => r.skip_value()?,
        }
    }
    r.finish()?;
    match (kind, request_id) {
        (Some(9), Some(request_id)) => Ok((request_id, packet)),
        _ => Err(ProtocolError::Shape("a msgpack response must be a broadcast ack")),
    }
}

/// JSON text that is known to be valid (checked once when it enters the core).
pub type RawJson = Box<RawValue>;

/// Checks that `text` is JSON, for pieces handed in by a host (e.g. `JSON.stringify` output).
pub fn raw_json(text: String, what: &'static str) -> Result<RawJson, ProtocolError> {
    RawValue::from_string(text).map_err(|_| ProtocolError::Unexpected { expected: "JSON", found: what.to_owned() })
}

/// Target sockets of a bulk or fetch request: `{rooms, except}` (rooms = all when empty).
#[derive(Debug, Serialize)]
pub struct Targets<'a> {
    /// Rooms whose sockets are targeted (JSON array).
    pub rooms: &'a RawValue,
    /// Rooms whose sockets are excluded (JSON array).
    pub except: &'a RawValue,
}

#[derive(Serialize)]
struct JsonRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    opts: Option<&'a Targets<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rooms: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

impl<'a> JsonRequest<'a> {
    fn new(uid: &'a str, kind: RequestType) -> Self {
        JsonRequest { uid: Some(uid), ..Self::anonymous(kind) }
    }

    /// A request without uid, as `@socket.io/redis-emitter` sends its bulk operations.
    fn anonymous(kind: RequestType) -> Self {
        JsonRequest { uid: None, request_id: None, kind: kind as u8, opts: None, rooms: None, sid: None, room: None, close: None, data: None }
    }

    fn to_vec(&self) -> Vec<u8> {
        // Serialising plain strings, integers and pre-validated raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `{"uid":U,"requestId":ID,"type":1}`
pub fn all_rooms_request(uid: &str, request_id: &str) -> Vec<u8> {
    JsonRequest { request_id: Some(request_id), ..JsonRequest::new(uid, RequestType::AllRooms) }.to_vec()
}

/// `{"uid":U,"requestId":ID,"type":0,"rooms":[..]}` (the legacy cluster-wide socket ids).
pub fn sockets_request(uid: &str, request_id: &str, rooms: &RawValue) -> Vec<u8> {
    JsonRequest { request_id: Some(request_id), rooms: Some(rooms), ..JsonRequest::new(uid, RequestType::Sockets) }.to_vec()
}

/// What a legacy single-socket request does to socket `sid`.
#[derive(Debug, Clone, Copy)]
pub enum SocketAction<'a> {
    /// `{"type":2,"sid":SID,"room":R}`: join room `R` (JSON string or number).
    Join(&'a RawValue),
    /// `{"type":3,"sid":SID,"room":R}`: leave room `R`.
    Leave(&'a RawValue),
    /// `{"type":4,"sid":SID,"close":BOOL}`: disconnect.
    Disconnect(bool),
}

impl SocketAction<'_> {
    /// The request type carrying this action.
    pub fn request_type(&self) -> RequestType {
        match self {
            SocketAction::Join(_) => RequestType::RemoteJoin,
            SocketAction::Leave(_) => RequestType::RemoteLeave,
            SocketAction::Disconnect(_) => RequestType::RemoteDisconnect,
        }
    }
}

/// `{"uid":U,"requestId":ID,"type":2|3|4,"sid":SID,...}`: the single-socket form of v6/v7,
/// still answered by v8 nodes (only the node owning the socket acts and answers).
pub fn socket_request(uid: &str, request_id: &str, sid: &str, action: SocketAction<'_>) -> Vec<u8> {
    let mut request = JsonRequest { request_id: Some(request_id), sid: Some(sid), ..JsonRequest::new(uid, action.request_type()) };
    match action {
        SocketAction::Join(room) | SocketAction::Leave(room) => request.room = Some(room),
        SocketAction::Disconnect(close) => request.close = Some(close),
    }
    request.to_vec()
}

/// `{"uid":U,"requestId":ID,"type":5,"opts":{"rooms":[..],"except":[..]}}`
pub fn fetch_sockets_request(uid: &str, request_id: &str, targets: &Targets<'_>) -> Vec<u8> {
    JsonRequest { request_id: Some(request_id), opts: Some(targets), ..JsonRequest::new(uid, RequestType::RemoteFetch) }.to_vec()
}

/// `{"uid":U,"type":2|3,"opts":{..},"rooms":[..]}` (join when `join`, else leave).
pub fn rooms_request(uid: &str, join: bool, targets: &Targets<'_>, rooms: &RawValue) -> Vec<u8> {
    let kind = if join { RequestType::RemoteJoin } else { RequestType::RemoteLeave };
    JsonRequest { opts: Some(targets), rooms: Some(rooms), ..JsonRequest::new(uid, kind) }.to_vec()
}

/// The emitter's `{"type":2|3,"opts":{..},"rooms":[..]}` (no uid).
pub fn emitter_rooms_request(join: bool, targets: &Targets<'_>, rooms: &RawValue) -> Vec<u8> {
    let kind = if join { RequestType::RemoteJoin } else { RequestType::RemoteLeave };
    JsonRequest { opts: Some(targets), rooms: Some(rooms), ..JsonRequest::anonymous(kind) }.to_vec()
}

/// The emitter's `{"type":4,"opts":{..},"close":BOOL}` (no uid).
pub fn emitter_disconnect_request(targets: &Targets<'_>, close: bool) -> Vec<u8> {
    JsonRequest { opts: Some(targets), close: Some(close), ..JsonRequest::anonymous(RequestType::RemoteDisconnect) }.to_vec()
}

/// `{"uid":U,"type":4,"opts":{..},"close":BOOL}`
pub fn disconnect_request(uid: &str, targets: &Targets<'_>, close: bool) -> Vec<u8> {
    JsonRequest { opts: Some(targets), close: Some(close), ..JsonRequest::new(uid, RequestType::RemoteDisconnect) }.to_vec()
}

/// `{"uid":U[,"requestId":ID],"type":6,"data":[event,...args]}`
pub fn server_side_emit_request(uid: &str, request_id: Option<&str>, data: &RawValue) -> Vec<u8> {
    JsonRequest { request_id, data: Some(data), ..JsonRequest::new(uid, RequestType::ServerSideEmit) }.to_vec()
}

/// The broadcast-with-ack request `{uid, requestId, type: 7, packet, opts}` in msgpack, from
/// notepack's encoding of `[packet, opts]` (the 2-array the Node binding produces).
pub fn broadcast_with_ack_request(uid: &str, request_id: &str, packet_and_opts: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut r = Reader::new(packet_and_opts);
    if r.read_array_len()? != 2 {
        return Err(ProtocolError::Shape("expected [packet, opts] as a msgpack 2-array"));
    }
    let start = r.position();
    parse_packet(&mut r)?;
    let middle = r.position();
    parse_opts(&mut r)?;
    r.finish()?;
    let mut out = Vec::with_capacity(packet_and_opts.len() + 48);
    msgpack::write_map_len(&mut out, 5);
    for (key, value) in [("uid", uid), ("requestId", request_id)] {
        msgpack::write_str(&mut out, key);
        msgpack::write_str(&mut out, value);
    }
    msgpack::write_str(&mut out, "type");
    msgpack::write_uint(&mut out, RequestType::Broadcast as u64);
    msgpack::write_str(&mut out, "packet");
    out.extend_from_slice(&packet_and_opts[start..middle]);
    msgpack::write_str(&mut out, "opts");
    out.extend_from_slice(&packet_and_opts[middle..]);
    Ok(out)
}

/// The answer to ALL_ROOMS (`rooms`), REMOTE_FETCH or SOCKETS (`sockets`): `{"requestId":ID,"<key>":[..]}`;
/// with `items = None`, the legacy `{"requestId":ID}`.
pub fn list_response(request_id: &str, key: &str, items: Option<&RawValue>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + items.map_or(0, |i| i.get().len()));
    out.extend_from_slice(b"{\"requestId\":");
    out.extend_from_slice(&serde_json::to_vec(request_id).unwrap_or_default());
    if let Some(items) = items {
        out.push(b',');
        out.extend_from_slice(&serde_json::to_vec(key).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(items.get().as_bytes());
    }
    out.push(b'}');
    out
}

#[derive(Serialize)]
struct TypedResponse<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(rename = "clientCount", skip_serializing_if = "Option::is_none")]
    client_count: Option<u64>,
}

/// `{"type":6,"requestId":ID,"data":X}` (no `data` when the ack had no argument).
pub fn server_side_emit_response(request_id: &str, data: Option<&RawValue>) -> Vec<u8> {
    serde_json::to_vec(&TypedResponse { kind: 6, request_id, data, client_count: None }).unwrap_or_default()
}

/// `{"type":8,"requestId":ID,"clientCount":N}`
pub fn client_count_response(request_id: &str, count: u64) -> Vec<u8> {
    serde_json::to_vec(&TypedResponse { kind: 8, request_id, data: None, client_count: Some(count) }).unwrap_or_default()
}

/// msgpack `{type: 9, requestId, packet}` around notepack's encoding of the ack argument.
pub fn broadcast_ack_response(request_id: &str, packet: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    msgpack::from_slice(packet)?;
    let mut out = Vec::with_capacity(packet.len() + 32);
    msgpack::write_map_len(&mut out, 3);
    msgpack::write_str(&mut out, "type");
    msgpack::write_uint(&mut out, RequestType::BroadcastAck as u64);
    msgpack::write_str(&mut out, "requestId");
    msgpack::write_str(&mut out, request_id);
    msgpack::write_str(&mut out, "packet");
    out.extend_from_slice(packet);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawJson {
        raw_json(text.to_owned(), "test").unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn json_is_measured_without_being_built() {
        let within = |values, depth| Limits { max_message_values: values, max_message_depth: depth, ..Limits::default() };
        // The object, "a", the array, 1, "x,]", the inner object, "b", null, "c", true: 10
        // values, 3 levels.
        let text = br#"{"a":[1,"x,]",{"b":null}], "c" : true}"#;
        assert_eq!(check_json(text, &within(10, 3)), Ok(()));
        assert_eq!(check_json(text, &within(9, 3)), Err(ProtocolError::TooManyValues(9)));
        assert_eq!(check_json(text, &within(10, 2)), Err(ProtocolError::TooDeep(2)));
        // Escapes inside strings, numbers of several bytes, empty containers.
        let text = br#"["a\"]\\", -1.5e3, [], {}]"#;
        assert_eq!(check_json(text, &within(5, 2)), Ok(()));
        assert_eq!(check_json(text, &within(4, 2)), Err(ProtocolError::TooManyValues(4)));
        let request = format!(r#"{{"uid":"u","type":2,"opts":{{"rooms":[],"except":[]}},"rooms":[{}]}}"#, vec!["[]"; 100].join(","));
        assert_eq!(parse_request(request.as_bytes(), &within(50, 256)).unwrap_err(), ProtocolError::TooManyValues(50));
        assert!(parse_request(request.as_bytes(), &within(200, 256)).is_ok());
    }

    #[test]
    fn requests_match_the_official_json_byte_for_byte() {
        let targets = Targets { rooms: &raw("[]"), except: &raw("[]") };
        assert_eq!(String::from_utf8(all_rooms_request("AAAAAA", "req004")).unwrap(), r#"{"uid":"AAAAAA","requestId":"req004","type":1}"#);
        assert_eq!(
            String::from_utf8(fetch_sockets_request("AAAAAA", "req002", &targets)).unwrap(),
            r#"{"uid":"AAAAAA","requestId":"req002","type":5,"opts":{"rooms":[],"except":[]}}"#
        );
        let room1 = Targets { rooms: &raw(r#"["room1"]"#), except: &raw("[]") };
        assert_eq!(
            String::from_utf8(rooms_request("AAAAAA", true, &room1, &raw(r#"["j1","j2"]"#))).unwrap(),
            r#"{"uid":"AAAAAA","type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["j1","j2"]}"#
        );
        let except = Targets { rooms: &raw("[]"), except: &raw(r#"["room1"]"#) };
        assert_eq!(
            String::from_utf8(rooms_request("AAAAAA", false, &except, &raw(r#"["j1"]"#))).unwrap(),
            r#"{"uid":"AAAAAA","type":3,"opts":{"rooms":[],"except":["room1"]},"rooms":["j1"]}"#
        );
        assert_eq!(String::from_utf8(disconnect_request("AAAAAA", &room1, true)).unwrap(), r#"{"uid":"AAAAAA","type":4,"opts":{"rooms":["room1"],"except":[]},"close":true}"#);
        assert_eq!(String::from_utf8(sockets_request("AAAAAA", "r", &raw(r#"["a"]"#))).unwrap(), r#"{"uid":"AAAAAA","requestId":"r","type":0,"rooms":["a"]}"#);
        assert_eq!(
            String::from_utf8(socket_request("AAAAAA", "r", "sid1", SocketAction::Join(&raw(r#""room""#)))).unwrap(),
            r#"{"uid":"AAAAAA","requestId":"r","type":2,"sid":"sid1","room":"room"}"#
        );
        assert_eq!(
            String::from_utf8(socket_request("AAAAAA", "r", "sid1", SocketAction::Disconnect(true))).unwrap(),
            r#"{"uid":"AAAAAA","requestId":"r","type":4,"sid":"sid1","close":true}"#
        );
        for built in [sockets_request("U", "r", &raw("[]")), socket_request("U", "r", "s", SocketAction::Leave(&raw("1")))] {
            parse_request(&built, &Limits::default()).unwrap();
        }
        assert_eq!(String::from_utf8(server_side_emit_request("AAAAAA", None, &raw(r#"["srv",1,"two"]"#))).unwrap(), r#"{"uid":"AAAAAA","type":6,"data":["srv",1,"two"]}"#);
        assert_eq!(
            String::from_utf8(server_side_emit_request("AAAAAA", Some("req003"), &raw(r#"["ping-server"]"#))).unwrap(),
            r#"{"uid":"AAAAAA","requestId":"req003","type":6,"data":["ping-server"]}"#
        );
    }

    #[test]
    fn responses_match_the_official_bytes() {
        assert_eq!(String::from_utf8(list_response("req004", "rooms", Some(&raw(r#"["a","room1"]"#)))).unwrap(), r#"{"requestId":"req004","rooms":["a","room1"]}"#);
        assert_eq!(String::from_utf8(list_response("r", "sockets", None)).unwrap(), r#"{"requestId":"r"}"#);
        assert_eq!(String::from_utf8(server_side_emit_response("req003", Some(&raw(r#""pong-from-B""#)))).unwrap(), r#"{"type":6,"requestId":"req003","data":"pong-from-B"}"#);
        assert_eq!(String::from_utf8(client_count_response("req001", 1)).unwrap(), r#"{"type":8,"requestId":"req001","clientCount":1}"#);
        let ack = broadcast_ack_response("req001", &unhex("a461636b42")).unwrap();
        assert_eq!(ack, unhex("83a47479706509a9726571756573744964a6726571303031a67061636b6574a461636b42"));
    }

    #[test]
    fn answers_to_a_broadcast_with_ack_are_read_in_either_encoding() {
        let read = |payload: &[u8]| parse_ack_response(payload, &Limits::default());
        assert_eq!(read(&client_count_response("req001", 3)).unwrap(), ("req001".to_owned(), AckReply::ClientCount(3)));
        let ack = broadcast_ack_response("req001", &unhex("a461636b42")).unwrap();
        assert_eq!(read(&ack).unwrap(), ("req001".to_owned(), AckReply::Ack(Value::from("ackB"))));
        // An ack without an argument carries no packet; a JSON parser's ack keeps its value.
        assert_eq!(read(&unhex("82a47479706509a9726571756573744964a171")).unwrap(), ("q".to_owned(), AckReply::Ack(Value::Nil)));
        let json = read(br#"{"type":9,"requestId":"q","packet":{"ok":[1,true]}}"#).unwrap();
        assert_eq!(json, ("q".to_owned(), AckReply::Ack(Value::Map(vec![(Value::from("ok"), Value::Array(vec![Value::from(1), Value::from(true)]))]))));
        assert!(read(br#"{"requestId":"q","rooms":[]}"#).is_err());
        assert!(read(&unhex("81a47479706508")).is_err());
    }

    #[test]
    fn response_items_stay_the_text_that_was_sent() {
        let parse = |text: &str| parse_response(text.as_bytes(), &Limits::default());
        let texts = |items: &[RawJson]| items.iter().map(|item| item.get().to_owned()).collect::<Vec<_>>();
        let response = parse(r#"{"requestId":"q","sockets":[{"id":"s1","data":{"a":[1, 2]}}, "\u00e9"]}"#).unwrap();
        let ResponseBody::Sockets(items) = response.body else { panic!("{response:?}") };
        assert_eq!(texts(&items), [r#"{"id":"s1","data":{"a":[1, 2]}}"#, r#""\u00e9""#]);
        // `rooms` that is not an array does not hide `sockets`, as before.
        let ResponseBody::Sockets(items) = parse(r#"{"requestId":"q","rooms":"x","sockets":["a"]}"#).unwrap().body else { panic!() };
        assert_eq!(texts(&items), [r#""a""#]);
        for (text, data) in
            [(r#"{"type":6,"requestId":"q","data":[1]}"#, Some("[1]")), (r#"{"type":6,"requestId":"q","data":null}"#, None), (r#"{"type":6,"requestId":"q"}"#, None)]
        {
            let ResponseBody::ServerSideEmit(got) = parse(text).unwrap().body else { panic!("{text}") };
            assert_eq!(got.as_deref().map(RawValue::get), data, "{text}");
        }
        assert!(matches!(parse(r#"{"requestId":"\u0071"}"#).unwrap(), Response { request_id, body: ResponseBody::Other } if request_id == "q"));
        assert!(matches!(parse(r#"{"type":8,"requestId":"q","clientCount":3}"#).unwrap().body, ResponseBody::ClientCount(3)));
        for bad in [r#"{"requestId":7,"rooms":[]}"#, r#"{"type":8,"requestId":"q","clientCount":-1}"#, r#"{"requestId":"q","rooms":[}"#, r#"{"requestId":"q"} x"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn broadcast_with_ack_request_matches_worked_example_9_4() {
        let expected = unhex("85a3756964a6414141414141a9726571756573744964a6726571303031a47479706507a67061636b657483a47479706502a46461746192a77769746861636ba3617267a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8");
        let packet_start = expected.windows(7).position(|w| w == b"\xa6packet").unwrap() + 7;
        let opts_at = expected.windows(5).position(|w| w == b"\xa4opts").unwrap();
        let mut inner = vec![0x92];
        inner.extend_from_slice(&expected[packet_start..opts_at]);
        inner.extend_from_slice(&expected[opts_at + 5..]);
        assert_eq!(broadcast_with_ack_request("AAAAAA", "req001", &inner).unwrap(), expected);
        let header = parse_request(&expected, &Limits::default()).unwrap();
        assert_eq!(header.kind, RequestType::Broadcast);
        assert_eq!(header.request_id.as_deref(), Some("req001"));
    }

    #[test]
    fn every_fixture_request_and_response_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/test/fixtures/official");
        let mut seen = 0;
        for name in ["capture-default.json", "capture-specific.json", "capture-emitter.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let entries: Vec<Json> = serde_json::from_str(&text).unwrap();
            for e in entries {
                let channel = e["channel"].as_str().unwrap_or_default();
                let payload = match e["kind"].as_str() {
                    Some("binary") => unhex(e["payload"].as_str().unwrap()),
                    Some("string") => e["payload"].as_str().unwrap().as_bytes().to_vec(),
                    _ => continue,
                };
                if channel.contains("-request#") {
                    parse_request(&payload, &Limits::default()).unwrap_or_else(|err| panic!("{name} {channel}: {err}"));
                    seen += 1;
                } else if channel.contains("-response#") {
                    parse_response(&payload, &Limits::default()).unwrap_or_else(|err| panic!("{name} {channel}: {err}"));
                    seen += 1;
                }
            }
        }
        assert!(seen >= 10, "only {seen} requests/responses in the fixtures");
    }

    #[test]
    fn legacy_requests_are_understood() {
        let join = parse_request(br#"{"requestId":"x","type":2,"sid":"abc","room":"r"}"#, &Limits::default()).unwrap();
        assert!(join.legacy && join.uid.is_none());
        let sockets = parse_request(br#"{"requestId":"x","type":0,"rooms":["r"]}"#, &Limits::default()).unwrap();
        assert_eq!(sockets.kind, RequestType::Sockets);
        let emitter = parse_request(br#"{"type":4,"opts":{"rooms":[],"except":["vip"]},"close":true}"#, &Limits::default()).unwrap();
        assert!(!emitter.legacy && emitter.request_id.is_none());
        // As lenient as the official adapter (`new Set(opts.rooms)`, `socket.join(rooms)`).
        for lenient in [
            &br#"{"type":2,"opts":{"rooms":"","except":""},"rooms":"game"}"#[..],
            br#"{"type":3,"opts":{},"rooms":[1,"a"]}"#,
            br#"{"type":4,"opts":{"rooms":null},"close":false}"#,
            br#"{"requestId":"x","type":0}"#,
            br#"{"type":2,"uid":42,"requestId":7,"opts":{"rooms":["ab"]},"rooms":"joined"}"#,
            br#"{"type":2.0,"opts":{"rooms":["7"]},"rooms":"joined"}"#,
            b"\x83\xa4type\x02\xa4opts\x81\xa5rooms\x91\xa1b\xa5rooms\xa6joined",
        ] {
            assert!(parse_request(lenient, &Limits::default()).is_ok(), "{}", String::from_utf8_lossy(lenient));
        }
        // A socketsJoin of a million rooms: too many values for any node to apply.
        let limits = Limits::default();
        let rooms: Vec<String> = (0..limits.max_message_values).map(|i| format!("\"r{i}\"")).collect();
        let huge = format!(r#"{{"type":2,"opts":{{"rooms":[]}},"rooms":[{}]}}"#, rooms.join(","));
        assert_eq!(parse_request(huge.as_bytes(), &Limits::default()).unwrap_err(), ProtocolError::TooManyValues(limits.max_message_values));
    }

    #[test]
    fn malformed_requests_and_responses_are_rejected() {
        for bad in [
            &b"{"[..],
            b"{\"type\":99,\"uid\":\"a\"}",
            b"{\"type\":5,\"uid\":\"a\",\"requestId\":\"r\"}",
            b"{\"type\":2,\"opts\":{\"rooms\":7},\"rooms\":[]}",
            b"{\"type\":6,\"data\":[]}",
            b"{\"type\":3,\"opts\":{},\"rooms\":\"x\"}",
            b"[1,2]",
            b"\x85",
            b"\xc1",
            b"\x81\xa4type\x01",
        ] {
            assert!(parse_request(bad, &Limits::default()).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        for bad in [&b"{}"[..], b"{\"requestId\":1}", b"\x81\xa4type\x09", b"nope", b"{\"type\":8,\"requestId\":\"r\",\"clientCount\":\"x\"}"] {
            assert!(parse_response(bad, &Limits::default()).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
