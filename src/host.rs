//! The local socket.io server, seen from the engine: the JS in-memory adapter through the napi
//! binding, or a C/C++/Rust program. The engine calls it; it never calls into Redis itself.

use crate::error::Error;
use crate::protocol::{Broadcast, ProtocolError};

/// A broadcast from another node, already validated: its envelope is well-formed, it is not
/// this node's own echo, and it is for this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    bytes: Vec<u8>,
}

impl Delivery {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Delivery { bytes }
    }

    /// The message as received: msgpack `[uid, packet, opts]`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The message decoded into values.
    pub fn decode(&self) -> Result<Broadcast, ProtocolError> {
        Broadcast::decode(&self.bytes)
    }
}

/// Something the user of the adapter should hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterEvent {
    /// Subscribed and connected (again).
    Ready,
    /// A connection problem, or a message that could not be processed.
    Error(Error),
}

/// What the engine needs from the local server.
///
/// Methods are called from the engine's tasks (tokio threads), never while the engine holds a
/// lock, and must not block for long: hand the work to your own thread or event loop.
pub trait Host: Send + Sync + 'static {
    /// Broadcasts from other nodes to deliver to local sockets, in arrival order.
    fn deliver(&self, batch: Vec<Delivery>);

    /// A change of connection state, or an error worth reporting.
    fn on_event(&self, event: AdapterEvent);
}
