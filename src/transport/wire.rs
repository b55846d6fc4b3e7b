//! What the link driver ([`super::driver`]) needs of the connections it watches over: a
//! publishing and a subscribing side, commands on them, and pushes from the subscribing side.
//! The Redis connections ([`super::connections::Conns`]) are the real thing; the in-memory
//! broker's ([`super::memory::MemoryWire`]) can be made to misbehave, so that the driver's
//! handling of every fault is tested in milliseconds.

use std::future::Future;
use std::time::Duration;

use super::link::{Answer, Side};
use super::{Inbound, Subscription};
use crate::error::Error;

/// What the subscribing side hands over, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Push {
    /// A message, with its route: the pattern for pattern messages, the channel otherwise.
    Message(String, Inbound),
    /// The connection was lost; it reconnects on its next command.
    Disconnected,
    /// The server confirmed a subscription (also one the connection made again by itself).
    Subscribed {
        /// A pattern (`PSUBSCRIBE`) rather than a channel.
        pattern: bool,
        /// The pattern or channel.
        name: String,
    },
    /// The server ended a subscription: confirming an unsubscription, or by itself (Redis ≥ 7
    /// ends shard channel subscriptions whose slot moved away).
    Unsubscribed {
        /// A pattern (`PUNSUBSCRIBE`) rather than a channel.
        pattern: bool,
        /// The pattern or channel.
        name: String,
    },
}

/// Where a subscribing connection's pushes go.
pub(crate) type OnPush = Box<dyn Fn(Push) + Send + Sync>;

/// A connection as the server knows it, to close it there once it was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientInfo {
    /// Its id (`CLIENT ID`).
    pub id: String,
    /// Its address as the server sees it (`ip:port`).
    pub addr: String,
}

/// Who waits for the subscriber count taken just before a message was published.
pub(crate) type CountWaiter = tokio::sync::oneshot::Sender<Result<usize, Error>>;

/// A message on its way to the server.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The channel to publish on.
    pub channel: String,
    /// What to publish.
    pub payload: Vec<u8>,
    /// Set when the channel's subscribers are to be counted in the same pipeline, just before
    /// the message (`PUBSUB NUMSUB`, then `PUBLISH`): who waits for the count. A cluster request
    /// needs both, and so costs one round trip instead of two.
    pub count: Option<CountWaiter>,
}

impl Outgoing {
    /// What it weighs against `maxQueuedBytes`.
    pub fn size(&self) -> u64 {
        (self.channel.len() + self.payload.len()) as u64
    }
}

/// What became of a pipeline.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Messages (by index) that the server answered with an error, and the error's code: not run.
    pub refused: Vec<(usize, String)>,
    /// For the messages (by index) sent with a count: the subscribers the server counted.
    pub counts: Vec<(usize, usize)>,
    /// Messages (by index) that got no answer, and why: one entry per pipeline that failed (a
    /// pipeline's messages from the failure on; on a Redis Cluster a batch is one pipeline per
    /// slot, which may fail apart).
    pub unanswered: Vec<(Vec<usize>, Failure)>,
}

/// Why messages of a pipeline got no answer.
#[derive(Debug)]
pub(crate) struct Failure {
    /// False only when the messages certainly did not reach the server (no connection).
    pub may_have_run: bool,
    /// What went wrong, for the report.
    pub why: String,
}

impl Sent {
    /// The messages `indices` got no answer, for the reason `failure`.
    pub(crate) fn unanswered(indices: impl IntoIterator<Item = usize>, failure: Failure) -> Sent {
        Sent { unanswered: vec![(indices.into_iter().collect(), failure)], ..Sent::default() }
    }

    /// Why message `index` got no answer, if it got none.
    pub(crate) fn failure_of(&self, index: usize) -> Option<&Failure> {
        self.unanswered.iter().find(|(indices, _)| indices.contains(&index)).map(|(_, failure)| failure)
    }
}

/// One set of connections in use (a publishing and a subscribing side, which may be one
/// connection), with the number that tells it from the sets it replaced. Cloning shares the
/// connections.
pub(crate) trait Wire: Clone + Send + Sync + 'static {
    /// Which set this is (the generation of its subscribing side).
    fn generation(&self) -> u64;

    /// True when the connections send a refused pipeline again by themselves (a Redis Cluster
    /// connection retries `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING`... after a pause, and reports
    /// only the final answer): a later pipeline could then overtake it, so one goes out at a
    /// time.
    fn retries_by_itself(&self) -> bool;

    /// Publishes `messages` in order (each with a count first when it asks for one) and says
    /// what the server answered to each.
    fn publish(&mut self, messages: &[Outgoing]) -> impl Future<Output = Sent> + Send;

    /// Subscribes the subscribing side to `subscription`; resolves once confirmed.
    fn subscribe(&mut self, subscription: &Subscription) -> impl Future<Output = Result<(), Error>> + Send;

    /// Unsubscribes the subscribing side from `subscription`.
    fn unsubscribe(&mut self, subscription: &Subscription) -> impl Future<Output = Result<(), Error>> + Send;

    /// Subscribers of `channel` on the server (`PUBSUB NUMSUB`).
    fn num_sub(&mut self, channel: &str) -> impl Future<Output = Result<usize, Error>> + Send;

    /// PINGs the publishing side and, when `subscribing`, the subscribing one, each within
    /// `timeout`, and says how each answered.
    fn probe(&mut self, timeout: Duration, subscribing: bool) -> impl Future<Output = (Answer, Option<Answer>)> + Send;

    /// The same set with `sides` opened anew (`generation` and `on_push` for a new subscribing
    /// side); `None` when the connections replace themselves (a cluster connection).
    fn replace(&self, sides: &[Side], generation: u64, on_push: OnPush) -> Option<Result<Self, Error>>;

    /// How the server knows each side (publisher, subscriber), when it can say.
    fn client_infos(&mut self) -> impl Future<Output = [Option<ClientInfo>; 2]> + Send;

    /// Closes `client` (a replaced connection) at the server.
    fn kill_client(&mut self, client: &ClientInfo) -> impl Future<Output = Result<(), Error>> + Send;

    /// Something that changes when the server's topology does (a cluster's slot map), when the
    /// subscriptions depend on it; `None` otherwise.
    fn topology(&mut self) -> impl Future<Output = Option<redis::Value>> + Send;
}
