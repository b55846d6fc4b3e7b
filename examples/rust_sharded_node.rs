//! A Rust program takes part in a cluster of sharded adapters (`createShardedAdapter`, official or
//! sioadapter's, on a Redis Cluster or a single Redis ≥ 7): it subscribes to the namespace's shard
//! channels with a `ShardedAdapter`, prints the broadcasts of the other nodes, and broadcasts to
//! their clients. The messages are socket.io's ClusterAdapter messages (JSON, or msgpack when they
//! carry binary): the engine delivers them checked, and their meaning is the host's (here, only
//! broadcasts). Runs until its standard input closes.
//! `cargo run --release --example rust_sharded_node -- [redis-url] [channel-prefix] [static|dynamic|dynamic-private]`

use std::io::BufRead;
use std::sync::Arc;

use sioadapter::limits::Limits;
use sioadapter::protocol::{cluster, msgpack, new_uid, BroadcastOptions, Packet};
use sioadapter::sharded::{ShardedAdapter, SubscriptionMode};
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{AdapterEvent, Delivery, DeliveryKind, Host, RedisConfig};

/// Prints the other nodes' broadcasts.
struct Printer {
    uid: String,
    ready: tokio::sync::Notify,
}

impl Host for Printer {
    fn deliver(&self, delivery: Delivery) {
        if *delivery.kind() != DeliveryKind::ClusterMessage {
            return;
        }
        let bytes = delivery.bytes();
        let message = match bytes.first() {
            Some(b'{') => serde_json::from_slice(bytes).unwrap_or_default(),
            _ => msgpack::from_slice(bytes).map(|value| msgpack::to_json(&value)).unwrap_or_default(),
        };
        // Its own messages come back too; a BROADCAST is type 3.
        if message["uid"] != self.uid.as_str() && message["type"] == 3 && message["nsp"] == "/" {
            println!("BROADCAST {}", message["data"]["packet"]["data"][0]);
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        if let AdapterEvent::Error(err) = &event {
            eprintln!("sharded adapter error: {err}");
        }
        if event == AdapterEvent::Ready {
            self.ready.notify_one();
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &'static str| args.get(i).map_or(default, String::as_str);
    let (url, prefix) = (arg(0, "redis://127.0.0.1:6379"), arg(1, "socket.io"));
    let mode = SubscriptionMode::parse(arg(2, "dynamic"))?;
    let mut config = RedisConfig::from_url(url)?;
    config.sharded = true;
    let transport = Arc::new(RedisTransport::connect(&config)?);
    let host = Arc::new(Printer { uid: new_uid(), ready: tokio::sync::Notify::new() });
    let adapter = ShardedAdapter::new("/", prefix, &host.uid, mode, Limits::default(), transport, host.clone());
    host.ready.notified().await;
    println!("READY {} nodes", adapter.server_count().await?);
    // A broadcast to every client of the namespace, as a ClusterAdapter node sends it.
    let message = cluster::broadcast_message(&Packet::event("/", "from-rust-node", vec!["hello from a Rust node".into()]), &BroadcastOptions::default(), &host.uid, "/")?;
    adapter.publish(None, message)?;
    println!("SENT");
    // Serve until stdin closes.
    tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {}).await.ok();
    adapter.close().await
}
