//! A faulty in-memory broker, for tests: the Redis transport's link driver runs on its
//! connections ([`MemoryWire`]), and it misbehaves as a Redis server does:
//! [`FaultyBroker::pause`] (`CLIENT PAUSE`, `SIGSTOP`), [`FaultyBroker::kill_all`] (`CLIENT
//! KILL`, a restart), [`FaultyBroker::refuse`] (down), [`FaultyBroker::freeze_all`] (connections
//! that silently stop answering: a partition), [`FaultyBroker::reply_error`] (`-BUSY`,
//! `-LOADING`) and [`FaultyBroker::end_subscription`] (a subscription the server ends by itself).
//! So the handling of every fault is checked in milliseconds, on tokio's paused clock, next to
//! the real-Redis fault tests (test/faults.test.js, test/rust/redis_transport.rs).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::driver::{push_handler, Link, Linked};
use super::link::{Answer, Side};
use super::memory::route_of;
use super::wire::{ClientInfo, Failure, OnPush, Outgoing, Push, Sent, Wire};
use super::{lock, Inbound, Subscription};
use crate::error::Error;

/// The shared broker. Cloning shares it.
#[derive(Clone)]
pub(crate) struct FaultyBroker {
    connections: Arc<Mutex<Vec<Arc<Connection>>>>,
    /// Nothing is answered while true (commands wait).
    paused: Arc<watch::Sender<bool>>,
    /// New connections are refused.
    refusing: Arc<AtomicBool>,
    /// Every command is answered with this error code (`BUSY`, `LOADING`).
    error: Arc<Mutex<Option<String>>>,
    /// Numbers for new connections.
    ids: Arc<AtomicU64>,
    /// Messages to this channel get no answer and certainly do not run: a Redis Cluster shard
    /// that is down, while the batch's pipelines to the other shards go through.
    down_channel: Arc<Mutex<Option<String>>>,
    /// Pipelines handed to the broker and not answered yet, now and at most.
    pipelines_out: Arc<(AtomicU64, AtomicU64)>,
}

struct Connection {
    /// Its number (`CLIENT ID`).
    id: u64,
    /// Where a subscribing connection's pushes go.
    on_push: Option<Arc<OnPush>>,
    subscription: Mutex<Subscription>,
    /// Closed by its owner or killed by the broker: its owner reconnects on the next command.
    closed: AtomicBool,
    /// Silently dead: commands are never answered and nothing is delivered, but the broker
    /// still counts its subscriptions, as Redis does for a connection behind a partition.
    frozen: AtomicBool,
}

impl FaultyBroker {
    /// A broker with no connections, answering.
    pub(crate) fn new() -> Self {
        FaultyBroker {
            connections: Arc::default(),
            paused: Arc::new(watch::Sender::new(false)),
            refusing: Arc::default(),
            error: Arc::default(),
            ids: Arc::default(),
            down_channel: Arc::default(),
            pipelines_out: Arc::default(),
        }
    }

    /// A new transport whose connections to this broker are kept carrying messages by the link
    /// driver, with a queue of `max_queued` messages and `max_bytes` bytes.
    pub(crate) fn connect(&self, max_queued: usize, max_bytes: usize) -> Linked<MemoryWire> {
        let link = Arc::new(Link::new());
        let generation = link.next_generation();
        link.install(MemoryWire::open(self, generation, push_handler(&link, generation)));
        Linked::start(link, max_queued, max_bytes)
    }

    fn open(&self, on_push: Option<Arc<OnPush>>) -> Arc<Connection> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = Arc::new(Connection { id, on_push, subscription: Mutex::default(), closed: AtomicBool::new(false), frozen: AtomicBool::new(false) });
        lock(&self.connections).push(connection.clone());
        connection
    }

    fn remove(&self, connection: &Arc<Connection>) {
        connection.closed.store(true, Ordering::Release);
        lock(&self.connections).retain(|c| !Arc::ptr_eq(c, connection));
    }

    /// Delivers `payload` on `channel` to every subscribed connection that is not frozen.
    fn publish(&self, channel: &str, payload: &[u8]) {
        let connections = lock(&self.connections).clone();
        for conn in connections {
            let (Some(route), Some(on_push)) = (route_of(&lock(&conn.subscription), channel), &conn.on_push) else { continue };
            if !conn.frozen.load(Ordering::Acquire) {
                on_push(Push::Message(route, Inbound { channel: channel.as_bytes().to_vec(), payload: payload.to_vec() }));
            }
        }
    }

    /// Connections subscribed to `channel`.
    pub(crate) fn num_sub(&self, channel: &str) -> usize {
        lock(&self.connections).iter().filter(|c| lock(&c.subscription).channels.iter().any(|s| s == channel)).count()
    }

    /// The most pipelines that were out at once (handed over, not answered yet), and resets it.
    pub(crate) fn take_most_pipelines_out(&self) -> u64 {
        self.pipelines_out.1.swap(0, Ordering::AcqRel)
    }

    /// Stops answering (like `CLIENT PAUSE … ALL` or a stopped process) until [`FaultyBroker::resume`].
    pub(crate) fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Answers again what waited since [`FaultyBroker::pause`].
    pub(crate) fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Refuses new connections (a server that is down) while `refusing`.
    pub(crate) fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Release);
    }

    /// Refuses the messages to `channel` (a cluster shard that is down) until called with `None`;
    /// the other messages of a batch are published.
    pub(crate) fn refuse_channel(&self, channel: Option<&str>) {
        *lock(&self.down_channel) = channel.map(str::to_owned);
    }

    /// Answers every command with the error `code` (`Some("BUSY")`, `Some("LOADING")`) until
    /// called with `None`.
    pub(crate) fn reply_error(&self, code: Option<&str>) {
        *lock(&self.error) = code.map(str::to_owned);
    }

    /// Closes every connection, as `CLIENT KILL` or a restart does: their subscriptions are
    /// gone, their owners hear of it, and they reconnect on their next command.
    pub(crate) fn kill_all(&self) {
        let all = lock(&self.connections).clone();
        for conn in all {
            self.remove(&conn);
            if let Some(on_push) = &conn.on_push {
                on_push(Push::Disconnected);
            }
        }
    }

    /// Makes every connection silently dead (a partition): it answers nothing and receives
    /// nothing, but still counts as a subscriber until it is closed at the broker.
    pub(crate) fn freeze_all(&self) {
        for conn in lock(&self.connections).iter() {
            conn.frozen.store(true, Ordering::Release);
        }
    }

    /// Ends every connection's subscription to `channel`, telling them (as Redis ≥ 7 does for
    /// shard channels whose slot moved away).
    pub(crate) fn end_subscription(&self, channel: &str) {
        let connections = lock(&self.connections).clone();
        for conn in connections {
            let had = {
                let mut sub = lock(&conn.subscription);
                let before = sub.channels.len();
                sub.channels.retain(|c| c != channel);
                sub.channels.len() != before
            };
            if let (true, Some(on_push)) = (had, &conn.on_push) {
                on_push(Push::Unsubscribed { pattern: false, name: channel.to_owned() });
            }
        }
    }

    /// Waits while paused.
    async fn answering(&self) {
        let mut paused = self.paused.subscribe();
        let _ = paused.wait_for(|p| !p).await;
    }

    /// The error every command gets now, if any.
    fn error(&self) -> Option<String> {
        lock(&self.error).clone()
    }
}

/// One side of a [`MemoryWire`]: its connection to the broker, opened again after it was
/// killed (as the redis crate's connection manager does, on the next command).
struct Endpoint {
    broker: FaultyBroker,
    connection: Mutex<Arc<Connection>>,
}

/// Dropping the last handle to a connection closes it at the broker, as dropping a Redis
/// connection closes its socket.
impl Drop for Endpoint {
    fn drop(&mut self) {
        let connection = lock(&self.connection).clone();
        self.broker.remove(&connection);
    }
}

/// Why a command got no answer.
enum NoAnswer {
    /// The connection could not be opened: the command certainly did not run.
    Refused,
    /// The server answered with this error code.
    Error(String),
}

impl Endpoint {
    /// A new connection to `broker`; a subscribing one hands its pushes to `on_push`.
    fn open(broker: &FaultyBroker, on_push: Option<OnPush>) -> Arc<Endpoint> {
        Arc::new(Endpoint { broker: broker.clone(), connection: Mutex::new(broker.open(on_push.map(Arc::new))) })
    }

    /// The connection, once the broker answers: waits while it is paused, forever when the
    /// connection is frozen; reconnects a killed one.
    async fn ready(&self, broker: &FaultyBroker) -> Result<Arc<Connection>, NoAnswer> {
        broker.answering().await;
        let current = lock(&self.connection).clone();
        if current.frozen.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
        let connection = if current.closed.load(Ordering::Acquire) {
            if broker.refusing.load(Ordering::Acquire) {
                return Err(NoAnswer::Refused);
            }
            let fresh = broker.open(current.on_push.clone());
            *lock(&self.connection) = fresh.clone();
            fresh
        } else {
            current
        };
        match broker.error() {
            Some(code) => Err(NoAnswer::Error(code)),
            None => Ok(connection),
        }
    }
}

/// A linked transport's connections to the broker: a publishing and a subscribing one.
#[derive(Clone)]
pub(crate) struct MemoryWire {
    broker: FaultyBroker,
    publisher: Arc<Endpoint>,
    subscriber: Arc<Endpoint>,
    generation: u64,
}

impl MemoryWire {
    fn open(broker: &FaultyBroker, generation: u64, on_push: OnPush) -> MemoryWire {
        MemoryWire { broker: broker.clone(), publisher: Endpoint::open(broker, None), subscriber: Endpoint::open(broker, Some(on_push)), generation }
    }

    /// Adds `subscription` to the subscribing connection's (`add`) or removes it, and confirms
    /// each name as Redis does.
    async fn subscription(&self, subscription: &Subscription, add: bool) -> Result<(), Error> {
        // Nothing to (un)subscribe sends no command, as on Redis.
        if subscription.patterns.is_empty() && subscription.channels.is_empty() {
            return Ok(());
        }
        let connection = self.subscriber.ready(&self.broker).await.map_err(refusal)?;
        {
            let mut mine = lock(&connection.subscription);
            if add {
                for p in &subscription.patterns {
                    if !mine.patterns.contains(p) {
                        mine.patterns.push(p.clone());
                    }
                }
                for c in &subscription.channels {
                    if !mine.channels.contains(c) {
                        mine.channels.push(c.clone());
                    }
                }
            } else {
                mine.patterns.retain(|p| !subscription.patterns.contains(p));
                mine.channels.retain(|c| !subscription.channels.contains(c));
            }
        }
        if let Some(on_push) = &connection.on_push {
            let names = subscription.patterns.iter().map(|p| (true, p)).chain(subscription.channels.iter().map(|c| (false, c)));
            for (pattern, name) in names {
                let name = name.clone();
                on_push(if add { Push::Subscribed { pattern, name } } else { Push::Unsubscribed { pattern, name } });
            }
        }
        Ok(())
    }
}

fn refusal(no: NoAnswer) -> Error {
    match no {
        NoAnswer::Refused => Error::Redis("connection refused".into()),
        NoAnswer::Error(code) => Error::Redis(format!("{code} (memory broker)")),
    }
}

impl Wire for MemoryWire {
    fn generation(&self) -> u64 {
        self.generation
    }

    fn retries_by_itself(&self) -> bool {
        false
    }

    async fn publish(&mut self, messages: &[Outgoing]) -> Sent {
        let (out, most) = &*self.broker.pipelines_out;
        most.fetch_max(out.fetch_add(1, Ordering::AcqRel) + 1, Ordering::AcqRel);
        let ready = self.publisher.ready(&self.broker).await;
        out.fetch_sub(1, Ordering::AcqRel);
        match ready {
            Ok(_) => {
                let mut sent = Sent::default();
                let down = lock(&self.broker.down_channel).clone();
                let mut refused = Vec::new();
                for (i, message) in messages.iter().enumerate() {
                    if down.as_deref() == Some(message.channel.as_str()) {
                        refused.push(i);
                        continue;
                    }
                    if message.count.is_some() {
                        sent.counts.push((i, self.broker.num_sub(&message.channel)));
                    }
                    self.broker.publish(&message.channel, &message.payload);
                }
                if !refused.is_empty() {
                    sent.unanswered.push((refused, Failure { may_have_run: false, why: "connection refused".into() }));
                }
                sent
            }
            Err(NoAnswer::Refused) => Sent::unanswered(0..messages.len(), Failure { may_have_run: false, why: "connection refused".into() }),
            Err(NoAnswer::Error(code)) => Sent { refused: (0..messages.len()).map(|i| (i, code.clone())).collect(), ..Sent::default() },
        }
    }

    fn subscribe(&mut self, subscription: &Subscription) -> impl Future<Output = Result<(), Error>> + Send {
        self.subscription(subscription, true)
    }

    fn unsubscribe(&mut self, subscription: &Subscription) -> impl Future<Output = Result<(), Error>> + Send {
        self.subscription(subscription, false)
    }

    async fn num_sub(&mut self, channel: &str) -> Result<usize, Error> {
        self.publisher.ready(&self.broker).await.map_err(refusal)?;
        Ok(self.broker.num_sub(channel))
    }

    async fn probe(&mut self, timeout: Duration, subscribing: bool) -> (Answer, Option<Answer>) {
        let ping = |endpoint: Arc<Endpoint>, broker: FaultyBroker| async move {
            match tokio::time::timeout(timeout, endpoint.ready(&broker)).await {
                Err(_) => Answer::Stalled,
                Ok(Ok(_)) => Answer::Pong,
                Ok(Err(NoAnswer::Refused)) => Answer::Lost("connection refused".into()),
                Ok(Err(NoAnswer::Error(code))) if code == "LOADING" => Answer::Loading,
                Ok(Err(NoAnswer::Error(code))) => Answer::Busy(code),
            }
        };
        let subscriber = async {
            match subscribing {
                true => Some(ping(self.subscriber.clone(), self.broker.clone()).await),
                false => None,
            }
        };
        tokio::join!(ping(self.publisher.clone(), self.broker.clone()), subscriber)
    }

    fn replace(&self, sides: &[Side], generation: u64, on_push: OnPush) -> Option<Result<Self, Error>> {
        let mut fresh = self.clone();
        if sides.contains(&Side::Publisher) {
            fresh.publisher = Endpoint::open(&self.broker, None);
        }
        if sides.contains(&Side::Subscriber) {
            fresh.subscriber = Endpoint::open(&self.broker, Some(on_push));
            fresh.generation = generation;
        }
        Some(Ok(fresh))
    }

    async fn client_infos(&mut self) -> [Option<ClientInfo>; 2] {
        let info = |endpoint: &Endpoint| Some(ClientInfo { id: lock(&endpoint.connection).id.to_string(), addr: "memory".into() });
        [info(&self.publisher), info(&self.subscriber)]
    }

    async fn kill_client(&mut self, client: &ClientInfo) -> Result<(), Error> {
        self.publisher.ready(&self.broker).await.map_err(refusal)?;
        let victim = lock(&self.broker.connections).iter().find(|c| c.id.to_string() == client.id).cloned();
        if let Some(victim) = victim {
            self.broker.remove(&victim);
        }
        Ok(())
    }

    async fn topology(&mut self) -> Option<redis::Value> {
        None
    }
}

#[cfg(test)]
mod tests {
    //! The link driver under every fault the broker can have, on tokio's paused clock: each
    //! checks what a user feels (an `Error` then a `Ready`, every message delivered once and in
    //! order, nothing sent twice), as the real-Redis fault tests do with real servers.

    use super::*;
    use crate::transport::{Subscriber, Transport, TransportEvent};

    /// Records what a subscriber gets.
    #[derive(Default)]
    struct Recorder {
        payloads: Mutex<Vec<Vec<u8>>>,
        events: Mutex<Vec<TransportEvent>>,
    }

    impl Subscriber for Recorder {
        fn on_message(&self, message: Inbound) {
            lock(&self.payloads).push(message.payload);
        }
        fn on_event(&self, event: &TransportEvent) {
            lock(&self.events).push(event.clone());
        }
    }

    impl Recorder {
        fn got(&self) -> Vec<String> {
            lock(&self.payloads).iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect()
        }
        /// The events, as `E` (error) and `R` (ready).
        fn events(&self) -> String {
            lock(&self.events).iter().map(|e| if matches!(e, TransportEvent::Ready) { 'R' } else { 'E' }).collect()
        }
        fn errors(&self) -> Vec<String> {
            lock(&self.events).iter().filter_map(|e| if let TransportEvent::Error(why) = e { Some(why.clone()) } else { None }).collect()
        }
    }

    const CHANNEL: &str = "socket.io#/#";

    /// A subscribing node and a publishing node, both linked, the subscriber ready.
    async fn pair(broker: &FaultyBroker) -> (Linked<MemoryWire>, Arc<Recorder>, Linked<MemoryWire>) {
        let receiver = broker.connect(1000, 1 << 20);
        let recorder = Arc::new(Recorder::default());
        receiver.subscribe(Subscription { patterns: Vec::new(), channels: vec![CHANNEL.into()] }, recorder.clone()).await.unwrap();
        let sender = broker.connect(1000, 1 << 20);
        (receiver, recorder, sender)
    }

    fn send(sender: &Linked<MemoryWire>, range: std::ops::Range<usize>) {
        for i in range {
            sender.publish(CHANNEL.into(), i.to_string().into_bytes()).unwrap();
        }
    }

    fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| i.to_string()).collect()
    }

    /// Lets the tasks run for `ms` of (paused, auto-advancing) tokio time.
    async fn run_for(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_reports_an_error_then_ready_and_delivers_everything_once_in_order() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        send(&sender, 0..10);
        run_for(1500).await;
        assert_eq!(receiver.link_state(), "up");
        broker.pause();
        send(&sender, 10..20);
        run_for(4000).await;
        assert_eq!(recorder.events(), "RE", "the stall is reported once");
        assert_eq!(receiver.link_state(), "down");
        broker.resume();
        run_for(1000).await;
        assert_eq!(recorder.events(), "RER");
        assert_eq!(receiver.link_state(), "up");
        send(&sender, 20..30);
        run_for(1000).await;
        assert_eq!(recorder.got(), numbers(0..30));
        assert_eq!(sender.stats().published.load(Ordering::Relaxed), 30);
        assert_eq!(sender.stats().unconfirmed.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded_in_bytes_while_redis_is_paused_and_drains_once_it_answers() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, _) = pair(&broker).await;
        // 4 messages of 1 KiB (plus the channel name) fit in 5 KiB; the fifth does not.
        let sender = broker.connect(1000, 5 << 10);
        run_for(1500).await;
        broker.pause();
        let kib = |i: u8| vec![b'a' + i; 1024];
        for i in 0..4 {
            sender.publish(CHANNEL.into(), kib(i)).unwrap();
        }
        let err = sender.publish(CHANNEL.into(), kib(4)).unwrap_err();
        assert_eq!(err.code(), "ERR_SIO_OVERLOADED");
        assert!(err.to_string().contains("maxQueuedBytes"), "{err}");
        let stats = sender.stats();
        assert_eq!((stats.dropped.load(Ordering::Relaxed), stats.pending.load(Ordering::Relaxed)), (1, 4));
        assert_eq!(stats.pending_bytes.load(Ordering::Relaxed), 4 * (1024 + CHANNEL.len() as u64));
        broker.resume();
        run_for(3000).await;
        assert_eq!(recorder.got().len(), 4, "what was accepted is delivered");
        assert_eq!((stats.pending.load(Ordering::Relaxed), stats.pending_bytes.load(Ordering::Relaxed)), (0, 0));
        // A message larger than the bound is taken when nothing waits.
        sender.publish(CHANNEL.into(), vec![b'z'; 8 << 10]).unwrap_or_else(|e| panic!("{e}"));
        run_for(1000).await;
        assert_eq!(recorder.got().len(), 5);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_dropped_without_close_stops_its_tasks_and_closes_its_connections() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        let link = Arc::downgrade(receiver.link());
        assert_eq!(lock(&broker.connections).len(), 4, "two connections per transport");
        drop(receiver);
        run_for(1000).await;
        assert_eq!(broker.num_sub(CHANNEL), 0, "unsubscribed at the server: the connection is closed");
        assert_eq!(lock(&broker.connections).len(), 2, "only the sender's connections are left");
        assert!(link.upgrade().is_none(), "every task of the dropped transport ended");
        send(&sender, 0..3);
        run_for(500).await;
        assert!(recorder.got().is_empty(), "nothing is delivered to a dropped transport's subscribers");
        assert_eq!(sender.link_state(), "up");
    }

    #[tokio::test(start_paused = true)]
    async fn killed_connections_are_reconnected_and_resubscribed_while_messages_wait_in_order() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        broker.refuse(true);
        broker.kill_all();
        assert_eq!(broker.num_sub(CHANNEL), 0, "a killed connection's subscriptions are gone");
        send(&sender, 0..50);
        run_for(3000).await;
        assert_eq!(recorder.events(), "RE");
        assert_eq!(sender.link_state(), "down");
        assert!(recorder.got().is_empty());
        broker.refuse(false);
        run_for(2000).await;
        assert_eq!(recorder.events(), "RER");
        assert_eq!(broker.num_sub(CHANNEL), 1, "subscribed again, once");
        assert_eq!(recorder.got(), numbers(0..50), "what waited is delivered once, in order");
        assert_eq!(sender.stats().dropped.load(Ordering::Relaxed) + sender.stats().unconfirmed.load(Ordering::Relaxed), 0);
        drop(receiver);
    }

    #[tokio::test(start_paused = true)]
    async fn pipelines_out_together_are_sent_again_in_order_after_refusals_and_a_restart() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, _) = pair(&broker).await;
        let sender = broker.connect(10_000, 1 << 24);
        run_for(1500).await;
        // Several pipelines' worth (512 messages each) go out to a paused server, then meet
        // BUSY: all are refused, and sent again in order once Redis accepts them.
        broker.pause();
        send(&sender, 0..2000);
        run_for(100).await;
        broker.reply_error(Some("BUSY"));
        broker.resume();
        run_for(3000).await;
        assert!(recorder.got().is_empty());
        broker.reply_error(None);
        run_for(3000).await;
        assert_eq!(recorder.got(), numbers(0..2000), "refused pipelines are sent again, in order, once");
        // Then the server goes away while pipelines are out: refused, they wait and follow the
        // earlier ones once it is back.
        broker.pause();
        send(&sender, 2000..4000);
        run_for(100).await;
        broker.refuse(true);
        broker.kill_all();
        broker.resume();
        run_for(3000).await;
        broker.refuse(false);
        run_for(3000).await;
        assert_eq!(recorder.got(), numbers(0..4000), "every message once, in order");
        let stats = sender.stats();
        assert_eq!(stats.published.load(Ordering::Relaxed), 4000);
        assert_eq!(stats.dropped.load(Ordering::Relaxed) + stats.unconfirmed.load(Ordering::Relaxed), 0);
        drop(receiver);
    }

    #[tokio::test(start_paused = true)]
    async fn up_to_four_pipelines_and_one_mib_are_out_at_once() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, _) = pair(&broker).await;
        let sender = broker.connect(10_000, 1 << 26);
        run_for(1500).await;
        broker.take_most_pipelines_out();
        // 3,000 small messages: six pipelines' worth, four out while the server is paused.
        broker.pause();
        send(&sender, 0..3000);
        run_for(100).await;
        broker.resume();
        run_for(1000).await;
        assert_eq!(recorder.got(), numbers(0..3000));
        assert_eq!(broker.take_most_pipelines_out(), 4);
        // 300 messages of 10 KiB: 1 MiB takes about a hundred, and is all that goes out at once.
        broker.pause();
        for _ in 0..300 {
            sender.publish(CHANNEL.into(), vec![b'k'; 10 << 10]).unwrap();
        }
        run_for(100).await;
        broker.resume();
        run_for(1000).await;
        assert_eq!(recorder.got().len(), 3300);
        assert_eq!(broker.take_most_pipelines_out(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_commands_are_sent_again_once_accepted() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        broker.reply_error(Some("BUSY"));
        send(&sender, 0..5);
        run_for(3000).await;
        assert!(recorder.got().is_empty());
        assert!(recorder.errors().iter().any(|e| e.contains("BUSY")), "{:?}", recorder.errors());
        broker.reply_error(None);
        run_for(2000).await;
        assert!(recorder.events().ends_with('R'), "{}", recorder.events());
        assert_eq!(recorder.got(), numbers(0..5));
        assert_eq!(sender.stats().published.load(Ordering::Relaxed), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_counted_message_keeps_its_place_and_its_count_survives_a_refusal() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        send(&sender, 0..2);
        let counted = sender.publish_counted(CHANNEL.into(), b"2".to_vec());
        send(&sender, 3..4);
        assert_eq!(tokio::time::timeout(Duration::from_secs(1), counted).await.unwrap().unwrap(), 1, "one subscriber");
        run_for(100).await;
        assert_eq!(recorder.got(), numbers(0..4), "in its place among the others");
        // Refused (BUSY): sent again once accepted, and counted then.
        broker.reply_error(Some("BUSY"));
        let mut counted = sender.publish_counted(CHANNEL.into(), b"4".to_vec());
        assert!(tokio::time::timeout(Duration::from_secs(3), &mut counted).await.is_err(), "no count while Redis refuses");
        broker.reply_error(None);
        assert_eq!(tokio::time::timeout(Duration::from_secs(2), counted).await.unwrap().unwrap(), 1);
        run_for(100).await;
        assert_eq!(recorder.got(), numbers(0..5));
        // Sent to a Redis that stopped answering: it may have run, so no count, and why.
        broker.pause();
        let count = sender.publish_counted(CHANNEL.into(), b"5".to_vec()).await;
        assert!(matches!(&count, Err(Error::Redis(why)) if why.contains("did not confirm")), "{count:?}");
        broker.resume();
        run_for(2000).await;
        // Redis down (connections refused): kept to be sent again, then dropped at close: Closed.
        broker.refuse(true);
        broker.kill_all();
        let counted = sender.publish_counted(CHANNEL.into(), b"6".to_vec());
        let closing = sender.close();
        let (count, ()) = tokio::join!(counted, closing);
        assert!(matches!(count, Err(Error::Closed)), "{count:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn loading_counts_as_an_answer() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, _sender) = pair(&broker).await;
        run_for(1500).await;
        broker.reply_error(Some("LOADING"));
        run_for(5000).await;
        assert_eq!(receiver.link_state(), "up");
        assert_eq!(recorder.events(), "R");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscription_the_server_ends_is_made_again_without_an_outage() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        broker.end_subscription(CHANNEL);
        run_for(10).await;
        assert_eq!(broker.num_sub(CHANNEL), 1);
        send(&sender, 0..3);
        run_for(500).await;
        assert_eq!(recorder.got(), numbers(0..3));
        assert_eq!(recorder.events(), "R");
    }

    #[tokio::test(start_paused = true)]
    async fn silently_dead_connections_are_replaced_and_closed_at_the_server() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        broker.freeze_all();
        run_for(4000).await;
        assert_eq!(recorder.events(), "RE");
        assert_eq!(broker.num_sub(CHANNEL), 1, "the dead connection still counts at the server");
        run_for(super::super::link::STALL_REPLACE.as_millis() as u64).await;
        assert_eq!(recorder.events(), "RER");
        assert_eq!(receiver.link_state(), "up");
        assert_eq!(broker.num_sub(CHANNEL), 1, "the replaced connection was closed at the server");
        send(&sender, 0..3);
        run_for(1000).await;
        assert_eq!(recorder.got(), numbers(0..3));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_pipeline_is_counted_and_never_sent_again() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, sender) = pair(&broker).await;
        // The sender's own subscriber hears what became of its messages.
        let sender_events = Arc::new(Recorder::default());
        sender.subscribe(Subscription { patterns: Vec::new(), channels: vec!["other".into()] }, sender_events.clone()).await.unwrap();
        run_for(1500).await;
        broker.freeze_all();
        send(&sender, 0..4);
        run_for(6000).await;
        assert_eq!(sender.stats().unconfirmed.load(Ordering::Relaxed), 4);
        assert_eq!(sender.stats().pending.load(Ordering::Relaxed), 0);
        assert!(sender_events.errors().iter().any(|e| e.contains("4 messages were sent but Redis did not confirm them")), "{:?}", sender_events.errors());
        run_for(15000).await;
        send(&sender, 4..6);
        run_for(1000).await;
        assert_eq!(recorder.got(), numbers(4..6), "the unconfirmed messages are not sent again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shard_down_holds_back_only_its_own_messages_and_sends_them_once_it_is_back() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        const OTHER: &str = "socket.io#/#room#";
        let other = Arc::new(Recorder::default());
        receiver.subscribe(Subscription { patterns: Vec::new(), channels: vec![OTHER.into()] }, other.clone()).await.unwrap();
        run_for(1500).await;
        broker.refuse_channel(Some(OTHER));
        // Interleaved, as round-robin room broadcasts are: every batch mixes both shards.
        for i in 0..6 {
            sender.publish(CHANNEL.into(), i.to_string().into_bytes()).unwrap();
            sender.publish(OTHER.into(), i.to_string().into_bytes()).unwrap();
        }
        run_for(3000).await;
        assert_eq!(recorder.got(), numbers(0..6), "the shard that is up got its messages, once each");
        assert!(other.got().is_empty());
        assert!(sender.stats().pending.load(Ordering::Relaxed) >= 6, "the other shard's messages wait");
        broker.refuse_channel(None);
        run_for(5000).await;
        assert_eq!(other.got(), numbers(0..6), "then they arrive, once each and in order");
        assert_eq!(recorder.got(), numbers(0..6), "and nothing was sent twice");
        assert_eq!(sender.stats().published.load(Ordering::Relaxed), 12);
        assert_eq!(sender.stats().unconfirmed.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_whose_caller_gave_up_on_its_count_is_not_sent_later() {
        let broker = FaultyBroker::new();
        let (_receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        broker.refuse(true);
        broker.kill_all();
        // The caller's deadline passes while Redis is down: the request failed for it.
        let gave_up = tokio::time::timeout(Duration::from_millis(500), sender.publish_counted(CHANNEL.into(), b"request".to_vec())).await;
        assert!(gave_up.is_err());
        send(&sender, 0..2);
        broker.refuse(false);
        run_for(5000).await;
        assert_eq!(recorder.got(), numbers(0..2), "only what was still wanted went out, in order");
        assert_eq!(sender.stats().dropped.load(Ordering::Relaxed), 1);
        assert_eq!(sender.stats().pending.load(Ordering::Relaxed), 0);
        assert_eq!(sender.stats().pending_bytes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn close_sends_what_is_queued_then_closes_the_connections() {
        let broker = FaultyBroker::new();
        let (receiver, recorder, sender) = pair(&broker).await;
        run_for(1500).await;
        send(&sender, 0..100);
        sender.close().await;
        assert_eq!(recorder.got(), numbers(0..100));
        assert_eq!(sender.link_state(), "closed");
        assert!(matches!(sender.publish(CHANNEL.into(), b"late".to_vec()), Err(Error::Closed)));
        receiver.close().await;
        run_for(10).await;
        assert_eq!(broker.num_sub(CHANNEL), 0, "closing closes the connections at the server");
    }
}
