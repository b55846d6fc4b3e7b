//! Following the primary that Redis Sentinel names.
//!
//! A Sentinel deployment is given as one URL:
//! `redis+sentinel://[user[:password]@]host:port[,host:port...]/<primary name>[/<db>][?sentinelUsername=..&sentinelPassword=..]`.
//! The credentials before `@` and the database are those of the data nodes (ioredis'
//! `username`/`password`/`db`); the sentinels' own, if any, are query parameters (ioredis'
//! `sentinelUsername`/`sentinelPassword`). `rediss+sentinel://` reaches the primary and the
//! sentinels over TLS (`sentinelTls=false` keeps the sentinels in plaintext; `sentinelTls=true`
//! on a `redis+sentinel://` URL puts only them on TLS); `#insecure` at the end turns certificate
//! verification off. The transport asks a sentinel for the primary's
//! address every second (keeping one connection to the sentinel that answered) and checks a
//! new address with `ROLE` before moving there.

use redis::aio::MultiplexedConnection;

use super::locate::{self, host_port, Locate};
use super::BoxFuture;
use crate::endpoint::SentinelEndpoint;
use crate::error::Error;

/// Follows the primary of a Sentinel deployment ([`SentinelEndpoint`]).
pub(crate) struct SentinelSpec {
    endpoint: SentinelEndpoint,
    /// The sentinel that answered last, and a connection to it.
    asked: Option<(String, MultiplexedConnection)>,
}

impl SentinelSpec {
    /// Follows `endpoint`'s primary, verifying the TLS certificates of the sentinels and the
    /// primary against `ca` (PEM) instead of the system's roots when given.
    pub(crate) fn new(endpoint: &SentinelEndpoint, ca: Option<Vec<u8>>) -> Self {
        let mut endpoint = endpoint.clone();
        endpoint.tls.ca = ca.clone();
        endpoint.sentinel_tls.ca = ca;
        SentinelSpec { endpoint, asked: None }
    }

    /// `SENTINEL get-master-addr-by-name` on the sentinel that answered last, else on each in
    /// turn: the primary's `host:port`.
    async fn ask_sentinels(&mut self) -> Result<String, Error> {
        let mut errors = Vec::new();
        let order: Vec<String> = self.asked.iter().map(|(s, _)| s.clone()).chain(self.endpoint.sentinels.iter().cloned()).collect();
        for sentinel in order {
            let conn = match self.asked.take() {
                Some((known, conn)) if known == sentinel => Ok(conn),
                _ => self.connect_sentinel(&sentinel).await,
            };
            let answer = match conn {
                Ok(mut conn) => {
                    let reply = locate::ask::<Option<(String, String)>>(&mut conn, redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.endpoint.name)).await;
                    if reply.is_ok() {
                        self.asked = Some((sentinel.clone(), conn));
                    }
                    reply
                }
                Err(err) => Err(err),
            };
            match answer {
                Ok(Some((host, port))) => return Ok(host_port(&host, port)),
                Ok(None) => errors.push(format!("{sentinel} knows no primary named {:?}", self.endpoint.name)),
                Err(err) => errors.push(format!("{sentinel}: {}", err.detail())),
            }
        }
        Err(Error::Redis(format!("no primary from Sentinel: {}", errors.join("; "))))
    }

    async fn connect_sentinel(&self, sentinel: &str) -> Result<MultiplexedConnection, Error> {
        let e = &self.endpoint;
        let mut info = redis::IntoConnectionInfo::into_connection_info(e.sentinel_tls.url("", sentinel, "").as_str())?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &e.sentinel_username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &e.sentinel_password {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        locate::connect(info, e.sentinel_tls.ca.as_deref()).await
    }
}

impl Locate for SentinelSpec {
    fn locate<'a>(&'a mut self, current: Option<&'a str>) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(async move {
            let addr = self.ask_sentinels().await?;
            if current == Some(addr.as_str()) {
                return Ok(addr);
            }
            // Right after a failover a sentinel may still name the old primary, now a replica.
            let mut conn = locate::connect(self.node_url(&addr).as_str(), self.endpoint.tls.ca.as_deref())
                .await
                .map_err(|err| Error::Redis(format!("Sentinel names {addr}: {}", err.detail())))?;
            if locate::is_primary(&mut conn).await? {
                Ok(addr)
            } else {
                Err(Error::Redis(format!("Sentinel names {addr}, which is not a primary (yet)")))
            }
        })
    }

    fn node_url(&self, addr: &str) -> String {
        self.endpoint.node_url(addr)
    }
}
