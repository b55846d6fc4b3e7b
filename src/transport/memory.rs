//! An in-process broker with Redis's pub/sub semantics, for tests of the engine without Redis.
//!
//! Every [`MemoryTransport`] made from one [`MemoryBroker`] is a "connection": publishing
//! delivers synchronously to every connection whose channels or patterns match, and
//! `num_sub` counts connections subscribed to a channel, as `PUBSUB NUMSUB` does. It never
//! fails, so the engine's logic is tested on its own; its faulty twin (`faulty.rs`, for tests)
//! runs the Redis transport's link driver on connections that misbehave as Redis does.

use std::sync::{Arc, Mutex};

use super::{glob_match, BoxFuture, Inbound, Router, Subscriber, Subscription, Transport, TransportEvent};
use crate::error::Error;

/// The shared broker.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    connections: Arc<Mutex<Vec<Arc<Connection>>>>,
}

#[derive(Default)]
struct Connection {
    router: Router,
    subscription: Mutex<Subscription>,
    closed: std::sync::atomic::AtomicBool,
}

/// One connection to a [`MemoryBroker`].
pub struct MemoryTransport {
    broker: MemoryBroker,
    connection: Arc<Connection>,
}

impl MemoryBroker {
    /// A broker with no connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new connection to this broker.
    pub fn connect(&self) -> MemoryTransport {
        let connection = Arc::new(Connection::default());
        self.lock().push(connection.clone());
        MemoryTransport { broker: self.clone(), connection }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes as a client that is not a transport would (a raw Redis client in tests).
    /// Returns the number of receiving connections, as `PUBLISH` does.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> usize {
        let connections = self.lock().clone();
        let mut receivers = 0;
        for conn in connections {
            let route = route_of(&conn.subscription.lock().unwrap_or_else(|p| p.into_inner()), channel);
            if let Some(route) = route {
                receivers += 1;
                conn.router.deliver(&route, Inbound { channel: channel.as_bytes().to_vec(), payload: payload.to_vec() });
            }
        }
        receivers
    }
}

/// The channel or pattern of `subscription` that a message on `channel` matches, as Redis
/// routes it.
pub(crate) fn route_of(subscription: &Subscription, channel: &str) -> Option<String> {
    let exact = subscription.channels.iter().find(|c| c.as_str() == channel);
    exact.or_else(|| subscription.patterns.iter().find(|p| glob_match(p.as_bytes(), channel.as_bytes()))).cloned()
}

impl MemoryTransport {
    /// Connections subscribed to `channel`, as `PUBSUB NUMSUB` counts them.
    fn count(&self, channel: &str) -> usize {
        self.broker.lock().iter().filter(|c| c.subscription.lock().unwrap_or_else(|p| p.into_inner()).channels.iter().any(|s| s == channel)).count()
    }
}

impl Transport for MemoryTransport {
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        if self.connection.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.broker.publish(&channel, &payload);
        Ok(())
    }

    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'static, Result<(), Error>> {
        self.connection.router.add(&subscription, &subscriber);
        let mut mine = self.connection.subscription.lock().unwrap_or_else(|p| p.into_inner());
        mine.patterns.extend(subscription.patterns);
        mine.channels.extend(subscription.channels);
        drop(mine);
        subscriber.on_event(&TransportEvent::Ready);
        Box::pin(async { Ok(()) })
    }

    fn unsubscribe(&self, subscription: Subscription, subscriber: &Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>> {
        let subscription = self.connection.router.remove(&subscription, subscriber);
        let mut mine = self.connection.subscription.lock().unwrap_or_else(|p| p.into_inner());
        mine.patterns.retain(|p| !subscription.patterns.contains(p));
        mine.channels.retain(|c| !subscription.channels.contains(c));
        Box::pin(async { Ok(()) })
    }

    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        let count = self.count(channel);
        Box::pin(async move { Ok(count) })
    }

    fn publish_counted(&self, channel: String, payload: Vec<u8>) -> BoxFuture<'_, Result<usize, Error>> {
        let count = self.count(&channel);
        let published = self.publish(channel, payload);
        Box::pin(async move { published.map(|()| count) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.connection.closed.store(true, std::sync::atomic::Ordering::Release);
        self.broker.lock().retain(|c| !Arc::ptr_eq(c, &self.connection));
        Box::pin(async {})
    }
}
