//! Hands the core's `tracing` events to a host's logger: the Node shell forwards them to the
//! `debug` module (`DEBUG=socket.io*`), the C shell to `sio_set_log_callback`.
//!
//! A Rust program sees the same events through any `tracing` subscriber of its own and does not
//! need this. The shells install [`Forward`] as their process-wide subscriber (each shell is a
//! library of its own, with its own copy of `tracing`'s state). It is cheap while no sink is set
//! or the level is off: each event costs one atomic load.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
pub use tracing::Level;
use tracing::{Event, Metadata};

/// Receives one event: its level, its target (the module path, e.g.
/// `sioadapter::transport::driver`) and its text (message, then `name=value` fields). It may be
/// called on any thread, several at a time; events logged while it runs on the same thread are
/// not passed to it again, and it is not called any more once [`set_sink`] replaced it.
pub type Sink = Arc<dyn Fn(Level, &str, &str) + Send + Sync>;

/// The most verbose level passed on: 0 off, 1 error ... 5 trace.
static MAX: AtomicUsize = AtomicUsize::new(0);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// Whether [`Forward`] became the process-wide subscriber (decided by the first [`set_sink`]).
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while this thread runs the sink.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// 1 (error) to 5 (trace), as [`set_sink`] takes levels.
pub fn rank(level: &Level) -> usize {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Sends events up to `max` (0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace; higher is
/// trace) to `sink`, or stops (`None`, or `max` 0); once it returns, the sink it replaced is not
/// running nor called any more. Installs [`Forward`] as the process-wide subscriber the first
/// time; `Ok(false)` when another one was installed before (then this process's `tracing`
/// events go there). Called from a sink, it would wait for itself: that is refused.
pub fn set_sink(max: usize, sink: Option<Sink>) -> Result<bool, crate::Error> {
    if IN_SINK.get() {
        return Err(crate::Error::InvalidOption { option: "log sink", reason: "cannot be changed from inside the log callback".into() });
    }
    let installed = *INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(Forward).is_ok());
    let max = if sink.is_some() { max.min(5) } else { 0 };
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
    MAX.store(max, Ordering::Release);
    tracing::callsite::rebuild_interest_cache();
    Ok(installed)
}

/// The subscriber that passes events to the [`Sink`] of [`set_sink`]. Spans are not tracked:
/// the core logs events only.
pub struct Forward;

impl tracing::Subscriber for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Asked again per event: the level and the sink change at run time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        rank(metadata.level()) <= MAX.load(Ordering::Acquire) && !IN_SINK.get()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some([LevelFilter::OFF, LevelFilter::ERROR, LevelFilter::WARN, LevelFilter::INFO, LevelFilter::DEBUG, LevelFilter::TRACE][MAX.load(Ordering::Acquire)])
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &Event<'_>) {
        // Held while the sink runs, so that set_sink waits for it.
        let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = guard.as_ref() else { return };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        IN_SINK.set(true);
        sink(*metadata.level(), metadata.target(), &text.0);
        IN_SINK.set(false);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// An event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = if field.name() == "message" { write!(self.0, "{value:?}") } else { write!(self.0, "{}={value:?}", field.name()) };
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn events_reach_the_sink_up_to_its_level_and_stop_when_it_is_removed() {
        let seen: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
        let into = seen.clone();
        let sink: Sink = Arc::new(move |level, target, text| {
            into.lock().unwrap().push((level, target.to_owned(), text.to_owned()));
            tracing::error!("logged by the sink");
            assert!(set_sink(0, None).is_err(), "the sink replaced itself");
        });
        // The test binary has no other global subscriber.
        assert!(set_sink(4, Some(sink.clone())).unwrap());
        tracing::debug!(ns = "/chat", "dropping a message");
        tracing::trace!("too verbose");
        tracing::warn!(count = 3, "dropped");
        assert!(set_sink(2, Some(sink)).unwrap());
        tracing::debug!("below the level now");
        tracing::warn!("still shown");
        set_sink(5, None).unwrap();
        tracing::error!("no sink");
        let seen = seen.lock().unwrap();
        // What the sink itself logged did not come back to it. (Tests running meanwhile may
        // log too: only this module's events count.)
        let seen: Vec<_> = seen.iter().filter(|(_, target, _)| target == module_path!()).collect();
        let texts: Vec<&str> = seen.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts, ["dropping a message ns=\"/chat\"", "dropped count=3", "still shown"]);
        assert_eq!(seen[0].0, Level::DEBUG);
    }
}
