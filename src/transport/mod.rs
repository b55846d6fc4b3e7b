//! Moving bytes through a pub/sub broker, behind one small trait.
//!
//! [`redis::RedisTransport`] is the real thing: it owns one connection to publish (pipelined,
//! behind a bounded queue) and one to subscribe (RESP3, resubscribed automatically after a
//! reconnect). [`memory::MemoryBroker`] is its in-process twin, so the engine above can be
//! tested without Redis. Received messages are handed to [`Subscriber`]s in batches.

#[cfg(feature = "cluster")]
pub mod cluster;
mod connections;
mod driver;
#[cfg(test)]
mod faulty;
mod link;
#[cfg_attr(not(any(feature = "sentinel", feature = "cluster")), allow(dead_code))]
mod locate;
pub mod memory;
pub mod redis;
#[cfg(feature = "sentinel")]
pub mod sentinel;
mod subscribing;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock, Weak};

use crate::error::Error;

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The channel it was published on.
    pub channel: Vec<u8>,
    /// The payload, as published.
    pub payload: Vec<u8>,
}

/// Something the transport wants its subscribers to know about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// The connection failed or was lost; messages may be delayed until it is back.
    Error(String),
    /// Connected (again) with every subscription in place.
    Ready,
}

/// Receives what arrives on the channels it subscribed to.
pub trait Subscriber: Send + Sync + 'static {
    /// One message; messages come in the order the broker sent them.
    fn on_message(&self, message: Inbound);
    /// A change of the connection's state.
    fn on_event(&self, event: &TransportEvent);
}

/// What one subscriber listens to: a pattern (PSUBSCRIBE) and plain channels (SUBSCRIBE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Glob patterns, e.g. `socket.io#/#*`.
    pub patterns: Vec<String>,
    /// Exact channel names.
    pub channels: Vec<String>,
}

/// A pub/sub broker connection shared by the namespace adapters of one node.
pub trait Transport: Send + Sync + 'static {
    /// Queues a message for publishing and returns at once. Fails when the queue is full or the
    /// transport is closed; the message is then not sent.
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error>;

    /// Starts delivering messages of `subscription` to `subscriber`: registered at once (so an
    /// `unsubscribe` right after undoes it), confirmed by the broker in the returned future,
    /// which resolves once it confirmed; if it cannot be reached the subscription is kept and
    /// retried in the background, and the future resolves with the first error. The transport
    /// holds `subscriber` weakly: it hears messages for as long as its owner keeps it, and a
    /// subscriber dropped without `unsubscribe` is simply not called any more.
    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'static, Result<(), Error>>;

    /// Stops the deliveries of `subscription` to `subscriber`; the broker is told for the
    /// patterns and channels nobody else (another namespace adapter, another server sharing the
    /// connection) still listens to.
    fn unsubscribe(&self, subscription: Subscription, subscriber: &Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>>;

    /// The number of subscribers of `channel` on the broker (`PUBSUB NUMSUB`).
    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>>;

    /// Publishes as [`publish`](Transport::publish) does, and counts the subscribers of
    /// `channel` just before the message is published (`PUBSUB NUMSUB` and `PUBLISH` in one
    /// pipeline where the broker allows it): what a cluster request needs, in one round trip.
    /// The message is queued before this returns, so it keeps its place among this node's
    /// messages; the future gives the count once the broker answered, or why there is none.
    fn publish_counted(&self, channel: String, payload: Vec<u8>) -> BoxFuture<'_, Result<usize, Error>>;

    /// Sends what is queued (within a short grace period), then closes the connections.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Locks `mutex`, also after a panic of another holder: the transport's critical sections do
/// not panic midway, so what they guard stays consistent.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// `transport.num_sub(channel)`, given up after `within` (Redis stalled, no primary known yet)
/// with an error that says so.
pub(crate) async fn num_sub_within(transport: &dyn Transport, channel: &str, within: std::time::Duration) -> Result<usize, Error> {
    tokio::time::timeout(within, transport.num_sub(channel)).await.unwrap_or_else(|_| Err(not_counted_within(within)))
}

/// The error for subscribers that could not be counted within `within`.
pub(crate) fn not_counted_within(within: std::time::Duration) -> Error {
    Error::Redis(format!("cannot count the nodes: Redis did not answer PUBSUB NUMSUB within {} ms", within.as_millis()))
}

/// Starts delivering `subscription` to `subscriber` without waiting (within a tokio runtime):
/// registered before this returns, confirmed in the background; failures reach the subscriber
/// as [`TransportEvent::Error`] and the transport keeps retrying.
pub(crate) fn subscribe_in_background(transport: &dyn Transport, subscription: Subscription, subscriber: Arc<dyn Subscriber>) {
    let confirmed = transport.subscribe(subscription, subscriber);
    tokio::spawn(async move {
        let _ = confirmed.await;
    });
}

/// Maps patterns and channels to the subscribers that asked for them (several adapters may
/// share a connection: two servers given one `createAdapter()`), and delivers batches.
#[derive(Default)]
pub(crate) struct Router {
    /// Subscribers are held weakly: a subscriber (an adapter's engine) dropped without
    /// unsubscribing is simply not called any more, and its transport can be dropped too.
    routes: RwLock<HashMap<String, Vec<Weak<dyn Subscriber>>>>,
}

/// True when `known` is `subscriber`.
fn same(known: &Weak<dyn Subscriber>, subscriber: &Arc<dyn Subscriber>) -> bool {
    std::ptr::addr_eq(known.as_ptr(), Arc::as_ptr(subscriber))
}

impl Router {
    pub(crate) fn add(&self, subscription: &Subscription, subscriber: &Arc<dyn Subscriber>) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        for name in subscription.patterns.iter().chain(&subscription.channels) {
            let listeners = routes.entry(name.clone()).or_default();
            listeners.retain(|known| known.strong_count() > 0);
            if !listeners.iter().any(|known| same(known, subscriber)) {
                listeners.push(Arc::downgrade(subscriber));
            }
        }
    }

    /// Removes `subscriber` from the routes of `subscription`; returns the patterns and
    /// channels nobody listens to any more.
    pub(crate) fn remove(&self, subscription: &Subscription, subscriber: &Arc<dyn Subscriber>) -> Subscription {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let mut unheard = |names: &[String]| -> Vec<String> {
            let mut gone = Vec::new();
            for name in names {
                let Some(listeners) = routes.get_mut(name) else { continue };
                listeners.retain(|known| !same(known, subscriber) && known.strong_count() > 0);
                if listeners.is_empty() {
                    routes.remove(name);
                    gone.push(name.clone());
                }
            }
            gone
        };
        Subscription { patterns: unheard(&subscription.patterns), channels: unheard(&subscription.channels) }
    }

    /// True when nobody subscribed anything (a publish-only transport).
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    pub(crate) fn subscribers(&self) -> Vec<Arc<dyn Subscriber>> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Arc<dyn Subscriber>> = Vec::new();
        for s in routes.values().flatten().filter_map(Weak::upgrade) {
            if !all.iter().any(|known| Arc::ptr_eq(known, &s)) {
                all.push(s);
            }
        }
        all
    }

    pub(crate) fn broadcast_event(&self, event: &TransportEvent) {
        for s in self.subscribers() {
            s.on_event(event);
        }
    }

    /// Delivers `message`, which arrived on `route` (the pattern or channel that matched), to
    /// every subscriber of the route, in the order the broker sent it.
    ///
    /// After a message of [`TRIM_AFTER_BYTES`](crate::ffi::heap::TRIM_AFTER_BYTES) or more, the
    /// allocator's free pages go back to the system (a dropped hostile message would otherwise
    /// stay in the node's RSS).
    pub(crate) fn deliver(&self, route: &str, message: Inbound) {
        let large = message.payload.len() >= crate::ffi::heap::TRIM_AFTER_BYTES;
        let listeners: Vec<Arc<dyn Subscriber>> = {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            routes.get(route).map(|l| l.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default()
        };
        if let Some((last, others)) = listeners.split_last() {
            for subscriber in others {
                subscriber.on_message(message.clone());
            }
            last.on_message(message);
        }
        if large {
            crate::ffi::heap::trim_after_large_message();
        }
    }
}

/// True when `channel` matches the Redis glob `pattern` (`*`, `?`, `[...]`, `\` escapes).
pub(crate) fn glob_match(pattern: &[u8], channel: &[u8]) -> bool {
    match pattern.split_first() {
        None => channel.is_empty(),
        Some((b'*', rest)) => (0..=channel.len()).any(|i| glob_match(rest, &channel[i..])),
        Some((b'?', rest)) => !channel.is_empty() && glob_match(rest, &channel[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => channel.first() == Some(&rest[0]) && glob_match(&rest[1..], &channel[1..]),
        Some((b'[', rest)) => match (rest.iter().position(|&b| b == b']'), channel.split_first()) {
            (Some(end), Some((c, tail))) => {
                let class = &rest[..end];
                let (negate, class) = match class.split_first() {
                    Some((b'^', c)) => (true, c),
                    _ => (false, class),
                };
                let hit = class.windows(3).any(|w| w[1] == b'-' && w[0] <= *c && *c <= w[2]) || class.contains(c);
                hit != negate && glob_match(&rest[end + 1..], tail)
            }
            _ => false,
        },
        Some((p, rest)) => channel.first() == Some(p) && glob_match(rest, &channel[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob_match(b"socket.io#/#*", b"socket.io#/#"));
        assert!(glob_match(b"socket.io#/#*", b"socket.io#/#room#"));
        assert!(!glob_match(b"socket.io#/#*", b"socket.io#/admin#"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"a[b-d]e", b"ace"));
        assert!(!glob_match(b"a[^b]e", b"abe"));
        assert!(glob_match(b"a\\*", b"a*"));
    }
}
