//! Per-room subscriptions ([`AdapterConfig::per_room_subscriptions`](crate::AdapterConfig)).
//!
//! Instead of the pattern `K#N#*`, a node subscribes to `K#N#` and to `K#N#R#` for each room
//! `R` that has local sockets, so Redis stops sending it the single-room broadcasts it would
//! drop. The host reports rooms as they appear and empty; one background task per namespace
//! turns those changes into batched SUBSCRIBE / UNSUBSCRIBE commands, in order, and says how
//! far it got so that a join can wait until its room's channel is in place.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{watch, Notify};

use crate::transport::{Subscriber, Subscription, Transport};

/// The value of the progress counter once the task has stopped.
const STOPPED: u64 = u64::MAX;

/// Room changes reported by the host and not yet applied, with their sequence number.
#[derive(Default)]
struct Pending {
    /// Room → whether the host wants it subscribed (the last report wins).
    changes: HashMap<String, bool>,
    /// Number of reports so far.
    version: u64,
    /// The adapter closed: unsubscribe everything and stop.
    closing: bool,
}

/// Shared between the namespace adapter (which reports rooms) and its subscription task.
pub(crate) struct RoomChannels {
    pending: Mutex<Pending>,
    changed: Notify,
    /// The last report whose change is applied (or was attempted: a failed SUBSCRIBE is
    /// retried by the transport); [`STOPPED`] once the task ended.
    applied: watch::Sender<u64>,
}

impl RoomChannels {
    /// Starts the subscription task of one namespace; `channel_of` gives a room's channel. The
    /// task holds `subscriber` weakly: it ends once the subscriber is gone (see [`Self::abandon`]).
    pub(crate) fn start(transport: Arc<dyn Transport>, subscriber: &Arc<dyn Subscriber>, channel_of: impl Fn(&str) -> String + Send + 'static) -> Arc<RoomChannels> {
        let rooms = Arc::new(RoomChannels { pending: Mutex::new(Pending::default()), changed: Notify::new(), applied: watch::Sender::new(0) });
        tokio::spawn(run(rooms.clone(), transport, Arc::downgrade(subscriber), channel_of));
        rooms
    }

    /// Ends the task without waiting, its subscriber being dropped without `stop()`: its
    /// channels are left to the transport, which goes with its last user.
    pub(crate) fn abandon(&self) {
        self.lock().closing = true;
        self.changed.notify_one();
    }

    /// Records that a local socket is in `room` (`true`) or that the room emptied (`false`).
    pub(crate) fn set(&self, room: &str, wanted: bool) {
        let mut pending = self.lock();
        pending.changes.insert(room.to_owned(), wanted);
        pending.version += 1;
        drop(pending);
        self.changed.notify_one();
    }

    /// Resolves once every change reported so far is applied (at once after [`Self::stop`]).
    pub(crate) async fn synced(&self) {
        let target = self.lock().version;
        let mut applied = self.applied.subscribe();
        // Only fails when the sender is gone, i.e. never while `self` is alive.
        let _ = applied.wait_for(|done| *done >= target).await;
    }

    /// Unsubscribes every room channel and ends the task; resolves when it has.
    pub(crate) async fn stop(&self) {
        self.lock().closing = true;
        self.changed.notify_one();
        let mut applied = self.applied.subscribe();
        let _ = applied.wait_for(|done| *done == STOPPED).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The subscription task: applies the reported changes in batches until the adapter closes.
async fn run(rooms: Arc<RoomChannels>, transport: Arc<dyn Transport>, subscriber: Weak<dyn Subscriber>, channel_of: impl Fn(&str) -> String) {
    let mut subscribed: HashSet<String> = HashSet::new();
    loop {
        let Some(subscriber) = subscriber.upgrade() else {
            rooms.applied.send_replace(STOPPED);
            return;
        };
        let notified = rooms.changed.notified();
        let (changes, version, closing) = {
            let mut pending = rooms.lock();
            (std::mem::take(&mut pending.changes), pending.version, pending.closing)
        };
        let mut add = Vec::new();
        let mut remove = Vec::new();
        if closing {
            remove.extend(subscribed.drain().map(|room| channel_of(&room)));
        } else {
            for (room, wanted) in changes {
                if wanted && !subscribed.contains(&room) {
                    add.push(channel_of(&room));
                    subscribed.insert(room);
                } else if !wanted && subscribed.remove(&room) {
                    remove.push(channel_of(&room));
                }
            }
        }
        if !add.is_empty() {
            // On failure the transport reports the error to the host and keeps retrying.
            let _ = transport.subscribe(Subscription { patterns: Vec::new(), channels: add }, subscriber.clone()).await;
        }
        if !remove.is_empty() {
            if let Err(err) = transport.unsubscribe(Subscription { patterns: Vec::new(), channels: remove }, &subscriber).await {
                tracing::debug!("unsubscribing room channels failed: {err}");
            }
        }
        if closing {
            rooms.applied.send_replace(STOPPED);
            return;
        }
        rooms.applied.send_replace(version);
        // Not held while waiting: the subscriber may go meanwhile.
        drop(subscriber);
        notified.await;
    }
}
