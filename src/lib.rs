//! # sioadapter
//!
//! The socket.io Redis adapter protocol in Rust, wire-compatible with
//! `@socket.io/redis-adapter` 8.x and `@socket.io/redis-emitter` 5.x, so that official Node
//! nodes and nodes built on this crate form one cluster.
//!
//! ## How it works
//!
//! Every socket.io server ("node") runs one [`Adapter`] per namespace. A broadcast that must
//! reach sockets on other nodes is encoded as the msgpack array `[uid, packet, opts]` (byte for
//! byte as notepack.io writes it, see [`protocol`]) and PUBLISHed on `K#N#` — or `K#N#R#` when
//! it targets exactly one room (see [`channels`]). Every node PSUBSCRIBEs `K#N#*`, drops its own
//! echo (same uid), drops single-room messages for rooms it has no socket in before decoding,
//! validates the rest and hands them to its [`Host`] (the local socket.io server) in batches.
//!
//! Cluster requests (`allRooms`, `fetchSockets`, `serverSideEmit` with ack, ...) are JSON
//! messages on `K-request#N#`; every other node answers on `K-response#N#` (or the requester's
//! own `K-response#N#U#`), and [`requests`] correlates the answers, counts them against
//! `PUBSUB NUMSUB` and times them out with the official error texts.
//!
//! The [`transport`] layer owns the Redis connections (one to publish, pipelined behind a
//! bounded queue; one RESP3 connection to subscribe, resubscribed after reconnects) and is
//! shared by the namespaces of a node.
//!
//! ## What to use
//!
//! | a server or program that... | classic adapters (`createAdapter`) | sharded adapters (`createShardedAdapter`) |
//! |---|---|---|
//! | hosts sockets (a node) | [`Adapter`] | [`ShardedNode`] (or the bare [`sharded::ShardedAdapter`] engine under a host that runs socket.io's ClusterAdapter itself, as the Node binding does) |
//! | only emits | [`Emitter`] | [`ShardedEmitter`] |
//!
//! Their options, beside the official adapter's: [`AdapterConfig`] (`key`/`channelPrefix`,
//! `requestsTimeout`, `publishOnSpecificResponseChannel`, `perRoomSubscriptions`, `parser` as
//! [`AdapterConfig::json_parser`] or [`AdapterConfig::host_parser`], [`limits`]),
//! [`sharded::SubscriptionMode`] (`subscriptionMode`), [`RedisConfig`] (URL forms, Sentinel,
//! Cluster, TLS, queue bounds). The C API (`include/sioadapter.h`) offers the same through
//! `sio_adapter_options`, `sio_sharded_options`, `sio_emitter_options` and `sio_limits`; the
//! README's "Every option and door" table sets every door beside the official packages.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tls` | on | `rediss://`, and TLS to Sentinel and Cluster nodes (rustls, ring) |
//! | `sentinel` | on | `redis+sentinel://`: following the primary Sentinel names |
//! | `cluster` | on | `redis+cluster://`: classic and sharded pub/sub on a Redis Cluster (the redis crate's cluster client) |
//! | `c-api` | off | the C ABI (`ffi`), for `bindings/c`'s `libsioadapter.so` |
//!
//! A URL that needs a feature the build leaves out is refused by [`endpoint::Endpoint::parse`]
//! with an [`error::Error::InvalidOption`] naming the feature ([`endpoint::Feature`]).

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod adapter;
pub mod channels;
pub mod config;
pub mod emitter;
pub mod endpoint;
pub mod error;
#[cfg(feature = "c-api")]
#[allow(unsafe_code)]
pub mod ffi;
/// Without the C API (feature `c-api`), only the FFI layer's allocator hook is built.
#[cfg(not(feature = "c-api"))]
#[allow(unsafe_code)]
mod ffi {
    pub(crate) mod heap;
}
pub mod host;
pub mod limits;
pub mod log;
mod namespace;
pub mod node;
pub mod outbox;
pub mod protocol;
pub mod requests;
mod room_channels;
pub mod sharded;
pub mod sharded_node;
pub mod transport;

pub use adapter::{Adapter, AdapterStats};
pub use config::{AdapterConfig, RedisConfig};
pub use emitter::{Emitter, ShardedEmitter};
pub use error::Error;
pub use ffi::heap::release_free_memory;
pub use host::{AdapterEvent, Delivery, DeliveryKind, Host};
pub use node::ClusterNode;
pub use requests::Outcome;
pub use sharded_node::ShardedNode;

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
