//! Broadcasts with acknowledgements across the cluster: socketioxide's stream of this server's
//! clients' acks, merged with what the other servers answer (each one's client count, then each
//! client's ack), as a Node node's `emitWithAck` collects them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FusedStream, Stream};
use socketioxide_core::adapter::AckStreamItem;
use socketioxide_core::{Sid, Value};
use tokio::sync::mpsc;

/// What another server answered to one of this server's broadcasts with acks.
pub(crate) enum Answer {
    /// How many other servers there are to answer (counted while the request went out).
    Servers(usize),
    /// How many of its clients it sent the broadcast to.
    ClientCount(u64),
    /// One client's acknowledgement, as the namespace's parser holds an ack's arguments.
    Ack(Value),
}

/// The broadcasts with acks waiting for other servers' answers, by request id.
#[derive(Default)]
pub(crate) struct Waiting(Mutex<HashMap<String, mpsc::UnboundedSender<Answer>>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Answer>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `answer` to the stream of request `id`, if one still waits for it.
    pub(crate) fn answer(&self, id: &str, answer: Answer) {
        if let Some(stream) = self.lock().get(id) {
            let _ = stream.send(answer);
        }
    }
}

/// The remote half of an [`AckStream`]: the other servers' answers to one request, until each
/// of them counted its clients and every counted client acked, or the timeout.
pub(crate) struct Remote {
    id: String,
    waiting: Arc<Waiting>,
    answers: mpsc::UnboundedReceiver<Answer>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// How many servers are to answer, once counted.
    servers: Option<usize>,
    /// Client counts received so far.
    counts: usize,
    /// Counted clients whose ack has not come yet: below zero while acks came before the count
    /// of their server (each server sends its count first, but no order holds across channels).
    acks_left: i64,
    done: bool,
}

impl Remote {
    /// Waits for the answers to request `id`, for `timeout`; how many servers answer comes as
    /// [`Answer::Servers`] (not at all when they could not be counted: then until `timeout`).
    /// Call before the request is published, so that no answer comes before it is awaited.
    pub(crate) fn register(waiting: &Arc<Waiting>, id: String, timeout: Duration) -> Self {
        let (sender, answers) = mpsc::unbounded_channel();
        waiting.lock().insert(id.clone(), sender);
        Remote { id, waiting: waiting.clone(), answers, deadline: Box::pin(tokio::time::sleep(timeout)), servers: None, counts: 0, acks_left: 0, done: false }
    }

    /// The next remote ack (with a stand-in socket id: the wire does not say whose it is), or
    /// `Ready(None)` once everything came or the time is up.
    fn poll_next<E>(&mut self, cx: &mut Context<'_>) -> Poll<Option<AckStreamItem<E>>> {
        while !self.done {
            let all_answered = self.servers.is_some_and(|servers| self.counts >= servers) && self.acks_left <= 0;
            if all_answered || self.deadline.as_mut().poll(cx).is_ready() {
                self.done = true;
                break;
            }
            match self.answers.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => self.done = true,
                Poll::Ready(Some(Answer::Servers(servers))) => self.servers = Some(servers),
                Poll::Ready(Some(Answer::ClientCount(count))) => {
                    self.counts += 1;
                    self.acks_left += i64::try_from(count).unwrap_or(i64::MAX);
                }
                Poll::Ready(Some(Answer::Ack(value))) => {
                    self.acks_left -= 1;
                    return Poll::Ready(Some((Sid::new(), Ok(value))));
                }
            }
        }
        self.waiting.lock().remove(&self.id);
        Poll::Ready(None)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.waiting.lock().remove(&self.id);
    }
}

/// The acks of a broadcast with acks: this server's clients' (socketioxide's own stream) and,
/// when the broadcast went to the cluster, the other servers' clients'.
pub struct AckStream<S> {
    local: Pin<Box<S>>,
    local_done: bool,
    remote: Option<Remote>,
}

impl<S> AckStream<S> {
    pub(crate) fn new(local: S, remote: Option<Remote>) -> Self {
        AckStream { local: Box::pin(local), local_done: false, remote }
    }

    fn remote_done(&self) -> bool {
        self.remote.as_ref().is_none_or(|r| r.done)
    }
}

impl<S: Stream<Item = AckStreamItem<E>>, E> Stream for AckStream<S> {
    type Item = AckStreamItem<E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.local_done {
            match this.local.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => this.local_done = true,
                Poll::Pending => {}
            }
        }
        if let Some(remote) = this.remote.as_mut() {
            if let Poll::Ready(Some(item)) = remote.poll_next(cx) {
                return Poll::Ready(Some(item));
            }
        }
        if this.local_done && this.remote_done() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl<S: Stream<Item = AckStreamItem<E>>, E> FusedStream for AckStream<S> {
    fn is_terminated(&self) -> bool {
        self.local_done && self.remote_done()
    }
}

impl<S> std::fmt::Debug for AckStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remote = self.remote.as_ref().map(|r| (r.servers, r.counts, r.acks_left));
        f.debug_struct("AckStream").field("local_done", &self.local_done).field("remote_servers_counts_and_acks_left", &remote).finish()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    type Item = AckStreamItem<std::io::Error>;

    fn local(values: &[&str]) -> impl Stream<Item = Item> {
        let items: Vec<Item> = values.iter().map(|v| (Sid::new(), Ok(Value::Str(v.to_string().into(), None)))).collect();
        futures_util::stream::iter(items)
    }

    fn text(item: &Item) -> String {
        match &item.1 {
            Ok(Value::Str(s, _)) => s.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn local_and_remote_acks_end_when_every_counted_client_answered() {
        let waiting = Arc::new(Waiting::default());
        let remote = Remote::register(&waiting, "r1".into(), Duration::from_secs(5));
        waiting.answer("r1", Answer::Servers(2));
        waiting.answer("r1", Answer::ClientCount(1));
        waiting.answer("r1", Answer::Ack(Value::Str("b".into(), None)));
        waiting.answer("other", Answer::Ack(Value::Str("x".into(), None)));
        waiting.answer("r1", Answer::ClientCount(1));
        waiting.answer("r1", Answer::Ack(Value::Str("c".into(), None)));
        let got: Vec<Item> = AckStream::new(local(&["a"]), Some(remote)).collect().await;
        assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(waiting.lock().is_empty(), "the request is forgotten once answered");
    }

    #[tokio::test(start_paused = true)]
    async fn an_ack_before_its_servers_count_still_ends_the_stream_when_all_came() {
        let waiting = Arc::new(Waiting::default());
        let remote = Remote::register(&waiting, "r0".into(), Duration::from_secs(5));
        waiting.answer("r0", Answer::Servers(1));
        waiting.answer("r0", Answer::Ack(Value::Str("b".into(), None)));
        waiting.answer("r0", Answer::ClientCount(1));
        let started = tokio::time::Instant::now();
        let got: Vec<Item> = AckStream::new(local(&[]), Some(remote)).collect().await;
        assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["b"]);
        assert_eq!(started.elapsed(), Duration::ZERO, "not at the timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn missing_answers_end_the_stream_at_the_timeout_and_a_dropped_stream_is_forgotten() {
        let waiting = Arc::new(Waiting::default());
        let remote = Remote::register(&waiting, "r2".into(), Duration::from_millis(500));
        waiting.answer("r2", Answer::Servers(2));
        waiting.answer("r2", Answer::ClientCount(2));
        waiting.answer("r2", Answer::Ack(Value::Str("b".into(), None)));
        let started = tokio::time::Instant::now();
        let got: Vec<Item> = AckStream::new(local(&[]), Some(remote)).collect().await;
        assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["b"]);
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        let remote = Remote::register(&waiting, "r3".into(), Duration::from_secs(5));
        drop(AckStream::new(local(&["a"]), Some(remote)));
        assert!(waiting.lock().is_empty());
        let alone: Vec<Item> = AckStream::new(local(&["a"]), None).collect().await;
        assert_eq!(alone.len(), 1);
        // No other server: done as soon as that is known; never counted: at the timeout.
        let remote = Remote::register(&waiting, "r5".into(), Duration::from_millis(500));
        waiting.answer("r5", Answer::Servers(0));
        let started = tokio::time::Instant::now();
        assert_eq!(AckStream::new(local(&["a"]), Some(remote)).collect::<Vec<Item>>().await.len(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
        let remote = Remote::register(&waiting, "r6".into(), Duration::from_millis(500));
        assert_eq!(AckStream::new(local(&[]), Some(remote)).collect::<Vec<Item>>().await.len(), 0);
        assert_eq!(started.elapsed(), Duration::from_millis(500));
    }
}
