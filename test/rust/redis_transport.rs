//! The Rust engine against a real Redis (REDIS_URL, default 127.0.0.1:6379): broadcasts,
//! requests and malformed input crossing two nodes, each with its own connections.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::value::RawValue;
use sioadapter::adapter::Reply;
use sioadapter::protocol::{BroadcastOptions, Packet, Room};
use sioadapter::transport::redis::RedisTransport;
use sioadapter::{Adapter, AdapterConfig, AdapterEvent, Delivery, DeliveryKind, Host, RedisConfig};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Records broadcasts and answers ALL_ROOMS with `rooms`.
#[derive(Default)]
struct TestHost {
    adapter: OnceLock<Adapter>,
    rooms: &'static str,
    broadcasts: Mutex<Vec<sioadapter::protocol::Broadcast>>,
    ready: Mutex<bool>,
}

impl Host for TestHost {
    fn deliver(&self, batch: Vec<Delivery>) {
        for d in batch {
            match d.kind() {
                DeliveryKind::Broadcast => self.broadcasts.lock().unwrap().push(d.decode().unwrap()),
                DeliveryKind::Request(h) => {
                    let items = RawValue::from_string(self.rooms.to_owned()).unwrap();
                    let adapter = self.adapter.get().unwrap();
                    adapter.respond(h.kind, h.request_id.as_deref().unwrap_or(""), h.uid.as_deref(), Reply::List(Some(items))).unwrap();
                }
                _ => {}
            }
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        if event == AdapterEvent::Ready {
            *self.ready.lock().unwrap() = true;
        }
    }
}

async fn node(key: &str, rooms: &'static str) -> (Adapter, Arc<TestHost>) {
    let transport = Arc::new(RedisTransport::connect(&RedisConfig::from_url(&redis_url()).unwrap()).unwrap());
    let host = Arc::new(TestHost { rooms, ..Default::default() });
    let adapter = Adapter::new("/", &AdapterConfig::default().with_key(key), transport, host.clone());
    host.adapter.set(adapter.clone()).ok();
    wait_for(|| *host.ready.lock().unwrap()).await;
    (adapter, host)
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}

fn unique_key(name: &str) -> String {
    format!("rust-{name}-{}-{}", std::process::id(), sioadapter::protocol::new_uid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_crosses_redis_and_skips_rooms_without_local_sockets() {
    let key = unique_key("bcast");
    let (a, _) = node(&key, "[]").await;
    let (b, host_b) = node(&key, "[]").await;
    let to_room = BroadcastOptions { rooms: vec![Room::from("r1")], ..Default::default() };
    a.broadcast(&Packet::event("/", "skipped", vec![]), &to_room).unwrap();
    wait_for(|| b.stats().skipped == 1).await;
    b.room_created("r1");
    a.broadcast(&Packet::event("/", "hello", vec!["world".into(), rmpv::Value::Binary(vec![1, 2])]), &to_room).unwrap();
    wait_for(|| !host_b.broadcasts.lock().unwrap().is_empty()).await;
    let got = host_b.broadcasts.lock().unwrap()[0].clone();
    assert_eq!(got.packet.data[0], rmpv::Value::from("hello"));
    assert_eq!(got.packet.data[2], rmpv::Value::Binary(vec![1, 2]));
    assert_eq!(host_b.broadcasts.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_rooms_is_answered_by_the_other_node_through_redis() {
    let key = unique_key("rooms");
    let (a, _) = node(&key, "[]").await;
    let (_b, _) = node(&key, r#"["b-room"]"#).await;
    assert_eq!(a.server_count().await.unwrap(), 2);
    let outcome = a.all_rooms().await.unwrap();
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.items, vec![serde_json::Value::from("b-room")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_published_raw_are_dropped_and_later_messages_arrive() {
    let key = unique_key("bad");
    let (a, _) = node(&key, "[]").await;
    let (b, host_b) = node(&key, "[]").await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let bad: [&[u8]; 6] = [b"", b"\xc1", b"\x93\xa1a", b"garbage", b"\xdb\xff\xff\xff\xff", b"{\"type\":1"];
    for payload in bad {
        for channel in [format!("{key}#/#"), format!("{key}-request#/#"), format!("{key}-response#/#")] {
            let _: i64 = redis::cmd("PUBLISH").arg(&channel).arg(payload).query_async(&mut conn).await.unwrap();
        }
    }
    a.broadcast(&Packet::event("/", "after", vec![]), &BroadcastOptions::default()).unwrap();
    wait_for(|| !host_b.broadcasts.lock().unwrap().is_empty()).await;
    assert_eq!(b.stats().malformed, 18);
}
