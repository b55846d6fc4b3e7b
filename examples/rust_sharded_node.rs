//! A Rust program hosting its own sockets is a node of a cluster of sharded adapters
//! (`createShardedAdapter`, official or sioadapter's, on a Redis Cluster or a single Redis ≥ 7)
//! through a [`ShardedNode`]: the core runs socket.io's ClusterAdapter protocol, and the host
//! sees what a classic host sees (broadcasts, requests to answer). It answers the other nodes'
//! `fetchSockets()`, prints their broadcasts, counts the nodes, fetches their sockets and
//! broadcasts to their clients. Runs until its standard input closes.
//! `cargo run --release --example rust_sharded_node -- [redis-url] [channel-prefix] [static|dynamic|dynamic-private]`

use std::io::BufRead;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use sioadapter::adapter::Reply;
use sioadapter::protocol::request::{RequestType, Targets};
use sioadapter::protocol::{BroadcastOptions, Packet};
use sioadapter::sharded::SubscriptionMode;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{AdapterConfig, AdapterEvent, Delivery, DeliveryKind, Host, RedisConfig, ShardedNode};

/// The local "server": one socket in a fixed room.
struct RustHost {
    node: OnceLock<ShardedNode>,
    ready: tokio::sync::Notify,
}

const SOCKETS: &str = r#"[{"id":"rust-sock-1","handshake":{"headers":{},"time":"","address":"rust-host","xdomain":false,"secure":false,"issued":0,"url":"/","query":{},"auth":{}},"rooms":["rust-sock-1","rust-room"],"data":{"lang":"Rust"}}]"#;

impl Host for RustHost {
    fn deliver(&self, delivery: Delivery) {
        let Some(node) = self.node.get() else {
            return;
        };
        match delivery.kind() {
            DeliveryKind::Broadcast => {
                if let Ok(message) = delivery.decode() {
                    println!("BROADCAST {:?}", message.packet.data.first().and_then(|v| v.as_str()).unwrap_or(""));
                }
            }
            DeliveryKind::Request(request) if request.kind == RequestType::RemoteFetch => {
                let (Some(id), items) = (request.request_id.as_deref(), RawValue::from_string(SOCKETS.to_owned()).ok()) else {
                    return;
                };
                if let Err(err) = node.respond(request.kind, id, request.uid.as_deref(), Reply::List(items)) {
                    eprintln!("respond: {err}");
                }
            }
            // Joins, leaves, disconnects and server-side emits are not served by this host.
            _ => {}
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        match event {
            AdapterEvent::Ready => self.ready.notify_one(),
            AdapterEvent::Error(err) => eprintln!("sharded node error: {err}"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &'static str| args.get(i).map_or(default, String::as_str);
    let (url, prefix) = (arg(0, "redis://127.0.0.1:6379"), arg(1, "socket.io"));
    let mode = SubscriptionMode::parse(arg(2, "dynamic"))?;
    let mut redis = RedisConfig::from_url(url)?;
    redis.sharded = true;
    let transport = Arc::new(RedisTransport::connect(&redis)?);
    let host = Arc::new(RustHost { node: OnceLock::new(), ready: tokio::sync::Notify::new() });
    let node = ShardedNode::new("/", &AdapterConfig::default().with_key(prefix), mode, transport, host.clone());
    host.node.set(node.clone()).ok();
    host.ready.notified().await;
    for room in ["rust-sock-1", "rust-room"] {
        node.room_created(room);
    }
    node.rooms_synced().await;
    println!("READY {} nodes", node.server_count().await?);
    let everybody = RawValue::from_string("[]".to_owned()).expect("JSON");
    let sockets = node.fetch_sockets(&Targets { rooms: &everybody, except: &everybody }, None).await?.into_result()?;
    println!("FETCHED {}", serde_json::to_string(&sockets).expect("JSON text serializes"));
    // A broadcast to every client of the namespace.
    node.broadcast(&Packet::event("/", "from-rust-node", vec!["hello from a Rust node".into()]), &BroadcastOptions::default())?;
    println!("SENT");
    // Serve until stdin closes.
    tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {}).await.ok();
    node.close().await
}
