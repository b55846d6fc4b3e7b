//! The per-namespace engine: subscriptions, the receive path and the public broadcast API.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::channels::{ChannelKind, Channels};
use crate::config::AdapterConfig;
use crate::error::Error;
use crate::host::{AdapterEvent, Delivery, Host};
use crate::protocol::broadcast::frame_with_uid;
use crate::protocol::{new_uid, Broadcast, BroadcastOptions, BroadcastRef, OptsLayout, Packet};
use crate::transport::{Inbound, Subscriber, Subscription, Transport, TransportEvent};

/// Counters of one namespace adapter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AdapterStats {
    /// Broadcasts handed to the transport.
    pub published: u64,
    /// Broadcasts from other nodes handed to the host.
    pub delivered: u64,
    /// Messages dropped because they could not be decoded.
    pub malformed: u64,
    /// Single-room broadcasts skipped because no local socket is in the room.
    pub skipped: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    malformed: AtomicU64,
    skipped: AtomicU64,
}

/// The engine of one namespace on one node: it publishes this node's broadcasts and delivers
/// the other nodes' broadcasts to the [`Host`].
///
/// Cloning is cheap and shares the engine.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

struct Inner {
    nsp: String,
    uid: String,
    channels: Channels,
    transport: Arc<dyn Transport>,
    host: Arc<dyn Host>,
    /// Rooms with at least one local socket, kept by the host through
    /// [`Adapter::room_created`] / [`Adapter::room_deleted`].
    rooms: RwLock<HashSet<Box<[u8]>>>,
    counters: Counters,
    closed: AtomicBool,
}

impl Adapter {
    /// Creates the engine of namespace `nsp` and subscribes to its channels in the background
    /// (the host hears [`AdapterEvent::Ready`] once subscribed). Must be called within a tokio
    /// runtime.
    pub fn new(nsp: &str, config: &AdapterConfig, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> Adapter {
        let uid = new_uid();
        let inner = Arc::new(Inner {
            nsp: nsp.to_owned(),
            channels: Channels::new(&config.key, nsp, &uid),
            uid,
            transport,
            host,
            rooms: RwLock::new(HashSet::new()),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
        });
        let subscriber: Arc<dyn Subscriber> = inner.clone();
        let subscription = inner.subscription();
        let transport = inner.transport.clone();
        tokio::spawn(async move {
            // Failures are reported to the host by the transport and retried there.
            let _ = transport.subscribe(subscription, subscriber).await;
        });
        Adapter { inner }
    }

    /// This node's uid for the namespace (6 characters, as the official adapter's).
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// The channel names of this namespace.
    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// Publishes a broadcast to the other nodes (local delivery is the host's business).
    /// Nothing is published when the `local` flag is set.
    pub fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), Error> {
        if opts.flags.get("local").and_then(rmpv::Value::as_bool) == Some(true) {
            return Ok(());
        }
        let mut packet = packet.clone();
        packet.nsp = Some(self.inner.nsp.clone());
        let message = Broadcast { uid: self.inner.uid.clone(), packet, opts: opts.clone(), layout: OptsLayout::Adapter };
        let room = opts.single_room().map(ToString::to_string);
        self.publish(self.inner.channels.broadcast_for(room.as_deref()), message.encode())
    }

    /// Publishes a broadcast whose `[packet, opts]` the caller already encoded as a msgpack
    /// 2-array (the Node binding gets it from notepack.io); `single_room` is the room when
    /// `opts.rooms` has exactly one element. The uid is spliced in here.
    pub fn broadcast_encoded(&self, single_room: Option<&str>, packet_and_opts: &[u8]) -> Result<(), Error> {
        let message = frame_with_uid(&self.inner.uid, packet_and_opts)?;
        self.publish(self.inner.channels.broadcast_for(single_room), message)
    }

    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.inner.transport.publish(channel, payload)?;
        self.inner.counters.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Tells the engine a local socket is now in `room`.
    pub fn room_created(&self, room: &str) {
        self.inner.rooms.write().unwrap_or_else(|p| p.into_inner()).insert(room.as_bytes().into());
    }

    /// Tells the engine the last local socket left `room`.
    pub fn room_deleted(&self, room: &str) {
        self.inner.rooms.write().unwrap_or_else(|p| p.into_inner()).remove(room.as_bytes());
    }

    /// Counters since creation.
    pub fn stats(&self) -> AdapterStats {
        let c = &self.inner.counters;
        AdapterStats {
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
        }
    }

    /// Unsubscribes; nothing is delivered to the host afterwards. The transport stays open for
    /// the other namespaces sharing it.
    pub async fn close(&self) -> Result<(), Error> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.transport.unsubscribe(self.inner.subscription()).await
    }
}

impl Inner {
    fn subscription(&self) -> Subscription {
        Subscription {
            patterns: vec![self.channels.broadcast_pattern().to_owned()],
            channels: self.channels.subscriptions().iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn has_room(&self, room: &[u8]) -> bool {
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).contains(room)
    }

    /// Checks one broadcast; returns it when it must be delivered locally.
    fn accept_broadcast(&self, room: Option<&[u8]>, payload: Vec<u8>) -> Option<Delivery> {
        if room.is_some_and(|r| !self.has_room(r)) {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match BroadcastRef::parse(&payload) {
            Err(err) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(nsp = %self.nsp, "dropping malformed broadcast: {err}");
                None
            }
            Ok(message) if message.uid == self.uid || message.namespace() != self.nsp => None,
            Ok(_) => Some(Delivery::new(payload)),
        }
    }
}

impl Subscriber for Inner {
    fn on_messages(&self, batch: Vec<Inbound>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut deliveries = Vec::with_capacity(batch.len());
        for Inbound { channel, payload } in batch {
            match self.channels.classify(&channel) {
                Some(ChannelKind::Broadcast(room)) => deliveries.extend(self.accept_broadcast(room, payload)),
                // Requests and responses are handled by the request layer; until a node asks
                // us something we only need to ignore them without harm.
                Some(ChannelKind::Request | ChannelKind::Response) | None => {}
            }
        }
        if !deliveries.is_empty() {
            self.counters.delivered.fetch_add(deliveries.len() as u64, Ordering::Relaxed);
            self.host.deliver(deliveries);
        }
    }

    fn on_event(&self, event: &TransportEvent) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.host.on_event(match event {
            TransportEvent::Ready => AdapterEvent::Ready,
            TransportEvent::Error(message) => AdapterEvent::Error(Error::Redis(message.clone())),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocol::Room;
    use crate::transport::memory::MemoryBroker;

    #[derive(Default)]
    struct Recorder {
        delivered: Mutex<Vec<Broadcast>>,
        events: Mutex<Vec<AdapterEvent>>,
    }

    impl Host for Recorder {
        fn deliver(&self, batch: Vec<Delivery>) {
            let mut delivered = self.delivered.lock().unwrap();
            delivered.extend(batch.iter().map(|d| d.decode().unwrap()));
        }
        fn on_event(&self, event: AdapterEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    fn node(broker: &MemoryBroker, nsp: &str) -> (Adapter, Arc<Recorder>) {
        let host = Arc::new(Recorder::default());
        let adapter = Adapter::new(nsp, &AdapterConfig::default(), Arc::new(broker.connect()), host.clone());
        (adapter, host)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn broadcasts_reach_other_nodes_but_not_the_sender() {
        let broker = MemoryBroker::new();
        let (a, host_a) = node(&broker, "/");
        let (_b, host_b) = node(&broker, "/");
        settle().await;
        a.broadcast(&Packet::event("/", "hello", vec!["world".into()]), &BroadcastOptions::default()).unwrap();
        assert!(host_a.delivered.lock().unwrap().is_empty());
        let got = host_b.delivered.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].uid, a.uid());
        assert_eq!(got[0].packet.data, vec![rmpv::Value::from("hello"), "world".into()]);
        assert!(host_b.events.lock().unwrap().contains(&AdapterEvent::Ready));
    }

    #[tokio::test]
    async fn single_room_broadcasts_are_skipped_without_a_local_socket_in_the_room() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (b, host_b) = node(&broker, "/");
        settle().await;
        let to_room = BroadcastOptions { rooms: vec![Room::from("r1")], ..Default::default() };
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(b.stats().skipped, 1);
        b.room_created("r1");
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(host_b.delivered.lock().unwrap().len(), 1);
        b.room_deleted("r1");
        a.broadcast(&Packet::event("/", "x", vec![]), &to_room).unwrap();
        assert_eq!(host_b.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn namespaces_are_isolated_and_local_is_never_published() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (_admin, host_admin) = node(&broker, "/admin");
        settle().await;
        a.broadcast(&Packet::event("/", "x", vec![]), &BroadcastOptions::default()).unwrap();
        let mut local = BroadcastOptions::default();
        local.flags.set("local", true);
        a.broadcast(&Packet::event("/", "x", vec![]), &local).unwrap();
        assert_eq!(a.stats().published, 1);
        assert!(host_admin.delivered.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_payloads_are_counted_and_later_messages_still_arrive() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (b, host_b) = node(&broker, "/");
        settle().await;
        for bad in [&b""[..], b"\xc1", b"\x93\xa1a", b"garbage", b"\xdb\xff\xff\xff\xff"] {
            broker.publish("socket.io#/#", bad);
        }
        a.broadcast(&Packet::event("/", "after", vec![]), &BroadcastOptions::default()).unwrap();
        assert_eq!(b.stats().malformed, 5);
        assert_eq!(host_b.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn pre_encoded_broadcasts_are_framed_with_the_uid() {
        let broker = MemoryBroker::new();
        let (a, _) = node(&broker, "/");
        let (_b, host_b) = node(&broker, "/");
        settle().await;
        let full = Broadcast { uid: "xxxxxx".into(), packet: Packet::event("/", "e", vec![1.into()]), opts: BroadcastOptions::default(), layout: OptsLayout::Adapter }.encode();
        let mut inner = vec![0x92];
        inner.extend_from_slice(&full[8..]);
        a.broadcast_encoded(None, &inner).unwrap();
        let got = host_b.delivered.lock().unwrap().clone();
        assert_eq!(got[0].uid, a.uid());
        assert_eq!(got[0].packet.data[1], rmpv::Value::from(1));
    }
}
