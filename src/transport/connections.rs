//! The connections a [`RedisTransport`](super::redis::RedisTransport) uses, and the commands it
//! sends on them: a pair of connections to one server (classic pub/sub: PUBLISH, SUBSCRIBE,
//! PSUBSCRIBE; or sharded pub/sub on a single Redis ≥ 7: SPUBLISH, SSUBSCRIBE), or a Redis
//! Cluster connection for sharded pub/sub, which sends each command to the shard owning the
//! channel and resubscribes per slot after a failover.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo, PushInfo, PushKind, Value};

use super::{Inbound, Subscription};
use crate::config::RedisConfig;
use crate::error::{redact, Error};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections in use, with the number that tells them from the ones they replaced (news from a
/// replaced set, such as its failing PING or its disconnection, is no longer news).
#[derive(Clone)]
pub(crate) enum Conns {
    /// A publishing and a subscribing connection to one server (classic pub/sub).
    Pair {
        /// Sends the PUBLISH pipelines and the other commands.
        publisher: ConnectionManager,
        /// RESP3, subscribed; its pushes go to the transport.
        subscriber: ConnectionManager,
        /// Which set this is.
        generation: u64,
        /// Sharded pub/sub on a single server (SPUBLISH, SSUBSCRIBE): Redis ≥ 7 without cluster.
        sharded: bool,
    },
    /// One connection to a Redis Cluster (sharded pub/sub): one link per node underneath.
    Sharded {
        /// Routes SPUBLISH/SSUBSCRIBE by slot; its pushes go to the transport.
        cluster: ClusterConnection,
        /// Which set this is.
        generation: u64,
    },
}

/// A push handler: where the redis crate hands over messages and confirmations.
pub(crate) type OnPush = Box<dyn Fn(PushInfo) + Send + Sync>;

impl Conns {
    /// Both connections to the server at `config.url` (lazy: nothing is sent yet).
    pub(crate) fn open_pair(config: &RedisConfig, generation: u64, on_push: OnPush) -> Result<Conns, Error> {
        let client = |resp3: bool| -> Result<redis::Client, Error> {
            let mut info: redis::ConnectionInfo = config.url.as_str().into_connection_info().map_err(|e| invalid_url(&config.url, e))?;
            if resp3 {
                let redis_settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
                info = info.set_redis_settings(redis_settings);
            }
            let client = match &config.tls_ca_pem {
                Some(ca) => redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(ca.clone()) }),
                None => redis::Client::open(info),
            };
            client.map_err(|e| invalid_url(&config.url, e))
        };
        let manager_config = || {
            ConnectionManagerConfig::new()
                .set_number_of_retries(4)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(2))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
        };
        let on_push = move |push: PushInfo| -> Result<(), ()> {
            on_push(push);
            Ok(())
        };
        let subscriber = ConnectionManager::new_lazy_with_config(client(true)?, manager_config().set_push_sender(on_push).set_automatic_resubscription())?;
        let publisher = ConnectionManager::new_lazy_with_config(client(false)?, manager_config())?;
        Ok(Conns::Pair { publisher, subscriber, generation, sharded: config.sharded })
    }

    /// A connection to the Redis Cluster of the seed nodes `seeds` (`redis://host:port` URLs).
    pub(crate) async fn open_sharded(seeds: Vec<String>, generation: u64, on_push: OnPush) -> Result<Conns, Error> {
        let on_push = move |push: PushInfo| -> Result<(), ()> {
            on_push(push);
            Ok(())
        };
        let client = ClusterClientBuilder::new(seeds)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(on_push)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Conns::Sharded { cluster: client.get_async_connection().await?, generation })
    }

    /// Which set of connections this is.
    pub(crate) fn generation(&self) -> u64 {
        match self {
            Conns::Pair { generation, .. } | Conns::Sharded { generation, .. } => *generation,
        }
    }

    /// Publishes `messages` in order: one PUBLISH pipeline, or, sharded, one SPUBLISH pipeline
    /// per run of messages to the same channel (a pipeline must stay within one slot).
    pub(crate) async fn publish(&mut self, messages: &[(String, Vec<u8>)]) -> Result<(), Error> {
        match self {
            Conns::Pair { publisher, sharded, .. } => {
                let command = if *sharded { "SPUBLISH" } else { "PUBLISH" };
                let mut pipe = redis::pipe();
                for (channel, payload) in messages {
                    pipe.cmd(command).arg(channel).arg(payload).ignore();
                }
                Ok(pipe.query_async::<()>(publisher).await?)
            }
            Conns::Sharded { cluster, .. } => {
                for run in messages.chunk_by(|a, b| a.0 == b.0) {
                    let mut pipe = redis::pipe();
                    for (channel, payload) in run {
                        pipe.cmd("SPUBLISH").arg(channel).arg(payload).ignore();
                    }
                    pipe.query_async::<()>(cluster).await?;
                }
                Ok(())
            }
        }
    }

    /// Subscribes to `subscription` (sharded: its channels, with SSUBSCRIBE).
    pub(crate) async fn subscribe(&mut self, subscription: &Subscription) -> Result<(), Error> {
        match self {
            Conns::Pair { subscriber, sharded: true, .. } => {
                // The redis crate has no SSUBSCRIBE for a single server: the raw command, one
                // channel each, answered by its confirmation push (which the crate also tracks
                // for resubscription after a reconnect).
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
    pub(crate) async fn unsubscribe(&mut self, subscription: &Subscription) -> Result<(), Error> {
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
    pub(crate) async fn slot_map(&mut self) -> Option<Value> {
        match self {
            Conns::Sharded { cluster, .. } => redis::cmd("CLUSTER").arg("SLOTS").query_async::<Value>(cluster).await.ok(),
            Conns::Pair { .. } => None,
        }
    }

    /// True for sharded pub/sub (through a cluster connection or on a single server).
    pub(crate) fn is_sharded(&self) -> bool {
        matches!(self, Conns::Sharded { .. } | Conns::Pair { sharded: true, .. })
    }

    /// Subscribers of `channel`: `PUBSUB NUMSUB` on the server, or, sharded, `PUBSUB
    /// SHARDNUMSUB` summed over every node of the cluster.
    pub(crate) async fn num_sub(&mut self, channel: &str) -> Result<usize, Error> {
        let reply: Vec<(String, i64)> = match self {
            Conns::Pair { publisher, sharded, .. } => {
                redis::cmd("PUBSUB").arg(if *sharded { "SHARDNUMSUB" } else { "NUMSUB" }).arg(channel).query_async(publisher).await?
            }
            Conns::Sharded { cluster, .. } => redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel).query_async(cluster).await?,
        };
        Ok(reply.iter().map(|(_, n)| (*n).max(0) as usize).sum())
    }

    /// PING on the subscribing side.
    pub(crate) async fn ping(&mut self) -> Result<(), Error> {
        match self {
            Conns::Pair { subscriber, .. } => redis::cmd("PING").query_async::<Value>(subscriber).await?,
            Conns::Sharded { cluster, .. } => redis::cmd("PING").query_async::<Value>(cluster).await?,
        };
        Ok(())
    }
}

/// A message push: `message`/`smessage` [channel, payload] or `pmessage` [pattern, channel,
/// payload], as `(route, message)`: the route is the pattern for pattern messages and the
/// channel otherwise.
pub(crate) fn into_message(push: PushInfo) -> Option<(String, Inbound)> {
    let mut data = push.data.into_iter();
    let bytes = |v: Option<Value>| match v {
        Some(Value::BulkString(b)) => Some(b),
        Some(Value::SimpleString(s)) => Some(s.into_bytes()),
        _ => None,
    };
    let route = if push.kind == PushKind::PMessage { Some(bytes(data.next())?) } else { None };
    let channel = bytes(data.next())?;
    let payload = bytes(data.next())?;
    let route = String::from_utf8_lossy(route.as_ref().unwrap_or(&channel)).into_owned();
    Some((route, Inbound { channel, payload }))
}

fn invalid_url(url: &str, err: redis::RedisError) -> Error {
    Error::InvalidOption { option: "url", reason: format!("{} ({})", redact(&err.to_string()), redact(url)) }
}
