//! The Redis transport: one publishing and one subscribing connection (or a Redis Cluster
//! connection for sharded pub/sub), kept carrying messages by the link driver
//! (`src/transport/driver.rs`, which documents the link, publishing and what is sent again:
//! nothing that may have reached Redis).
//!
//! What is particular to Redis lives here: which connections to open for the URL (one server,
//! the primary Sentinel names, a cluster's primaries, or a cluster connection for sharded
//! pub/sub), following the primary through failovers, and counting subscribers across a cluster.

use std::sync::Arc;
#[cfg(any(feature = "sentinel", feature = "cluster"))]
use std::time::Duration;

#[cfg(feature = "cluster")]
use super::cluster::{ClusterSpec, ClusterView};
use super::connections::Conns;
#[cfg(feature = "cluster")]
use super::driver::RETRY_MIN;
use super::driver::{push_handler, Link, Linked};
#[cfg(any(feature = "sentinel", feature = "cluster"))]
use super::locate::Locate;
#[cfg(feature = "cluster")]
use super::wire::Wire;
use super::{BoxFuture, Subscriber, Subscription, Transport};
use crate::config::RedisConfig;
use crate::endpoint::Endpoint;
#[cfg(not(all(feature = "sentinel", feature = "cluster")))]
use crate::endpoint::Feature;
use crate::error::Error;

pub use super::driver::TransportStats;

#[cfg(any(feature = "sentinel", feature = "cluster"))]
/// Time between two questions to Sentinel or the cluster about the primary to use.
const LOCATE_INTERVAL: Duration = Duration::from_secs(1);

/// A connection pair to one Redis server.
pub struct RedisTransport {
    linked: Linked<Conns>,
    /// With a Redis Cluster (classic pub/sub): its primaries, to count subscribers on all of them.
    #[cfg(feature = "cluster")]
    cluster: Option<Arc<ClusterView>>,
    /// On a Redis Cluster (either pub/sub), where a count is a sum over nodes and cannot ride in
    /// the publishing pipeline.
    #[cfg(feature = "cluster")]
    on_cluster: bool,
}

impl RedisTransport {
    /// Prepares both connections and starts the background tasks. Returns without waiting for
    /// Redis: if it cannot be reached, the subscribers get
    /// [`TransportEvent::Error`](super::TransportEvent::Error) and the connections keep
    /// retrying. Must be called within a tokio runtime.
    pub fn connect(config: &RedisConfig) -> Result<Self, Error> {
        crate::error::note_secrets(config.url());
        // rustls needs one process-wide crypto provider; another library may have set it already.
        #[cfg(feature = "tls")]
        {
            static PROVIDER: std::sync::Once = std::sync::Once::new();
            PROVIDER.call_once(|| {
                let _ = rustls::crypto::ring::default_provider().install_default();
            });
        }
        if config.endpoint().is_insecure() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| tracing::warn!("TLS certificate verification is turned off (#insecure): the connection to Redis can be intercepted"));
        }
        let link = Arc::new(Link::new());
        #[cfg(feature = "cluster")]
        let mut cluster = None;
        match config.endpoint() {
            Endpoint::Server(_) => {
                let generation = link.next_generation();
                link.install(Conns::open_pair(config, generation, push_handler(&link, generation))?);
            }
            #[cfg(feature = "sentinel")]
            Endpoint::Sentinel(sentinel) => {
                let locator = super::sentinel::SentinelSpec::new(sentinel, config.tls_ca_pem.clone());
                tokio::spawn(follow(Box::new(locator), config.clone(), link.clone()));
            }
            // Sharded pub/sub on a cluster: the redis crate's cluster connection routes by slot.
            #[cfg(feature = "cluster")]
            Endpoint::Cluster(endpoint) if config.sharded => {
                let seeds = endpoint.seeds.iter().map(|addr| endpoint.node_url(addr)).collect();
                tokio::spawn(connect_sharded(seeds, config.tls_ca_pem.clone(), link.clone()));
            }
            #[cfg(feature = "cluster")]
            Endpoint::Cluster(endpoint) => {
                let spec = ClusterSpec::new(endpoint, config.tls_ca_pem.clone());
                cluster = Some(spec.view());
                tokio::spawn(follow(Box::new(spec), config.clone(), link.clone()));
            }
            // Endpoint::parse refuses these URLs in a build without their feature; never reached.
            #[cfg(not(feature = "sentinel"))]
            Endpoint::Sentinel(_) => return Err(Feature::Sentinel.missing()),
            #[cfg(not(feature = "cluster"))]
            Endpoint::Cluster(_) => return Err(Feature::Cluster.missing()),
        }
        let linked = Linked::start(link, config.max_queued_publishes, config.max_queued_bytes);
        Ok(RedisTransport {
            linked,
            #[cfg(feature = "cluster")]
            cluster,
            #[cfg(feature = "cluster")]
            on_cluster: matches!(config.endpoint(), Endpoint::Cluster(_)),
        })
    }

    /// Counters: published, dropped, unconfirmed, received, pending.
    pub fn stats(&self) -> &TransportStats {
        self.linked.stats()
    }

    /// Waits until every message published so far was handed to Redis (or given up), for at
    /// most `within`; true when none is left queued.
    pub async fn flushed(&self, within: std::time::Duration) -> bool {
        self.linked.flushed(within).await
    }

    /// The link's state: `connecting` (nothing proven yet), `up` (both connections answer and
    /// every subscription is confirmed), `down` (an outage was reported; publishing waits) or
    /// `closed`.
    pub fn link_state(&self) -> &'static str {
        self.linked.link_state()
    }
}

#[cfg(feature = "cluster")]
/// Sharded pub/sub: connects to the cluster of `seeds` (verified against `ca` over TLS;
/// retrying while it cannot be reached) and puts the connection in use. The redis crate then
/// follows the cluster's topology itself.
async fn connect_sharded(seeds: Vec<String>, ca: Option<Vec<u8>>, link: Arc<Link<Conns>>) {
    let mut delay = RETRY_MIN;
    while !link.is_closed() {
        let generation = link.next_generation();
        match Conns::open_sharded(seeds.clone(), ca.clone(), generation, push_handler(&link, generation)).await {
            Ok(mut conns) => match link.subscribe_everything(&mut conns).await {
                Ok(()) => {
                    if link.install(conns.clone()) {
                        link.subscribed_all(&mut conns).await;
                    }
                    return;
                }
                Err(err) => {
                    link.fail(format!("cannot subscribe on the Redis Cluster: {}", err.detail()));
                }
            },
            Err(err) => {
                link.fail(format!("cannot connect to the Redis Cluster: {}", err.detail()));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = link.shutdown.notified() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

#[cfg(any(feature = "sentinel", feature = "cluster"))]
/// Follows the server the locator names (Sentinel's primary, a cluster primary): asks every
/// [`LOCATE_INTERVAL`], and when the answer changes (first lookup, failover) opens a connection
/// pair there, subscribes it to everything subscribed so far and puts it in use. Publishing
/// waits meanwhile, as during an outage.
async fn follow(mut locator: Box<dyn Locate>, config: RedisConfig, link: Arc<Link<Conns>>) {
    let mut primary: Option<String> = None;
    while !link.is_closed() {
        match locator.locate(primary.as_deref()).await {
            Ok(addr) if primary.as_ref() != Some(&addr) => {
                let generation = link.next_generation();
                match config.for_server(locator.node_url(&addr)).and_then(|node| Conns::open_pair(&node, generation, push_handler(&link, generation))) {
                    Ok(mut conns) => {
                        if primary.is_some() {
                            link.fail(format!("moving to the new primary {addr}"));
                        }
                        match link.subscribe_everything(&mut conns).await {
                            Ok(()) => {
                                primary = Some(addr);
                                if !link.install(conns.clone()) {
                                    return;
                                }
                                link.subscribed_all(&mut conns).await;
                            }
                            Err(err) => {
                                link.fail(format!("cannot subscribe on the primary {addr}: {}", err.detail()));
                            }
                        }
                    }
                    Err(err) => {
                        link.fail(err.detail());
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                link.fail(err.detail());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LOCATE_INTERVAL) => {}
            _ = link.shutdown.notified() => return,
        }
    }
}

impl Transport for RedisTransport {
    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Error> {
        self.linked.publish(channel, payload)
    }

    fn subscribe(&self, subscription: Subscription, subscriber: Arc<dyn Subscriber>) -> BoxFuture<'static, Result<(), Error>> {
        self.linked.subscribe(subscription, subscriber)
    }

    fn unsubscribe(&self, subscription: Subscription, subscriber: &Arc<dyn Subscriber>) -> BoxFuture<'_, Result<(), Error>> {
        self.linked.unsubscribe(subscription, subscriber)
    }

    /// On a Redis Cluster (classic pub/sub), summed over its primaries once they are known.
    #[cfg(feature = "cluster")]
    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        let Some(cluster) = self.cluster.clone() else { return self.linked.num_sub(channel) };
        let link = self.linked.link().clone();
        let channel = channel.to_owned();
        Box::pin(async move {
            let mut conns = link.current().await?;
            if cluster.knows_primaries() {
                return cluster.num_sub(&channel).await;
            }
            conns.num_sub(&channel).await
        })
    }

    #[cfg(not(feature = "cluster"))]
    fn num_sub(&self, channel: &str) -> BoxFuture<'_, Result<usize, Error>> {
        self.linked.num_sub(channel)
    }

    fn publish_counted(&self, channel: String, payload: Vec<u8>) -> BoxFuture<'_, Result<usize, Error>> {
        #[cfg(feature = "cluster")]
        if self.on_cluster {
            // Counted on every node first, then published (what the official adapter does).
            return Box::pin(async move {
                let count = self.num_sub(&channel).await?;
                self.publish(channel, payload)?;
                Ok(count)
            });
        }
        self.linked.publish_counted(channel, payload)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.linked.close()
    }
}
