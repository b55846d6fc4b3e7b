//! Options, with the official adapter's names and defaults.

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::limits::Limits;

/// Default key prefix of every channel (`key` option).
pub const DEFAULT_KEY: &str = "socket.io";
/// Default time a cluster request waits for responses (`requestsTimeout` option).
pub const DEFAULT_REQUESTS_TIMEOUT: Duration = Duration::from_millis(5000);
/// Redis used when nothing else is configured, as the seeds' `adapter()` did.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default bound of the publish queue in messages (waiting while Redis is slow or away).
pub const DEFAULT_MAX_QUEUED_PUBLISHES: usize = 100_000;
/// Default bound of the publish queue in bytes: 64 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 << 20;

/// Settings shared by every namespace adapter of one Redis connection pair.
///
/// ```
/// use std::time::Duration;
/// use sioadapter::AdapterConfig;
/// let config = AdapterConfig::default().with_key("").with_requests_timeout(Duration::ZERO);
/// assert_eq!(config.key, "socket.io"); // "" means the default, as officially
/// assert_eq!(config.requests_timeout, Duration::from_millis(5000)); // so does 0
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// Channel key prefix (`key`, default `"socket.io"`).
    pub key: String,
    /// How long `allRooms`, `fetchSockets`, ... wait (`requestsTimeout`, default 5 s).
    pub requests_timeout: Duration,
    /// Answer requests on `K-response#N#<requester uid>#` instead of the shared channel
    /// (`publishOnSpecificResponseChannel`, default false).
    pub publish_on_specific_response_channel: bool,
    /// Subscribe to the main broadcast channel and to one channel per room with local sockets
    /// instead of the pattern `K#N#*` (default false). Redis then sends a node only the
    /// single-room broadcasts it can deliver; the wire format is unchanged, so official nodes
    /// and emitters interoperate either way.
    pub per_room_subscriptions: bool,
    /// Deliver broadcasts, where the packet allows it, as what a socket.io server with the
    /// default parser sends its clients ([`Delivery::client_text`](crate::Delivery::client_text))
    /// instead of the msgpack message, so that the host does not decode and encode the packet
    /// itself (default false; the Node binding sets it when the server uses socket.io-parser).
    pub client_text: bool,
    /// The host encodes and decodes the messages that the official adapter passes through its
    /// `parser` option (default false: notepack msgpack, which the engine reads itself). When
    /// set, broadcasts, and the requests and responses that are not JSON (broadcasts with ack
    /// and their acknowledgements), are passed through unread: only their size is checked, and
    /// the host decodes them with its parser and drops its own echoes and other namespaces'
    /// broadcasts. It publishes with [`Adapter::broadcast_host_encoded`](crate::Adapter::broadcast_host_encoded) and the
    /// other `*_host_encoded` methods. [`client_text`](Self::client_text) does not apply then.
    pub host_parser: bool,
    /// Speak the official adapter's JSON `parser` (`{ encode: JSON.stringify, decode:
    /// JSON.parse }`, e.g. so that other languages can read the channels): broadcasts,
    /// broadcasts with ack and their acknowledgements are published as JSON text, and JSON
    /// broadcasts are read (msgpack ones too). The host sees no difference: it gets and gives
    /// msgpack as with the default parser (binary arrives as `JSON.stringify` makes it of a
    /// Buffer, `{"type":"Buffer","data":[..]}`). Default false; [`host_parser`](Self::host_parser)
    /// takes precedence.
    pub json_parser: bool,
    /// What this node accepts from the others (message size, values, nesting, receive buffer).
    pub limits: Limits,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            key: DEFAULT_KEY.to_owned(),
            requests_timeout: DEFAULT_REQUESTS_TIMEOUT,
            publish_on_specific_response_channel: false,
            per_room_subscriptions: false,
            client_text: false,
            host_parser: false,
            json_parser: false,
            limits: Limits::default(),
        }
    }
}

impl AdapterConfig {
    /// Sets the key prefix; `""` means the default, as in the official adapter.
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = if key.is_empty() { DEFAULT_KEY.to_owned() } else { key.to_owned() };
        self
    }

    /// Sets `requestsTimeout`; zero means the default, as in the official adapter.
    pub fn with_requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = if timeout.is_zero() { DEFAULT_REQUESTS_TIMEOUT } else { timeout };
        self
    }

    /// Sets `publishOnSpecificResponseChannel`.
    pub fn with_specific_response_channel(mut self, on: bool) -> Self {
        self.publish_on_specific_response_channel = on;
        self
    }

    /// Sets [`AdapterConfig::client_text`].
    pub fn with_client_text(mut self, on: bool) -> Self {
        self.client_text = on;
        self
    }

    /// Sets [`AdapterConfig::host_parser`].
    pub fn with_host_parser(mut self, on: bool) -> Self {
        self.host_parser = on;
        self
    }

    /// Sets [`AdapterConfig::json_parser`].
    pub fn with_json_parser(mut self, on: bool) -> Self {
        self.json_parser = on;
        self
    }

    /// Sets `perRoomSubscriptions` (see [`AdapterConfig::per_room_subscriptions`]).
    pub fn with_per_room_subscriptions(mut self, on: bool) -> Self {
        self.per_room_subscriptions = on;
        self
    }

    /// Sets the limits, once checked ([`Limits::validate`]).
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, Error> {
        limits.validate()?;
        self.limits = limits;
        Ok(self)
    }
}

/// Where and how to reach Redis: `redis://`, with TLS `rediss://` (certificates verified
/// against the system's roots or [`RedisConfig::tls_ca_pem`]), or the primary of a Sentinel
/// deployment, `redis+sentinel://host:port[,host:port]/<name>[/db]` (`rediss+sentinel://` with
/// TLS), or a Redis Cluster, `redis+cluster://host:port[,host:port]` (`rediss+cluster://` with
/// TLS); see [`Endpoint`]. Made by [`RedisConfig::from_url`], which parses the URL once.
#[derive(Clone)]
pub struct RedisConfig {
    /// The URL as given, for messages (always redacted).
    url: String,
    /// The URL parsed.
    endpoint: Endpoint,
    /// Most messages kept while Redis cannot take them (`maxQueuedPublishes`, default
    /// 100,000); beyond it new publishes are dropped and counted.
    pub max_queued_publishes: usize,
    /// Most bytes (channel names and payloads) kept while Redis cannot take them
    /// (`maxQueuedBytes`, default 64 MiB); beyond it new publishes are dropped and counted. A
    /// single larger message is taken when nothing waits.
    pub max_queued_bytes: usize,
    /// With TLS (`rediss://`, `rediss+sentinel://`, `rediss+cluster://`): the certificate
    /// authorities (PEM) to verify every server with (sentinels and cluster nodes included),
    /// instead of the system's.
    /// Verification is always on unless the URL ends with `#insecure`.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Sharded pub/sub (SPUBLISH, SSUBSCRIBE, `PUBSUB SHARDNUMSUB`), as the official sharded
    /// adapter does: through the Redis Cluster of a `redis+cluster://` URL, or on a single
    /// Redis ≥ 7; default false.
    pub sharded: bool,
}

/// The URL's secrets hidden ([`crate::error::redact`]), the certificates summed up.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &crate::error::redact(&self.url))
            .field("max_queued_publishes", &self.max_queued_publishes)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|pem| format!("{} bytes", pem.len())))
            .field("sharded", &self.sharded)
            .finish()
    }
}

impl Default for RedisConfig {
    /// The Redis at [`DEFAULT_REDIS_URL`].
    fn default() -> Self {
        RedisConfig::with_defaults(DEFAULT_REDIS_URL, Endpoint::parse(DEFAULT_REDIS_URL).expect("the default URL parses"))
    }
}

impl RedisConfig {
    /// A configuration for the Redis at `url`, checked for form (not connected yet).
    ///
    /// ```
    /// use sioadapter::RedisConfig;
    /// assert!(RedisConfig::from_url("redis://user:secret@127.0.0.1:6379/0").is_ok());
    /// let err = RedisConfig::from_url("http://user:secret@host").unwrap_err();
    /// assert!(!err.to_string().contains("secret")); // passwords never reach messages
    /// ```
    pub fn from_url(url: &str) -> Result<Self, Error> {
        crate::error::note_secrets(url);
        Ok(RedisConfig::with_defaults(url, Endpoint::parse(url)?))
    }

    /// The default settings for `url`, already parsed into `endpoint`.
    fn with_defaults(url: &str, endpoint: Endpoint) -> Self {
        RedisConfig {
            url: url.to_owned(),
            endpoint,
            max_queued_publishes: DEFAULT_MAX_QUEUED_PUBLISHES,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            tls_ca_pem: None,
            sharded: false,
        }
    }

    /// The URL given to [`RedisConfig::from_url`]. It may hold a password: hide it with
    /// [`crate::error::redact`] before showing it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where Redis is, parsed from the URL.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The same settings for the one server at `url` (a node that Sentinel or the cluster
    /// named).
    #[cfg(any(feature = "sentinel", feature = "cluster"))]
    pub(crate) fn for_server(&self, url: String) -> Result<Self, Error> {
        let endpoint = Endpoint::Server(crate::endpoint::ServerEndpoint::parse(&url)?);
        Ok(RedisConfig { url, endpoint, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::RedisConfig;

    #[test]
    fn debug_hides_the_password() {
        let mut cases = vec![("redis://user:pw1@h:1/0", "redis://user:***@h:1/0")];
        if cfg!(feature = "sentinel") {
            cases.push(("redis+sentinel://:pw1@h:1/m?sentinelPassword=pw2", "redis+sentinel://:***@h:1/m?sentinelPassword=***"));
        }
        for (url, shown) in cases {
            let text = format!("{:?}", RedisConfig::from_url(url).unwrap());
            assert!(text.contains(shown), "{text}");
            assert!(!text.contains("pw1") && !text.contains("pw2"), "{text}");
        }
    }
}
