//! Where Redis is: the URL a user gives, parsed once into an [`Endpoint`] that the transport
//! connects to.
//!
//! | URL | endpoint |
//! |---|---|
//! | `redis://`, `rediss://`, `redis+unix://`, `unix://` | [`Endpoint::Server`] |
//! | `redis+sentinel://[user[:pw]@]host:port[,…]/<name>[/<db>][?sentinelUsername=…&sentinelPassword=…&sentinelTls=…]` | [`Endpoint::Sentinel`] |
//! | `redis+cluster://[user[:pw]@]host:port[,…]` | [`Endpoint::Cluster`] |
//!
//! `rediss+sentinel://` and `rediss+cluster://` reach the servers over TLS; `#insecure` at the
//! end turns certificate verification off. Credentials before `@` are the data nodes'.

use redis::IntoConnectionInfo;

use crate::error::{percent_decode, redact, Error};

/// A parsed Redis URL. Its secrets are never shown (it has no `Debug`; the URL redacted is in
/// [`RedisConfig`](crate::RedisConfig)'s).
#[derive(Clone)]
pub enum Endpoint {
    /// One server.
    Server(ServerEndpoint),
    /// The primary that Redis Sentinel names, followed through failovers.
    Sentinel(SentinelEndpoint),
    /// A Redis Cluster, from its seed nodes.
    Cluster(ClusterEndpoint),
}

/// One server: its connection settings, as the redis crate reads them from the URL.
#[derive(Clone)]
pub struct ServerEndpoint {
    pub(crate) info: redis::ConnectionInfo,
}

/// A Sentinel deployment.
#[derive(Clone)]
pub struct SentinelEndpoint {
    /// The sentinels, as `host:port`.
    pub sentinels: Vec<String>,
    /// The name of the monitored primary (`sentinel monitor <name> ...`).
    pub name: String,
    /// `user[:password]@` of the data nodes, kept verbatim (percent-encoded), or empty.
    #[cfg_attr(not(feature = "sentinel"), allow(dead_code))]
    pub(crate) userinfo: String,
    /// The database of the data nodes.
    #[cfg_attr(not(feature = "sentinel"), allow(dead_code))]
    pub(crate) db: u32,
    pub(crate) sentinel_username: Option<String>,
    pub(crate) sentinel_password: Option<String>,
    /// How the primary is reached.
    pub(crate) tls: Tls,
    /// How the sentinels are reached.
    pub(crate) sentinel_tls: Tls,
}

/// A Redis Cluster.
#[derive(Clone)]
pub struct ClusterEndpoint {
    /// The seed nodes, as `host:port`.
    pub seeds: Vec<String>,
    /// `user[:password]@` of every node, verbatim, or empty.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) userinfo: String,
    /// How every node is reached.
    pub(crate) tls: Tls,
}

/// An optional part of the crate (a Cargo feature, on by default) that some URLs need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `tls`: `rediss://`, `rediss+sentinel://`, `rediss+cluster://`, `sentinelTls=true`.
    Tls,
    /// `sentinel`: `redis+sentinel://`.
    Sentinel,
    /// `cluster`: `redis+cluster://`, classic and sharded pub/sub on a Redis Cluster.
    Cluster,
}

impl Feature {
    /// Whether this build of the crate has it.
    pub const fn built(self) -> bool {
        match self {
            Feature::Tls => cfg!(feature = "tls"),
            Feature::Sentinel => cfg!(feature = "sentinel"),
            Feature::Cluster => cfg!(feature = "cluster"),
        }
    }

    /// The error for a URL that needs it, in a build without it.
    pub fn missing(self) -> Error {
        let (what, name) = match self {
            Feature::Tls => ("TLS", "tls"),
            Feature::Sentinel => ("Redis Sentinel", "sentinel"),
            Feature::Cluster => ("Redis Cluster", "cluster"),
        };
        Error::InvalidOption { option: "url", reason: format!("{what} needs sioadapter's `{name}` Cargo feature, which this build leaves out") }
    }
}

impl Endpoint {
    /// Parses `url`.
    ///
    /// ```
    /// use sioadapter::endpoint::Endpoint;
    /// let Ok(Endpoint::Sentinel(s)) = Endpoint::parse("redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2") else { panic!() };
    /// assert_eq!((s.sentinels.as_slice(), s.name.as_str()), (&["127.0.0.1:26379".to_owned(), "127.0.0.1:26380".to_owned()][..], "mymaster"));
    /// let Ok(Endpoint::Cluster(c)) = Endpoint::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001") else { panic!() };
    /// assert_eq!(c.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
    /// assert!(matches!(Endpoint::parse("redis://127.0.0.1:6379"), Ok(Endpoint::Server(_))));
    /// assert!(Endpoint::parse("redis+sentinel://127.0.0.1:26379").is_err()); // no name
    /// assert!(Endpoint::parse("redis+cluster://127.0.0.1:7000/1").is_err()); // no databases in a cluster
    /// let err = Endpoint::parse("http://user:secret@host").err().unwrap();
    /// assert!(!err.to_string().contains("secret")); // passwords never reach messages
    /// ```
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        if !Feature::Tls.built() && url.trim_start().get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss")) {
            return Err(Feature::Tls.missing());
        }
        let endpoint = if let Some(parts) = MultiHostUrl::parse(url, "sentinel", 26379) {
            SentinelEndpoint::from_parts(url, parts?).map(Endpoint::Sentinel)
        } else if let Some(parts) = MultiHostUrl::parse(url, "cluster", 6379) {
            ClusterEndpoint::from_parts(url, parts?).map(Endpoint::Cluster)
        } else {
            ServerEndpoint::parse(url).map(Endpoint::Server)
        }?;
        match endpoint.missing_feature() {
            Some(feature) => Err(feature.missing()),
            None => Ok(endpoint),
        }
    }

    /// The first optional part of the crate that reaching this endpoint needs and this build
    /// leaves out.
    fn missing_feature(&self) -> Option<Feature> {
        let (kind, tls) = match self {
            Endpoint::Server(server) => (None, matches!(server.info.addr(), redis::ConnectionAddr::TcpTls { .. })),
            Endpoint::Sentinel(s) => (Some(Feature::Sentinel), s.tls.on || s.sentinel_tls.on),
            Endpoint::Cluster(c) => (Some(Feature::Cluster), c.tls.on),
        };
        kind.into_iter().chain(tls.then_some(Feature::Tls)).find(|feature| !feature.built())
    }

    /// True for TLS whose certificates are not verified (`#insecure`).
    pub fn is_insecure(&self) -> bool {
        match self {
            Endpoint::Server(server) => matches!(server.info.addr(), redis::ConnectionAddr::TcpTls { insecure: true, .. }),
            Endpoint::Sentinel(s) => (s.tls.on || s.sentinel_tls.on) && s.tls.insecure,
            Endpoint::Cluster(c) => c.tls.on && c.tls.insecure,
        }
    }
}

impl ServerEndpoint {
    /// The server at `url` (`redis://`, `rediss://`, unix sockets), parsed once.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let parsed =
            redis::parse_redis_url(url).filter(|u| matches!(u.scheme(), "redis" | "rediss" | "unix" | "redis+unix")).ok_or_else(|| invalid_url(url, "not a redis:// URL"))?;
        let info = parsed.into_connection_info().map_err(|e| Error::InvalidOption { option: "url", reason: format!("{} ({})", redact(&e.to_string()), redact(url)) })?;
        Ok(ServerEndpoint { info })
    }
}

impl SentinelEndpoint {
    fn from_parts(url: &str, parts: MultiHostUrl<'_>) -> Result<Self, Error> {
        let invalid = |reason: &str| invalid_url(url, reason);
        let (name, db) = match parts.path.as_slice() {
            [name] => (name.to_string(), 0),
            [name, db] => (name.to_string(), db.parse().map_err(|_| invalid("the database after the primary's name must be a number"))?),
            [] => return Err(invalid("the primary's name is missing (redis+sentinel://host:port/<name>)")),
            _ => return Err(invalid("expected redis+sentinel://host:port[,host:port]/<name>[/<db>]")),
        };
        let mut spec = SentinelEndpoint {
            sentinels: parts.hosts,
            name,
            userinfo: parts.userinfo,
            db,
            sentinel_username: None,
            sentinel_password: None,
            sentinel_tls: parts.tls.clone(),
            tls: parts.tls,
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
    }

    /// The URL of the data node at `addr`, with the URL's credentials, database and TLS mode.
    #[cfg(feature = "sentinel")]
    pub(crate) fn node_url(&self, addr: &str) -> String {
        self.tls.url(&self.userinfo, addr, &format!("/{}", self.db))
    }
}

impl ClusterEndpoint {
    fn from_parts(url: &str, parts: MultiHostUrl<'_>) -> Result<Self, Error> {
        let invalid = |reason: &str| invalid_url(url, reason);
        if !parts.path.is_empty() && parts.path != ["0"] {
            return Err(invalid("a Redis Cluster has no databases: expected redis+cluster://host:port[,host:port...]"));
        }
        if let Some((key, _)) = parts.query.first() {
            return Err(invalid(&format!("unknown parameter `{key}`")));
        }
        if parts.tls.insecure && !parts.tls.on {
            return Err(invalid("#insecure needs TLS (rediss+cluster://)"));
        }
        Ok(ClusterEndpoint { seeds: parts.hosts, userinfo: parts.userinfo, tls: parts.tls })
    }

    /// The URL of the node at `addr`, with the URL's credentials and TLS mode.
    #[cfg(feature = "cluster")]
    pub(crate) fn node_url(&self, addr: &str) -> String {
        self.tls.url(&self.userinfo, addr, "")
    }
}

/// How the servers of a multi-host URL are reached: in plaintext, or over TLS with the
/// certificate verified (against `ca`, or the system's roots) unless `insecure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tls {
    /// TLS at all (`rediss+…://`).
    pub on: bool,
    /// `#insecure` at the end of the URL: the certificate is not verified.
    pub insecure: bool,
    /// Certificate authorities (PEM) instead of the system's.
    pub ca: Option<Vec<u8>>,
}

impl Tls {
    /// The URL of the server at `addr`, with `userinfo` (`user:password@` or empty) and `rest`
    /// (e.g. `/0`), in this mode.
    #[cfg(any(feature = "sentinel", feature = "cluster"))]
    pub fn url(&self, userinfo: &str, addr: &str, rest: &str) -> String {
        let scheme = if self.on { "rediss" } else { "redis" };
        let insecure = if self.on && self.insecure { "#insecure" } else { "" };
        format!("{scheme}://{userinfo}{addr}{rest}{insecure}")
    }
}

/// The parts of a `scheme://[userinfo@]host:port[,host:port...][/rest][?query][#insecure]` URL.
struct MultiHostUrl<'a> {
    /// `user[:password]@` verbatim (still percent-encoded), or empty.
    userinfo: String,
    /// `host:port` of each host, `default_port` added where missing.
    hosts: Vec<String>,
    /// What follows the hosts' `/`, split on `/`.
    path: Vec<&'a str>,
    /// `key=value` pairs of the query, values percent-decoded.
    query: Vec<(&'a str, String)>,
    /// `rediss+…://`, and `#insecure`; no certificate authorities yet.
    tls: Tls,
}

impl<'a> MultiHostUrl<'a> {
    /// Parses `url` when its scheme is `redis+<kind>://` or, with TLS, `rediss+<kind>://` (any
    /// case); `None` for another scheme. Hosts without a port get `default_port`.
    fn parse(url: &'a str, kind: &str, default_port: u16) -> Option<Result<Self, Error>> {
        let (scheme, rest) = url.split_once("://")?;
        let on = match scheme.to_ascii_lowercase().strip_suffix(kind)?.strip_suffix('+')? {
            "redis" => false,
            "rediss" => true,
            _ => return None,
        };
        Some(Self::parse_rest(rest, on, default_port).map_err(|reason| invalid_url(url, reason)))
    }

    /// Parses what follows the scheme; the error is the reason.
    fn parse_rest(rest: &'a str, on: bool, default_port: u16) -> Result<Self, &'static str> {
        let (rest, insecure) = match rest.split_once('#') {
            None => (rest, false),
            Some((rest, "insecure")) => (rest, true),
            Some(_) => return Err("the only fragment is #insecure"),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (format!("{u}@"), r),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let hosts: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| {
                let has_port = !h.ends_with(']') && h.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
                if has_port {
                    h.to_owned()
                } else {
                    format!("{h}:{default_port}")
                }
            })
            .collect();
        if hosts.is_empty() {
            return Err("no host in the URL");
        }
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (key, percent_decode(value))
            })
            .collect();
        let tls = Tls { on, insecure, ca: None };
        Ok(MultiHostUrl { userinfo, hosts, path: path.split('/').filter(|p| !p.is_empty()).collect(), query, tls })
    }
}

/// An error for a bad `url` option.
pub(crate) fn invalid_url(url: &str, reason: &str) -> Error {
    Error::InvalidOption { option: "url", reason: format!("{reason}: {}", redact(url)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "tls", feature = "sentinel"))]
    fn sentinel(url: &str) -> SentinelEndpoint {
        match Endpoint::parse(url) {
            Ok(Endpoint::Sentinel(s)) => s,
            _ => panic!("{url} is not a Sentinel URL"),
        }
    }

    #[cfg(all(feature = "tls", feature = "cluster"))]
    fn cluster(url: &str) -> Result<ClusterEndpoint, Error> {
        match Endpoint::parse(url)? {
            Endpoint::Cluster(c) => Ok(c),
            _ => panic!("{url} is not a cluster URL"),
        }
    }

    #[test]
    #[cfg(all(feature = "tls", feature = "sentinel"))]
    fn tls_to_the_primary_and_to_the_sentinels_is_chosen_by_the_url() {
        let both = sentinel("rediss+sentinel://:pw@s:1/m/2");
        assert_eq!(both.node_url("p:6379"), "rediss://:pw@p:6379/2");
        assert_eq!(both.sentinel_tls.url("", "s:1", ""), "rediss://s:1");
        let primary_only = sentinel("rediss+sentinel://s:1/m?sentinelTls=false");
        assert!(primary_only.tls.on && !primary_only.sentinel_tls.on);
        let sentinels_only = sentinel("redis+sentinel://s:1/m?sentinelTls=true");
        assert_eq!(sentinels_only.node_url("p:1"), "redis://p:1/0");
        assert_eq!(sentinels_only.sentinel_tls.url("", "s:1", ""), "rediss://s:1");
        let insecure = sentinel("rediss+sentinel://s:1/m#insecure");
        assert_eq!(insecure.node_url("p:1"), "rediss://p:1/0#insecure");
        assert!(insecure.sentinel_tls.insecure && Endpoint::parse("rediss+sentinel://s:1/m#insecure").unwrap().is_insecure());
        assert!(Endpoint::parse("redis+sentinel://s:1/m?sentinelTls=maybe").is_err());
        assert!(Endpoint::parse("redis+sentinel://s:1/m#insecure").is_err(), "#insecure needs TLS somewhere");
        assert!(sentinel("redis+sentinel://s:1/m?sentinelTls=true#insecure").sentinel_tls.insecure);
    }

    #[test]
    fn each_feature_is_refused_clearly_when_left_out_and_accepted_when_built() {
        let name = |feature| match feature {
            Feature::Tls => "tls",
            Feature::Sentinel => "sentinel",
            Feature::Cluster => "cluster",
        };
        let cases = [
            ("rediss://h:1", Feature::Tls),
            ("rediss+sentinel://s:1/m", Feature::Tls),
            ("redis+sentinel://s:1/m", Feature::Sentinel),
            ("redis+cluster://h:1,h:2", Feature::Cluster),
        ];
        for (url, feature) in cases {
            match (Endpoint::parse(url), feature.built()) {
                (Ok(_), true) => {}
                (Err(err), false) => assert!(err.to_string().contains(&format!("`{}` Cargo feature", name(feature))), "{url}: {err}"),
                (result, built) => panic!("{url}: {:?} with the feature {}", result.map(|_| ()), if built { "built" } else { "left out" }),
            }
        }
        // Sentinel without TLS to the primary but with TLS to the sentinels needs both.
        let both = Endpoint::parse("redis+sentinel://s:1/m?sentinelTls=true");
        assert_eq!(both.is_ok(), Feature::Tls.built() && Feature::Sentinel.built());
        assert_eq!(Endpoint::parse("rediss+cluster://h:1").is_ok(), Feature::Tls.built() && Feature::Cluster.built());
        assert!(Endpoint::parse("redis://h:1").is_ok());
    }

    #[test]
    #[cfg(all(feature = "tls", feature = "cluster"))]
    fn tls_reaches_every_cluster_node_over_tls() {
        assert_eq!(cluster("redis+cluster://u:p@h:1").unwrap().node_url("n:2"), "redis://u:p@n:2");
        assert_eq!(cluster("rediss+cluster://u:p@h:1").unwrap().node_url("n:2"), "rediss://u:p@n:2");
        assert_eq!(cluster("REDISS+Cluster://h:1#insecure").unwrap().node_url("n:2"), "rediss://n:2#insecure");
        assert!(cluster("redis+cluster://h:1#insecure").is_err(), "#insecure needs TLS");
        assert!(cluster("rediss+cluster://h:1#other").is_err());
        assert!(Endpoint::parse("redisss+cluster://h:1").is_err());
        assert!(matches!(Endpoint::parse("rediss://h:1"), Ok(Endpoint::Server(_))));
    }

    #[test]
    fn servers_are_parsed_once_with_their_settings() {
        let Ok(Endpoint::Server(server)) = Endpoint::parse("redis://u:secret@127.0.0.1:6390/3") else { panic!() };
        assert_eq!(server.info.redis_settings().db(), 3);
        assert!(!Endpoint::parse("redis://h:1").unwrap().is_insecure());
        if Feature::Tls.built() {
            assert!(Endpoint::parse("rediss://h:1/#insecure").unwrap().is_insecure());
        }
        let err = Endpoint::parse("ftp://u:secret@h").err().unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
