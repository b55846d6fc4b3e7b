//! Classic pub/sub through a Redis Cluster.
//!
//! A cluster is given as `redis+cluster://[user[:password]@]host:port[,host:port...]` (seed
//! nodes), or `rediss+cluster://…[#insecure]` to reach every node over TLS. In a cluster, PUBLISH on any node reaches the subscribers of every node (the cluster
//! bus carries it), so a node of ours keeps both its connections on one primary: the first
//! seed (or known primary) that answers and says it is a primary, kept while it stays one, left
//! for another after a failover. `PUBSUB NUMSUB` only counts a node's own subscribers, so the
//! server count sums it over every primary, as the official adapter does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::aio::MultiplexedConnection;

use super::locate::{self, Locate};
use super::BoxFuture;
use crate::endpoint::ClusterEndpoint;
use crate::error::Error;

/// What the transport needs to know of the cluster besides its own connections: the primaries
/// (from the last `CLUSTER NODES`) and connections to them for `PUBSUB NUMSUB`.
pub(crate) struct ClusterView {
    /// The cluster, with the certificate authorities to verify its nodes against.
    endpoint: ClusterEndpoint,
    primaries: Mutex<Vec<String>>,
    numsub_conns: tokio::sync::Mutex<HashMap<String, MultiplexedConnection>>,
}

impl ClusterView {
    /// Subscribers of `channel` on every primary, summed. Primaries that cannot be reached are
    /// left out (their subscribers are disconnected anyway); an error only when none answers.
    pub(crate) async fn num_sub(&self, channel: &str) -> Result<usize, Error> {
        let primaries = super::lock(&self.primaries).clone();
        let mut conns = self.numsub_conns.lock().await;
        conns.retain(|addr, _| primaries.contains(addr));
        let mut total = 0;
        let mut errors = Vec::new();
        for addr in &primaries {
            let conn = match conns.get(addr) {
                Some(conn) => conn.clone(),
                None => match locate::connect(self.node_url(addr).as_str(), self.endpoint.tls.ca.as_deref()).await {
                    Ok(conn) => conns.entry(addr.clone()).or_insert(conn).clone(),
                    Err(err) => {
                        errors.push(format!("{addr}: {}", err.detail()));
                        continue;
                    }
                },
            };
            let mut conn = conn;
            match locate::ask::<Vec<(String, i64)>>(&mut conn, redis::cmd("PUBSUB").arg("NUMSUB").arg(channel)).await {
                Ok(reply) => total += reply.first().map(|(_, n)| (*n).max(0) as usize).unwrap_or(0),
                Err(err) => {
                    conns.remove(addr);
                    errors.push(format!("{addr}: {}", err.detail()));
                }
            }
        }
        if errors.len() == primaries.len() && !primaries.is_empty() {
            return Err(Error::Redis(format!("no primary answered PUBSUB NUMSUB: {}", errors.join("; "))));
        }
        Ok(total)
    }

    /// The URL of the node at `addr`, with the URL's credentials and TLS mode.
    fn node_url(&self, addr: &str) -> String {
        self.endpoint.node_url(addr)
    }

    /// True once a `CLUSTER NODES` answer named the primaries.
    pub(crate) fn knows_primaries(&self) -> bool {
        !super::lock(&self.primaries).is_empty()
    }
}

/// Finds a primary of a Redis Cluster ([`ClusterEndpoint`]) and keeps checking it.
pub(crate) struct ClusterSpec {
    /// The seed nodes, as `host:port`.
    seeds: Vec<String>,
    view: Arc<ClusterView>,
    /// The primary in use and a connection to it, to check that it still is one.
    watched: Option<(String, MultiplexedConnection)>,
}

impl ClusterSpec {
    /// Locates a primary of `endpoint`, verifying the nodes' TLS certificates against `ca`
    /// (PEM) instead of the system's roots when given.
    pub(crate) fn new(endpoint: &ClusterEndpoint, ca: Option<Vec<u8>>) -> Self {
        let mut endpoint = endpoint.clone();
        endpoint.tls.ca = ca;
        let view = ClusterView { endpoint, primaries: Mutex::new(Vec::new()), numsub_conns: tokio::sync::Mutex::new(HashMap::new()) };
        ClusterSpec { seeds: view.endpoint.seeds.clone(), view: Arc::new(view), watched: None }
    }

    /// The cluster's primaries and the connections used to count subscribers on them.
    pub(crate) fn view(&self) -> Arc<ClusterView> {
        self.view.clone()
    }

    /// Checks that `conn` leads to a primary, and learns the primaries from it.
    async fn check(&self, conn: &mut MultiplexedConnection) -> Result<(), Error> {
        if !locate::is_primary(conn).await? {
            return Err(Error::Redis("not a primary".into()));
        }
        let nodes: String = locate::ask(conn, redis::cmd("CLUSTER").arg("NODES")).await?;
        let primaries = parse_primaries(&nodes);
        if primaries.is_empty() {
            return Err(Error::Redis("CLUSTER NODES lists no primary (is cluster mode on?)".into()));
        }
        *super::lock(&self.view.primaries) = primaries;
        Ok(())
    }
}

impl ClusterSpec {
    /// The `redis://` (`rediss://`) URL of the node at `addr`, with the URL's credentials.
    pub(crate) fn node_url(&self, addr: &str) -> String {
        self.view.node_url(addr)
    }

    /// The certificate authorities the nodes are verified against, if not the system's.
    pub(crate) fn ca(&self) -> Option<&[u8]> {
        self.view.endpoint.tls.ca.as_deref()
    }
}

impl Locate for ClusterSpec {
    fn locate<'a>(&'a mut self, current: Option<&'a str>) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            if let Some((addr, mut conn)) = self.watched.take().filter(|(addr, _)| Some(addr.as_str()) == current) {
                if self.check(&mut conn).await.is_ok() {
                    self.watched = Some((addr.clone(), conn));
                    return Ok(addr);
                }
            }
            let known = super::lock(&self.view.primaries).clone();
            let mut candidates: Vec<String> = Vec::new();
            for addr in self.seeds.iter().chain(known.iter()) {
                if !candidates.contains(addr) && Some(addr.as_str()) != current {
                    candidates.push(addr.clone());
                }
            }
            let mut errors = Vec::new();
            for addr in candidates {
                let checked = match locate::connect(self.node_url(&addr).as_str(), self.ca()).await {
                    Ok(mut conn) => self.check(&mut conn).await.map(|()| conn),
                    Err(err) => Err(err),
                };
                match checked {
                    Ok(conn) => {
                        self.watched = Some((addr.clone(), conn));
                        return Ok(addr);
                    }
                    Err(err) => errors.push(format!("{addr}: {}", err.detail())),
                }
            }
            Err(Error::Redis(format!("no reachable primary in the Redis Cluster: {}", errors.join("; "))))
        })
    }

    fn node_url(&self, addr: &str) -> String {
        ClusterSpec::node_url(self, addr)
    }
}

/// The `host:port` of every primary that is not failing, from a `CLUSTER NODES` answer
/// (`<id> <ip:port@cport[,hostname]> <flags> ...`).
fn parse_primaries(nodes: &str) -> Vec<String> {
    let mut primaries: Vec<String> = nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = fields.nth(1)?;
            let flags = fields.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            let usable = flags.contains(&"master") && !flags.iter().any(|f| matches!(*f, "fail" | "fail?" | "noaddr" | "handshake"));
            let addr = addr.split(['@', ',']).next()?;
            (usable && !addr.starts_with(':')).then(|| addr.to_owned())
        })
        .collect();
    primaries.sort();
    primaries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_are_read_from_cluster_nodes() {
        let nodes = "\
07c37 127.0.0.1:30004@31004,host4 slave e7d1e 0 1426238317239 4 connected
67ed2 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8 127.0.0.1:30003@31003 master,fail - 0 1426238318243 3 connected 10923-16383
e7d1e 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
aaaaa :0@0 master,noaddr - 0 0 0 disconnected
";
        assert_eq!(parse_primaries(nodes), ["127.0.0.1:30001", "127.0.0.1:30002"]);
    }
}
