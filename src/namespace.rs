//! One namespace's engine, whichever the wire: the lifecycle both adapters share.
//!
//! A [`Namespace`] subscribes its channels, keeps a channel per local room subscribed when the
//! wire uses room channels, publishes within the limits, checks the size of what arrives,
//! hands the rest to its [`Wire`] and what the wire accepts to the host, forwards the transport's events, and closes (or, dropped without
//! `close()`, lets go of its room task). The classic protocol ([`crate::adapter`]) and the
//! sharded one ([`crate::sharded`]) differ only in their [`Wire`]: which channels, and what a
//! message means.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::Error;
use crate::host::{Delivery, EventFilter, Host};
use crate::limits::{DropCounters, DropKind, Limits};
use crate::room_channels::RoomChannels;
use crate::transport::{subscribe_in_background, BoxFuture, Inbound, Subscriber, Subscription, Transport, TransportEvent};

/// Gives a room's channel name (for the room-channel task).
pub(crate) type RoomChannelOf = Box<dyn Fn(&str) -> String + Send>;

/// What differs between the classic and the sharded protocol.
pub(crate) trait Wire: Send + Sync + 'static {
    /// The namespace's fixed subscriptions.
    fn subscription(&self) -> Subscription;

    /// How a room's channel is named, when this wire keeps a channel per local room.
    fn room_channels(&self) -> Option<RoomChannelOf>;

    /// Checks one message that arrived on `channel` (already within `maxMessageBytes`) and
    /// returns what the host must get of it, if anything; drops go through [`Namespace::dropped`].
    fn accept(&self, ns: &Namespace<Self>, channel: &[u8], payload: Vec<u8>) -> Option<Delivery>
    where
        Self: Sized;

    /// Close has begun: end whatever waits (requests).
    fn closing(&self) {}
}

/// The engine of one namespace on wire `W`.
pub(crate) struct Namespace<W: Wire> {
    /// The wire's state and logic.
    pub(crate) wire: W,
    /// Where the namespace's messages go and come from.
    pub(crate) transport: Arc<dyn Transport>,
    /// Where deliveries and events go.
    pub(crate) host: Arc<dyn Host>,
    /// What is accepted from other nodes and published.
    pub(crate) limits: Limits,
    /// Messages dropped, by kind, reported once per burst.
    pub(crate) drops: DropCounters,
    /// Messages published.
    pub(crate) published: AtomicU64,
    /// Messages handed to the host.
    pub(crate) delivered: AtomicU64,
    /// Names the namespace in drop reports.
    label: String,
    subscription: Subscription,
    /// With room channels: the task keeping a channel per local room subscribed.
    rooms: OnceLock<Arc<RoomChannels>>,
    /// Passes the transport's events on to the host (Ready once per outage).
    events: EventFilter,
    closed: AtomicBool,
}

impl<W: Wire> Namespace<W> {
    /// Starts the engine of namespace `nsp` on `wire`: subscribes in the background and, when
    /// the wire uses room channels, starts their task. Must be called within a tokio runtime.
    pub(crate) fn start(nsp: &str, wire: W, limits: Limits, transport: Arc<dyn Transport>, host: Arc<dyn Host>) -> Arc<Self> {
        let subscription = wire.subscription();
        let room_channels = wire.room_channels();
        let ns = Arc::new(Namespace {
            wire,
            transport,
            host,
            limits,
            drops: DropCounters::default(),
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            label: format!("namespace {nsp}"),
            subscription,
            rooms: OnceLock::new(),
            events: EventFilter::default(),
            closed: AtomicBool::new(false),
        });
        let subscriber: Arc<dyn Subscriber> = ns.clone();
        if let Some(channel_of) = room_channels {
            let _ = ns.rooms.set(RoomChannels::start(ns.transport.clone(), &subscriber, channel_of));
        }
        subscribe_in_background(ns.transport.as_ref(), ns.subscription.clone(), subscriber);
        ns
    }

    /// True once `close()` began.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Publishes `payload` on `channel`: refused once closed, or over `maxMessageBytes` (the
    /// other nodes would drop it; counted as too large).
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.may_publish(&payload)?;
        self.transport.publish(channel, payload)?;
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes as [`publish`](Self::publish) does, and gives the number of `channel`'s
    /// subscribers counted just before (see [`Transport::publish_counted`]). The message is
    /// queued before this returns.
    pub(crate) fn publish_counted(&self, channel: String, payload: Vec<u8>) -> BoxFuture<'_, Result<usize, Error>> {
        let counted = self.may_publish(&payload).map(|()| self.transport.publish_counted(channel, payload));
        Box::pin(async move {
            let count = counted?.await?;
            self.published.fetch_add(1, Ordering::Relaxed);
            Ok(count)
        })
    }

    /// Whether `payload` may be published: the namespace is open and it is within the limits.
    fn may_publish(&self, payload: &[u8]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if let Err(err) = self.limits.check_outgoing(payload.len()) {
            self.drops.add(DropKind::TooLarge);
            return Err(err);
        }
        Ok(())
    }

    /// A local socket is now in `room` (`true`), or the room emptied: its channel follows, in
    /// the background, when the wire uses room channels.
    pub(crate) fn set_room(&self, room: &str, wanted: bool) {
        if let Some(rooms) = self.rooms.get() {
            rooms.set(room, wanted);
        }
    }

    /// Resolves once the channels of every room reported so far are subscribed (or, Redis being
    /// away, left to the transport's retries). Immediate without room channels.
    pub(crate) async fn rooms_synced(&self) {
        if let Some(rooms) = self.rooms.get() {
            rooms.synced().await;
        }
    }

    /// Counts a message dropped for `why`, and reports it to the host when a burst of such drops
    /// starts (then at most once a second).
    pub(crate) fn dropped(&self, kind: DropKind, what: &str, why: &dyn Display) {
        tracing::debug!(ns = %self.label, "dropping a {kind} {what}: {why}");
        self.drops.report(kind, self.host.as_ref(), || format!("the last, a {what} of {}: {why}", self.label));
    }

    /// Ends what waits, unsubscribes everything; nothing is delivered afterwards. The transport
    /// stays open for other namespaces sharing it.
    pub(crate) async fn close(self: &Arc<Self>) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wire.closing();
        if let Some(rooms) = self.rooms.get() {
            rooms.stop().await;
        }
        let subscriber: Arc<dyn Subscriber> = self.clone();
        self.transport.unsubscribe(self.subscription.clone(), &subscriber).await
    }
}

/// An engine dropped without `close()` stops its room-channel task; the transport stops
/// calling it (it holds subscribers weakly) and goes with its last user.
impl<W: Wire> Drop for Namespace<W> {
    fn drop(&mut self) {
        if let Some(rooms) = self.rooms.get() {
            rooms.abandon();
        }
    }
}

impl<W: Wire> Subscriber for Namespace<W> {
    fn on_message(&self, Inbound { channel, payload }: Inbound) {
        if self.is_closed() {
            return;
        }
        if let Err(why) = self.limits.check_size(payload.len()) {
            self.dropped(DropKind::TooLarge, "message", &format_args!("{why}, on {}", String::from_utf8_lossy(&channel)));
            return;
        }
        if let Some(delivery) = self.wire.accept(self, &channel, payload) {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            self.host.deliver(delivery);
        }
    }

    fn on_event(&self, event: &TransportEvent) {
        if !self.is_closed() {
            self.events.forward(event, self.host.as_ref());
        }
    }
}
