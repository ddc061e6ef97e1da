//! The main interpreter's `ActorRef` methods, as functions (the package attaches them
//! to the `ActorRef` type, see `subactor/_ref.py`).
//!
//! Every wait releases the GIL and is interruptible by Ctrl-C; a send first tries
//! without waiting (and without releasing the GIL), which is what it nearly always
//! needs.

use std::time::Duration;

use pyo3::prelude::*;
use subactor_core::{ActorState, SendError, Value};

use crate::dispatch::{self, Target};
use crate::wait::{self, Waited};
use crate::{conv, errors};

/// `ref.tell(msg)`: waits (interruptibly) while the mailbox is full.
#[pyfunction]
pub(crate) fn ref_tell(py: Python<'_>, actor: &Bound<'_, PyAny>, msg: &Bound<'_, PyAny>) -> PyResult<()> {
    let actor = conv::actor_of(actor)?;
    let value = conv::to_value(msg)?;
    let value = match actor.try_tell(value) {
        Ok(()) => return Ok(()),
        Err(SendError::Full(value)) => value,
        Err(stopped) => return Err(errors::send(py, &stopped)),
    };
    match wait::retry(py, None, value, move |value, slice| match actor.blocking_tell_timeout(value, slice) {
        Ok(()) => Ok(Ok(())),
        Err(SendError::Full(value)) => Err(value),
        Err(stopped) => Ok(Err(stopped)),
    })? {
        Ok(Ok(())) => Ok(()),
        Ok(Err(stopped)) => Err(errors::send(py, &stopped)),
        Err(_) => unreachable!("a wait without a deadline only ends with a result"),
    }
}

/// `ref.try_tell(msg)`: `False` if the mailbox is full.
#[pyfunction]
pub(crate) fn ref_try_tell(py: Python<'_>, actor: &Bound<'_, PyAny>, msg: &Bound<'_, PyAny>) -> PyResult<bool> {
    let actor = conv::actor_of(actor)?;
    match actor.try_tell(conv::to_value(msg)?) {
        Ok(()) => Ok(true),
        Err(SendError::Full(_)) => Ok(false),
        Err(stopped) => Err(errors::send(py, &stopped)),
    }
}

/// `ref.ask(msg, timeout)`: the reply, or the exception for how the ask failed.
#[pyfunction]
#[pyo3(signature = (actor, msg, timeout=Some(wait::Secs(30.0))))]
pub(crate) fn ref_ask<'py>(
    py: Python<'py>,
    actor: &Bound<'py, PyAny>,
    msg: &Bound<'py, PyAny>,
    timeout: Option<wait::Secs>,
) -> PyResult<Bound<'py, PyAny>> {
    let actor = conv::actor_of(actor)?;
    let value = conv::to_value(msg)?;
    let deadline = wait::deadline(timeout.map(f64::from))?;
    let (tx, rx) = flume::bounded(1);
    let reply = move |tx: flume::Sender<_>| move |outcome| drop(tx.send(outcome));
    // An idle process actor: this thread talks to its child itself (see
    // `subactor_core::DirectAsk`); a Ctrl-C meanwhile leaves the ask to its thread.
    let direct = if actor.may_ask_direct() {
        let (actor, reply) = (&actor, reply(tx.clone()));
        wait::direct(py, deadline, move |wait| actor.ask_direct_then(value, reply, wait))?
    } else {
        Err(value)
    };
    let value = match direct {
        Ok(()) => Ok(()),
        Err(value) => actor.blocking_ask_then_timeout(value, Duration::ZERO, reply(tx.clone())),
    };
    let value = match value {
        Ok(()) => None,
        Err(SendError::Full(value)) => Some(value),
        Err(stopped) => return Err(errors::send(py, &stopped)),
    };
    if let Some(value) = value {
        let sender = actor.clone();
        let tx = tx.clone();
        let sent = wait::retry(py, deadline, value, move |value, slice| {
            match sender.blocking_ask_then_timeout(value, slice, reply(tx.clone())) {
                Ok(()) => Ok(Ok(())),
                Err(SendError::Full(value)) => Err(value),
                Err(stopped) => Ok(Err(stopped)),
            }
        })?;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(stopped)) => return Err(errors::send(py, &stopped)),
            Err(_) => {
                return Err(errors::new(py, c"MailboxFull", ("the actor's mailbox stayed full until the timeout",)));
            }
        }
    }
    drop(tx);
    // A direct ask has its outcome here already: no second release of the GIL.
    if let Ok(outcome) = rx.try_recv() {
        return errors::ask_outcome(py, outcome);
    }
    match wait::recv(py, &rx, deadline)? {
        Waited::Got(outcome) => errors::ask_outcome(py, outcome),
        Waited::TimedOut => Err(errors::new(py, c"AskTimeout", ("no reply within the timeout",))),
        Waited::Disconnected => Err(errors::new(py, c"NoReply", ("the actor stopped before replying",))),
    }
}

/// Starts an `ask_async`: sends `msg` with the reply going to `future` on `event_loop`
/// (through the dispatcher). `False` if the mailbox is full (the caller retries later:
/// an event loop must not block).
#[pyfunction]
pub(crate) fn ref_ask_async(
    py: Python<'_>,
    actor: &Bound<'_, PyAny>,
    msg: &Bound<'_, PyAny>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let actor = conv::actor_of(actor)?;
    let value = conv::to_value(msg)?;
    let target = Target::Async { event_loop: event_loop.clone().unbind(), future: future.clone().unbind() };
    let ticket = dispatch::register(py, target)?;
    match actor.blocking_ask_then_timeout(value, Duration::ZERO, dispatch::reply_to(ticket)) {
        Ok(()) => Ok(true),
        Err(refused) => {
            drop(dispatch::unregister(py, ticket));
            match refused {
                SendError::Full(_) => Ok(false),
                stopped => Err(errors::send(py, &stopped)),
            }
        }
    }
}

/// `ref.stop()`.
#[pyfunction]
pub(crate) fn ref_stop(actor: &Bound<'_, PyAny>) -> PyResult<()> {
    conv::actor_of(actor)?.stop();
    Ok(())
}

/// `ref.kill()`.
#[pyfunction]
pub(crate) fn ref_kill(actor: &Bound<'_, PyAny>) -> PyResult<()> {
    conv::actor_of(actor)?.kill();
    Ok(())
}

/// `ref.state`: "starting", "running", "stopping" or "stopped".
#[pyfunction]
pub(crate) fn ref_state(actor: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    Ok(match conv::actor_of(actor)?.state() {
        ActorState::Starting => "starting",
        ActorState::Running => "running",
        ActorState::Stopping => "stopping",
        ActorState::Stopped => "stopped",
    })
}

/// `ref.mailbox_len`.
#[pyfunction]
pub(crate) fn ref_mailbox_len(actor: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(conv::actor_of(actor)?.mailbox_len())
}

/// `ref.wait(timeout)`: the actor's `Down` once it has stopped for good, or `None` at the
/// timeout.
#[pyfunction]
#[pyo3(signature = (actor, timeout=None))]
pub(crate) fn ref_wait<'py>(
    py: Python<'py>,
    actor: &Bound<'py, PyAny>,
    timeout: Option<wait::Secs>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let actor = conv::actor_of(actor)?;
    let deadline = wait::deadline(timeout.map(f64::from))?;
    let (tx, rx) = flume::bounded(1);
    let id = actor.monitor(move |down| drop(tx.send(down.clone())));
    let waited = wait::recv(py, &rx, deadline);
    match waited {
        Ok(Waited::Got(down)) => conv::to_object(py, &Value::Down(Box::new(down))).map(Some),
        other => {
            actor.demonitor(id);
            other.map(|_| None)
        }
    }
}

/// `ref.monitor(callback)`: `callback(down)` runs on the dispatcher thread when the
/// actor stops for good; returns a handle for [`ref_demonitor`].
#[pyfunction]
pub(crate) fn ref_monitor(py: Python<'_>, actor: &Bound<'_, PyAny>, callback: &Bound<'_, PyAny>) -> PyResult<u64> {
    let actor = conv::actor_of(actor)?;
    if !callback.is_callable() {
        return Err(pyo3::exceptions::PyTypeError::new_err("monitor() takes a callable"));
    }
    let target = Target::Monitor { callback: callback.clone().unbind(), actor: actor.clone(), monitor: None };
    let ticket = dispatch::register(py, target)?;
    let tx = dispatch::sender();
    let id = actor.monitor(move |down| drop(tx.send(dispatch::Event::Down { ticket, down: down.clone() })));
    dispatch::set_monitor_id(ticket, id);
    Ok(ticket)
}

/// `ref.demonitor(handle)`: `True` if the callback had not run and now never will.
#[pyfunction]
pub(crate) fn ref_demonitor(py: Python<'_>, handle: u64) -> bool {
    match dispatch::take_if(py, handle, |target| matches!(target, Target::Monitor { .. })) {
        Some(Target::Monitor { actor, monitor, .. }) => {
            if let Some(id) = monitor {
                actor.demonitor(id);
            }
            true
        }
        _ => false,
    }
}
