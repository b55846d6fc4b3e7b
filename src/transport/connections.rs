//! The connections a [`RedisTransport`](super::redis::RedisTransport) uses, and the commands it
//! sends on them: a pair of connections to one server (classic pub/sub: PUBLISH, SUBSCRIBE,
//! PSUBSCRIBE; or sharded pub/sub on a single Redis ≥ 7: SPUBLISH, SSUBSCRIBE), or a Redis
//! Cluster connection for sharded pub/sub, which sends each command to the shard owning the
//! channel and resubscribes per slot after a failover.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
#[cfg(feature = "cluster")]
use redis::cluster::ClusterClientBuilder;
#[cfg(feature = "cluster")]
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};

use super::link::{read_answer, Answer, Side};
use super::subscribing::SubscribingConnection;
use super::wire::{ClientInfo, Failure, OnPush, Outgoing, Push, Sent, Wire};
use super::{Inbound, Subscription};
use crate::config::RedisConfig;
use crate::endpoint::Endpoint;
use crate::error::{redact, Error};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
#[cfg(feature = "cluster")]
/// How long the cluster connection waits for an answer (the transport's own waits are shorter).
const CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections in use, with the number that tells them from the ones they replaced (news from a
/// replaced set, such as its failing PING or its disconnection, is no longer news).
#[derive(Clone)]
pub(crate) enum Conns {
    /// A publishing and a subscribing connection to one server (classic pub/sub).
    Pair {
        /// Where they go (to open a replacement).
        config: Arc<RedisConfig>,
        /// Sends the PUBLISH pipelines and the other commands.
        publisher: ConnectionManager,
        /// RESP3, subscribed; its pushes go to the transport.
        subscriber: SubscribingConnection,
        /// Which subscribing connection this is.
        generation: u64,
        /// Sharded pub/sub on a single server (SPUBLISH, SSUBSCRIBE): Redis ≥ 7 without cluster.
        sharded: bool,
    },
    /// One connection to a Redis Cluster (sharded pub/sub): one link per node underneath.
    #[cfg(feature = "cluster")]
    Sharded {
        /// Routes SPUBLISH/SSUBSCRIBE by slot; its pushes go to the transport.
        cluster: ClusterConnection,
        /// Which set this is.
        generation: u64,
    },
}

/// The messages `indices` (a pipeline's, from the one where it broke on) met `err`.
fn failed(sent: &mut Sent, indices: impl IntoIterator<Item = usize>, err: redis::RedisError) {
    // Answers to the commands are values (the pipelines ignore errors), so an error is the
    // connection's. Without a connection (refused, connecting timed out: responses have no
    // timeout here) or with a handshake that failed, nothing was written; a broken
    // connection may have delivered part of what was written.
    let may_have_run = err.is_io_error() && !err.is_connection_refusal() && !err.is_timeout();
    sent.unanswered.push((indices.into_iter().collect(), Failure { may_have_run, why: redact(&err.to_string()) }));
}

/// Adds the answers to a pipeline of `messages`, whose indices in the batch are `indices`: for
/// each message, the count's answer first when it asked for one (see [`Conns::publish`]), then
/// its own.
fn answered<'a>(sent: &mut Sent, indices: impl Iterator<Item = usize>, messages: impl Iterator<Item = &'a Outgoing>, answers: Vec<redis::RedisResult<Value>>) {
    let mut answers = answers.into_iter();
    for (index, message) in indices.zip(messages) {
        if message.count.is_some() {
            // `PUBSUB NUMSUB channel`: [channel, n] (a map in RESP3); unreadable means uncounted.
            let reply = answers.next().and_then(Result::ok).and_then(|v| redis::from_redis_value::<Vec<(String, i64)>>(v).ok());
            if let Some(count) = reply.and_then(|reply| reply.first().map(|(_, n)| (*n).max(0) as usize)) {
                sent.counts.push((index, count));
            }
        }
        if let Some(Err(err)) = answers.next() {
            sent.refused.push((index, err.code().unwrap_or("ERR").to_owned()));
        }
    }
}

/// One pipeline of `messages` (`command`: PUBLISH or SPUBLISH; `count`: the `PUBSUB` subcommand
/// that counts a channel's subscribers), errors answered in place rather than failing it.
fn pipeline<'a>(messages: impl ExactSizeIterator<Item = &'a Outgoing> + Clone, command: &str, count: &str) -> redis::Pipeline {
    // Sized up front: no command or pipeline grows (reallocates) while it is built.
    let mut pipe = redis::Pipeline::with_capacity(messages.len() + messages.clone().filter(|m| m.count.is_some()).count());
    pipe.ignore_errors();
    for message in messages {
        if message.count.is_some() {
            pipe.cmd("PUBSUB").arg(count).arg(&message.channel);
        }
        let mut publish = redis::Cmd::with_capacity(3, command.len() + message.channel.len() + message.payload.len());
        publish.arg(command).arg(&message.channel).arg(&message.payload);
        pipe.add_command(publish);
    }
    pipe
}

#[cfg(feature = "cluster")]
/// The indices of `messages` grouped by the slot of their channel: groups in the order of their
/// first message, each in the messages' order.
fn by_slot(messages: &[Outgoing]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(redis::cluster_routing::Slot, Vec<usize>)> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let slot = redis::cluster_routing::Slot::for_key(&message.channel);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, indices)) => indices.push(index),
            None => groups.push((slot, vec![index])),
        }
    }
    groups.into_iter().map(|(_, indices)| indices).collect()
}

impl Conns {
    /// Both connections to the server of `config` (lazy: nothing is sent yet).
    pub(crate) fn open_pair(config: &RedisConfig, generation: u64, on_push: OnPush) -> Result<Conns, Error> {
        let config = Arc::new(config.clone());
        let subscriber = subscriber(&config, on_push)?;
        let publisher = publisher(&config)?;
        let sharded = config.sharded;
        Ok(Conns::Pair { config, publisher, subscriber, generation, sharded })
    }

    #[cfg(feature = "cluster")]
    /// A connection to the Redis Cluster of the seed nodes `seeds` (`redis://host:port` URLs).
    pub(crate) async fn open_sharded(seeds: Vec<String>, ca: Option<Vec<u8>>, generation: u64, on_push: OnPush) -> Result<Conns, Error> {
        let on_push = move |push: PushInfo| -> Result<(), ()> {
            if let Some(push) = into_push(push) {
                on_push(push);
            }
            Ok(())
        };
        // TLS (and whether to verify) comes from the seeds' `rediss://…[#insecure]` URLs.
        let builder = match ca {
            #[cfg(feature = "tls")]
            Some(ca) if seeds.first().is_some_and(|seed| seed.starts_with("rediss:") && !seed.ends_with("#insecure")) => {
                ClusterClientBuilder::new(seeds).certs(redis::TlsCertificates { client_tls: None, root_cert: Some(ca) })
            }
            _ => ClusterClientBuilder::new(seeds),
        };
        let client = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(on_push)
            .connection_timeout(CONNECT_TIMEOUT)
            // Longer than the transport's own waits, which decide; a shorter one would make an
            // unanswered SPUBLISH look like one that was never sent.
            .response_timeout(CLUSTER_RESPONSE_TIMEOUT)
            .build()?;
        Ok(Conns::Sharded { cluster: client.get_async_connection().await?, generation })
    }

    /// True for sharded pub/sub (through a cluster connection or on a single server).
    fn is_sharded(&self) -> bool {
        match self {
            Conns::Pair { sharded, .. } => *sharded,
            #[cfg(feature = "cluster")]
            Conns::Sharded { .. } => true,
        }
    }
}

impl Wire for Conns {
    /// The same connections with `side` opened anew (`generation` for a new subscribing one);
    /// `None` for a cluster connection, which replaces its connections itself.
    fn replace(&self, sides: &[Side], generation: u64, on_push: OnPush) -> Option<Result<Self, Error>> {
        match self {
            Conns::Pair { config, publisher, subscriber, sharded, .. } => {
                let open = || -> Result<Conns, Error> {
                    let publisher = if sides.contains(&Side::Publisher) { self::publisher(config)? } else { publisher.clone() };
                    let subscriber = if sides.contains(&Side::Subscriber) { self::subscriber(config, on_push)? } else { subscriber.clone() };
                    Ok(Conns::Pair { config: config.clone(), publisher, subscriber, generation, sharded: *sharded })
                };
                Some(open())
            }
            #[cfg(feature = "cluster")]
            Conns::Sharded { .. } => None,
        }
    }

    /// How Redis knows each connection (publisher, subscriber): `id=… addr=…` from `CLIENT
    /// INFO` (Redis ≥ 6.2), to close them at Redis once they were replaced. `None` for a cluster
    /// connection or when it cannot be asked.
    async fn client_infos(&mut self) -> [Option<ClientInfo>; 2] {
        async fn info<C: redis::aio::ConnectionLike>(conn: &mut C) -> Option<ClientInfo> {
            let text: String = redis::cmd("CLIENT").arg("INFO").query_async(conn).await.ok()?;
            let field = |name: &str| text.split(' ').find_map(|kv| kv.strip_prefix(name)).map(str::to_owned);
            Some(ClientInfo { id: field("id=")?, addr: field("addr=")? })
        }
        match self {
            Conns::Pair { publisher, subscriber, .. } => {
                let (p, s) = tokio::join!(info(publisher), info(subscriber));
                [p, s]
            }
            #[cfg(feature = "cluster")]
            Conns::Sharded { .. } => [None, None],
        }
    }

    /// Closes, at Redis, the connection `client` (a replaced one that may still look alive to
    /// Redis, e.g. behind a silent network, and would count as a subscriber until Redis's
    /// keepalive noticed). Matching on both id and address: ids start again after a restart.
    async fn kill_client(&mut self, client: &ClientInfo) -> Result<(), Error> {
        match self {
            Conns::Pair { publisher, .. } => {
                redis::cmd("CLIENT").arg("KILL").arg("ID").arg(&client.id).arg("ADDR").arg(&client.addr).query_async::<Value>(publisher).await?;
            }
            #[cfg(feature = "cluster")]
            Conns::Sharded { .. } => {}
        }
        Ok(())
    }

    /// Which set of connections this is.
    fn generation(&self) -> u64 {
        match self {
            Conns::Pair { generation, .. } => *generation,
            #[cfg(feature = "cluster")]
            Conns::Sharded { generation, .. } => *generation,
        }
    }

    fn retries_by_itself(&self) -> bool {
        match self {
            // A ConnectionManager with retries off.
            Conns::Pair { .. } => false,
            #[cfg(feature = "cluster")]
            Conns::Sharded { .. } => true,
        }
    }

    /// Publishes `messages`: one PUBLISH (or, sharded on a single server, SPUBLISH) pipeline,
    /// in order; or, on a Redis Cluster, one SPUBLISH pipeline per slot (the cluster connection
    /// keeps a pipeline within one slot), all sent at once: each channel's messages keep their
    /// order, and round-robin room broadcasts do not cost one round trip each. A message that
    /// asks for a count is preceded by `PUBSUB NUMSUB` (`SHARDNUMSUB`) of its channel in the
    /// same pipeline, so the count is the server's just before the message. Says what Redis
    /// answered to each.
    async fn publish(&mut self, messages: &[Outgoing]) -> Sent {
        let mut sent = Sent::default();
        let (command, count) = if self.is_sharded() { ("SPUBLISH", "SHARDNUMSUB") } else { ("PUBLISH", "NUMSUB") };
        match self {
            Conns::Pair { publisher, .. } => match pipeline(messages.iter(), command, count).query_async::<Vec<redis::RedisResult<Value>>>(publisher).await {
                Ok(answers) => answered(&mut sent, 0..messages.len(), messages.iter(), answers),
                Err(err) => failed(&mut sent, 0..messages.len(), err),
            },
            #[cfg(feature = "cluster")]
            Conns::Sharded { cluster, .. } => {
                let groups = by_slot(messages);
                // Polled in order: each pipeline is handed to the cluster connection in the
                // order of its first message. Each has its own deadline, shorter than the whole
                // batch's: a shard that hangs fails its own messages only.
                let within = super::driver::PUBLISH_TIMEOUT - Duration::from_millis(500);
                let replies = futures_util::future::join_all(groups.iter().map(|indices| {
                    let pipe = pipeline(indices.iter().map(|&i| &messages[i]), command, count);
                    let mut cluster = cluster.clone();
                    async move { tokio::time::timeout(within, pipe.query_async::<Vec<redis::RedisResult<Value>>>(&mut cluster)).await }
                }))
                .await;
                for (indices, reply) in groups.into_iter().zip(replies) {
                    match reply {
                        Ok(Ok(answers)) => answered(&mut sent, indices.iter().copied(), indices.iter().map(|&i| &messages[i]), answers),
                        Ok(Err(err)) => failed(&mut sent, indices, err),
                        Err(_) => sent.unanswered.push((indices, Failure { may_have_run: true, why: format!("no answer within {} ms", within.as_millis()) })),
                    }
                }
            }
        }
        sent
    }

    /// Subscribes to `subscription` (sharded: its channels, with SSUBSCRIBE).
    async fn subscribe(&mut self, subscription: &Subscription) -> Result<(), Error> {
        match self {
            Conns::Pair { subscriber, sharded: true, .. } => {
                // The redis crate has no SSUBSCRIBE for a single server: the raw command, one
                // channel each, answered by its confirmation push.
                for channel in &subscription.channels {
                    redis::cmd("SSUBSCRIBE").arg(channel).query_async::<Value>(subscriber).await?;
                }
            }
            Conns::Pair { subscriber, .. } => {
                if !subscription.patterns.is_empty() {
                    subscriber.psubscribe(&subscription.patterns).await?;
                }
                if !subscription.channels.is_empty() {
                    subscriber.subscribe(&subscription.channels).await?;
                }
            }
            #[cfg(feature = "cluster")]
            Conns::Sharded { cluster, .. } => {
                // One command per channel (the channels of one SSUBSCRIBE must share a slot), every
                // channel tried even when one shard fails: the first error is returned.
                let mut first_error = None;
                for channel in &subscription.channels {
                    if let Err(err) = cluster.ssubscribe(channel).await {
                        first_error.get_or_insert(err);
                    }
                }
                if let Some(err) = first_error {
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    /// Unsubscribes from `subscription`.
    async fn unsubscribe(&mut self, subscription: &Subscription) -> Result<(), Error> {
        match self {
            Conns::Pair { subscriber, sharded: true, .. } => {
                for channel in &subscription.channels {
                    redis::cmd("SUNSUBSCRIBE").arg(channel).query_async::<Value>(subscriber).await?;
                }
            }
            Conns::Pair { subscriber, .. } => {
                if !subscription.patterns.is_empty() {
                    subscriber.punsubscribe(&subscription.patterns).await?;
                }
                if !subscription.channels.is_empty() {
                    subscriber.unsubscribe(&subscription.channels).await?;
                }
            }
            #[cfg(feature = "cluster")]
            Conns::Sharded { cluster, .. } => {
                for channel in &subscription.channels {
                    cluster.sunsubscribe(channel).await?;
                }
            }
        }
        Ok(())
    }

    /// The cluster's slot map (`CLUSTER SLOTS`) for sharded pub/sub on a cluster; `None`
    /// otherwise, or when it cannot be read now.
    async fn topology(&mut self) -> Option<Value> {
        match self {
            #[cfg(feature = "cluster")]
            Conns::Sharded { cluster, .. } => redis::cmd("CLUSTER").arg("SLOTS").query_async::<Value>(cluster).await.ok(),
            Conns::Pair { .. } => None,
        }
    }

    /// Subscribers of `channel`: `PUBSUB NUMSUB` on the server, or, sharded, `PUBSUB
    /// SHARDNUMSUB` summed over every node of the cluster.
    async fn num_sub(&mut self, channel: &str) -> Result<usize, Error> {
        let reply: Vec<(String, i64)> = match self {
            Conns::Pair { publisher, sharded, .. } => redis::cmd("PUBSUB").arg(if *sharded { "SHARDNUMSUB" } else { "NUMSUB" }).arg(channel).query_async(publisher).await?,
            #[cfg(feature = "cluster")]
            Conns::Sharded { cluster, .. } => redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel).query_async(cluster).await?,
        };
        Ok(reply.iter().map(|(_, n)| (*n).max(0) as usize).sum())
    }

    /// PINGs the publishing connection and, when `subscribing`, the subscribing one, at the
    /// same time, each within `timeout`, and says how each answered.
    async fn probe(&mut self, timeout: Duration, subscribing: bool) -> (Answer, Option<Answer>) {
        async fn ping<C: redis::aio::ConnectionLike>(conn: &mut C, timeout: Duration) -> Answer {
            read_answer(tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(conn)).await.ok().map(|r| r.map(drop)))
        }
        match self {
            Conns::Pair { publisher, subscriber, .. } => {
                tokio::join!(ping(publisher, timeout), async {
                    if subscribing {
                        Some(ping(subscriber, timeout).await)
                    } else {
                        None
                    }
                })
            }
            #[cfg(feature = "cluster")]
            // One connection for both: its answer stands for both sides.
            Conns::Sharded { cluster, .. } => {
                let answer = ping(cluster, timeout).await;
                let subscriber = subscribing.then(|| answer.clone());
                (answer, subscriber)
            }
        }
    }
}

/// A client for `config`'s server, speaking RESP3 on every connection: the subscriber needs it
/// for pushes, and a RESP3 connection's manager reconnects as soon as the connection drops (a
/// disconnection push), not at the next command, so a publisher killed while idle does not turn
/// its next pipeline into an unconfirmed one.
fn resp3_client(config: &RedisConfig) -> Result<redis::Client, Error> {
    let Endpoint::Server(server) = config.endpoint() else {
        return Err(Error::InvalidOption { option: "url", reason: format!("not the URL of one server: {}", redact(config.url())) });
    };
    let mut info = server.info.clone();
    let redis_settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
    info = info.set_redis_settings(redis_settings);
    super::locate::client(info, config.tls_ca_pem.as_deref()).map_err(|e| Error::InvalidOption { option: "url", reason: format!("{} ({})", e.detail(), redact(config.url())) })
}

/// The publishing connection to `config`'s server: a connection manager with no response timeout
/// (the transport decides how long to wait for what), which tries to connect once per command
/// (the transport's supervisor paces the retries).
fn publisher(config: &RedisConfig) -> Result<ConnectionManager, Error> {
    let settings = ConnectionManagerConfig::new().set_number_of_retries(0).set_response_timeout(None).set_connection_timeout(Some(CONNECT_TIMEOUT));
    Ok(ConnectionManager::new_lazy_with_config(resp3_client(config)?, settings)?)
}

/// The subscribing connection to `config`'s server, its pushes going to `on_push`; like the
/// publisher, it connects at its next command, once.
fn subscriber(config: &RedisConfig, on_push: OnPush) -> Result<SubscribingConnection, Error> {
    let sink = move |push: PushInfo| {
        if let Some(push) = into_push(push) {
            on_push(push);
        }
    };
    Ok(SubscribingConnection::new(resp3_client(config)?, Arc::new(sink), CONNECT_TIMEOUT))
}

/// What a push from the redis crate says, for the link driver; `None` for pushes it does not
/// need (e.g. `pong`, client-side caching invalidations).
fn into_push(push: PushInfo) -> Option<Push> {
    let bytes = |v: Option<Value>| match v {
        Some(Value::BulkString(b)) => Some(b),
        Some(Value::SimpleString(s)) => Some(s.into_bytes()),
        _ => None,
    };
    let mut data = push.data.into_iter();
    let name = |v: Option<Value>| Some(String::from_utf8_lossy(&bytes(v)?).into_owned());
    match push.kind {
        // `message`/`smessage` [channel, payload] or `pmessage` [pattern, channel, payload]; the
        // route is the pattern for pattern messages and the channel otherwise.
        PushKind::Message | PushKind::SMessage | PushKind::PMessage => {
            let route = if push.kind == PushKind::PMessage { Some(bytes(data.next())?) } else { None };
            let channel = bytes(data.next())?;
            let payload = bytes(data.next())?;
            let route = String::from_utf8_lossy(route.as_ref().unwrap_or(&channel)).into_owned();
            Some(Push::Message(route, Inbound { channel, payload }))
        }
        PushKind::Disconnection => Some(Push::Disconnected),
        PushKind::Subscribe | PushKind::SSubscribe => Some(Push::Subscribed { pattern: false, name: name(data.next())? }),
        PushKind::PSubscribe => Some(Push::Subscribed { pattern: true, name: name(data.next())? }),
        PushKind::Unsubscribe | PushKind::SUnsubscribe => Some(Push::Unsubscribed { pattern: false, name: name(data.next())? }),
        PushKind::PUnsubscribe => Some(Push::Unsubscribed { pattern: true, name: name(data.next())? }),
        _ => None,
    }
}

#[cfg(all(test, feature = "cluster"))]
mod tests {
    use super::*;

    fn message(channel: &str) -> Outgoing {
        Outgoing { channel: channel.to_owned(), payload: Vec::new(), count: None }
    }

    #[test]
    fn a_batch_is_grouped_by_slot_in_the_order_of_first_messages_each_in_order() {
        // `{a}x` and `{a}y` share the hash tag `a`, so the slot of `a`.
        let channels = ["p#/#r1#", "{a}x", "p#/#r2#", "p#/#r1#", "a", "{a}y", "p#/#r2#"];
        let messages: Vec<Outgoing> = channels.iter().map(|c| message(c)).collect();
        let groups = by_slot(&messages);
        let slot = |c: &str| redis::cluster_routing::Slot::for_key(c);
        assert_ne!(slot("p#/#r1#"), slot("p#/#r2#"), "the example needs two slots");
        assert_eq!(groups, vec![vec![0, 3], vec![1, 4, 5], vec![2, 6]]);
    }
}
