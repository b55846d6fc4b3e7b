//! A Rust program hosting its own sockets takes part in a socket.io cluster: it answers the
//! other nodes' `fetchSockets()` and `allRooms()`, prints their broadcasts, and asks the
//! cluster for its rooms. Runs until its standard input closes. With `per-room`, it subscribes
//! to the channels of its rooms instead of every broadcast of the namespace
//! (`perRoomSubscriptions`): Redis then sends it only the single-room broadcasts it can deliver.
//! `cargo run --release --example rust_host -- [redis-url] [key] [per-room]`

use std::io::BufRead;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use sioadapter::adapter::Reply;
use sioadapter::protocol::request::RequestType;
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, DeliveryKind, Host, RedisConfig};

/// The local "server": two sockets in fixed rooms.
struct RustHost {
    adapter: OnceLock<Adapter>,
    ready: tokio::sync::Notify,
}

const SOCKETS: &str = r#"[{"id":"rust-sock-1","handshake":{"headers":{},"time":"","address":"rust-host","xdomain":false,"secure":false,"issued":0,"url":"/","query":{},"auth":{}},"rooms":["rust-sock-1","rust-room"],"data":{"lang":"Rust"}}]"#;

impl Host for RustHost {
    fn deliver(&self, delivery: Delivery) {
        let Some(adapter) = self.adapter.get() else {
            return;
        };
        match delivery.kind() {
            DeliveryKind::Broadcast => {
                if let Ok(message) = delivery.decode() {
                    println!("BROADCAST {:?}", message.packet.data.first().and_then(|v| v.as_str()).unwrap_or(""));
                }
            }
            DeliveryKind::Request(request) => {
                let answer = match request.kind {
                    RequestType::AllRooms => r#"["rust-sock-1","rust-room"]"#,
                    RequestType::RemoteFetch => SOCKETS,
                    _ => return,
                };
                let Some(id) = request.request_id.as_deref() else {
                    return;
                };
                let items = RawValue::from_string(answer.to_owned()).ok();
                if let Err(err) = adapter.respond(request.kind, id, request.uid.as_deref(), Reply::List(items)) {
                    eprintln!("respond: {err}");
                }
            }
            // Acks of broadcasts this host did not send with ack; sharded-protocol messages.
            _ => {}
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        match event {
            AdapterEvent::Ready => self.ready.notify_one(),
            AdapterEvent::Error(err) => eprintln!("adapter error: {err}"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), sioadapter::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let key = args.next().unwrap_or_else(|| "socket.io".into());
    let per_room = args.next().as_deref() == Some("per-room");
    let transport = Arc::new(RedisTransport::connect(&RedisConfig::from_url(&url)?)?);
    let host = Arc::new(RustHost { adapter: OnceLock::new(), ready: tokio::sync::Notify::new() });
    let config = AdapterConfig::default().with_key(&key).with_per_room_subscriptions(per_room);
    let adapter = Adapter::new("/", &config, transport, host.clone());
    host.adapter.set(adapter.clone()).ok();
    host.ready.notified().await;
    for room in ["rust-sock-1", "rust-room"] {
        adapter.room_created(room);
    }
    // With per-room subscriptions, the rooms' channels are subscribed once this resolves.
    adapter.rooms_synced().await;
    println!("READY {}", adapter.uid());
    let rooms = adapter.all_rooms().await?.into_result()?;
    println!("ALL_ROOMS {}", serde_json::to_string(&rooms).expect("JSON text serializes"));
    // Serve until stdin closes.
    tokio::task::spawn_blocking(|| for _ in std::io::stdin().lock().lines() {}).await.ok();
    adapter.close().await
}
