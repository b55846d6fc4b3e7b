//! A Rust process that is not a socket.io server emits into a socket.io cluster: of classic
//! adapters (`createAdapter`), or, with a subscription mode, of sharded adapters
//! (`createShardedAdapter`, on a Redis Cluster or a single Redis ≥ 7).
//! `cargo run --release --example rust_emitter -- [redis-url] [key] [room] [static|dynamic|dynamic-private]`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use sioadapter::protocol::{BroadcastOptions, Room};
use sioadapter::sharded::SubscriptionMode;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{Emitter, RedisConfig, ShardedEmitter};

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let key = args.next().unwrap_or_else(|| "socket.io".into());
    let room = args.next().filter(|room| !room.is_empty());
    let mode = args.next().map(|mode| SubscriptionMode::parse(&mode)).transpose()?;
    let mut config = RedisConfig::from_url(&url)?;
    // The sharded adapters listen with SSUBSCRIBE: publish with SPUBLISH.
    config.sharded = mode.is_some();
    let transport = Arc::new(RedisTransport::connect(&config)?);
    let opts = BroadcastOptions { rooms: room.into_iter().map(Room::from).collect(), ..Default::default() };
    let args = vec!["hello from Rust".into(), Value::Binary(vec![1, 2, 3])];
    match mode {
        // `key` is the sharded nodes' channelPrefix.
        Some(mode) => ShardedEmitter::new(transport.clone(), &key, "/", mode).emit("from-rust", args, &opts)?,
        None => Emitter::new(transport.clone(), &key, "/").emit("from-rust", args, &opts)?,
    }
    // Publishing is queued: wait until Redis has it before leaving.
    while transport.stats().pending.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("sent from-rust");
    Ok(())
}
