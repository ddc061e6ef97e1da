//! `ask_async` in the main interpreter: replies delivered to the asking event loop
//! itself, through an eventfd it watches (see [`subactor_host::replies`]), not through
//! the dispatcher thread.
//!
//! The dispatcher's way (an actor thread -> the dispatcher thread, which takes the GIL
//! and calls `call_soon_threadsafe` -> the loop) costs a thread wake-up and a GIL
//! hand-over per reply more than the loop waking on its eventfd, and on a machine whose
//! cores are busy each wake-up waits for one. The package's `_ref.ask_async` keeps one
//! [`LoopReplies`] per loop (`loop.add_reader` on its fd); a loop that cannot watch a
//! descriptor falls back to the dispatcher (`ref_ask_async`).
//!
//! An ask to an idle process actor is begun on the loop's thread (its message written
//! to the child there, see `subactor_core::DirectAsk`), and the actor's thread waits
//! for the reply: the child starts on it one wake-up sooner.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use subactor_core::{BoxError, Outcome, SendError, Value};
use subactor_host::replies::Replies;

use crate::{conv, errors};

/// Where the replies of one event loop's asks arrive: `fileno()` to watch with
/// `loop.add_reader`; `_native.replies_take` gives what came.
#[pyclass(module = "subactor._native", name = "LoopReplies", frozen)]
pub(crate) struct LoopReplies(Arc<Replies<Outcome<Value, BoxError>>>);

#[pymethods]
impl LoopReplies {
    /// New replies with their own eventfd.
    #[new]
    fn new() -> PyResult<LoopReplies> {
        errors::not_forked()?;
        Replies::new().map(|replies| LoopReplies(Arc::new(replies))).map_err(|error| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot make an eventfd for replies: {error}"))
        })
    }

    /// The eventfd: readable while replies wait to be taken.
    fn fileno(&self) -> i32 {
        self.0.fd().as_raw_fd()
    }
}

/// `ask_begin(replies, ref, msg) -> int | None`: sends `msg` as an ask whose outcome
/// goes to `replies` under the returned ticket; `None` when the mailbox is full (the
/// caller retries: an event loop must not block). Raises `ActorStopped`, or what
/// converting `msg` raises.
#[pyfunction]
pub(crate) fn ask_begin(
    py: Python<'_>,
    replies: &Bound<'_, LoopReplies>,
    actor: &Bound<'_, PyAny>,
    msg: &Bound<'_, PyAny>,
) -> PyResult<Option<u64>> {
    errors::not_forked()?;
    let actor = conv::actor_of(actor)?;
    let value = conv::to_value(msg)?;
    let replies = &replies.get().0;
    let ticket = replies.next_ticket();
    let then = || {
        let replies = Arc::clone(replies);
        move |outcome| replies.complete(ticket, outcome)
    };
    // An idle process actor: its message is written to the child here (the GIL
    // released: a large one is written as fast as the child reads it), and the actor's
    // thread waits for the outcome; `Err` gives the message back for the mailbox.
    let value = if actor.may_ask_direct() {
        match py.detach(|| actor.ask_direct_then(value, then(), || None)) {
            Ok(()) => return Ok(Some(ticket)),
            Err(value) => value,
        }
    } else {
        value
    };
    match actor.blocking_ask_then_timeout(value, Duration::ZERO, then()) {
        Ok(()) => Ok(Some(ticket)),
        Err(SendError::Full(_)) => Ok(None),
        Err(stopped) => Err(errors::send(py, &stopped)),
    }
}

/// `replies_take(replies) -> list[(ticket, ok, value)]`: the outcomes that came since
/// the last call, each the reply (`ok`) or the exception the ask raises.
#[pyfunction]
pub(crate) fn replies_take<'py>(
    py: Python<'py>,
    replies: &Bound<'py, LoopReplies>,
) -> PyResult<Vec<(u64, bool, Bound<'py, PyAny>)>> {
    let done = replies.get().0.take();
    Ok(done
        .into_iter()
        .map(|(ticket, outcome)| match errors::ask_outcome(py, outcome) {
            Ok(value) => (ticket, true, value),
            Err(err) => (ticket, false, err.into_value(py).into_bound(py).into_any()),
        })
        .collect())
}
