//! The subscribing connection to one server: RESP3, opened at its first command and opened again
//! at the next command after it dropped (as the redis crate's `ConnectionManager` does), but
//! reading its socket in large chunks.
//!
//! The redis crate's reader asks the socket for the rest of one frame at a time, so a
//! subscriber fed 10 KB messages makes one system call and one wake-up per message. Under a
//! flood that is its ceiling: past it, unread messages pile up at Redis until Redis's pub/sub
//! output buffer limit (32 MB by default) closes the connection. Here a TCP or Unix socket is
//! read through a [`READ_CHUNK`] buffer, so each read takes whatever the kernel holds, and the
//! crate's reader is served from memory. TLS connections are opened by the redis crate, as for
//! the publisher.
//!
//! The transport resubscribes after a reconnection itself (its supervisor), so nothing here
//! tracks subscriptions.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, PushInfo, PushKind, RedisError, RedisFuture, RedisResult, ToRedisArgs, Value};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::Mutex;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;

/// Where the connection's pushes go (messages, (un)subscriptions, and `Disconnection` when it
/// drops).
pub(crate) type PushSink = Arc<dyn Fn(PushInfo) + Send + Sync>;

/// The subscribing connection; clones share it.
#[derive(Clone)]
pub(crate) struct SubscribingConnection(Arc<Inner>);

/// What the clones share.
struct Inner {
    /// The server, its credentials and database, and TLS settings.
    client: redis::Client,
    /// Gets every connection's pushes.
    on_push: PushSink,
    /// How long opening a connection (connecting and the handshake) may take.
    connect_timeout: Duration,
    /// The connection in use, if one was opened; held while one is being opened, so callers
    /// at that moment wait for the same connection.
    current: Mutex<Option<Live>>,
}

/// An open connection and whether it has dropped since.
struct Live {
    /// Multiplexed: commands from clones run concurrently.
    conn: MultiplexedConnection,
    /// Set by its `Disconnection` push or an unrecoverable error; the next command reconnects.
    dropped: Arc<AtomicBool>,
}

impl SubscribingConnection {
    /// A subscriber to `client`'s server (which must ask for RESP3), with nothing opened yet.
    pub(crate) fn new(client: redis::Client, on_push: PushSink, connect_timeout: Duration) -> Self {
        SubscribingConnection(Arc::new(Inner { client, on_push, connect_timeout, current: Mutex::new(None) }))
    }

    /// SUBSCRIBE to `channels`.
    pub(crate) async fn subscribe(&self, channels: impl ToRedisArgs) -> RedisResult<()> {
        self.call(|mut conn| async move { conn.subscribe(channels).await }).await
    }

    /// PSUBSCRIBE to `patterns`.
    pub(crate) async fn psubscribe(&self, patterns: impl ToRedisArgs) -> RedisResult<()> {
        self.call(|mut conn| async move { conn.psubscribe(patterns).await }).await
    }

    /// UNSUBSCRIBE from `channels`.
    pub(crate) async fn unsubscribe(&self, channels: impl ToRedisArgs) -> RedisResult<()> {
        self.call(|mut conn| async move { conn.unsubscribe(channels).await }).await
    }

    /// PUNSUBSCRIBE from `patterns`.
    pub(crate) async fn punsubscribe(&self, patterns: impl ToRedisArgs) -> RedisResult<()> {
        self.call(|mut conn| async move { conn.punsubscribe(patterns).await }).await
    }

    /// Runs `command` on the connection (opened first if there is none or it dropped), and
    /// marks the connection dropped when the command failed in a way it cannot recover from.
    async fn call<T, F, R>(&self, command: F) -> RedisResult<T>
    where
        F: FnOnce(MultiplexedConnection) -> R,
        R: Future<Output = RedisResult<T>>,
    {
        let (conn, dropped) = self.connection().await?;
        let result = command(conn).await;
        if result.as_ref().is_err_and(RedisError::is_unrecoverable_error) {
            dropped.store(true, Ordering::Release);
        }
        result
    }

    /// The connection in use, opened now if there is none or it dropped.
    async fn connection(&self) -> RedisResult<(MultiplexedConnection, Arc<AtomicBool>)> {
        let mut current = self.0.current.lock().await;
        if let Some(live) = current.as_ref().filter(|live| !live.dropped.load(Ordering::Acquire)) {
            return Ok((live.conn.clone(), live.dropped.clone()));
        }
        *current = None;
        let live = match tokio::time::timeout(self.0.connect_timeout, self.open()).await {
            Ok(live) => live?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to Redis timed out").into()),
        };
        let handles = (live.conn.clone(), live.dropped.clone());
        *current = Some(live);
        Ok(handles)
    }

    /// Opens a connection: the socket (read in [`READ_CHUNK`]s unless TLS), then the
    /// handshake (HELLO 3, AUTH, SELECT as the URL says).
    async fn open(&self) -> RedisResult<Live> {
        let dropped = Arc::new(AtomicBool::new(false));
        let (on_push, flag) = (self.0.on_push.clone(), dropped.clone());
        let config = AsyncConnectionConfig::new().set_response_timeout(None).set_push_sender(move |push: PushInfo| -> Result<(), ()> {
            if push.kind == PushKind::Disconnection {
                flag.store(true, Ordering::Release);
            }
            on_push(push);
            Ok(())
        });
        let info = self.0.client.get_connection_info();
        let conn = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                start(info.redis_settings(), stream, config).await?
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => start(info.redis_settings(), tokio::net::UnixStream::connect(path).await?, config).await?,
            _ => self.0.client.get_multiplexed_async_connection_with_config(&config).await?,
        };
        Ok(Live { conn, dropped })
    }
}

/// A connection over `stream`, read through a [`READ_CHUNK`] buffer, its driver spawned.
async fn start<S>(settings: &redis::RedisConnectionInfo, stream: S, config: AsyncConnectionConfig) -> RedisResult<MultiplexedConnection>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (conn, driver) = MultiplexedConnection::new_with_config(settings, BufReader::with_capacity(READ_CHUNK, stream), config).await?;
    tokio::spawn(driver);
    Ok(conn)
}

impl ConnectionLike for SubscribingConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.call(move |mut conn| async move { conn.req_packed_command(cmd).await }))
    }

    fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.call(move |mut conn| async move { conn.req_packed_commands(pipeline, offset, count).await }))
    }

    fn get_db(&self) -> i64 {
        self.0.client.get_connection_info().redis_settings().db()
    }
}
