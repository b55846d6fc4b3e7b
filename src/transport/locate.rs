//! Finding the server to use when the URL does not name it: the primary that Sentinel names
//! ([`super::sentinel`]) or a primary of a Redis Cluster ([`super::cluster`]).
//!
//! The transport asks its locator every second; when the answer changes (first lookup,
//! failover) it opens connections at the new address, subscribes them to everything and moves
//! publishing there. Helpers shared by the locators live here too.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

use super::BoxFuture;
use crate::error::{redact, Error};

/// How long one question to one server may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the transport's connections should go now.
pub(crate) trait Locate: Send + 'static {
    /// The `host:port` to use, given the one in use (`None` at first). Keeping `current`
    /// while it is still right avoids moving for nothing.
    fn locate<'a>(&'a mut self, current: Option<&'a str>) -> BoxFuture<'a, Result<String, Error>>;
    /// The `redis://` (or `rediss://`) URL of the server at `addr`, with the credentials of the
    /// data nodes.
    fn node_url(&self, addr: &str) -> String;
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
    pub fn url(&self, userinfo: &str, addr: &str, rest: &str) -> String {
        let scheme = if self.on { "rediss" } else { "redis" };
        let insecure = if self.on && self.insecure { "#insecure" } else { "" };
        format!("{scheme}://{userinfo}{addr}{rest}{insecure}")
    }
}

/// A client for `info`, verifying the server's certificate against `ca` when the connection is
/// TLS with verification and a CA is given (the system's roots otherwise).
pub(crate) fn client(info: impl redis::IntoConnectionInfo, ca: Option<&[u8]>) -> Result<redis::Client, Error> {
    let info = info.into_connection_info()?;
    let verified = matches!(info.addr(), redis::ConnectionAddr::TcpTls { insecure: false, .. });
    Ok(match ca {
        Some(ca) if verified => redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) })?,
        _ => redis::Client::open(info)?,
    })
}

/// The parts of a `scheme://[userinfo@]host:port[,host:port...][/rest][?query][#insecure]` URL.
pub(crate) struct MultiHostUrl<'a> {
    /// `user[:password]@` verbatim (still percent-encoded), or empty.
    pub userinfo: String,
    /// `host:port` of each host, `default_port` added where missing.
    pub hosts: Vec<String>,
    /// What follows the hosts' `/`, split on `/`.
    pub path: Vec<&'a str>,
    /// `key=value` pairs of the query, values percent-decoded.
    pub query: Vec<(&'a str, String)>,
    /// `rediss+…://`, and `#insecure`; no certificate authorities yet.
    pub tls: Tls,
}

impl<'a> MultiHostUrl<'a> {
    /// Parses `url` when its scheme is `redis+<kind>://` or, with TLS, `rediss+<kind>://` (any
    /// case); `None` for another scheme. Hosts without a port get `default_port`.
    pub fn parse(url: &'a str, kind: &str, default_port: u16) -> Option<Result<Self, Error>> {
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

/// A connection to `url` (verified against `ca` if given, see [`client`]) that gives up after
/// [`ASK_TIMEOUT`].
pub(crate) async fn connect(info: impl redis::IntoConnectionInfo, ca: Option<&[u8]>) -> Result<MultiplexedConnection, Error> {
    let client = client(info, ca)?;
    let config = AsyncConnectionConfig::new().set_connection_timeout(Some(ASK_TIMEOUT)).set_response_timeout(Some(ASK_TIMEOUT));
    Ok(client.get_multiplexed_async_connection_with_config(&config).await?)
}

/// Runs one command on `conn`, giving up after [`ASK_TIMEOUT`].
pub(crate) async fn ask<T: redis::FromRedisValue>(conn: &mut MultiplexedConnection, cmd: &redis::Cmd) -> Result<T, Error> {
    match tokio::time::timeout(ASK_TIMEOUT, cmd.query_async(conn)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Redis(format!("no answer within {} ms", ASK_TIMEOUT.as_millis()))),
    }
}

/// True when the server behind `conn` says (`ROLE`) it is a primary.
pub(crate) async fn is_primary(conn: &mut MultiplexedConnection) -> Result<bool, Error> {
    let role: Value = ask(conn, &redis::cmd("ROLE")).await?;
    Ok(match role {
        Value::Array(items) => {
            matches!(items.first(), Some(Value::BulkString(b)) if b == b"master")
        }
        _ => false,
    })
}

/// `host:port`, with brackets around an IPv6 host.
pub(crate) fn host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An error for a bad `url` option.
pub(crate) fn invalid_url(url: &str, reason: &str) -> Error {
    Error::InvalidOption { option: "url", reason: format!("{reason}: {}", redact(url)) }
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
