//! A socketioxide server for `bench/socketioxide.js`: the same server with either Redis adapter,
//! this crate's `SioAdapter` (the official protocol) or socketioxide-redis's (its own protocol),
//! so that their cost can be compared on one workload.
//!
//! `socketioxide_bench <sioadapter|socketioxide-redis> <redis-url> <key> <port>` prints
//! `LISTENING <port>` once it serves, then reads commands on stdin, one per line:
//! `emit <event> <small|large> <n> <chunk>` broadcasts `n` times to every socket of the cluster,
//! `chunk` per turn of the scheduler, and prints `EMITTED <first> <last>` (wall-clock ms of the
//! first and the last broadcast).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sioadapter::AdapterConfig;
use sioadapter_socketioxide::{SioAdapter, SioAdapterCtr};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The benchmark's payloads by name, as bench/node.js makes them.
fn payload(name: &str) -> Value {
    match name {
        "large" => Value::String("x".repeat(10 * 1024)),
        _ => json!({ "user": "alice", "room": "lobby", "text": "hello from the emitting node, how are you?", "seq": 42, "ts": 1_700_000_000_000u64 }),
    }
}

/// The clients only listen.
async fn on_connect<A: Adapter>(_socket: SocketRef<A>) {}

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Serves `layer` on `port` and carries out the commands of stdin on `io`.
async fn run<A: Adapter>(io: SocketIo<A>, layer: socketioxide::layer::SocketIoLayer<A>, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("LISTENING {}", listener.local_addr()?.port());
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().layer(layer)).await });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["emit", event, name, n, chunk] = words[..] else {
            eprintln!("unknown command: {line}");
            continue;
        };
        let (n, chunk): (usize, usize) = (n.parse()?, chunk.parse::<usize>()?.max(1));
        let data = payload(name);
        let first = wall_ms();
        for i in 0..n {
            if let Err(err) = io.emit(event, &data).await {
                eprintln!("emit: {err}");
            }
            if (i + 1) % chunk == 0 {
                tokio::task::yield_now().await;
            }
        }
        println!("EMITTED {first} {}", wall_ms());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [adapter, url, key, port] = &args[..] else {
        return Err("usage: socketioxide_bench <sioadapter|socketioxide-redis> <redis-url> <key> <port>".into());
    };
    let port: u16 = port.parse()?;
    // socketioxide drops a packet for a client whose queue is full (128 packets by default), where
    // Node queues without bound: room for the benchmark's bursts, for either adapter.
    let builder = || SocketIo::builder().max_buffer_size(1 << 16);
    match adapter.as_str() {
        "sioadapter" => {
            let state = SioAdapterCtr::with_config(url, AdapterConfig::default().with_key(key))?;
            let (layer, io) = builder().with_adapter::<SioAdapter<_>>(state).build_layer();
            io.ns("/", on_connect);
            run(io, layer, port).await
        }
        "socketioxide-redis" => {
            // Its redis driver needs RESP3 (push messages).
            let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
            let state = RedisAdapterCtr::new_with_redis_config(&client, RedisAdapterConfig::new().with_prefix(key.clone())).await?;
            let (layer, io) = builder().with_adapter::<RedisAdapter<_>>(state).build_layer();
            io.ns("/", on_connect).await?;
            run(io, layer, port).await
        }
        other => Err(format!("unknown adapter {other}: sioadapter or socketioxide-redis").into()),
    }
}
