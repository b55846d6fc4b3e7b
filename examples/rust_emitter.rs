//! A Rust process that is not a socket.io server emits into a socket.io cluster.
//! `cargo run --release --example rust_emitter -- [redis-url] [key] [room]`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sioadapter::protocol::{BroadcastOptions, Room};
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{Emitter, RedisConfig};

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let key = args.next().unwrap_or_else(|| "socket.io".into());
    let room = args.next();
    let transport = Arc::new(RedisTransport::connect(&RedisConfig::from_url(&url)?)?);
    let emitter = Emitter::new(transport.clone(), &key, "/");
    let opts = BroadcastOptions { rooms: room.into_iter().map(Room::from).collect(), ..Default::default() };
    emitter.emit("from-rust", vec!["hello from Rust".into(), rmpv::Value::Binary(vec![1, 2, 3])], &opts)?;
    // Publishing is queued: wait until Redis has it before leaving.
    while transport.stats().pending.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("sent from-rust");
    Ok(())
}
