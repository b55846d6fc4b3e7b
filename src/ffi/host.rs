//! The C host of an adapter handle: its callbacks, and the thread that runs them.
//!
//! The engine hands over received messages on the handle's runtime, which also reads and writes
//! Redis; a C callback may take as long as it likes. So the callbacks run on a thread of their
//! own, the handle's callback thread, one at a time and in order of one queue: received
//! messages wait in the core's receive buffer ([`Outbox`]: bounded by
//! `sio_limits.max_receive_buffer_bytes`, handed over in bounded batches, drops counted and
//! reported), connection events and completions of asynchronous calls are queued beside them
//! and never dropped. Redis keeps being read while a callback runs: a slow host loses what does
//! not fit in its buffer, counted, instead of stalling its connection until Redis cuts it off.

use std::ffi::{c_char, c_void, CString};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Weak};

use super::{ArgError, HandleToken, SioResult, HANDLE_OF_THREAD};
use crate::host::{AdapterEvent, Delivery, DeliveryKind, Host};
use crate::outbox::Outbox;
use crate::requests::Outcome;

/// What [`SioHostCallbacks::on_event`] reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioEvent {
    /// Subscribed (again) to every channel of the namespace.
    SioEventReady = 0,
    /// A connection problem; the handle keeps retrying.
    SioEventError = 1,
    /// Messages from Redis were dropped: over a limit of `sio_limits`, malformed, or because the
    /// receive buffer was full (the callbacks did not keep up). Reported at most once a second
    /// per reason; the message starts with the code (`ERR_SIO_TOO_LARGE`, `ERR_SIO_TOO_COMPLEX`,
    /// `ERR_SIO_MALFORMED` or `ERR_SIO_OVERLOADED`) and says how many.
    SioEventDropped = 2,
}

/// A request of another node, borrowed for the duration of [`SioHostCallbacks::on_request`].
#[repr(C)]
pub struct SioRequest {
    /// The request type: a `sio_request_kind` (`SIO_REQUEST_KIND_ALL_ROOMS`, ...).
    pub kind: u32,
    /// The correlation id, or NULL for requests that expect no answer.
    pub request_id: *const c_char,
    /// The requesting node's uid, or NULL (emitters, old nodes).
    pub requester: *const c_char,
    /// The request as received: JSON text (NUL-terminated too), or msgpack for type 7.
    pub payload: *const u8,
    /// Bytes in `payload` (without the NUL).
    pub payload_len: usize,
}

/// The callbacks of a C host. They run on the handle's callback thread, one at a time, in
/// arrival order, never after `sio_adapter_free` returned (nor after it was called from one of
/// them). Redis is read on another thread meanwhile: received messages wait for them in a
/// buffer of at most `sio_limits.max_receive_buffer_bytes` (what does not fit is dropped,
/// counted in `sio_stats.dropped` and reported by `on_event`). Pointers they receive are
/// borrowed for the duration of the call. They may call any function of the library,
/// `sio_adapter_free` of their own handle included. They must not unwind: a C++ exception (or
/// a `longjmp`) must not leave a callback or a completion, the process would abort.
#[repr(C)]
pub struct SioHostCallbacks {
    /// Passed back to every callback.
    pub user_data: *mut c_void,
    /// A broadcast from another node for the local sockets: msgpack `[uid, packet, opts]`
    /// (`packet.data` is `[event, ...args]`; `opts.rooms` / `opts.except` select sockets).
    pub on_broadcast: Option<unsafe extern "C" fn(user_data: *mut c_void, message: *const u8, len: usize)>,
    /// A request of another node. Answer those with a `request_id` with `sio_adapter_respond`
    /// (now or later, from any thread); apply the others (join/leave/disconnect) locally.
    pub on_request: Option<unsafe extern "C" fn(user_data: *mut c_void, request: *const SioRequest)>,
    /// Connection state: ready, or an error with its message.
    pub on_event: Option<unsafe extern "C" fn(user_data: *mut c_void, event: SioEvent, message: *const c_char)>,
}

/// Completion of an asynchronous call: `result`, and on success `json` (a JSON array of every
/// answer's items, or the server count as a JSON number); on failure `error` describes it
/// (for a timeout, `json` still holds what arrived). Both strings are borrowed for the call.
/// Every completion runs exactly once, on the handle's callback thread, in turn with the host
/// callbacks; one still waiting when `sio_adapter_free` is called runs with `SIO_ERR_CLOSED`
/// before it returns (on the thread that frees the handle if the callback thread had to be
/// stopped first). Requests settle within their timeout whatever state Redis is in (down,
/// stalled, no primary known yet). Like the host callbacks, a completion may call into the
/// library and must not unwind.
pub type SioCompletion = Option<unsafe extern "C" fn(user_data: *mut c_void, result: SioResult, json: *const c_char, error: *const c_char)>;

/// What the callback thread runs, in queue order.
enum Job {
    /// Received messages wait in the receive buffer: hand over a batch.
    Deliveries,
    /// A connection event or a drop report.
    Event(SioEvent, String),
    /// A completion with its result.
    Complete(Completion, Settled),
    /// Stop: the jobs queued before this one have run.
    Stop,
}

/// The result a completion is called with.
struct Settled {
    result: SioResult,
    json: Option<String>,
    error: Option<String>,
}

/// The engine's [`Host`] for a C host: queues for the callback thread.
pub(crate) struct CHost {
    outbox: Outbox,
    jobs: Sender<Job>,
    token: Arc<HandleToken>,
}

impl CHost {
    fn queue(&self, job: Job) {
        // Fails only once the handle is being freed: nothing is called any more then.
        let _ = self.jobs.send(job);
    }
}

impl Host for CHost {
    fn deliver(&self, delivery: Delivery) {
        // A C host hears broadcasts and requests, in the classic protocol's form (a sharded
        // handle's engine translates the ClusterAdapter's messages into it); acknowledgements
        // of broadcasts with ack are not offered to C hosts.
        if self.token.is_silenced() || !matches!(delivery.kind(), DeliveryKind::Broadcast | DeliveryKind::Request(_)) {
            return;
        }
        let pushed = self.outbox.push(delivery);
        if let Some(err) = pushed.report {
            self.queue(dropped(&err));
        }
        if pushed.schedule {
            self.queue(Job::Deliveries);
        }
    }

    fn on_event(&self, event: AdapterEvent) {
        let job = match event {
            AdapterEvent::Ready => Job::Event(SioEvent::SioEventReady, String::new()),
            AdapterEvent::Error(err @ crate::Error::Dropped { .. }) => dropped(&err),
            AdapterEvent::Error(err) => Job::Event(SioEvent::SioEventError, err.to_string()),
        };
        self.queue(job);
    }
}

/// The report of messages dropped for `err` (over a limit, malformed, or the receive buffer
/// full): `SIO_EVENT_DROPPED`, its text starting with the code.
fn dropped(err: &crate::Error) -> Job {
    Job::Event(SioEvent::SioEventDropped, format!("{}: {err}", err.code()))
}

/// The host's callbacks and `user_data`, moved to the callback thread.
struct Callbacks(SioHostCallbacks);

// SAFETY: the C caller guarantees, per `sio_adapter_new`'s contract, that the callbacks and
// `user_data` may be used from the handle's background threads; only the callback thread
// calls them.
unsafe impl Send for Callbacks {}

/// The callback thread of a handle. [`CallbackThread::stop`] ends it.
pub(crate) struct CallbackThread {
    host: Arc<CHost>,
    in_flight: Arc<tokio::sync::watch::Sender<usize>>,
    thread: std::thread::JoinHandle<Receiver<Job>>,
}

impl CallbackThread {
    /// Starts the thread that calls `callbacks`, with a receive buffer of at most `limit` bytes;
    /// [`CallbackThread::host`] is the engine's side of it.
    pub(crate) fn start(callbacks: SioHostCallbacks, token: Arc<HandleToken>, limit: usize) -> Result<Self, ArgError> {
        let (jobs, queue) = channel();
        let host = Arc::new(CHost { outbox: Outbox::new(limit), jobs, token });
        let (callbacks, runner, id) = (Callbacks(callbacks), Arc::downgrade(&host), host.token.id());
        let thread = std::thread::Builder::new()
            .name("sioadapter-cb".into())
            .spawn(move || run(callbacks, &runner, id, queue))
            .map_err(|e| ArgError(SioResult::SioErrRedis, format!("cannot start the callback thread: {e}")))?;
        Ok(CallbackThread { host, in_flight: Arc::new(tokio::sync::watch::Sender::new(0)), thread })
    }

    /// The engine's host: what it delivers and reports reaches the callbacks through here.
    pub(crate) fn host(&self) -> Arc<CHost> {
        self.host.clone()
    }

    /// Messages dropped because the receive buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.host.outbox.dropped()
    }

    /// A completion that runs on this thread, counted until it ran.
    pub(crate) fn completion(&self, callback: SioCompletion, user_data: *mut c_void) -> Completion {
        self.in_flight.send_modify(|n| *n += 1);
        Completion { callback, user_data, jobs: self.host.jobs.clone(), in_flight: self.in_flight.clone() }
    }

    /// Waits until every completion made so far ran, at most `within`.
    pub(crate) async fn settled(&self, within: std::time::Duration) {
        let _ = tokio::time::timeout(within, self.in_flight.subscribe().wait_for(|n| *n == 0)).await;
    }

    /// Runs what is queued, then stops the thread and waits for it. Completions settled
    /// later still reach its queue: [`Stopped::finish`] runs them.
    pub(crate) fn stop(self) -> Stopped {
        self.host.queue(Job::Stop);
        // The thread's loop does not panic (the callbacks must not unwind); if it did, there is
        // no queue left to finish: an empty one stands in for it.
        Stopped(self.thread.join().unwrap_or_else(|_| channel().1))
    }
}

/// The queue of a stopped callback thread.
pub(crate) struct Stopped(Receiver<Job>);

impl Stopped {
    /// Runs, on this thread, the completions left in the queue; host callbacks are not called
    /// any more. Completions settled after this run with `SIO_ERR_CLOSED` where they settle.
    pub(crate) fn finish(self) {
        for job in self.0.try_iter() {
            if let Job::Complete(completion, settled) = job {
                completion.run(settled);
            }
        }
    }
}

/// The callback thread's loop: runs the jobs in order until [`Job::Stop`], or until the handle
/// is gone without stopping it (it failed to start).
fn run(callbacks: Callbacks, host: &Weak<CHost>, id: usize, queue: Receiver<Job>) -> Receiver<Job> {
    HANDLE_OF_THREAD.set(id);
    let callbacks = &callbacks.0;
    while let Ok(job) = queue.recv() {
        let Some(host) = host.upgrade() else { break };
        match job {
            Job::Deliveries => {
                let (batch, more) = host.outbox.take();
                for delivery in batch {
                    if !host.token.is_silenced() {
                        deliver(callbacks, &delivery);
                    }
                }
                if more {
                    // Behind what was queued meanwhile: events and completions do not wait
                    // for a long backlog.
                    host.queue(Job::Deliveries);
                }
            }
            Job::Event(event, message) => {
                if let Some(cb) = callbacks.on_event.filter(|_| !host.token.is_silenced()) {
                    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                    // SAFETY: a valid callback per the contract; the message lives for the call.
                    unsafe { cb(callbacks.user_data, event, message.as_ptr()) };
                }
            }
            Job::Complete(completion, settled) => completion.run(settled),
            Job::Stop => break,
        }
    }
    queue
}

/// Calls the host callback for one received message.
fn deliver(callbacks: &SioHostCallbacks, delivery: &Delivery) {
    let ud = callbacks.user_data;
    match delivery.kind() {
        DeliveryKind::Broadcast => {
            if let Some(cb) = callbacks.on_broadcast {
                // SAFETY: a valid callback per the contract; the bytes live for the call.
                unsafe { cb(ud, delivery.bytes().as_ptr(), delivery.bytes().len()) };
            }
        }
        DeliveryKind::Request(header) => {
            let Some(cb) = callbacks.on_request else {
                return;
            };
            let id = header.request_id.as_deref().and_then(|s| CString::new(s).ok());
            let requester = header.uid.as_deref().and_then(|s| CString::new(s).ok());
            let mut payload = delivery.bytes().to_vec();
            let len = payload.len();
            payload.push(0);
            let request = SioRequest {
                kind: header.kind as u32,
                request_id: id.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                requester: requester.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                payload: payload.as_ptr(),
                payload_len: len,
            };
            // SAFETY: a valid callback; `request` and its strings live for the call.
            unsafe { cb(ud, &request) };
        }
        DeliveryKind::AckResponse | DeliveryKind::ClusterMessage | DeliveryKind::ClusterResponse => {}
    }
}

/// A completion callback and its `user_data`, called once on the callback thread.
pub(crate) struct Completion {
    callback: SioCompletion,
    user_data: *mut c_void,
    jobs: Sender<Job>,
    in_flight: Arc<tokio::sync::watch::Sender<usize>>,
}

// SAFETY: the caller of the asynchronous functions guarantees that `user_data` may be used on
// the handle's background threads, where the completion runs exactly once.
unsafe impl Send for Completion {}

impl Completion {
    /// Queues the callback with `result` for the callback thread.
    fn settle(self, result: SioResult, json: Option<String>, error: Option<String>) {
        let jobs = self.jobs.clone();
        // Fails only once the handle is freed: the completion, dropped, runs with
        // `SIO_ERR_CLOSED`.
        let _ = jobs.send(Job::Complete(self, Settled { result, json, error }));
    }

    /// Settles with a request's outcome: its items as a JSON array, and its error if any.
    pub(crate) fn outcome(self, outcome: Result<Outcome, crate::Error>) {
        match outcome {
            Ok(outcome) => {
                let json = serde_json::to_string(&outcome.items).unwrap_or_else(|_| "[]".into());
                match &outcome.error {
                    None => self.settle(SioResult::SioOk, Some(json), None),
                    Some(err) => self.settle(SioResult::from(err), Some(json), Some(err.to_string())),
                }
            }
            Err(err) => self.settle(SioResult::from(&err), None, Some(err.to_string())),
        }
    }

    /// Settles with a number (the server count) as JSON, or the error.
    pub(crate) fn count(self, count: Result<usize, crate::Error>) {
        match count {
            Ok(count) => self.settle(SioResult::SioOk, Some(count.to_string()), None),
            Err(err) => self.settle(SioResult::from(&err), None, Some(err.to_string())),
        }
    }

    /// Runs the callback with `settled`, on this thread.
    fn run(mut self, settled: Settled) {
        self.call(settled);
    }

    /// Runs the callback, the first time only.
    fn call(&mut self, settled: Settled) {
        let Some(callback) = self.callback.take() else { return };
        let json = settled.json.and_then(|j| CString::new(j).ok());
        let error = settled.error.and_then(|e| CString::new(e.replace('\0', " ")).ok());
        // SAFETY: a valid function pointer from the caller; the strings live until it returns.
        unsafe { callback(self.user_data, settled.result, json.as_ref().map_or(std::ptr::null(), |j| j.as_ptr()), error.as_ref().map_or(std::ptr::null(), |e| e.as_ptr())) };
    }
}

/// A completion whose work never finished (its task was dropped when the handle's runtime
/// stopped) still runs, once, with [`SioResult::SioErrClosed`]: on the thread that frees the
/// handle, before `sio_adapter_free` returns. Either way it stops being counted.
impl Drop for Completion {
    fn drop(&mut self) {
        self.call(Settled { result: SioResult::SioErrClosed, json: None, error: Some("adapter closed".into()) });
        self.in_flight.send_modify(|n| *n -= 1);
    }
}
