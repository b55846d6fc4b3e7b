//! Packets between socketioxide and the cluster's wire.
//!
//! socketioxide hands an adapter an EVENT packet whose payload its namespace's parser already
//! serialized (the common parser: the JSON text of `[event, ...args]` with binary placeholders
//! and the attachments beside it). The cluster carries socket.io packets as msgpack values,
//! `data` being `[event, ...args]` with binary as msgpack bin. Both ways go through the
//! namespace's own parser, so binary stays binary and the clients of either server get what a
//! Node server would send them.

use rmpv::Value as Mp;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParserError};
use socketioxide_core::Str;

/// Arguments serialized as a tuple: socketioxide's parsers expand a tuple after the event name
/// (`[event, ...args]`), where a sequence would stay one argument.
struct Args<'a>(&'a [Mp]);

impl Serialize for Args<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

/// Every argument after the event name, read as a tuple of any length.
struct OwnedArgs(Vec<Mp>);

impl<'de> Deserialize<'de> for OwnedArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = OwnedArgs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the arguments of an event")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedArgs, A::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(arg) = seq.next_element::<Mp>()? {
                    args.push(arg);
                }
                Ok(OwnedArgs(args))
            }
        }
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

/// Why a packet could not be carried to or from the cluster.
#[derive(Debug)]
pub enum PacketError {
    /// Only events (with or without binary, without an ack id) are broadcast.
    NotAnEvent,
    /// The cluster's `data` is not `[event name, ...args]`.
    NoEventName,
    /// The namespace's parser could not read or write the payload.
    Parser(ParserError),
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::NotAnEvent => f.write_str("only event packets without an ack id are broadcast to the cluster"),
            PacketError::NoEventName => f.write_str("the packet's data does not start with an event name"),
            PacketError::Parser(err) => write!(f, "the namespace's parser failed: {err}"),
        }
    }
}

impl std::error::Error for PacketError {}

/// The socketioxide packet for namespace `ns` of a cluster packet whose data is `data`
/// (`[event, ...args]`), written by `parser`.
pub fn from_wire<P: Parse>(parser: P, ns: &Str, data: &[Mp]) -> Result<Packet, PacketError> {
    let (event, args) = data.split_first().ok_or(PacketError::NoEventName)?;
    let event = event.as_str().ok_or(PacketError::NoEventName)?;
    let value = parser.encode_value(&Args(args), Some(event)).map_err(PacketError::Parser)?;
    Ok(Packet::event(ns.clone(), value))
}

/// The event name and arguments of a socketioxide event packet, read by `parser`.
pub fn to_wire<P: Parse>(parser: P, packet: &Packet) -> Result<(String, Vec<Mp>), PacketError> {
    let (PacketData::Event(value, None) | PacketData::BinaryEvent(value, None)) = &packet.inner else {
        return Err(PacketError::NotAnEvent);
    };
    let event = parser.read_event(value).map_err(PacketError::Parser)?.to_owned();
    let mut value = value.clone();
    let OwnedArgs(args) = parser.decode_value(&mut value, true).map_err(PacketError::Parser)?;
    Ok((event, args))
}

/// The first argument of a client's acknowledgement (what a Node node sends back for a
/// broadcast with ack), read by `parser`; nil when the ack had none.
pub fn ack_argument<P: Parse>(parser: P, value: &mut socketioxide_core::Value) -> Result<Mp, PacketError> {
    let OwnedArgs(args) = parser.decode_value(value, false).map_err(PacketError::Parser)?;
    Ok(args.into_iter().next().unwrap_or(Mp::Nil))
}

/// A client's acknowledgement from another server (its first argument, `arg`) as the namespace's
/// parser holds the arguments of an ack (what this server's own clients' acks look like).
pub fn ack_value<P: Parse>(parser: P, arg: &Mp) -> Result<socketioxide_core::Value, PacketError> {
    parser.encode_value(&Args(std::slice::from_ref(arg)), None).map_err(PacketError::Parser)
}

#[cfg(test)]
mod tests {
    use socketioxide_core::Value;
    use socketioxide_parser_common::CommonParser;

    use super::*;

    #[test]
    fn a_cluster_event_becomes_the_common_parsers_packet_and_back_binary_included() {
        let args = vec![Mp::from("text"), Mp::from(2.5), Mp::Binary(vec![1, 2, 3]), Mp::Map(vec![(Mp::from("nested"), Mp::Binary(vec![4]))])];
        let data: Vec<Mp> = std::iter::once(Mp::from("ev")).chain(args.iter().cloned()).collect();
        let packet = from_wire(CommonParser, &Str::from("/"), &data).unwrap();
        // What socket.io-parser writes: placeholders in the JSON, attachments beside it.
        let PacketData::BinaryEvent(Value::Str(text, Some(bins)), None) = &packet.inner else { panic!("not a binary event: {packet:?}") };
        assert_eq!(&text[..], r#"["ev","text",2.5,{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]"#);
        assert_eq!(bins.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), vec![vec![1, 2, 3], vec![4]]);
        assert_eq!(to_wire(CommonParser, &packet).unwrap(), ("ev".to_owned(), args));
    }

    #[test]
    fn an_ack_gives_its_first_argument() {
        let mut value = CommonParser.encode_value(&(Mp::from("ok"), Mp::from(2)), None).unwrap();
        assert_eq!(ack_argument(CommonParser, &mut value).unwrap(), Mp::from("ok"));
        let mut empty = CommonParser.encode_value(&(), None).unwrap();
        assert_eq!(ack_argument(CommonParser, &mut empty).unwrap(), Mp::Nil);
        // And back: another server's ack reads as this server's clients' do.
        let mut remote = ack_value(CommonParser, &Mp::from("ok")).unwrap();
        assert_eq!(CommonParser.decode_value::<String>(&mut remote.clone(), false).unwrap(), "ok");
        assert_eq!(ack_argument(CommonParser, &mut remote).unwrap(), Mp::from("ok"));
    }

    #[test]
    fn events_without_arguments_and_non_events() {
        let packet = from_wire(CommonParser, &Str::from("/admin"), &[Mp::from("ping")]).unwrap();
        assert_eq!(to_wire(CommonParser, &packet).unwrap(), ("ping".to_owned(), vec![]));
        assert!(matches!(from_wire(CommonParser, &Str::from("/"), &[Mp::from(1)]), Err(PacketError::NoEventName)));
        assert!(matches!(to_wire(CommonParser, &Packet::disconnect("/")), Err(PacketError::NotAnEvent)));
    }
}
