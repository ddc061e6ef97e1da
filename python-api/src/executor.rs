//! The executor's pool: N worker actors (`subactor/_subactor_worker.py`) fed from one
//! queue, with results going to `concurrent.futures.Future`s through the dispatcher.
//!
//! Each worker holds one task at a time; the rest wait in the pool's queue. When a
//! worker finishes a task, its reply callback — on the worker's own thread, without any
//! Python — hands the result to the dispatcher and takes the next queued task into its
//! mailbox. So a busy pool never waits for the main interpreter between tasks,
//! submitting never blocks, and every task goes to a worker that is free: uneven tasks
//! balance, and no task waits behind a long one while a worker is idle. (Queueing a
//! second task on each worker in advance saved nothing measurable, since a worker
//! fetches its next task itself, and made a job's end uneven: the last tasks queued
//! behind long ones while the other worker idled.)
//!
//! A task is cancelled only while it waits in the queue; once handed to a worker it
//! runs (as `ProcessPoolExecutor`'s tasks do once they reach its call queue).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flume::{Receiver, Sender};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use subactor_core::{AnyRef, BoxError, Outcome, SendError, Value};

use crate::dispatch::{self, Event, Target};
use crate::{conv, errors, hooks, wait};

/// A worker that refused a task (it has stopped) is never picked again.
const DEAD: usize = usize::MAX / 2;

const PENDING: u8 = 0;
const DISPATCHED: u8 = 1;
const CANCELLED: u8 = 2;

/// Where a task is: waiting in the queue, handed to a worker, or cancelled.
pub(crate) struct TaskState(AtomicU8);

impl TaskState {
    fn transition(&self, from: u8, to: u8) -> bool {
        self.0.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

/// A task's registry entry (see [`dispatch::Target::Task`]).
pub(crate) struct TaskEntry {
    future: Py<PyAny>,
    state: Arc<TaskState>,
    pool: Arc<Pool>,
}

struct Task {
    ticket: u64,
    msg: Value,
    state: Arc<TaskState>,
}

struct Slot {
    actor: AnyRef,
    /// Tasks held: 0 or 1 (or [`DEAD`]).
    inflight: AtomicUsize,
}

/// The workers and the queue, shared with the reply callbacks.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    queue: (Sender<Task>, Receiver<Task>),
    turn: AtomicUsize,
    live: AtomicUsize,
    /// Tasks submitted and not yet completed (or cancelled), and its change signal.
    outstanding: Mutex<usize>,
    changed: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    fn new(workers: Vec<AnyRef>) -> Arc<Pool> {
        let live = workers.len();
        Arc::new(Pool {
            slots: workers.into_iter().map(|actor| Slot { actor, inflight: AtomicUsize::new(0) }).collect(),
            queue: flume::unbounded(),
            turn: AtomicUsize::new(0),
            live: AtomicUsize::new(live),
            outstanding: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    /// Takes an idle worker, looking from a rotating position.
    fn claim(&self) -> Option<usize> {
        let n = self.slots.len();
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| (start + i) % n).find(|&index| {
            self.slots[index].inflight.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        })
    }

    fn release(&self, index: usize) {
        self.slots[index].inflight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Queues a task, or hands it to a free worker at once if nothing waits before it.
    fn submit(self: &Arc<Self>, task: Task) {
        if self.queue.1.is_empty() {
            if let Some(index) = self.claim() {
                self.hand(index, task);
                return;
            }
        }
        let _ = self.queue.0.send(task);
        self.pump();
    }

    /// Moves queued tasks to idle workers. Runs after every submit and on the worker
    /// thread after every task: a task queued while every worker was busy is picked up
    /// either by the submitter (which looks for an idle worker after queueing) or by the
    /// worker that becomes idle (which looks at the queue after that).
    fn pump(self: &Arc<Self>) {
        loop {
            let Some(index) = self.claim() else { return };
            match self.queue.1.try_recv() {
                Ok(task) => self.hand(index, task),
                Err(_) => {
                    self.release(index);
                    if self.queue.1.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Sends a task to the worker claimed for it.
    fn hand(self: &Arc<Self>, index: usize, task: Task) {
        let Task { ticket, msg, state } = task;
        if !state.transition(PENDING, DISPATCHED) {
            // Cancelled while queued: the canceller completed its future.
            self.release(index);
            return;
        }
        let pool = Arc::clone(self);
        let report = dispatch::reply_to(ticket);
        let sent = self.slots[index].actor.blocking_ask_then_timeout(msg, Duration::ZERO, move |outcome| {
            report(outcome);
            pool.release(index);
            pool.pump();
        });
        match sent {
            Ok(()) => {}
            // Only the pool sends to its workers, so this is not expected; queue it again.
            Err(SendError::Full(msg)) => {
                state.0.store(PENDING, Ordering::Release);
                self.release(index);
                let _ = self.queue.0.send(Task { ticket, msg, state });
            }
            Err(SendError::Stopped(_)) => {
                let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
                // Counted out once: its slot stays taken (DEAD) for good.
                let was = self.slots[index].inflight.swap(DEAD, Ordering::SeqCst);
                if was < DEAD && self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.fail_queued();
                }
            }
        }
    }

    /// Every worker has stopped: what is queued will never run.
    fn fail_queued(&self) {
        let tx = dispatch::sender();
        while let Ok(task) = self.queue.1.try_recv() {
            if task.state.transition(PENDING, DISPATCHED) {
                let _ = tx.send(Event::Reply { ticket: task.ticket, outcome: Outcome::NotHandled });
            }
        }
    }

    fn task_done(&self) {
        let mut outstanding = lock(&self.outstanding);
        *outstanding = outstanding.saturating_sub(1);
        if *outstanding == 0 {
            self.changed.notify_all();
        }
    }

    /// Waits (no GIL needed) until nothing is outstanding or `deadline`.
    fn wait_idle_until(&self, deadline: Instant) -> bool {
        let mut outstanding = lock(&self.outstanding);
        while *outstanding > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            outstanding = self.changed.wait_timeout(outstanding, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

impl Pool {
    /// Stops the workers once every task has completed, from a thread of its own.
    fn stop_when_idle(self: &Arc<Self>) -> std::io::Result<()> {
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("subactor-executor-shutdown".into())
            .spawn(move || {
                while !pool.wait_idle_until(Instant::now() + Duration::from_secs(3600)) {}
                for slot in &pool.slots {
                    slot.actor.stop();
                }
            })
            .map(drop)
    }
}

/// An executor dropped without a shutdown (its Python object and every future of it are
/// gone) still runs what it was given, then stops its workers.
impl Drop for ExecutorCore {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            if let Err(error) = self.pool.stop_when_idle() {
                tracing::warn!(%error, "cannot stop an abandoned executor's workers");
            }
        }
    }
}

/// Completes a task's future with the worker's answer (on the dispatcher thread).
pub(crate) fn complete(py: Python<'_>, entry: TaskEntry, outcome: Outcome<Value, BoxError>) -> PyResult<()> {
    let TaskEntry { future, pool, .. } = entry;
    let result = settle(py, future.bind(py), outcome);
    pool.task_done();
    result
}

fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Outcome<Value, BoxError>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let failed = |err: PyErr| future.call_method1("set_exception", (err.into_value(py),)).map(drop);
    match outcome {
        Outcome::Replied(Value::Tuple(items)) => match items.as_slice() {
            [Value::Bool(true), result] => match conv::to_object(py, result) {
                Ok(result) => future.call_method1("set_result", (result,)).map(drop),
                Err(err) => failed(err),
            },
            [Value::Bool(false), pickled, type_name, message, traceback] => {
                failed(task_exception(py, pickled, type_name, message, traceback))
            }
            _ => failed(errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", ""))),
        },
        Outcome::Replied(_) => {
            failed(errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", "")))
        }
        Outcome::Failed(error) => failed(errors::handler(py, &error)),
        Outcome::Fault(fault) => failed(errors::fault(py, &fault)),
        Outcome::NotHandled => {
            let broken = hooks(py)?.broken_executor.bind(py);
            failed(PyErr::from_value(broken.call1(("a worker of the executor stopped before it ran the task",))?))
        }
    }
}

/// The exception a task raised: unpickled (its own type), or a `RemoteError` when it
/// could not cross; the worker's traceback is its cause.
fn task_exception(py: Python<'_>, pickled: &Value, type_name: &Value, message: &Value, traceback: &Value) -> PyErr {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let traceback = text(traceback);
    let original = match pickled {
        Value::Bytes(data) => py
            .import("pickle")
            .and_then(|pickle| pickle.call_method1("loads", (PyBytes::new(py, data),)))
            .ok()
            .filter(|exc| exc.is_instance_of::<pyo3::exceptions::PyBaseException>()),
        _ => None,
    };
    let err = match original {
        Some(exc) => PyErr::from_value(exc),
        None => errors::new(py, c"RemoteError", (text(type_name), text(message), traceback.as_str())),
    };
    errors::with_remote_traceback(py, err, &traceback)
}

/// The native side of `subactor.Executor`: its workers and queue.
#[pyclass(module = "subactor._native", frozen)]
pub(crate) struct ExecutorCore {
    pool: Arc<Pool>,
    closed: AtomicBool,
}

impl ExecutorCore {
    pub(crate) fn new(workers: Vec<AnyRef>) -> ExecutorCore {
        ExecutorCore { pool: Pool::new(workers), closed: AtomicBool::new(false) }
    }

    fn enqueue(&self, py: Python<'_>, future: &Bound<'_, PyAny>, msg: Value) -> PyResult<u64> {
        if self.closed.load(Ordering::Acquire) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err("cannot schedule new futures after shutdown"));
        }
        let state = Arc::new(TaskState(AtomicU8::new(PENDING)));
        let entry =
            TaskEntry { future: future.clone().unbind(), state: Arc::clone(&state), pool: Arc::clone(&self.pool) };
        let ticket = dispatch::register(py, Target::Task(entry))?;
        // Before the task can complete (it is submitted next), so never counted down first.
        *lock(&self.pool.outstanding) += 1;
        self.pool.submit(Task { ticket, msg, state });
        Ok(ticket)
    }
}

#[pymethods]
impl ExecutorCore {
    /// Queues `fn(*args, **kwargs)` (`fn_ref`: a `(module, qualname)` pair, or the callable
    /// itself, pickled) for `future`; returns the task's ticket.
    #[pyo3(signature = (future, fn_ref, args, kwargs=None))]
    fn submit(
        &self,
        py: Python<'_>,
        future: &Bound<'_, PyAny>,
        fn_ref: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let kwargs = match kwargs {
            Some(kwargs) if !kwargs.is_empty() => conv::to_value(kwargs.as_any())?,
            _ => Value::None,
        };
        let msg = Value::Tuple(vec![Value::Int(0), conv::to_value(fn_ref)?, conv::to_value(args.as_any())?, kwargs]);
        self.enqueue(py, future, msg)
    }

    /// Queues `[fn(*args) for args in chunk]` for `future`.
    fn submit_chunk(
        &self,
        py: Python<'_>,
        future: &Bound<'_, PyAny>,
        fn_ref: &Bound<'_, PyAny>,
        chunk: &Bound<'_, PyList>,
    ) -> PyResult<u64> {
        let msg =
            Value::Tuple(vec![Value::Int(1), conv::to_value(fn_ref)?, conv::to_value(chunk.as_any())?, Value::None]);
        self.enqueue(py, future, msg)
    }

    /// Cancels a task still waiting in the queue; `False` once a worker has it (or it is
    /// done).
    fn cancel(&self, py: Python<'_>, ticket: u64) -> bool {
        cancel_ticket(py, ticket).is_some()
    }

    /// Cancels every task still queued; returns their futures (to be marked cancelled).
    fn cancel_queued(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        let mut cancelled = Vec::new();
        let mut keep = Vec::new();
        while let Ok(task) = self.pool.queue.1.try_recv() {
            match cancel_ticket(py, task.ticket) {
                Some(future) => cancelled.push(future),
                None => keep.push(task),
            }
        }
        for task in keep {
            let _ = self.pool.queue.0.send(task);
        }
        cancelled
    }

    /// Takes no more tasks.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Waits until every task submitted has completed (or `timeout` passes: then
    /// `False`); Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout=None))]
    fn wait_idle(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = wait::deadline(timeout)?;
        let pool = Arc::clone(&self.pool);
        let done =
            wait::retry(
                py,
                deadline,
                (),
                move |(), slice| {
                    if pool.wait_idle_until(Instant::now() + slice) { Ok(()) } else { Err(()) }
                },
            )?;
        Ok(done.is_ok())
    }

    /// Stops the workers once they have finished what they hold; with `wait`, waits for
    /// them to end (Ctrl-C interrupts the wait).
    fn stop_workers(&self, py: Python<'_>, wait: bool) -> PyResult<()> {
        for slot in &self.pool.slots {
            slot.actor.stop();
        }
        if wait {
            for slot in &self.pool.slots {
                let actor = slot.actor.clone();
                wait::retry(py, None, (), move |(), slice| actor.blocking_wait_timeout(slice).map(drop).ok_or(()))?
                    .ok();
            }
        }
        Ok(())
    }

    /// In the background: waits until every task has completed, then stops the workers.
    fn stop_workers_when_idle(&self) -> PyResult<()> {
        self.pool
            .stop_when_idle()
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start a thread: {e}")))
    }

    /// Kills the workers: what they run is interrupted, what they hold fails.
    fn kill_workers(&self) {
        for slot in &self.pool.slots {
            slot.actor.kill();
        }
    }

    /// The workers, as `ActorRef`s.
    #[getter]
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.pool.slots.iter().map(|slot| conv::new_ref(py, slot.actor.clone())).collect()
    }

    /// Tasks submitted and not yet completed.
    #[getter]
    fn outstanding(&self) -> usize {
        *lock(&self.pool.outstanding)
    }

    /// Tasks waiting in the queue (not yet handed to a worker).
    #[getter]
    fn queued(&self) -> usize {
        self.pool.queue.1.len()
    }
}

/// Cancels a queued task: returns its future, unregistered, if it had not been handed to
/// a worker.
fn cancel_ticket(py: Python<'_>, ticket: u64) -> Option<Py<PyAny>> {
    let taken = dispatch::take_if(py, ticket, |target| matches!(target, Target::Task(entry) if entry.try_cancel()))?;
    let Target::Task(entry) = taken else { return None };
    entry.pool.task_done();
    Some(entry.future)
}

impl TaskEntry {
    /// Marks the task cancelled unless a worker has it already.
    pub(crate) fn try_cancel(&self) -> bool {
        self.state.transition(PENDING, CANCELLED)
    }
}
