//! Traces across actors: a tell or an ask carries its sender's trace context (the W3C
//! `traceparent`: trace id, parent span id, flags), and the span of the handler that
//! takes it is a child of the sender's span, whichever thread, process or node each runs
//! on.
//!
//! The core knows no tracing backend: a [`Propagator`] (installed once per process with
//! [`install`]; `subactor-observe` has one for OpenTelemetry through
//! `tracing-opentelemetry`) says what the current span's context is and makes a span the
//! child of a remote one. Until one is installed, nothing is captured: the message path
//! pays one relaxed load. Once installed, each message carries the context of the span
//! its sender is in (`None` outside any span), boxed (one allocation a message), and each
//! handler runs in an `info`-level span `subactor.receive` (fields `actor.id`,
//! `actor.name`, `message`: `tell` or `ask`) whose parent is that context.
//!
//! Links to other processes and nodes carry the context in their frames and serve the
//! call inside [`with_context`], so the local send that delivers it captures that
//! context instead of the serving thread's own.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// A W3C trace context: what a `traceparent` header holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TraceContext {
    /// The trace's id (not zero).
    pub trace_id: u128,
    /// The id of the span that sent the message (not zero).
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// The context as a `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// Reads a `traceparent` header value (version 00); `None` if it is not one, or if
    /// an id is zero.
    pub fn parse(traceparent: &str) -> Option<TraceContext> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.next().is_some() || version != "00" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        let context = TraceContext {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            span_id: u64::from_str_radix(span, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (context.trace_id != 0 && context.span_id != 0).then_some(context)
    }

    /// Whether the sender's trace is sampled.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({})", self.traceparent())
    }
}

/// How the runtime reads and sets trace contexts on `tracing` spans.
pub trait Propagator: Send + Sync + 'static {
    /// The context of the span the calling thread is in, if it has one.
    fn current(&self) -> Option<TraceContext>;
    /// Makes `span` (not yet entered) a child of the remote context `parent`.
    fn set_parent(&self, span: &tracing::Span, parent: TraceContext);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);

/// Installs the process's propagator: from now on messages carry their sender's trace
/// context. `false` if one was installed already (the first one stays).
pub fn install(propagator: Box<dyn Propagator>) -> bool {
    let installed = PROPAGATOR.set(propagator).is_ok();
    if installed {
        ON.store(true, Ordering::Release);
    }
    installed
}

/// Whether messages carry trace contexts (a propagator is installed).
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

thread_local! {
    /// A context that stands in for the current span's while a link serves a call.
    static OVERRIDE: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

/// Runs `f` with `context` as the context that messages sent by this thread carry (a
/// link serving a call from another process or node, for the sender over there).
pub fn with_context<R>(context: Option<TraceContext>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<TraceContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(context)));
    f()
}

/// The context a message sent now carries: `None` unless a propagator is installed.
#[inline]
pub fn current() -> Option<TraceContext> {
    if !enabled() {
        return None;
    }
    current_slow()
}

#[cold]
fn current_slow() -> Option<TraceContext> {
    OVERRIDE.with(Cell::get).or_else(|| PROPAGATOR.get()?.current())
}

/// Makes `span` (not yet entered) a child of the remote context `parent` through the
/// installed propagator (a span begun in another program, whose `traceparent` came with
/// a request); `false`, and nothing done, without a propagator.
pub fn set_parent(span: &tracing::Span, parent: TraceContext) -> bool {
    match PROPAGATOR.get() {
        Some(propagator) => {
            propagator.set_parent(span, parent);
            true
        }
        None => false,
    }
}

/// What a message carries: its sender's context, boxed (so that a message without one
/// costs a null pointer).
pub(crate) type Carried = Option<Box<TraceContext>>;

#[inline]
pub(crate) fn capture() -> Carried {
    current().map(Box::new)
}

/// The span a handler runs in when contexts are carried.
pub(crate) fn receive_span(
    id: crate::ActorId,
    name: Option<&str>,
    kind: &'static str,
    parent: Carried,
) -> tracing::Span {
    // A root unless the message carried a context: never a child of the actor's own
    // span, which lasts as long as the actor.
    let span = tracing::info_span!(
        parent: None,
        "subactor.receive",
        actor.id = id.as_u64(),
        actor.name = name.unwrap_or(""),
        message = kind
    );
    if let (Some(parent), Some(propagator)) = (parent, PROPAGATOR.get()) {
        propagator.set_parent(&span, *parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).expect("valid");
        assert_eq!(context.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(context.span_id, 0x00f067aa0ba902b7);
        assert!(context.sampled());
        assert_eq!(context.traceparent(), header);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }
}
