//! Correlation of cluster requests with their responses: the pending table, counting,
//! deadlines and the official error texts.
//!
//! A request expects one response from every other node (`PUBSUB NUMSUB` of the request
//! channel, minus itself). The count arrives with the confirmation of the request's own
//! publication (both ride in one pipeline), so a request is registered before it is known, and
//! responses that outrun it are kept. It completes when that many responses arrived, or at its
//! deadline with what arrived so far and the official timeout error. Either way its entry is
//! removed, so a late or duplicate response finds nothing and is ignored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::protocol::request::{RawJson, RequestType, Response, ResponseBody};

/// The result of a cluster request: what the other nodes answered.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every item of every response (rooms, socket details, or ack arguments), in arrival order,
    /// as the JSON text the answering node sent (validated, not parsed: see
    /// [`Outcome::parse_items`]).
    pub items: Vec<RawJson>,
    /// Responses expected (other nodes).
    pub expected: usize,
    /// Responses received.
    pub received: usize,
    /// Why the request did not complete: a timeout (with the official text) or a close.
    pub error: Option<Error>,
}

impl Outcome {
    /// The outcome of a request no other node had to answer.
    pub fn nobody_to_ask() -> Self {
        Outcome { items: Vec::new(), expected: 0, received: 0, error: None }
    }

    /// The items, or the error when the request did not complete.
    pub fn into_result(self) -> Result<Vec<RawJson>, Error> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(self.items),
        }
    }

    /// Every item read as a `T`: e.g. `String` for the rooms of
    /// [`all_rooms`](crate::Adapter::all_rooms), `serde_json::Value` for socket details.
    pub fn parse_items<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        self.items.iter().map(|item| serde_json::from_str(item.get())).collect()
    }
}

/// Most responses a request keeps before it knows how many to expect (it then keeps at most
/// that many).
const MAX_UNCOUNTED: usize = 1024;

struct Pending {
    kind: RequestType,
    /// `None` until the nodes were counted.
    expected: Option<usize>,
    received: usize,
    items: Vec<RawJson>,
    /// How many items there were after each response, to keep only the expected ones.
    ends: Vec<usize>,
    done: Option<oneshot::Sender<()>>,
}

impl Pending {
    /// Completes the request once every expected response arrived.
    fn complete_if_answered(&mut self) {
        if self.expected.is_some_and(|expected| self.received >= expected) {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

/// The official text for a request that ran out of time: the classic adapter's, or with
/// `cluster` the ClusterAdapter's (the sharded adapter's), which says the counts for every kind.
pub fn timeout_message(kind: RequestType, received: usize, expected: usize, cluster: bool) -> String {
    if cluster || kind == RequestType::ServerSideEmit {
        format!("timeout reached: only {received} responses received out of {expected}")
    } else {
        format!("timeout reached while waiting for {} response", kind.operation())
    }
}

/// Requests of this node waiting for responses, by request id.
#[derive(Default)]
pub struct PendingRequests {
    map: Mutex<HashMap<String, Pending>>,
    /// The requests are the ClusterAdapter's (their timeouts say so, see [`timeout_message`]).
    cluster: bool,
}

/// A registered request; wait on it with [`PendingRequests::wait`].
pub struct Ticket {
    id: String,
    done: oneshot::Receiver<()>,
}

impl PendingRequests {
    /// Requests of the ClusterAdapter protocol (the sharded adapter's).
    pub fn cluster() -> Self {
        PendingRequests { cluster: true, ..Self::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers request `id` expecting `expected` (≥ 1) responses, or, with `None`, as many as
    /// [`expect`](Self::expect) says later.
    pub fn register(&self, id: &str, kind: RequestType, expected: Option<usize>) -> Ticket {
        let (tx, rx) = oneshot::channel();
        tracing::debug!(id = %id, ?kind, "request sent");
        self.lock().insert(id.to_owned(), Pending { kind, expected, received: 0, items: Vec::new(), ends: Vec::new(), done: Some(tx) });
        Ticket { id: id.to_owned(), done: rx }
    }

    /// Sets how many responses request `id` expects (≥ 1), once the nodes were counted: what
    /// arrived beyond that is forgotten, and the request completes if nothing else is missing.
    pub fn expect(&self, id: &str, expected: usize) {
        let mut map = self.lock();
        let Some(pending) = map.get_mut(id) else { return };
        tracing::debug!(id = %id, expected, received = pending.received, "request counted");
        pending.expected = Some(expected);
        if pending.received > expected {
            pending.received = expected;
            pending.items.truncate(pending.ends[expected - 1]);
        }
        pending.ends = Vec::new();
        pending.complete_if_answered();
    }

    /// True while request `id` waits (used to recognise this node's own requests).
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a response; false when nothing waits for it (late, duplicate or foreign). A
    /// request takes at most the responses it expects: more (a node answering twice, forged
    /// answers) are ignored, so what it holds stays bounded. Responses carry no uid on the wire,
    /// so that is all that can be told apart.
    pub fn on_response(&self, response: Response) -> bool {
        let mut map = self.lock();
        let Some(pending) = map.get_mut(&response.request_id).filter(|p| p.received < p.expected.unwrap_or(MAX_UNCOUNTED)) else {
            return false;
        };
        pending.received += 1;
        match response.body {
            ResponseBody::Rooms(items) | ResponseBody::Sockets(items) => pending.items.extend(items),
            ResponseBody::ServerSideEmit(data) => pending.items.push(data.unwrap_or_else(|| RawValue::NULL.to_owned())),
            ResponseBody::ClientCount(_) | ResponseBody::Ack | ResponseBody::Other => {}
        }
        if pending.expected.is_none() {
            pending.ends.push(pending.items.len());
        }
        pending.complete_if_answered();
        true
    }

    /// Waits until the request completes, times out or is cancelled; its entry is gone after.
    pub async fn wait(&self, ticket: Ticket, timeout: Duration) -> Outcome {
        let timed_out = tokio::time::timeout(timeout, ticket.done).await.is_err();
        let Some(pending) = self.lock().remove(&ticket.id) else {
            return Outcome { error: Some(Error::Closed), ..Outcome::nobody_to_ask() };
        };
        // Waited on only once counted.
        let expected = pending.expected.unwrap_or(pending.received);
        tracing::debug!(id = %ticket.id, kind = ?pending.kind, received = pending.received, expected, timed_out, "request settled");
        let error = if timed_out && pending.received < expected {
            Some(Error::Timeout { message: timeout_message(pending.kind, pending.received, expected, self.cluster), received: pending.received, expected })
        } else if pending.received < expected {
            Some(Error::Closed)
        } else {
            None
        };
        Outcome { items: pending.items, expected, received: pending.received, error }
    }

    /// Ends every waiting request (at close); their outcomes carry [`Error::Closed`].
    pub fn cancel_all(&self) {
        for pending in self.lock().values_mut() {
            if let Some(done) = pending.done.take() {
                let _ = done.send(());
            }
        }
    }

    /// Forgets request `id` (its publish failed).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// A request published and registered, with the nodes counted just before it (this one
/// included): see [`PendingRequests::send_counted`].
pub(crate) struct SentRequest<'a> {
    pending: &'a PendingRequests,
    id: String,
    ticket: Ticket,
    /// The nodes counted when it was published, this one included.
    pub(crate) nodes: usize,
}

impl SentRequest<'_> {
    /// Waits for `expected` answers until `deadline`.
    pub(crate) async fn wait(self, expected: usize, deadline: tokio::time::Instant) -> Outcome {
        self.pending.expect(&self.id, expected);
        self.pending.wait(self.ticket, deadline.saturating_duration_since(tokio::time::Instant::now())).await
    }

    /// Stops waiting for answers (none is expected): `outcome` is the request's.
    pub(crate) fn forget(self, outcome: Outcome) -> Outcome {
        self.pending.remove(&self.id);
        outcome
    }
}

impl PendingRequests {
    /// Registers request `id` of type `kind`, then runs `publish` (which publishes it, built from
    /// its id, and counts the nodes): registered first, so that no answer can outrun it. On
    /// failure the request is forgotten and the error returned.
    pub(crate) async fn send_counted<F>(&self, kind: RequestType, id: String, publish: impl FnOnce(&str) -> F) -> Result<SentRequest<'_>, Error>
    where
        F: std::future::Future<Output = Result<usize, Error>>,
    {
        let ticket = self.register(&id, kind, None);
        match publish(&id).await {
            Ok(nodes) => Ok(SentRequest { pending: self, id, ticket, nodes }),
            Err(err) => {
                self.remove(&id);
                Err(err)
            }
        }
    }
}

/// Ids of this node's broadcasts-with-ack whose acknowledgements are still awaited; each is
/// forgotten after the broadcast's timeout, like the official adapter's `ackRequests`.
#[derive(Default)]
pub struct AckRequests {
    ids: Mutex<HashMap<String, tokio::time::Instant>>,
}

impl AckRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::time::Instant>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers `id` for `ttl`.
    pub fn insert(&self, id: &str, ttl: Duration) {
        let now = tokio::time::Instant::now();
        let mut ids = self.lock();
        ids.retain(|_, deadline| *deadline > now);
        // A huge ttl (e.g. `Duration::MAX` from a host) means "for as long as this process runs".
        ids.insert(id.to_owned(), now.checked_add(ttl).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600)));
    }

    /// True when acknowledgements for `id` are still awaited.
    pub fn contains(&self, id: &str) -> bool {
        let now = tokio::time::Instant::now();
        self.lock().get(id).is_some_and(|deadline| *deadline > now)
    }

    /// Number of ids still awaited.
    pub fn len(&self) -> usize {
        let now = tokio::time::Instant::now();
        let mut ids = self.lock();
        ids.retain(|_, deadline| *deadline > now);
        ids.len()
    }

    /// True when no acknowledgement is awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every id (at close).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> RawJson {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn rooms(id: &str, items: &[&str]) -> Response {
        Response { request_id: id.into(), body: ResponseBody::Rooms(items.iter().map(|s| json(&format!("{s:?}"))).collect()) }
    }

    fn strings(outcome: &Outcome) -> Vec<String> {
        outcome.parse_items().unwrap()
    }

    #[tokio::test]
    async fn completes_when_every_node_answered() {
        let table = PendingRequests::default();
        let ticket = table.register("r1", RequestType::AllRooms, Some(2));
        assert!(table.on_response(rooms("r1", &["a"])));
        assert!(table.on_response(rooms("r1", &["b", "c"])));
        let outcome = table.wait(ticket, Duration::from_secs(5)).await;
        assert_eq!(strings(&outcome), ["a", "b", "c"]);
        assert_eq!((outcome.received, outcome.expected, outcome.error), (2, 2, None));
        assert!(table.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_official_text_and_partial_results() {
        let table = PendingRequests::default();
        let ticket = table.register("r2", RequestType::RemoteFetch, Some(2));
        table.on_response(Response { request_id: "r2".into(), body: ResponseBody::Sockets(vec![json(r#""s1""#)]) });
        let outcome = table.wait(ticket, Duration::from_millis(100)).await;
        assert_eq!(strings(&outcome), ["s1"]);
        let Some(Error::Timeout { message, received: 1, expected: 2 }) = outcome.error else { panic!("{:?}", outcome.error) };
        assert_eq!(message, "timeout reached while waiting for fetchSockets response");
        assert!(table.is_empty());
        let ticket = table.register("r3", RequestType::ServerSideEmit, Some(3));
        let outcome = table.wait(ticket, Duration::from_millis(100)).await;
        assert_eq!(outcome.error.unwrap().to_string(), "timeout reached: only 0 responses received out of 3");
        // The ClusterAdapter's requests say the counts for every kind.
        let cluster = PendingRequests::cluster();
        let ticket = cluster.register("r4", RequestType::RemoteFetch, Some(2));
        let outcome = cluster.wait(ticket, Duration::from_millis(100)).await;
        assert_eq!(outcome.error.unwrap().to_string(), "timeout reached: only 0 responses received out of 2");
    }

    #[tokio::test(start_paused = true)]
    async fn late_and_duplicate_replies_are_ignored() {
        let table = PendingRequests::default();
        let ticket = table.register("r4", RequestType::AllRooms, Some(1));
        let outcome = table.wait(ticket, Duration::from_millis(10)).await;
        assert!(outcome.error.is_some());
        assert!(!table.on_response(rooms("r4", &["late"])), "a late reply must find nothing");
        let ticket = table.register("r5", RequestType::AllRooms, Some(1));
        assert!(table.on_response(rooms("r5", &["x"])));
        let outcome = table.wait(ticket, Duration::from_secs(1)).await;
        assert_eq!(outcome.items.len(), 1);
        assert!(!table.on_response(rooms("r5", &["dup"])), "a duplicate after completion must find nothing");
        assert!(table.is_empty());
        // Answers beyond those expected, before the requester took the outcome: not kept.
        let ticket = table.register("r6", RequestType::AllRooms, Some(2));
        for i in 0..10_000 {
            table.on_response(rooms("r6", &[&format!("forged-{i}")]));
        }
        let outcome = table.wait(ticket, Duration::from_secs(1)).await;
        assert_eq!((outcome.received, outcome.items.len()), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn responses_that_outrun_the_count_are_kept_up_to_the_count() {
        let table = PendingRequests::default();
        // Answers before the count: kept, but nothing completes yet.
        let ticket = table.register("r7", RequestType::AllRooms, None);
        assert!(table.on_response(rooms("r7", &["a"])));
        assert!(table.on_response(rooms("r7", &["b", "c"])));
        assert!(table.on_response(rooms("r7", &["forged"])));
        // Counted: two other nodes. The third answer is forgotten, and it completes at once.
        table.expect("r7", 2);
        let outcome = table.wait(ticket, Duration::from_secs(5)).await;
        assert_eq!(strings(&outcome), ["a", "b", "c"]);
        assert_eq!((outcome.received, outcome.expected, outcome.error), (2, 2, None));
        // Counted before every answer arrived: waits for the rest, then times out with the text.
        let ticket = table.register("r8", RequestType::ServerSideEmit, None);
        assert!(table.on_response(Response { request_id: "r8".into(), body: ResponseBody::ServerSideEmit(Some(json("1"))) }));
        table.expect("r8", 3);
        let outcome = table.wait(ticket, Duration::from_millis(100)).await;
        assert_eq!(outcome.error.as_ref().unwrap().to_string(), "timeout reached: only 1 responses received out of 3");
        assert_eq!(outcome.parse_items::<u32>().unwrap(), [1]);
        // Before the count, what is kept is bounded.
        let ticket = table.register("r9", RequestType::AllRooms, None);
        let kept = (0..MAX_UNCOUNTED + 10).filter(|i| table.on_response(rooms("r9", &[&format!("x{i}")]))).count();
        assert_eq!(kept, MAX_UNCOUNTED);
        table.expect("r9", 1);
        assert_eq!(table.wait(ticket, Duration::from_secs(1)).await.items.len(), 1);
    }

    #[tokio::test]
    async fn cancel_all_ends_waiting_requests_with_closed() {
        let table = std::sync::Arc::new(PendingRequests::default());
        let ticket = table.register("r6", RequestType::AllRooms, Some(1));
        let waiter = {
            let table = table.clone();
            tokio::spawn(async move { table.wait(ticket, Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        table.cancel_all();
        assert_eq!(waiter.await.unwrap().error, Some(Error::Closed));
        assert!(table.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn ack_ids_expire_after_their_timeout() {
        let acks = AckRequests::default();
        acks.insert("a1", Duration::from_millis(50));
        assert!(acks.contains("a1"));
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(!acks.contains("a1"));
        assert!(acks.is_empty());
    }
}
