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
use tokio::task::AbortHandle;

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
    dropped: Arc<Dropped>,
    /// The task reading and writing its socket (TCP, Unix), stopped with it: a replaced or
    /// abandoned connection closes at once, not once Redis answers what it still waits for.
    /// `None` for TLS, whose driver the redis crate stops with the connection's last handle.
    driver: Option<AbortHandle>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

/// Whether a connection dropped, told to the transport once.
struct Dropped {
    flag: AtomicBool,
    on_push: PushSink,
}

impl Dropped {
    /// Marks the connection dropped and, the first time, tells the transport with a
    /// `Disconnection` push, which the redis crate sends for only some of the ways a connection
    /// ends (an unrecoverable write error ends it silently): the transport then resubscribes
    /// on whichever connection comes next.
    fn mark(&self) {
        if !self.flag.swap(true, Ordering::AcqRel) {
            (self.on_push)(PushInfo { kind: PushKind::Disconnection, data: Vec::new() });
        }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
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
            dropped.mark();
        }
        result
    }

    /// The connection in use, opened now if there is none or it dropped.
    async fn connection(&self) -> RedisResult<(MultiplexedConnection, Arc<Dropped>)> {
        if let Some(handles) = usable(&*self.0.current.lock().await) {
            return Ok(handles);
        }
        // Opened on a task of its own: a caller giving up (its own, shorter wait) does not
        // cancel an opening that the next callers will use.
        let this = self.clone();
        match tokio::spawn(async move { this.reopen().await }).await {
            Ok(opened) => opened,
            Err(_) => Err(std::io::Error::other("opening the connection to Redis was interrupted").into()),
        }
    }

    /// Opens a connection in place of the dropped one, unless another caller did meanwhile.
    async fn reopen(&self) -> RedisResult<(MultiplexedConnection, Arc<Dropped>)> {
        let mut current = self.0.current.lock().await;
        if let Some(handles) = usable(&current) {
            return Ok(handles);
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
        let dropped = Arc::new(Dropped { flag: AtomicBool::new(false), on_push: self.0.on_push.clone() });
        let (on_push, marker) = (self.0.on_push.clone(), dropped.clone());
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(self.0.connect_timeout)).set_response_timeout(None).set_push_sender(move |push: PushInfo| -> Result<(), ()> {
                match push.kind {
                    PushKind::Disconnection => marker.mark(),
                    _ => on_push(push),
                }
                Ok(())
            });
        let info = self.0.client.get_connection_info();
        let (conn, driver) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                start(info.redis_settings(), stream, config).await?
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => start(info.redis_settings(), tokio::net::UnixStream::connect(path).await?, config).await?,
            _ => (self.0.client.get_multiplexed_async_connection_with_config(&config).await?, None),
        };
        Ok(Live { conn, dropped, driver })
    }
}

/// The connection in `current` unless there is none or it dropped.
fn usable(current: &Option<Live>) -> Option<(MultiplexedConnection, Arc<Dropped>)> {
    current.as_ref().filter(|live| !live.dropped.is_set()).map(|live| (live.conn.clone(), live.dropped.clone()))
}

/// A connection over `stream`, read through a [`READ_CHUNK`] buffer, and its driver's task.
async fn start<S>(settings: &redis::RedisConnectionInfo, stream: S, config: AsyncConnectionConfig) -> RedisResult<(MultiplexedConnection, Option<AbortHandle>)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (conn, driver) = MultiplexedConnection::new_with_config(settings, BufReader::with_capacity(READ_CHUNK, stream), config).await?;
    Ok((conn, Some(tokio::spawn(driver).abort_handle())))
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
