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

use super::locate::{self, host_port, invalid_url, Locate, MultiHostUrl, Tls};
use super::BoxFuture;
use crate::error::Error;

/// A Sentinel deployment, parsed from a `redis+sentinel://` URL.
pub struct SentinelSpec {
    /// The sentinels, as `host:port`.
    pub sentinels: Vec<String>,
    /// The name of the monitored primary (`sentinel monitor <name> ...`).
    pub name: String,
    /// `user[:password]@` of the data nodes, kept verbatim (percent-encoded), or empty.
    userinfo: String,
    /// The database of the data nodes.
    db: u32,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
    /// How the primary is reached.
    tls: Tls,
    /// How the sentinels are reached.
    sentinel_tls: Tls,
    /// The sentinel that answered last, and a connection to it.
    asked: Option<(String, MultiplexedConnection)>,
}

impl SentinelSpec {
    /// Parses a `redis+sentinel://` URL; `None` when the URL has another scheme.
    ///
    /// ```
    /// use sioadapter::transport::sentinel::SentinelSpec;
    /// let spec = SentinelSpec::parse("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2").unwrap().unwrap();
    /// assert_eq!(spec.sentinels, ["127.0.0.1:26379", "127.0.0.1:26380"]);
    /// assert_eq!(spec.name, "mymaster");
    /// assert!(SentinelSpec::parse("redis://127.0.0.1:6379").is_none());
    /// assert!(SentinelSpec::parse("redis+sentinel://127.0.0.1:26379").unwrap().is_err()); // no name
    /// ```
    pub fn parse(url: &str) -> Option<Result<SentinelSpec, Error>> {
        let parts = MultiHostUrl::parse(url, "sentinel", 26379)?;
        let invalid = |reason: &str| invalid_url(url, reason);
        Some(parts.and_then(|parts| {
            let (name, db) = match parts.path.as_slice() {
                [name] => (name.to_string(), 0),
                [name, db] => (name.to_string(), db.parse().map_err(|_| invalid("the database after the primary's name must be a number"))?),
                [] => return Err(invalid("the primary's name is missing (redis+sentinel://host:port/<name>)")),
                _ => return Err(invalid("expected redis+sentinel://host:port[,host:port]/<name>[/<db>]")),
            };
            let mut spec = SentinelSpec {
                sentinels: parts.hosts,
                name,
                userinfo: parts.userinfo,
                db,
                sentinel_username: None,
                sentinel_password: None,
                sentinel_tls: parts.tls.clone(),
                tls: parts.tls,
                asked: None,
            };
            for (key, value) in parts.query {
                match key {
                    "sentinelUsername" => spec.sentinel_username = Some(value),
                    "sentinelPassword" => spec.sentinel_password = Some(value),
                    "sentinelTls" => {
                        spec.sentinel_tls.on = match value.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(invalid("sentinelTls must be true or false")),
                        }
                    }
                    other => return Err(invalid(&format!("unknown parameter `{other}` (expected sentinelUsername, sentinelPassword, sentinelTls)"))),
                }
            }
            if spec.tls.insecure && !spec.tls.on && !spec.sentinel_tls.on {
                return Err(invalid("#insecure needs TLS (rediss+sentinel://, or sentinelTls=true)"));
            }
            spec.sentinel_tls.insecure = spec.tls.insecure;
            Ok(spec)
        }))
    }

    /// Verifies the TLS certificates of the sentinels and the primary against `ca` (PEM)
    /// instead of the system's roots.
    pub fn with_ca(mut self, ca: Option<Vec<u8>>) -> Self {
        self.tls.ca = ca.clone();
        self.sentinel_tls.ca = ca;
        self
    }

    /// `SENTINEL get-master-addr-by-name` on the sentinel that answered last, else on each in
    /// turn: the primary's `host:port`.
    async fn ask_sentinels(&mut self) -> Result<String, Error> {
        let mut errors = Vec::new();
        let order: Vec<String> = self.asked.iter().map(|(s, _)| s.clone()).chain(self.sentinels.iter().cloned()).collect();
        for sentinel in order {
            let conn = match self.asked.take() {
                Some((known, conn)) if known == sentinel => Ok(conn),
                _ => self.connect_sentinel(&sentinel).await,
            };
            let answer = match conn {
                Ok(mut conn) => {
                    let reply = locate::ask::<Option<(String, String)>>(&mut conn, redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&self.name)).await;
                    if reply.is_ok() {
                        self.asked = Some((sentinel.clone(), conn));
                    }
                    reply
                }
                Err(err) => Err(err),
            };
            match answer {
                Ok(Some((host, port))) => return Ok(host_port(&host, port)),
                Ok(None) => errors.push(format!("{sentinel} knows no primary named {:?}", self.name)),
                Err(err) => errors.push(format!("{sentinel}: {}", err.detail())),
            }
        }
        Err(Error::Redis(format!("no primary from Sentinel: {}", errors.join("; "))))
    }

    async fn connect_sentinel(&self, sentinel: &str) -> Result<MultiplexedConnection, Error> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(self.sentinel_tls.url("", sentinel, "").as_str())?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &self.sentinel_username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.sentinel_password {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        locate::connect(info, self.sentinel_tls.ca.as_deref()).await
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
            let mut conn =
                locate::connect(self.node_url(&addr).as_str(), self.tls.ca.as_deref()).await.map_err(|err| Error::Redis(format!("Sentinel names {addr}: {}", err.detail())))?;
            if locate::is_primary(&mut conn).await? {
                Ok(addr)
            } else {
                Err(Error::Redis(format!("Sentinel names {addr}, which is not a primary (yet)")))
            }
        })
    }

    fn node_url(&self, addr: &str) -> String {
        self.tls.url(&self.userinfo, addr, &format!("/{}", self.db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_to_the_primary_and_to_the_sentinels_is_chosen_by_the_url() {
        let spec = |url: &str| SentinelSpec::parse(url).unwrap().unwrap();
        let both = spec("rediss+sentinel://:pw@s:1/m/2");
        assert_eq!(both.node_url("p:6379"), "rediss://:pw@p:6379/2");
        assert_eq!(both.sentinel_tls.url("", "s:1", ""), "rediss://s:1");
        let primary_only = spec("rediss+sentinel://s:1/m?sentinelTls=false");
        assert!(primary_only.tls.on && !primary_only.sentinel_tls.on);
        let sentinels_only = spec("redis+sentinel://s:1/m?sentinelTls=true");
        assert_eq!(sentinels_only.node_url("p:1"), "redis://p:1/0");
        assert_eq!(sentinels_only.sentinel_tls.url("", "s:1", ""), "rediss://s:1");
        let insecure = spec("rediss+sentinel://s:1/m#insecure").with_ca(Some(b"pem".to_vec()));
        assert_eq!(insecure.node_url("p:1"), "rediss://p:1/0#insecure");
        assert_eq!((insecure.sentinel_tls.insecure, insecure.tls.ca.as_deref()), (true, Some(&b"pem"[..])));
        assert!(SentinelSpec::parse("redis+sentinel://s:1/m?sentinelTls=maybe").unwrap().is_err());
        assert!(SentinelSpec::parse("redis+sentinel://s:1/m#insecure").unwrap().is_err(), "#insecure needs TLS somewhere");
        assert!(spec("redis+sentinel://s:1/m?sentinelTls=true#insecure").sentinel_tls.insecure);
    }
}
