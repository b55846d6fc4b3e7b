//! The wire format, with no I/O: msgpack as notepack.io writes it, the broadcast envelope,
//! server uids. Everything here is a pure function of bytes, tested against captures of the
//! official adapter in `../shared/fixtures/`.

pub mod broadcast;
pub mod client_text;
pub mod cluster;
pub mod msgpack;
pub mod request;
mod uid;

pub use broadcast::{Broadcast, BroadcastOptions, BroadcastRef, Flags, OptsLayout, Packet, Room};
pub use uid::{new_cluster_uid, new_uid};

/// Why bytes received from Redis could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The input ends in the middle of a value (or a length prefix claims more than is there).
    #[error("truncated message")]
    Truncated,
    /// A complete value was read but bytes were left over.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A byte that is not a msgpack marker (0xc1).
    #[error("unknown msgpack marker 0x{0:02x}")]
    UnknownMarker(u8),
    /// Arrays or maps nested deeper than [`Limits::max_message_depth`](crate::limits::Limits::max_message_depth) (the limit).
    #[error("message nested more than {0} levels deep (maxMessageDepth)")]
    TooDeep(usize),
    /// More values in one message than [`Limits::max_message_values`](crate::limits::Limits::max_message_values) (the limit).
    #[error("message holds more than {0} values (maxMessageValues)")]
    TooManyValues(usize),
    /// A string that is not UTF-8 where the protocol needs text (uid, namespace, room).
    #[error("invalid UTF-8 in a protocol string")]
    InvalidUtf8,
    /// A well-formed value of the wrong kind.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the protocol requires at this place.
        expected: &'static str,
        /// What was there instead.
        found: String,
    },
    /// The message is well-formed msgpack/JSON but not a message of this protocol.
    #[error("invalid message: {0}")]
    Shape(&'static str),
}

impl ProtocolError {
    pub(crate) fn unexpected(expected: &'static str, found: rmp::Marker) -> Self {
        ProtocolError::Unexpected { expected, found: format!("{found:?}") }
    }
}
