//! The sharded adapter's engine (`sioadapter::sharded::ShardedAdapter`) on the in-memory broker,
//! through its public API only: what reaches which node on the main, response and room channels,
//! the subscription modes, the node count, the limits on what arrives and leaves, and the end of
//! an engine, closed or dropped.
//!
//! The memory broker delivers synchronously, but nothing here relies on it: what must arrive is
//! waited for with a bounded poll ([`wait_for`]), and what must not arrive is checked after a
//! later marker message reached the same node (the broker keeps the order of one publisher's
//! messages, as Redis does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sioadapter::limits::{DropKind, Limits};
use sioadapter::sharded::{ShardedAdapter, SubscriptionMode};
use sioadapter::transport::memory::{MemoryBroker, MemoryTransport};
use sioadapter::transport::Transport;
use sioadapter::{AdapterEvent, Delivery, DeliveryKind, Error, Host};

const PREFIX: &str = "p";
const NSP: &str = "/";
const UID_A: &str = "aaaaaaaaaaaaaaaa";
const UID_B: &str = "bbbbbbbbbbbbbbbb";
const UID_C: &str = "cccccccccccccccc";
const UID_D: &str = "dddddddddddddddd";
/// The main channel of namespace `/` with prefix `p`.
const MAIN: &str = "p#/#";

/// Records what the engine hands to the local server.
#[derive(Default)]
struct Recorder {
    delivered: Mutex<Vec<(DeliveryKind, Vec<u8>)>>,
    events: Mutex<Vec<AdapterEvent>>,
}

impl Host for Recorder {
    fn deliver(&self, d: Delivery) {
        self.delivered.lock().unwrap().push((d.kind().clone(), d.bytes().to_vec()));
    }

    fn on_event(&self, event: AdapterEvent) {
        self.events.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn delivered(&self) -> Vec<(DeliveryKind, Vec<u8>)> {
        self.delivered.lock().unwrap().clone()
    }

    fn has(&self, kind: &DeliveryKind, bytes: &[u8]) -> bool {
        self.delivered.lock().unwrap().iter().any(|(k, b)| k == kind && b == bytes)
    }

    fn count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    /// The codes of the errors reported so far, in order.
    fn error_codes(&self) -> Vec<String> {
        self.events.lock().unwrap().iter().filter_map(|e| if let AdapterEvent::Error(err) = e { Some(code(err)) } else { None }).collect()
    }

    fn ready_count(&self) -> usize {
        self.events.lock().unwrap().iter().filter(|e| **e == AdapterEvent::Ready).count()
    }
}

/// The stable code of `err`, as JS sees it on `err.code`.
fn code(err: &Error) -> String {
    err.code().to_string()
}

/// One node: an engine of namespace `/` on its own connection to `broker`.
struct Node {
    engine: ShardedAdapter,
    host: Arc<Recorder>,
}

fn node_with(broker: &MemoryBroker, nsp: &str, uid: &str, mode: SubscriptionMode, limits: Limits) -> Node {
    let host = Arc::new(Recorder::default());
    let engine = ShardedAdapter::new(nsp, PREFIX, uid, mode, limits, Arc::new(broker.connect()), host.clone());
    Node { engine, host }
}

fn node(broker: &MemoryBroker, uid: &str, mode: SubscriptionMode) -> Node {
    node_with(broker, NSP, uid, mode, Limits::default())
}

/// Polls `condition` every 5 ms for up to 2 s; panics naming `what` when it never holds.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if condition() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("not within 2 s: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `node` is subscribed (its host heard Ready).
async fn ready(node: &Node) {
    wait_for("the engine reports Ready", || node.host.ready_count() >= 1).await;
}

/// A ClusterAdapter message as socket.io writes it in JSON (`type` 9 is SERVER_SIDE_EMIT,
/// whose `data.packet` is the event and its arguments).
fn message(uid: &str, data: &str) -> Vec<u8> {
    format!(r#"{{"uid":"{uid}","type":9,"data":{{"packet":["ev","{data}"]}},"nsp":"/"}}"#).into_bytes()
}

/// A message of exactly `len` bytes.
fn message_of_len(uid: &str, len: usize) -> Vec<u8> {
    let base = message(uid, "").len();
    let bytes = message(uid, &"x".repeat(len - base));
    assert_eq!(bytes.len(), len);
    bytes
}

/// Publishes `marker` from `from` on the main channel and waits until `to` received it: whatever
/// `from` published before has been handled by `to` by then.
async fn barrier(from: &ShardedAdapter, to: &Recorder, marker: &str) {
    let bytes = message(UID_A, marker);
    from.publish(None, bytes.clone()).unwrap();
    wait_for(&format!("marker {marker} arrives"), || to.has(&DeliveryKind::ClusterMessage, &bytes)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_on_the_main_channel_reaches_every_node_of_the_namespace_sender_included() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Static);
    let b = node(&broker, UID_B, SubscriptionMode::Static);
    let admin = node_with(&broker, "/admin", UID_C, SubscriptionMode::Static, Limits::default());
    let other_prefix = {
        let host = Arc::new(Recorder::default());
        let engine = ShardedAdapter::new(NSP, "q", UID_D, SubscriptionMode::Static, Limits::default(), Arc::new(broker.connect()), host.clone());
        Node { engine, host }
    };
    for n in [&a, &b, &admin, &other_prefix] {
        ready(n).await;
    }

    let json = message(UID_A, "hello");
    // With binary data socket.io's ClusterAdapter writes msgpack:
    // {uid, type: 9, data: {packet: ["ev", <bin 1 2 3>]}}.
    let mut msgpack = vec![0x83, 0xa3, b'u', b'i', b'd', 0xb0];
    msgpack.extend_from_slice(UID_A.as_bytes());
    msgpack.extend_from_slice(&[0xa4, b't', b'y', b'p', b'e', 0x09]);
    msgpack.extend_from_slice(&[0xa4, b'd', b'a', b't', b'a', 0x81, 0xa6, b'p', b'a', b'c', b'k', b'e', b't', 0x92, 0xa2, b'e', b'v', 0xc4, 0x03, 1, 2, 3]);
    a.engine.publish(None, json.clone()).unwrap();
    a.engine.publish(None, msgpack.clone()).unwrap();

    let expected = vec![(DeliveryKind::ClusterMessage, json.clone()), (DeliveryKind::ClusterMessage, msgpack.clone())];
    wait_for("B gets both messages", || b.host.count() >= 2).await;
    assert_eq!(b.host.delivered(), expected, "as published, in order, as ClusterMessage");
    // The engine does not filter its own uid (the host's ClusterAdapter does): A hears its echo.
    wait_for("A gets its own echo", || a.host.count() >= 2).await;
    assert_eq!(a.host.delivered(), expected);

    // Another namespace and another prefix have other channels.
    barrier(&admin.engine, &admin.host, "admin-marker").await;
    assert_eq!(admin.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "admin-marker"))]);
    barrier(&other_prefix.engine, &other_prefix.host, "q-marker").await;
    assert_eq!(other_prefix.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "q-marker"))]);
    assert!(b.host.error_codes().is_empty() && a.host.error_codes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_reaches_only_its_requester() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Static);
    let b = node(&broker, UID_B, SubscriptionMode::Static);
    let c = node(&broker, UID_C, SubscriptionMode::Static);
    for n in [&a, &b, &c] {
        ready(n).await;
    }
    let response = format!(r#"{{"uid":"{UID_A}","type":10,"data":{{"requestId":"r1","packet":["x"]}},"nsp":"/"}}"#).into_bytes();
    a.engine.publish_response(UID_B, response.clone()).unwrap();
    wait_for("B gets the response", || b.host.has(&DeliveryKind::ClusterResponse, &response)).await;
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterResponse, response.clone())]);

    // Neither C nor the responder itself hears it: once a later main-channel message reached
    // them, only that one did.
    barrier(&a.engine, &c.host, "after-response").await;
    assert_eq!(c.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "after-response"))]);
    wait_for("A gets its marker", || a.host.count() >= 1).await;
    assert_eq!(a.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "after-response"))]);
    // The response channel is B's alone.
    assert_eq!(broker.publish(&format!("{MAIN}{UID_B}#"), &message(UID_C, "raw")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_modes_subscribe_the_channels_of_created_rooms_only() {
    for mode in [SubscriptionMode::Dynamic, SubscriptionMode::DynamicPrivate] {
        let broker = MemoryBroker::new();
        let a = node(&broker, UID_A, mode);
        let b = node(&broker, UID_B, mode);
        let d = node(&broker, UID_D, mode);
        for n in [&a, &b, &d] {
            ready(n).await;
        }
        b.engine.room_created("room1");
        b.engine.room_created("room1");
        b.engine.rooms_synced().await;

        let to_room = message(UID_A, "to-room1");
        a.engine.publish(Some("room1"), to_room.clone()).unwrap();
        wait_for("B gets the room message", || b.host.has(&DeliveryKind::ClusterMessage, &to_room)).await;
        barrier(&a.engine, &b.host, "after-room").await;
        assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, to_room.clone()), (DeliveryKind::ClusterMessage, message(UID_A, "after-room"))], "{mode:?}");

        // D and A never created room1: they get the main channel's marker only.
        wait_for("D gets the marker", || d.host.count() >= 1).await;
        assert_eq!(d.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "after-room"))], "{mode:?}");
        wait_for("A gets the marker", || a.host.count() >= 1).await;
        assert_eq!(a.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "after-room"))], "{mode:?}");
        // One node (one connection) listens to room1's channel, none to room2's.
        assert_eq!(broker.publish("p#/#room1#", &message(UID_C, "raw")), 1, "{mode:?}");
        assert_eq!(broker.publish("p#/#room2#", &message(UID_C, "raw")), 0, "{mode:?}");
        // Room subscriptions do not repeat the Ready event.
        assert_eq!(b.host.ready_count(), 1, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_mode_ignores_rooms() {
    let broker = MemoryBroker::new();
    // The sender is dynamic: its single-room message goes out on room1's channel.
    let a = node(&broker, UID_A, SubscriptionMode::Dynamic);
    let s = node(&broker, UID_B, SubscriptionMode::Static);
    let dynamic = node(&broker, UID_C, SubscriptionMode::Dynamic);
    for n in [&a, &s, &dynamic] {
        ready(n).await;
    }
    s.engine.room_created("room1");
    s.engine.rooms_synced().await;
    dynamic.engine.room_created("room1");
    dynamic.engine.rooms_synced().await;

    let to_room = message(UID_A, "to-room1");
    a.engine.publish(Some("room1"), to_room.clone()).unwrap();
    // The dynamic node shows the message did go out on room1's channel.
    wait_for("the dynamic node gets the room message", || dynamic.host.has(&DeliveryKind::ClusterMessage, &to_room)).await;
    barrier(&a.engine, &s.host, "after-room").await;
    assert_eq!(s.host.delivered(), vec![(DeliveryKind::ClusterMessage, message(UID_A, "after-room"))], "the static node did not subscribe room1");
    assert_eq!(broker.publish("p#/#room1#", &message(UID_D, "raw")), 1, "only the dynamic node listens to room1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_room_no_longer_receives() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Dynamic);
    let b = node(&broker, UID_B, SubscriptionMode::Dynamic);
    ready(&a).await;
    ready(&b).await;
    b.engine.room_created("room1");
    b.engine.room_created("room2");
    b.engine.rooms_synced().await;
    let before = message(UID_A, "before");
    a.engine.publish(Some("room1"), before.clone()).unwrap();
    wait_for("B gets the room message while in the room", || b.host.has(&DeliveryKind::ClusterMessage, &before)).await;

    b.engine.room_deleted("room1");
    b.engine.rooms_synced().await;
    let after = message(UID_A, "after");
    a.engine.publish(Some("room1"), after.clone()).unwrap();
    // room2 is still subscribed: its message is the marker.
    let marker = message(UID_A, "room2");
    a.engine.publish(Some("room2"), marker.clone()).unwrap();
    wait_for("B gets the room2 message", || b.host.has(&DeliveryKind::ClusterMessage, &marker)).await;
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, before), (DeliveryKind::ClusterMessage, marker)]);
    assert_eq!(broker.publish("p#/#room1#", &message(UID_C, "raw")), 0, "nobody listens to room1 any more");

    // Deleted, created and deleted again before the task ran: the last report wins.
    b.engine.room_created("room1");
    b.engine.room_deleted("room1");
    b.engine.rooms_synced().await;
    assert_eq!(broker.publish("p#/#room1#", &message(UID_C, "raw")), 0);
    // And created again, it receives again.
    b.engine.room_created("room1");
    b.engine.rooms_synced().await;
    let again = message(UID_A, "again");
    a.engine.publish(Some("room1"), again.clone()).unwrap();
    wait_for("B gets the room message after rejoining", || b.host.has(&DeliveryKind::ClusterMessage, &again)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_count_counts_the_nodes_on_the_main_channel() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Dynamic);
    let b = node(&broker, UID_B, SubscriptionMode::Static);
    let c = node(&broker, UID_C, SubscriptionMode::Dynamic);
    // Not of this namespace, or publishing only: not counted.
    let admin = node_with(&broker, "/admin", UID_D, SubscriptionMode::Static, Limits::default());
    let _publisher_only = broker.connect();
    for n in [&a, &b, &c, &admin] {
        ready(n).await;
    }
    // Room channels do not make a node count twice.
    a.engine.room_created("room1");
    a.engine.rooms_synced().await;
    for n in [&a, &b, &c] {
        assert_eq!(n.engine.server_count().await.unwrap(), 3);
    }
    assert_eq!(admin.engine.server_count().await.unwrap(), 1);

    c.engine.close().await.unwrap();
    assert_eq!(a.engine.server_count().await.unwrap(), 2);
    assert_eq!(b.engine.server_count().await.unwrap(), 2);
    a.engine.close().await.unwrap();
    assert_eq!(b.engine.server_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_arrives_over_the_limits_or_malformed_is_dropped_counted_and_reported_once_per_burst() {
    let broker = MemoryBroker::new();
    let limits = Limits { max_message_bytes: 100, max_message_values: 30, max_message_depth: 4, ..Limits::default() };
    let a = node_with(&broker, NSP, UID_A, SubscriptionMode::Static, limits);
    let b = node_with(&broker, NSP, UID_B, SubscriptionMode::Static, limits);
    ready(&a).await;
    ready(&b).await;
    let responses = format!("{MAIN}{UID_B}#");

    let too_large = message_of_len(UID_C, 200);
    let deep_json = format!(r#"{{"uid":"{UID_C}","type":3,"data":{}{},"nsp":"/"}}"#, "[".repeat(6), "]".repeat(6)).into_bytes();
    let many_json = format!(r#"{{"d":[{}]}}"#, vec!["1"; 40].join(",")).into_bytes();
    let mut deep_msgpack = vec![0x91; 10];
    deep_msgpack.push(0xc0);
    for small in [&deep_json, &many_json] {
        assert!(small.len() <= 100, "{} bytes: the test needs it under the size limit", small.len());
    }
    // Messages of the same kinds, from anyone able to publish on the channels.
    assert_eq!(broker.publish(MAIN, &too_large), 2);
    assert_eq!(broker.publish(MAIN, &[0xc1]), 2);
    assert_eq!(broker.publish(MAIN, &[]), 2);
    assert_eq!(broker.publish(MAIN, &deep_json), 2);
    assert_eq!(broker.publish(MAIN, &too_large), 2);
    assert_eq!(broker.publish(MAIN, &many_json), 2);
    assert_eq!(broker.publish(MAIN, &deep_msgpack), 2);
    assert_eq!(broker.publish(MAIN, b"garbage"), 2);
    // Well-formed, but a BROADCAST without the `opts` its host's ClusterAdapter reads.
    let lacking = format!(r#"{{"uid":"{UID_C}","type":3,"data":{{"packet":{{}}}},"nsp":"/"}}"#).into_bytes();
    assert_eq!(broker.publish(MAIN, &lacking), 2);
    assert_eq!(broker.publish(&responses, &[0xc1]), 1, "the response channel is checked too");
    assert_eq!(broker.publish(&responses, &too_large), 1);
    // Traffic goes on.
    let fine = message(UID_A, "fine");
    a.engine.publish(None, fine.clone()).unwrap();
    wait_for("B gets the message after the bad ones", || b.host.count() >= 1).await;
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, fine.clone())], "nothing bad reached the host");

    let stats = b.engine.stats();
    assert_eq!((stats.too_large, stats.malformed, stats.too_complex), (3, 5, 3), "{stats:?}");
    // A saw the main channel's share (no response channel).
    let stats = a.engine.stats();
    assert_eq!((stats.too_large, stats.malformed, stats.too_complex), (2, 4, 3), "{stats:?}");

    // One report per kind and burst, in the order the bursts started, each counting one drop.
    assert_eq!(b.host.error_codes(), ["ERR_SIO_TOO_LARGE", "ERR_SIO_MALFORMED", "ERR_SIO_TOO_COMPLEX"]);
    let kinds = [DropKind::TooLarge, DropKind::Malformed, DropKind::TooComplex];
    let reports: Vec<Error> = b.host.events.lock().unwrap().iter().filter_map(|e| if let AdapterEvent::Error(err) = e { Some(err.clone()) } else { None }).collect();
    assert_eq!(reports.len(), kinds.len());
    for (err, kind) in reports.iter().zip(kinds) {
        assert!(matches!(err, Error::Dropped { kind: k, count: 1, .. } if *k == kind), "{err:?}");
        assert_eq!(code(err), kind.code().to_string());
        assert!(err.to_string().contains(MAIN), "the report names the channel: {err}");
    }
    assert_eq!(a.host.error_codes(), ["ERR_SIO_TOO_LARGE", "ERR_SIO_MALFORMED", "ERR_SIO_TOO_COMPLEX"]);

    // Invalid JSON within the limits is malformed too: the host never parses it.
    broker.publish(MAIN, b"{not json");
    let after = message(UID_A, "after-not-json");
    a.engine.publish(None, after.clone()).unwrap();
    wait_for("B gets the message after the invalid JSON", || b.host.has(&DeliveryKind::ClusterMessage, &after)).await;
    assert_eq!(b.engine.stats().malformed, 6);
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, fine), (DeliveryKind::ClusterMessage, after)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_over_the_size_limit_fails_and_is_counted() {
    let broker = MemoryBroker::new();
    let limits = Limits { max_message_bytes: 100, ..Limits::default() };
    let a = node_with(&broker, NSP, UID_A, SubscriptionMode::Dynamic, limits);
    let b = node(&broker, UID_B, SubscriptionMode::Dynamic);
    ready(&a).await;
    ready(&b).await;
    b.engine.room_created("room1");
    b.engine.rooms_synced().await;

    let err = a.engine.publish(None, message_of_len(UID_A, 200)).unwrap_err();
    assert_eq!(code(&err), "ERR_SIO_TOO_LARGE");
    assert_eq!(code(&err), DropKind::TooLarge.code().to_string());
    assert!(err.to_string().contains("maxMessageBytes"), "{err}");
    assert_eq!(a.engine.stats().too_large, 1);
    assert_eq!(code(&a.engine.publish(Some("room1"), message_of_len(UID_A, 101)).unwrap_err()), "ERR_SIO_TOO_LARGE");
    assert_eq!(code(&a.engine.publish_response(UID_B, message_of_len(UID_A, 150)).unwrap_err()), "ERR_SIO_TOO_LARGE");
    assert_eq!(a.engine.stats().too_large, 3);
    // The limit itself is fine.
    let at_limit = message_of_len(UID_A, 100);
    a.engine.publish(Some("room1"), at_limit.clone()).unwrap();

    // Nothing over the limit was published: B (default limits, which would accept them) gets
    // the message at the limit and the marker only.
    barrier(&a.engine, &b.host, "after-refusals").await;
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, at_limit), (DeliveryKind::ClusterMessage, message(UID_A, "after-refusals"))]);
    // The refusal is the caller's error; the host hears no event of it, nor counts anything else.
    assert!(a.host.error_codes().is_empty(), "{:?}", a.host.error_codes());
    let stats = a.engine.stats();
    assert_eq!((stats.malformed, stats.too_complex), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_engine_neither_publishes_nor_receives() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Static);
    let b = node(&broker, UID_B, SubscriptionMode::Dynamic);
    let c = node(&broker, UID_C, SubscriptionMode::Static);
    for n in [&a, &b, &c] {
        ready(n).await;
    }
    b.engine.room_created("room1");
    b.engine.rooms_synced().await;
    let before = message(UID_A, "before");
    a.engine.publish(None, before.clone()).unwrap();
    wait_for("B receives before closing", || b.host.has(&DeliveryKind::ClusterMessage, &before)).await;

    b.engine.close().await.unwrap();
    assert_eq!(b.engine.publish(None, message(UID_B, "x")), Err(Error::Closed));
    assert_eq!(b.engine.publish(Some("room1"), message(UID_B, "x")), Err(Error::Closed));
    assert_eq!(b.engine.publish_response(UID_A, message(UID_B, "x")), Err(Error::Closed));
    // Nothing listens on B's channels any more.
    assert_eq!(broker.publish("p#/#room1#", &message(UID_C, "raw")), 0);
    assert_eq!(broker.publish(&format!("{MAIN}{UID_B}#"), &message(UID_C, "raw")), 0);

    a.engine.publish(Some("room1"), message(UID_A, "to-room1")).unwrap();
    a.engine.publish_response(UID_B, message(UID_A, "response")).unwrap();
    barrier(&a.engine, &c.host, "after-close").await;
    assert_eq!(b.host.delivered(), vec![(DeliveryKind::ClusterMessage, before)], "nothing is delivered after close");
    // Rooms reported after close change nothing and do not hang.
    b.engine.room_created("room2");
    tokio::time::timeout(Duration::from_secs(2), b.engine.rooms_synced()).await.expect("rooms_synced after close resolves");
    assert_eq!(broker.publish("p#/#room2#", &message(UID_C, "raw")), 0);

    assert_eq!(b.engine.close().await, Ok(()), "closing twice is fine");
    assert_eq!(b.engine.publish(None, message(UID_B, "x")), Err(Error::Closed));
    // The others go on.
    let after = message(UID_A, "others");
    a.engine.publish(None, after.clone()).unwrap();
    wait_for("C still receives", || c.host.has(&DeliveryKind::ClusterMessage, &after)).await;
    assert_eq!(b.host.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_dropped_without_close_is_no_longer_called_and_lets_go_of_host_and_transport() {
    let broker = MemoryBroker::new();
    let a = node(&broker, UID_A, SubscriptionMode::Static);
    let c = node(&broker, UID_C, SubscriptionMode::Static);
    let transport: Arc<MemoryTransport> = Arc::new(broker.connect());
    let host = Arc::new(Recorder::default());
    let engine = ShardedAdapter::new(NSP, PREFIX, UID_B, SubscriptionMode::Dynamic, Limits::default(), transport.clone() as Arc<dyn Transport>, host.clone());
    let clone = engine.clone();
    wait_for("B reports Ready", || host.ready_count() == 1).await;
    engine.room_created("room1");
    engine.rooms_synced().await;
    ready(&a).await;
    ready(&c).await;
    let before = message(UID_A, "before");
    a.engine.publish(Some("room1"), before.clone()).unwrap();
    a.engine.publish(None, before.clone()).unwrap();
    wait_for("B receives before the drop", || host.count() == 2).await;
    assert_eq!(a.engine.server_count().await.unwrap(), 3);

    // Every clone shares the engine: dropping one keeps it alive.
    drop(engine);
    a.engine.publish(None, message(UID_A, "one-clone-left")).unwrap();
    wait_for("B still receives with a clone left", || host.count() == 3).await;

    drop(clone);
    // No task, route or cycle keeps the engine: its host and transport are released.
    wait_for("the host is released", || Arc::strong_count(&host) == 1).await;
    wait_for("the transport is released", || Arc::strong_count(&transport) == 1).await;
    a.engine.publish(None, message(UID_A, "after-drop")).unwrap();
    a.engine.publish(Some("room1"), message(UID_A, "after-drop")).unwrap();
    a.engine.publish_response(UID_B, message(UID_A, "after-drop")).unwrap();
    barrier(&a.engine, &c.host, "marker").await;
    assert_eq!(host.count(), 3, "a dropped engine is not called");

    // The memory connection keeps its subscriptions until it is closed (Redis would drop them
    // with the connection): closing the transport, its owner takes the node out of the count.
    transport.close().await;
    assert_eq!(a.engine.server_count().await.unwrap(), 2);
    assert_eq!(broker.publish("p#/#room1#", &message(UID_C, "raw")), 0);
}

#[test]
fn subscription_modes_parse_the_official_option_values() {
    assert_eq!(SubscriptionMode::parse("static").unwrap(), SubscriptionMode::Static);
    assert_eq!(SubscriptionMode::parse("dynamic").unwrap(), SubscriptionMode::Dynamic);
    assert_eq!(SubscriptionMode::parse("dynamic-private").unwrap(), SubscriptionMode::DynamicPrivate);
    let err = SubscriptionMode::parse("Dynamic").unwrap_err();
    assert_eq!(code(&err), "ERR_SIO_OPTION");
    assert!(err.to_string().contains("subscriptionMode"), "{err}");
}
