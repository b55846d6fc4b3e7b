//! The local socket.io server, seen from the engine: the JS in-memory adapter through the napi
//! binding, or a C/C++/Rust program. The engine calls it; it never calls into Redis itself.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;
use crate::protocol::client_text::ClientText;
use crate::protocol::request::RequestHeader;
use crate::protocol::{Broadcast, ProtocolError};
use crate::transport::TransportEvent;

/// What a [`Delivery`] is. More kinds may come: match with a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryKind {
    /// A broadcast for local sockets: msgpack `[uid, packet, opts]`.
    Broadcast,
    /// A request of another node (or emitter) for the local server to act on or answer with
    /// [`crate::Adapter::respond`]: JSON, or msgpack for a broadcast with ack.
    Request(RequestHeader),
    /// A client count (JSON) or client acknowledgement (msgpack) for one of this node's
    /// broadcasts with ack.
    AckResponse,
    /// Sharded adapter: a ClusterAdapter message (JSON, or msgpack when it carries binary),
    /// possibly this node's own echo or another namespace's (the host filters by uid and nsp).
    ClusterMessage,
    /// Sharded adapter: a ClusterAdapter response on this node's own response channel.
    ClusterResponse,
}

/// A message from another node, already validated: well-formed, not this node's own echo, and
/// for this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    kind: DeliveryKind,
    bytes: Vec<u8>,
    client_text: Option<ClientText>,
}

impl Delivery {
    pub(crate) fn new(kind: DeliveryKind, bytes: Vec<u8>) -> Self {
        Delivery { kind, bytes, client_text: None }
    }

    /// A broadcast delivered as what the clients are sent for it, made ahead, instead of the
    /// message: the text is JSON that reads back as the packet's data, so the message is not kept.
    pub(crate) fn with_client_text(client_text: ClientText) -> Self {
        Delivery { kind: DeliveryKind::Broadcast, bytes: Vec::new(), client_text: Some(client_text) }
    }

    /// For a broadcast, when [`AdapterConfig::client_text`](crate::AdapterConfig::client_text) is
    /// set and the packet allows it: socket.io-parser's text of the packet and the `opts` map as
    /// JSON (see [`crate::protocol::client_text`]). Such a delivery carries no [`bytes`](Self::bytes):
    /// the text holds everything the message did (`JSON.parse` of its JSON part is the packet's
    /// data).
    pub fn client_text(&self) -> Option<&ClientText> {
        self.client_text.as_ref()
    }

    /// Takes the [client text](Self::client_text) out, for a host that hands it on without
    /// copying it.
    pub fn take_client_text(&mut self) -> Option<ClientText> {
        self.client_text.take()
    }

    /// What it weighs in a receive buffer: the message, or the text made for it.
    pub fn weight(&self) -> usize {
        self.bytes.len() + self.client_text.as_ref().map_or(0, |t| t.opts.len() + t.text.len())
    }

    /// What the message is.
    pub fn kind(&self) -> &DeliveryKind {
        &self.kind
    }

    /// The message as received (empty for a broadcast delivered as its [client
    /// text](Self::client_text)).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A broadcast decoded into values (it was checked against the engine's limits already).
    pub fn decode(&self) -> Result<Broadcast, ProtocolError> {
        crate::protocol::BroadcastRef::parse_within(&self.bytes, &crate::limits::Limits::ALREADY_CHECKED)?.to_owned()
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
    /// A broadcast, request or acknowledgement from another node; they come in arrival order,
    /// one call each (a host that wants batches queues them, as the Node binding does with an
    /// [`Outbox`](crate::outbox::Outbox)).
    fn deliver(&self, delivery: Delivery);

    /// A change of connection state, or an error worth reporting.
    fn on_event(&self, event: AdapterEvent);
}

/// Turns the transport's events into a host's: an error as [`AdapterEvent::Error`], and
/// [`AdapterEvent::Ready`] only on the first confirmation after the start or an error (each
/// subscription confirms, e.g. every room channel's, and the host needs to hear it once).
#[derive(Default)]
pub(crate) struct EventFilter {
    ready_reported: AtomicBool,
}

impl EventFilter {
    /// Tells `host` what it should hear of `event`, if anything.
    pub(crate) fn forward(&self, event: &TransportEvent, host: &dyn Host) {
        if let Some(event) = self.for_host(event) {
            host.on_event(event);
        }
    }

    /// What the host should hear of `event`, if anything.
    fn for_host(&self, event: &TransportEvent) -> Option<AdapterEvent> {
        match event {
            TransportEvent::Ready if self.ready_reported.swap(true, Ordering::AcqRel) => None,
            TransportEvent::Ready => Some(AdapterEvent::Ready),
            TransportEvent::Error(message) => {
                self.ready_reported.store(false, Ordering::Release);
                Some(AdapterEvent::Error(Error::Redis(message.clone())))
            }
        }
    }
}
