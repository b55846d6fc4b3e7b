//! Publishes N broadcasts with the Rust emitter as fast as the transport takes them and prints
//! messages/s (pipelined publishing). Usage:
//! `cargo run --release --example emitter_bench -- [N] [payload bytes]` (REDIS_URL honoured).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sioadapter::protocol::BroadcastOptions;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{Emitter, RedisConfig};

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config = RedisConfig::from_url(&url)?;
    // Everything is enqueued at once: the queue must hold it all.
    config.max_queued_publishes = n as usize + 1;
    config.max_queued_bytes = usize::MAX;
    let transport = Arc::new(RedisTransport::connect(&config)?);
    let emitter = Emitter::new(transport.clone(), &format!("bench-emitter-{}", std::process::id()), "/");
    let payload = "x".repeat(size);
    let opts = BroadcastOptions::default();
    let start = Instant::now();
    for _ in 0..n {
        emitter.emit("m", vec![payload.as_str().into()], &opts)?;
    }
    let enqueued = start.elapsed();
    while transport.stats().pending.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let total = start.elapsed();
    let stats = transport.stats();
    println!(
        "emitter: {n} messages of {size} B payload in {:.3} s = {:.0} msg/s (enqueue {:.0} msg/s; published {}, dropped {})",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        n as f64 / enqueued.as_secs_f64(),
        stats.published.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed)
    );
    Ok(())
}
