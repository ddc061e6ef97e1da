//! The dispatcher: how results reach the main interpreter from actor threads.
//!
//! An actor's thread must never touch the main interpreter (it has its own interpreter
//! attached while it handles a message). What the main side waits for — an executor
//! task's result, the reply of an `ask_async`, a monitor's `Down` — therefore arrives
//! as an [`Event`] on one process-wide channel, sent by a callback that holds only Rust
//! data (a ticket number). One Python thread, `subactor-dispatch`, waits on that channel
//! with the GIL released, takes the GIL once per batch of events, finds each ticket's
//! [`Target`] in the registry and completes it: sets a `concurrent.futures.Future`,
//! schedules an asyncio future's result on its loop (`call_soon_threadsafe`), or calls
//! a monitor's callback.
//!
//! The thread starts with the first target and stops when the last runtime of the
//! process closes (see [`stop`]); events sent meanwhile wait in the channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use flume::{Receiver, Sender};
use pyo3::prelude::*;
use subactor_core::{AnyRef, BoxError, Down, MonitorId, Outcome, Value};

use crate::executor::TaskEntry;
use crate::{conv, errors, executor, hooks};

/// What the dispatcher is told.
pub(crate) enum Event {
    /// The outcome of a message sent with a reply callback.
    Reply {
        /// Whose.
        ticket: u64,
        /// What happened.
        outcome: Outcome<Value, BoxError>,
    },
    /// A monitored actor stopped for good.
    Down {
        /// Whose.
        ticket: u64,
        /// How it ended.
        down: Down,
    },
    /// The dispatcher thread of this generation ends.
    Stop {
        /// Which thread.
        generation: u64,
    },
}

/// Who waits for an event: Python objects, dropped only with the GIL held.
pub(crate) enum Target {
    /// An executor task's future.
    Task(TaskEntry),
    /// An asyncio future, resolved on its loop.
    Async {
        /// The loop the future belongs to.
        event_loop: Py<PyAny>,
        /// The future.
        future: Py<PyAny>,
    },
    /// A monitor's callback, called with the `Down`.
    Monitor {
        /// What to call.
        callback: Py<PyAny>,
        /// The monitored actor and the core's monitor, to remove it.
        actor: AnyRef,
        monitor: Option<MonitorId>,
    },
}

struct Dispatcher {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    registry: Mutex<HashMap<u64, Target>>,
    next_ticket: AtomicU64,
    /// The running thread (a `threading.Thread`) and its generation.
    thread: Mutex<(u64, Option<Py<PyAny>>)>,
}

static DISPATCHER: LazyLock<Dispatcher> = LazyLock::new(|| {
    let (tx, rx) = flume::unbounded();
    Dispatcher { tx, rx, registry: Mutex::default(), next_ticket: AtomicU64::new(1), thread: Mutex::new((0, None)) }
});

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A sender of events, for callbacks that run on actor threads.
pub(crate) fn sender() -> Sender<Event> {
    DISPATCHER.tx.clone()
}

/// A callback that reports an outcome for `ticket`.
pub(crate) fn reply_to(ticket: u64) -> impl FnOnce(Outcome<Value, BoxError>) + Send + 'static {
    let tx = sender();
    move |outcome| {
        let _ = tx.send(Event::Reply { ticket, outcome });
    }
}

/// Registers a target and makes sure the dispatcher runs; returns its ticket.
pub(crate) fn register(py: Python<'_>, target: Target) -> PyResult<u64> {
    crate::errors::not_forked()?;
    ensure_running(py)?;
    let ticket = DISPATCHER.next_ticket.fetch_add(1, Ordering::Relaxed);
    lock(&DISPATCHER.registry).insert(ticket, target);
    Ok(ticket)
}

/// Removes a target (its event, if one comes, is ignored). Call with the GIL held: the
/// target's Python objects are dropped by the caller.
pub(crate) fn unregister(_py: Python<'_>, ticket: u64) -> Option<Target> {
    lock(&DISPATCHER.registry).remove(&ticket)
}

/// Removes a target if `pred` holds for it, atomically with respect to the dispatcher
/// (which removes targets to complete them). Call with the GIL held.
pub(crate) fn take_if(_py: Python<'_>, ticket: u64, pred: impl FnOnce(&Target) -> bool) -> Option<Target> {
    let mut registry = lock(&DISPATCHER.registry);
    if registry.get(&ticket).is_some_and(pred) { registry.remove(&ticket) } else { None }
}

/// Records the core's monitor id of a monitor target, for `demonitor`.
pub(crate) fn set_monitor_id(ticket: u64, id: MonitorId) {
    if let Some(Target::Monitor { monitor, .. }) = lock(&DISPATCHER.registry).get_mut(&ticket) {
        *monitor = Some(id);
    }
}

/// Starts the dispatcher thread unless it runs.
pub(crate) fn ensure_running(py: Python<'_>) -> PyResult<()> {
    let mut thread = lock(&DISPATCHER.thread);
    if thread.1.is_some() {
        return Ok(());
    }
    let generation = thread.0 + 1;
    let target = wrap_pyfunction!(dispatch_loop, py)?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("target", target)?;
    kwargs.set_item("args", (generation,))?;
    kwargs.set_item("name", "subactor-dispatch")?;
    kwargs.set_item("daemon", true)?;
    let handle = py.import("threading")?.getattr("Thread")?.call((), Some(&kwargs))?;
    handle.call_method0("start")?;
    *thread = (generation, Some(handle.unbind()));
    Ok(())
}

/// Stops the dispatcher thread, once it has handled every event sent before; a later
/// target starts a new one.
pub(crate) fn stop(py: Python<'_>) -> PyResult<()> {
    if subactor_host::fork::inherited_runtime() {
        // A forked child: the dispatcher thread does not exist here (threading marks it
        // stopped), and its channel may be locked by an actor thread of the parent.
        return Ok(());
    }
    let (generation, handle) = {
        let mut thread = lock(&DISPATCHER.thread);
        (thread.0, thread.1.take())
    };
    let Some(handle) = handle else { return Ok(()) };
    let _ = DISPATCHER.tx.send(Event::Stop { generation });
    // Called by the dispatcher itself (a monitor's callback closed the last runtime), it
    // ends after this event: there is nothing to wait for.
    let current = py.import("threading")?.call_method0("current_thread")?;
    if current.is(handle.bind(py)) {
        return Ok(());
    }
    // `join` releases the GIL while it waits (the dispatcher needs it).
    handle.bind(py).call_method0("join")?;
    Ok(())
}

/// The body of the dispatcher thread.
#[pyfunction]
fn dispatch_loop(py: Python<'_>, generation: u64) {
    const BATCH: usize = 512;
    let dispatcher = &*DISPATCHER;
    loop {
        let batch = py.detach(|| {
            let mut batch = Vec::new();
            if let Ok(first) = dispatcher.rx.recv() {
                batch.push(first);
                while batch.len() < BATCH {
                    match dispatcher.rx.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
            }
            batch
        });
        if batch.is_empty() {
            return;
        }
        let mut stop = false;
        for event in batch {
            let (ticket, event) = match event {
                Event::Stop { generation: g } if g == generation => {
                    stop = true;
                    continue;
                }
                // Meant for another generation's thread.
                Event::Stop { .. } => {
                    let _ = dispatcher.tx.send(event);
                    continue;
                }
                Event::Reply { ticket, .. } | Event::Down { ticket, .. } => (ticket, event),
            };
            let Some(target) = lock(&dispatcher.registry).remove(&ticket) else { continue };
            if let Err(err) = complete(py, target, event) {
                err.write_unraisable(py, None);
            }
        }
        if stop {
            return;
        }
    }
}

/// Completes a target with its event.
fn complete(py: Python<'_>, target: Target, event: Event) -> PyResult<()> {
    match (target, event) {
        (Target::Task(entry), Event::Reply { outcome, .. }) => executor::complete(py, entry, outcome),
        (Target::Async { event_loop, future }, Event::Reply { outcome, .. }) => {
            let (ok, value) = match errors::ask_outcome(py, outcome) {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_bound(py).into_any()),
            };
            let resolve = hooks(py)?.resolve_async.bind(py);
            match event_loop.bind(py).call_method1("call_soon_threadsafe", (resolve, future, ok, value)) {
                Ok(_) => Ok(()),
                // The loop has closed: nobody waits any more.
                Err(err) if err.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) => Ok(()),
                Err(err) => Err(err),
            }
        }
        (Target::Monitor { callback, .. }, Event::Down { down, .. }) => {
            let down = conv::to_object(py, &Value::Down(Box::new(down)))?;
            callback.bind(py).call1((down,)).map(drop)
        }
        (target, _) => {
            // A ticket only ever gets the event of its kind; put it back if not.
            tracing::warn!("subactor dispatcher: an event of the wrong kind for a ticket");
            drop(target);
            Ok(())
        }
    }
}
