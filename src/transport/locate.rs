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
use crate::error::Error;

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

/// A client for `info`, verifying the server's certificate against `ca` when the connection is
/// TLS with verification and a CA is given (the system's roots otherwise).
pub(crate) fn client(info: impl redis::IntoConnectionInfo, ca: Option<&[u8]>) -> Result<redis::Client, Error> {
    let info = info.into_connection_info()?;
    Ok(match ca {
        #[cfg(feature = "tls")]
        Some(ca) if matches!(info.addr(), redis::ConnectionAddr::TcpTls { insecure: false, .. }) => {
            redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) })?
        }
        _ => redis::Client::open(info)?,
    })
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
#[cfg(feature = "sentinel")]
pub(crate) fn host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
