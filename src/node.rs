//! A node of either kind of cluster, for a host that serves its own sockets (the C library, the
//! socketioxide adapter): the classic adapter's protocol ([`Adapter`], Node's `createAdapter`)
//! or the sharded adapter's ([`ShardedNode`], Node's `createShardedAdapter`), behind one type.
//! Both hand the host deliveries of the same kinds and take answers of the same kinds, so a
//! host written for one serves the other (the sharded protocol has fewer requests: no allRooms,
//! no sockets-by-room, no legacy single-socket forms; and every answer names its requester).

use std::time::Duration;

use serde_json::value::RawValue;

use crate::adapter::{AdapterStats, Reply};
use crate::error::Error;
use crate::protocol::request::{RequestType, Targets};
use crate::protocol::{BroadcastOptions, Packet};
use crate::requests::Outcome;
use crate::{Adapter, ShardedNode};

/// One namespace of a server in a classic or a sharded cluster. Cloning shares it.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClusterNode {
    /// The classic adapter's protocol (`createAdapter`).
    Classic(Adapter),
    /// The sharded adapter's protocol (`createShardedAdapter`).
    Sharded(ShardedNode),
}

/// Runs `$body` with `$node` bound to the engine of either protocol (their methods share names
/// and signatures).
macro_rules! on_node {
    ($self:expr, $node:ident => $body:expr) => {
        match $self {
            ClusterNode::Classic($node) => $body,
            ClusterNode::Sharded($node) => $body,
        }
    };
}

impl ClusterNode {
    /// This node's uid.
    pub fn uid(&self) -> &str {
        on_node!(self, n => n.uid())
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        on_node!(self, n => n.namespace())
    }

    /// Counters since creation.
    pub fn stats(&self) -> AdapterStats {
        on_node!(self, n => n.stats())
    }

    /// Broadcasts `packet` to the sockets selected by `opts` on the other nodes (delivering to
    /// the local sockets is the host's business).
    pub fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), Error> {
        on_node!(self, n => n.broadcast(packet, opts))
    }

    /// A broadcast with acknowledgements, as request `request_id`; the other nodes' client counts
    /// and acks come as [`DeliveryKind::AckResponse`](crate::DeliveryKind::AckResponse)
    /// deliveries for `timeout` ([`Adapter::broadcast_with_ack`],
    /// [`ShardedNode::broadcast_with_ack`]).
    pub fn broadcast_with_ack(&self, request_id: &str, packet: &Packet, opts: &BroadcastOptions, timeout: Duration) -> Result<(), Error> {
        on_node!(self, n => n.broadcast_with_ack(request_id, packet, opts, timeout))
    }

    /// Answers another node's request ([`Adapter::respond`], [`ShardedNode::respond`]).
    pub fn respond(&self, kind: RequestType, request_id: &str, requester: Option<&str>, reply: Reply) -> Result<(), Error> {
        on_node!(self, n => n.respond(kind, request_id, requester, reply))
    }

    /// `fetchSockets()` on the other nodes; `timeout` overrides the requests timeout.
    pub async fn fetch_sockets(&self, targets: &Targets<'_>, timeout: Option<Duration>) -> Result<Outcome, Error> {
        on_node!(self, n => n.fetch_sockets(targets, timeout).await)
    }

    /// The rooms of every other node, socket ids included. Classic: each node's answer, one
    /// after the other (a room of two nodes comes twice), timing out with the classic text.
    /// Sharded: gathered from a fetchSockets of every socket, each room once, timing out with the
    /// fetch's text ([`ShardedNode::all_rooms`], which says what it costs).
    pub async fn all_rooms(&self) -> Result<Outcome, Error> {
        on_node!(self, n => n.all_rooms().await)
    }

    /// `serverSideEmit(...)` without acknowledgement (`data` = `[event, ...args]` as JSON).
    pub fn server_side_emit(&self, data: &RawValue) -> Result<(), Error> {
        on_node!(self, n => n.server_side_emit(data))
    }

    /// `serverSideEmit(...)` with an acknowledgement: the first ack argument of every other node.
    pub async fn server_side_emit_with_ack(&self, data: &RawValue) -> Result<Outcome, Error> {
        on_node!(self, n => n.server_side_emit_with_ack(data).await)
    }

    /// `socketsJoin(rooms)` on the other nodes.
    pub fn sockets_join(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        on_node!(self, n => n.sockets_join(targets, rooms))
    }

    /// `socketsLeave(rooms)` on the other nodes.
    pub fn sockets_leave(&self, targets: &Targets<'_>, rooms: &RawValue) -> Result<(), Error> {
        on_node!(self, n => n.sockets_leave(targets, rooms))
    }

    /// `disconnectSockets(close)` on the other nodes.
    pub fn disconnect_sockets(&self, targets: &Targets<'_>, close: bool) -> Result<(), Error> {
        on_node!(self, n => n.disconnect_sockets(targets, close))
    }

    /// Nodes serving the namespace, this one included.
    pub async fn server_count(&self) -> Result<usize, Error> {
        on_node!(self, n => n.server_count().await)
    }

    /// Reports that a local socket is now in `room` (socket ids are rooms too).
    pub fn room_created(&self, room: &str) {
        on_node!(self, n => n.room_created(room))
    }

    /// Reports that the last local socket left `room`.
    pub fn room_deleted(&self, room: &str) {
        on_node!(self, n => n.room_deleted(room))
    }

    /// Ends the waiting requests and unsubscribes; nothing is delivered afterwards.
    pub async fn close(&self) -> Result<(), Error> {
        on_node!(self, n => n.close().await)
    }
}
