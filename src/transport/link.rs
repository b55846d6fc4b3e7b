//! The link state machine of the Redis transport: whether the connections can be trusted to
//! carry messages, and what to do when they cannot. Pure (no I/O, time passed in), so every
//! transition is unit-tested in microseconds; [`super::redis`] drives it.
//!
//! # States
//!
//! - [`LinkState::Connecting`]: nothing proven yet (start). Publishing goes ahead: the
//!   connections open lazily on first use.
//! - [`LinkState::Up`]: the publishing connection answers, the subscribing one answers and every
//!   wanted subscription was confirmed on it since it last went down.
//! - [`LinkState::Down`]: something failed; an [`TransportEvent::Error`] was reported for this
//!   outage (once). Publishing waits (messages stay queued, in order).
//!
//! # Events and who sends them
//!
//! - [`Event::Probed`]: the supervisor task (`supervise` in the Redis transport), which PINGs
//!   both connections (every second while Up and quiet, every 100–250 ms otherwise), says how
//!   each answered. Any failure means Down. When both answer (a `-LOADING` reply counts: pub/sub
//!   works while Redis loads its dataset) and the link is not Up, the machine asks to
//!   [`Step::Resubscribe`]: it cannot prove the subscriptions survived (a pause keeps them, a
//!   reconnect may not), and subscribing again what is subscribed changes nothing.
//! - [`Event::Subscribed`]: the supervisor (or the Sentinel/cluster follower, after moving)
//!   subscribed everything on the connections in use. Up; `Ready` follows the outage's `Error`.
//! - [`Event::Failed`]: anyone who saw a failure: the subscriber's disconnection push, a refused
//!   or unconfirmed publish, a failed subscription, a failed Sentinel/cluster lookup. Down.
//! - [`Event::Closed`]: `close()`. Nothing is reported any more.
//!
//! A connection that answers nothing for [`STALL_REPLACE`] (a silently dead TCP connection, a
//! partition) or whose client is stuck on a refused handshake (`-ERR max number of clients`,
//! wrong password) is replaced: [`Step::Replace`]. A stall shorter than that (`CLIENT PAUSE`,
//! `SIGSTOP`, a slow network) keeps the connections, so nothing in Redis's buffers is lost.

use std::time::{Duration, Instant};

use super::TransportEvent;

/// How long a connection may leave a PING unanswered before it is replaced by a new one.
pub(crate) const STALL_REPLACE: Duration = Duration::from_secs(12);

/// Whether the connections can be trusted to carry messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Nothing proven yet.
    Connecting,
    /// Both connections answer; every wanted subscription is confirmed.
    Up,
    /// A failure was seen and reported; waiting for Redis to answer again.
    Down,
    /// Closed by the user.
    Closed,
}

/// One of the two connections of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The connection that publishes and asks (`PUBSUB NUMSUB`).
    Publisher,
    /// The connection that holds the subscriptions.
    Subscriber,
}

/// How one connection answered a PING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `PONG`.
    Pong,
    /// `-LOADING`: Redis is loading its dataset; pub/sub works meanwhile.
    Loading,
    /// `-BUSY`: a script or function is running; nothing else runs.
    Busy(String),
    /// No answer within the probe's time.
    Stalled,
    /// The connection broke; the redis crate reconnects on the next command.
    Lost(String),
    /// An error the connection's client does not recover from by itself (a refused handshake).
    Broken(String),
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The supervisor's probe; `subscriber` is `None` when nothing is subscribed (an emitter).
    Probed {
        /// How the publishing connection answered.
        publisher: Answer,
        /// How the subscribing connection answered, when it is in use.
        subscriber: Option<Answer>,
    },
    /// Every wanted subscription was confirmed on the connections in use.
    Subscribed,
    /// Something failed; the text says what.
    Failed(String),
    /// `close()` was called.
    Closed,
}

/// What the machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Tell every subscriber.
    Report(TransportEvent),
    /// Subscribe everything wanted again on the connections in use, then send [`Event::Subscribed`].
    Resubscribe,
    /// Open a new connection for this side and drop the old one.
    Replace(Side),
}

/// The machine: the state plus what it needs to remember across events.
#[derive(Debug)]
pub(crate) struct LinkMachine {
    state: LinkState,
    /// An `Error` was reported for the current outage, so `Ready` is due when it ends.
    outage_reported: bool,
    /// Since when each side (publisher, subscriber) has left PINGs unanswered.
    stalled_since: [Option<Instant>; 2],
}

impl Default for LinkMachine {
    fn default() -> Self {
        LinkMachine { state: LinkState::Connecting, outage_reported: false, stalled_since: [None, None] }
    }
}

impl LinkMachine {
    /// The current state.
    pub(crate) fn state(&self) -> LinkState {
        self.state
    }

    /// Applies `event` (seen at `now`) and returns what to do, in order.
    pub(crate) fn on(&mut self, event: Event, now: Instant) -> Vec<Step> {
        if self.state == LinkState::Closed {
            return Vec::new();
        }
        match event {
            Event::Closed => {
                self.state = LinkState::Closed;
                Vec::new()
            }
            Event::Failed(why) => self.down(why),
            Event::Subscribed => {
                if self.state == LinkState::Up {
                    return Vec::new();
                }
                self.state = LinkState::Up;
                if std::mem::take(&mut self.outage_reported) {
                    vec![Step::Report(TransportEvent::Ready)]
                } else {
                    Vec::new()
                }
            }
            Event::Probed { publisher, subscriber } => self.probed(publisher, subscriber, now),
        }
    }

    fn probed(&mut self, publisher: Answer, subscriber: Option<Answer>, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut why = None;
        for (side, answer) in [(Side::Publisher, Some(publisher)), (Side::Subscriber, subscriber)] {
            let Some(answer) = answer else { continue };
            let stalled = &mut self.stalled_since[side as usize];
            if answer != Answer::Stalled {
                *stalled = None;
            }
            let name = match side {
                Side::Publisher => "publishing",
                Side::Subscriber => "subscribing",
            };
            let failure = match answer {
                Answer::Pong | Answer::Loading => continue,
                Answer::Stalled => {
                    let since = *stalled.get_or_insert(now);
                    if now.duration_since(since) >= STALL_REPLACE {
                        *stalled = None;
                        steps.push(Step::Replace(side));
                        format!("the {name} connection did not answer for {} s; opening a new one", STALL_REPLACE.as_secs())
                    } else {
                        format!("Redis did not answer a PING on the {name} connection in time")
                    }
                }
                Answer::Busy(text) => format!("Redis is busy and refuses commands: {text}"),
                Answer::Lost(text) => {
                    format!("the {name} connection to Redis was lost ({text}); reconnecting")
                }
                Answer::Broken(text) => {
                    steps.push(Step::Replace(side));
                    format!("the {name} connection was refused ({text}); opening a new one")
                }
            };
            why.get_or_insert(failure);
        }
        match why {
            Some(why) => {
                let mut reported = self.down(why);
                reported.append(&mut steps);
                reported
            }
            None if self.state != LinkState::Up => vec![Step::Resubscribe],
            None => Vec::new(),
        }
    }

    fn down(&mut self, why: String) -> Vec<Step> {
        self.state = LinkState::Down;
        if std::mem::replace(&mut self.outage_reported, true) {
            Vec::new()
        } else {
            vec![Step::Report(TransportEvent::Error(why))]
        }
    }
}

/// How one answer of the supervisor's PING is read: what the redis crate returned (or `None`
/// when the probe's time ran out).
pub(crate) fn read_answer(result: Option<Result<(), redis::RedisError>>) -> Answer {
    let err = match result {
        None => return Answer::Stalled,
        Some(Ok(())) => return Answer::Pong,
        Some(Err(err)) => err,
    };
    let text = crate::error::redact(&err.to_string());
    match err.code() {
        Some("LOADING") => Answer::Loading,
        Some("BUSY") => Answer::Busy(text),
        // A reply from a live connection that cannot be trusted to serve pub/sub.
        Some("MASTERDOWN") | Some("READONLY") => Answer::Lost(text),
        // The connections reopen at the next command after I/O errors; after any other error
        // the handshake failed, and would fail the same way again.
        _ if err.is_io_error() => Answer::Lost(text),
        _ => Answer::Broken(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(m: &mut LinkMachine, publisher: Answer, subscriber: Answer, now: Instant) -> Vec<Step> {
        m.on(Event::Probed { publisher, subscriber: Some(subscriber) }, now)
    }

    fn is_error(steps: &[Step]) -> bool {
        matches!(steps.first(), Some(Step::Report(TransportEvent::Error(_))))
    }

    #[test]
    fn first_answer_resubscribes_and_goes_up_without_ready() {
        let mut m = LinkMachine::default();
        let now = Instant::now();
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Pong, now), vec![Step::Resubscribe]);
        assert_eq!(m.state(), LinkState::Connecting);
        assert_eq!(m.on(Event::Subscribed, now), vec![]);
        assert_eq!(m.state(), LinkState::Up);
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Pong, now), vec![]);
    }

    #[test]
    fn a_stall_reports_once_then_ready_after_resubscription() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Subscribed, t);
        let steps = probe(&mut m, Answer::Pong, Answer::Stalled, t);
        assert!(is_error(&steps), "{steps:?}");
        assert_eq!(m.state(), LinkState::Down);
        // Still stalled: no second error.
        assert_eq!(probe(&mut m, Answer::Stalled, Answer::Stalled, t + Duration::from_secs(1)), vec![]);
        // Redis answers again: resubscribe (the subscriptions cannot be proven), then Ready.
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Pong, t + Duration::from_secs(2)), vec![Step::Resubscribe]);
        assert_eq!(m.on(Event::Subscribed, t + Duration::from_secs(2)), vec![Step::Report(TransportEvent::Ready)]);
        assert_eq!(m.state(), LinkState::Up);
    }

    #[test]
    fn loading_counts_as_answering() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Failed("connection lost".into()), t);
        assert_eq!(probe(&mut m, Answer::Loading, Answer::Loading, t), vec![Step::Resubscribe]);
    }

    #[test]
    fn busy_keeps_the_link_down_without_replacing() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Subscribed, t);
        let steps = probe(&mut m, Answer::Busy("BUSY".into()), Answer::Busy("BUSY".into()), t);
        assert_eq!(steps.len(), 1);
        assert!(is_error(&steps));
        assert_eq!(probe(&mut m, Answer::Busy("BUSY".into()), Answer::Pong, t), vec![]);
        assert_eq!(m.state(), LinkState::Down);
    }

    #[test]
    fn a_long_stall_replaces_the_stalled_side_only() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Subscribed, t);
        assert!(is_error(&probe(&mut m, Answer::Pong, Answer::Stalled, t)));
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Stalled, t + STALL_REPLACE / 2), vec![]);
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Stalled, t + STALL_REPLACE), vec![Step::Replace(Side::Subscriber)]);
        // The clock of the replaced side starts again.
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Stalled, t + STALL_REPLACE + Duration::from_secs(1)), vec![]);
    }

    #[test]
    fn an_answer_resets_the_stall_clock() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        probe(&mut m, Answer::Stalled, Answer::Pong, t);
        probe(&mut m, Answer::Pong, Answer::Pong, t + STALL_REPLACE / 2);
        assert_eq!(probe(&mut m, Answer::Stalled, Answer::Pong, t + STALL_REPLACE), vec![]);
    }

    #[test]
    fn a_refused_handshake_replaces_that_connection() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        let steps = probe(&mut m, Answer::Pong, Answer::Broken("ERR max number of clients reached".into()), t);
        assert!(is_error(&steps));
        assert_eq!(steps[1], Step::Replace(Side::Subscriber));
        // Reported once per outage, replaced every time.
        assert_eq!(probe(&mut m, Answer::Broken("x".into()), Answer::Pong, t), vec![Step::Replace(Side::Publisher)]);
    }

    #[test]
    fn an_emitter_has_no_subscriber_to_probe() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Failed("publish refused".into()), t);
        assert_eq!(m.on(Event::Probed { publisher: Answer::Pong, subscriber: None }, t), vec![Step::Resubscribe]);
        assert_eq!(m.on(Event::Subscribed, t), vec![Step::Report(TransportEvent::Ready)]);
    }

    #[test]
    fn a_failure_before_the_first_answer_is_reported_and_ready_follows() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        assert!(is_error(&m.on(Event::Failed("connection refused".into()), t)));
        assert_eq!(m.on(Event::Failed("connection refused".into()), t), vec![]);
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Pong, t), vec![Step::Resubscribe]);
        assert_eq!(m.on(Event::Subscribed, t), vec![Step::Report(TransportEvent::Ready)]);
    }

    #[test]
    fn nothing_after_close() {
        let mut m = LinkMachine::default();
        let t = Instant::now();
        m.on(Event::Closed, t);
        assert_eq!(m.on(Event::Failed("x".into()), t), vec![]);
        assert_eq!(probe(&mut m, Answer::Pong, Answer::Pong, t), vec![]);
        assert_eq!(m.state(), LinkState::Closed);
    }

    #[test]
    fn answers_are_read_from_redis_errors() {
        let parse = |reply: &str| -> redis::RedisError {
            match redis::parse_redis_value(reply.as_bytes()) {
                Ok(redis::Value::ServerError(e)) => e.into(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read_answer(Some(Err(parse("-LOADING Redis is loading the dataset in memory\r\n")))), Answer::Loading);
        assert!(matches!(read_answer(Some(Err(parse("-BUSY Redis is busy running a script.\r\n")))), Answer::Busy(_)));
        assert!(matches!(read_answer(Some(Err(parse("-ERR max number of clients reached\r\n")))), Answer::Broken(_)));
        let io: redis::RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(read_answer(Some(Err(io))), Answer::Lost(_)));
        assert_eq!(read_answer(None), Answer::Stalled);
        assert_eq!(read_answer(Some(Ok(()))), Answer::Pong);
    }
}
