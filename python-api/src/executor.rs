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
//!
//! Workers are started from one [`WorkerRecipe`]: the first ones all at once, and a
//! replacement (a fresh interpreter) whenever a worker has run `max_tasks_per_child`
//! tasks. The replacement is decided on the retiring worker's thread before its last
//! task is reported, and made on a thread of its own; the pool counts it as work in
//! progress, so a shutdown that waits for the pool waits for it too.
//!
//! A worker runs the executor's initializer before its first task (the worker does it
//! itself, in `receive`). An initializer that raises *breaks* the pool, as in
//! `concurrent.futures`: that task and every queued one fail with `BrokenExecutor`,
//! and no task is taken any more.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use flume::{Receiver, Sender};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use subactor::{PythonActor, Runtime};
use subactor_core::{AnyRef, BoxError, Outcome, SendError, SpawnError, Value};
use subactor_host::StartError;

use crate::dispatch::{self, Event, Target};
use crate::runtime::off_thread;
use crate::{conv, errors, hooks, wait};

/// A worker that refused a task (it has stopped), or whose replacement failed, is never
/// picked again.
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

/// How the pool starts a worker, the first ones and every replacement alike: the worker
/// actor's file, its constructor's arguments (the initializer and its arguments, or
/// nothing) and where the worker runs. Where a worker runs is this recipe's business
/// alone (today: pinned to a core or not); a placement elsewhere is one more field here.
#[derive(Clone)]
pub(crate) struct WorkerRecipe {
    /// The file of the worker actor (`_subactor_worker.py`), spawned by path.
    pub(crate) worker_path: String,
    /// `Worker(*args)`: `()` or `(initializer_ref, initargs)`.
    pub(crate) args: Value,
    /// Pin worker *i* to core *i* modulo the cores.
    pub(crate) pin: bool,
}

impl WorkerRecipe {
    /// The recipe of the worker in slot `index`.
    fn spec(&self, index: usize) -> PythonActor {
        let spec = PythonActor::new(self.worker_path.clone(), "Worker").args(self.args.clone());
        if self.pin {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            spec.pin_to_core(index % cores)
        } else {
            spec
        }
    }

    /// Starts the worker of slot `index` and waits until it runs.
    fn spawn(&self, rt: &Runtime, index: usize) -> Result<AnyRef, SpawnError<StartError>> {
        rt.spawn(self.spec(index)).map(Into::into)
    }

    /// Starts `count` workers at once (interpreters are created in parallel: start-up
    /// costs about one spawn, not `count`). On an error, the ones that started are
    /// killed and the first error is returned.
    fn spawn_all(&self, rt: &Runtime, count: usize) -> Result<Vec<AnyRef>, SpawnError<StartError>> {
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..count).map(|i| scope.spawn(move || self.spawn(rt, i))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(SpawnError::Panicked("spawn thread".into()))))
                .collect()
        });
        let mut workers = Vec::with_capacity(count);
        let mut failure = None;
        for result in results {
            match result {
                Ok(actor) => workers.push(actor),
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        match failure {
            None => Ok(workers),
            Some(error) => {
                for actor in &workers {
                    actor.kill();
                }
                Err(error)
            }
        }
    }
}

struct Slot {
    /// The worker's current incarnation (a replacement takes its place after
    /// `max_tasks`).
    actor: Mutex<AnyRef>,
    /// Tasks held: 0 or 1 (or [`DEAD`]). A worker being replaced holds its slot.
    inflight: AtomicUsize,
    /// Tasks handed to the current incarnation.
    given: AtomicUsize,
}

/// What the pool is busy with: tasks submitted and not yet completed (or cancelled), and
/// replacement workers being started.
#[derive(Default)]
struct Work {
    tasks: usize,
    replacing: usize,
}

/// The workers and the queue, shared with the reply callbacks.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    queue: (Sender<Task>, Receiver<Task>),
    turn: AtomicUsize,
    live: AtomicUsize,
    work: Mutex<Work>,
    changed: Condvar,
    /// Takes no new tasks.
    closed: AtomicBool,
    /// The workers are being stopped: a replacement that comes up now stops at once.
    stopping: AtomicBool,
    /// The reply of a worker whose initializer raised: the pool is broken.
    broken: OnceLock<Value>,
    /// Whether the main interpreter has reported that failure (logged it, failed the
    /// task that met it).
    broken_reported: AtomicBool,
    recipe: WorkerRecipe,
    runtime: Weak<Runtime>,
    /// Tasks a worker runs before it is replaced.
    max_tasks: Option<usize>,
    /// The executor opened this runtime for itself: shut it down with the workers.
    owns_runtime: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pools of this process, for the executors' shutdown at interpreter exit.
static POOLS: LazyLock<Mutex<Vec<Weak<Pool>>>> = LazyLock::new(Mutex::default);

/// The reply of a worker whose initializer raised: `(None, pickled, type, message,
/// traceback)` (see `_subactor_worker.py`).
fn init_failure(outcome: &Outcome<Value, BoxError>) -> Option<&Value> {
    match outcome {
        Outcome::Replied(reply @ Value::Tuple(items)) if matches!(items.first(), Some(Value::None)) => Some(reply),
        _ => None,
    }
}

impl Pool {
    fn new(
        workers: Vec<AnyRef>,
        recipe: WorkerRecipe,
        runtime: &Arc<Runtime>,
        max_tasks: Option<usize>,
        owns_runtime: bool,
    ) -> Arc<Pool> {
        let live = workers.len();
        let pool = Arc::new(Pool {
            slots: workers
                .into_iter()
                .map(|actor| Slot {
                    actor: Mutex::new(actor),
                    inflight: AtomicUsize::new(0),
                    given: AtomicUsize::new(0),
                })
                .collect(),
            queue: flume::unbounded(),
            turn: AtomicUsize::new(0),
            live: AtomicUsize::new(live),
            work: Mutex::default(),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            broken: OnceLock::new(),
            broken_reported: AtomicBool::new(false),
            recipe,
            runtime: Arc::downgrade(runtime),
            max_tasks,
            owns_runtime,
        });
        let mut pools = lock(&POOLS);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
        pool
    }

    /// The current worker of slot `index`.
    fn actor(&self, index: usize) -> AnyRef {
        lock(&self.slots[index].actor).clone()
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
        if self.broken.get().is_some() {
            // An initializer failed: no task runs any more.
            let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
            self.release(index);
            return;
        }
        let pool = Arc::clone(self);
        let report = dispatch::reply_to(ticket);
        let slot = &self.slots[index];
        // Counted before the task can complete (the count decides the worker's
        // replacement, in the callback).
        slot.given.fetch_add(1, Ordering::SeqCst);
        let sent = self.actor(index).blocking_ask_then_timeout(msg, Duration::ZERO, move |outcome| {
            pool.finished(index, outcome, report);
        });
        match sent {
            Ok(()) => {}
            // Only the pool sends to its workers, so this is not expected; queue it again.
            Err(SendError::Full(msg)) => {
                slot.given.fetch_sub(1, Ordering::SeqCst);
                state.0.store(PENDING, Ordering::Release);
                self.release(index);
                let _ = self.queue.0.send(Task { ticket, msg, state });
            }
            Err(SendError::Stopped(_)) => {
                let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
                self.retire(index);
            }
        }
    }

    /// A worker has finished a task (on the worker's thread): reports the outcome, then
    /// takes the next task, or has the worker replaced, or breaks the pool when the
    /// worker's initializer failed.
    fn finished(
        self: &Arc<Self>,
        index: usize,
        outcome: Outcome<Value, BoxError>,
        report: impl FnOnce(Outcome<Value, BoxError>),
    ) {
        if let Some(failure) = init_failure(&outcome) {
            let _ = self.broken.set(failure.clone());
            report(outcome);
            // This worker keeps its slot (it takes nothing more) until the workers stop.
            self.fail_queued();
            return;
        }
        let retire = self.max_tasks.is_some_and(|max| self.slots[index].given.load(Ordering::SeqCst) >= max);
        if retire {
            // Counted before the task is reported done: whoever waits for the pool to
            // be idle (a shutdown) then also waits for the replacement.
            lock(&self.work).replacing += 1;
        }
        report(outcome);
        if retire {
            self.replace(index);
        } else {
            self.release(index);
            self.pump();
        }
    }

    /// Replaces the worker of slot `index` (it has run its `max_tasks`) with a fresh one,
    /// from a thread of its own; without one when no task can come any more.
    fn replace(self: &Arc<Self>, index: usize) {
        // It holds nothing else (only an idle worker is given a task): it ends now.
        self.actor(index).stop();
        let unneeded = self.stopping.load(Ordering::SeqCst)
            || (self.closed.load(Ordering::SeqCst) && self.queue.1.is_empty())
            || self.broken.get().is_some();
        if unneeded {
            self.retire(index);
            self.replaced();
            return;
        }
        let pool = Arc::clone(self);
        let started = std::thread::Builder::new().name("subactor-executor-replace".into()).spawn(move || {
            let spawned = match pool.runtime.upgrade() {
                Some(rt) => pool.recipe.spawn(&rt, index),
                None => Err(SpawnError::ShutDown),
            };
            match spawned {
                Ok(actor) => {
                    let slot = &pool.slots[index];
                    *lock(&slot.actor) = actor.clone();
                    slot.given.store(0, Ordering::SeqCst);
                    if pool.stopping.load(Ordering::SeqCst) {
                        actor.stop();
                    }
                    pool.release(index);
                    pool.pump();
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start a replacement executor worker");
                    pool.retire(index);
                }
            }
            pool.replaced();
        });
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start a thread to replace an executor worker");
            self.retire(index);
            self.replaced();
        }
    }

    fn replaced(&self) {
        let mut work = lock(&self.work);
        work.replacing -= 1;
        if work.tasks == 0 && work.replacing == 0 {
            self.changed.notify_all();
        }
    }

    /// Takes slot `index` out for good (its worker stopped, or could not be replaced),
    /// counting it out once; with the last worker gone, what is queued fails.
    fn retire(&self, index: usize) {
        let was = self.slots[index].inflight.swap(DEAD, Ordering::SeqCst);
        if was < DEAD && self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.fail_queued();
        }
    }

    /// Fails what is queued (every worker has stopped, or the pool is broken): those
    /// tasks will never run.
    fn fail_queued(&self) {
        let tx = dispatch::sender();
        while let Ok(task) = self.queue.1.try_recv() {
            if task.state.transition(PENDING, DISPATCHED) {
                let _ = tx.send(Event::Reply { ticket: task.ticket, outcome: Outcome::NotHandled });
            }
        }
    }

    fn task_done(&self) {
        let mut work = lock(&self.work);
        work.tasks = work.tasks.saturating_sub(1);
        if work.tasks == 0 && work.replacing == 0 {
            self.changed.notify_all();
        }
    }

    /// Waits (no GIL needed) until no task is outstanding and no worker is being
    /// replaced, or until `deadline`.
    fn wait_idle_until(&self, deadline: Instant) -> bool {
        let mut work = lock(&self.work);
        while work.tasks > 0 || work.replacing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            work = self.changed.wait_timeout(work, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// Waits, GIL released and Ctrl-C interrupting, until the pool is idle (or
    /// `deadline`: then `false`).
    fn wait_idle(self: &Arc<Self>, py: Python<'_>, deadline: Option<Instant>) -> PyResult<bool> {
        let pool = Arc::clone(self);
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

    /// The current workers.
    fn actors(&self) -> Vec<AnyRef> {
        (0..self.slots.len()).map(|i| self.actor(i)).collect()
    }

    /// Stops every worker once it has finished what it holds (a replacement that comes
    /// up later stops at once).
    fn stop_workers(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for actor in self.actors() {
            actor.stop();
        }
    }

    /// Shuts the runtime down if the executor opened it for itself (its workers have
    /// stopped). The runtime's Python object still closes it again, which does nothing.
    fn release_runtime(&self) {
        if !self.owns_runtime {
            return;
        }
        if let Some(rt) = self.runtime.upgrade() {
            if let Err(error) = rt.shutdown() {
                tracing::warn!(%error, "cannot shut down an executor's runtime");
            }
        }
    }

    /// Stops the workers once every task has completed, from a thread of its own (and
    /// then the executor's own runtime).
    fn stop_when_idle(self: &Arc<Self>) -> std::io::Result<()> {
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("subactor-executor-shutdown".into())
            .spawn(move || {
                while !pool.wait_idle_until(Instant::now() + Duration::from_secs(3600)) {}
                pool.stop_workers();
                pool.release_runtime();
            })
            .map(drop)
    }

    /// The failure that broke the pool, as the exception its tasks fail with:
    /// `BrokenExecutor`, the initializer's exception as its cause.
    fn broken_error(&self, py: Python<'_>) -> PyErr {
        let cause = self.broken.get().map(|failure| failure_exception(py, failure));
        broken_executor(py, BROKEN, cause)
    }
}

/// The message of the exception tasks fail with once an initializer has failed.
const BROKEN: &str = "a worker's initializer failed: the executor cannot run tasks any more";

/// `subactor.BrokenExecutor(message)`, with `cause` as its `__cause__`.
fn broken_executor(py: Python<'_>, message: &str, cause: Option<PyErr>) -> PyErr {
    let err = match hooks(py).and_then(|h| h.broken_executor.bind(py).call1((message,))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => return err,
    };
    err.set_cause(py, cause);
    err
}

/// An executor dropped without a shutdown (its Python object and every future of it are
/// gone) still runs what it was given, then stops its workers.
impl Drop for ExecutorCore {
    fn drop(&mut self) {
        if !self.pool.closed.swap(true, Ordering::AcqRel) && !subactor_host::fork::inherited_runtime() {
            if let Err(error) = self.pool.stop_when_idle() {
                tracing::warn!(%error, "cannot stop an abandoned executor's workers");
            }
        }
    }
}

/// Completes a task's future with the worker's answer (on the dispatcher thread).
pub(crate) fn complete(py: Python<'_>, entry: TaskEntry, outcome: Outcome<Value, BoxError>) -> PyResult<()> {
    let TaskEntry { future, pool, .. } = entry;
    let result = settle(py, &pool, future.bind(py), outcome);
    pool.task_done();
    result
}

fn settle(py: Python<'_>, pool: &Pool, future: &Bound<'_, PyAny>, outcome: Outcome<Value, BoxError>) -> PyResult<()> {
    if let Some(failure) = init_failure(&outcome) {
        // Reported here, in the main interpreter, before the task fails: logged as the
        // standard executors log it, then visible as the executor's `_broken`.
        let exception = failure_exception(py, failure).into_value(py);
        let reported = hooks(py).and_then(|h| h.initializer_failed.bind(py).call1((exception,)).map(drop));
        pool.broken_reported.store(true, Ordering::SeqCst);
        if let Err(err) = reported {
            err.write_unraisable(py, None);
        }
    }
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
            [Value::Bool(false), ..] => failed(failure_exception(py, &Value::Tuple(items))),
            [Value::None, ..] => failed(pool.broken_error(py)),
            _ => failed(errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", ""))),
        },
        Outcome::Replied(_) => {
            failed(errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", "")))
        }
        Outcome::Failed(error) => failed(errors::handler(py, &error)),
        Outcome::Fault(fault) => failed(errors::fault(py, &fault)),
        Outcome::NotHandled if pool.broken.get().is_some() => failed(pool.broken_error(py)),
        Outcome::NotHandled => {
            failed(broken_executor(py, "a worker of the executor stopped before it ran the task", None))
        }
    }
}

/// The exception of a worker's failure reply `(_, pickled, type_name, message,
/// traceback)`: the task's (or initializer's) own exception, unpickled, or a
/// `RemoteError` when it could not cross; the worker's traceback is its cause, as
/// `ProcessPoolExecutor` chains it.
fn failure_exception(py: Python<'_>, reply: &Value) -> PyErr {
    let Value::Tuple(items) = reply else {
        return errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", ""));
    };
    let [_, pickled, type_name, message, traceback] = items.as_slice() else {
        return errors::new(py, c"RemoteError", ("subactor.ProtocolError", "unexpected worker reply", ""));
    };
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
    if traceback.is_empty() {
        return err;
    }
    match hooks(py).and_then(|h| h.task_traceback.bind(py).call1((traceback,))) {
        Ok(cause) => err.set_cause(py, Some(PyErr::from_value(cause))),
        Err(failed) => return failed,
    }
    err
}

/// The native side of `subactor.Executor`: its workers and queue.
#[pyclass(module = "subactor._native", frozen)]
pub(crate) struct ExecutorCore {
    pool: Arc<Pool>,
    /// The runtime's Python object when the executor opened it for itself: kept alive as
    /// long as this core (which every pending future holds), so that it is not closed
    /// under tasks still running.
    _owner: Option<Py<PyAny>>,
}

impl ExecutorCore {
    /// Starts `workers` workers from `recipe` on `rt`, GIL released (Ctrl-C interrupts
    /// the wait, and kills the workers that started meanwhile).
    pub(crate) fn start(
        py: Python<'_>,
        rt: Arc<Runtime>,
        recipe: WorkerRecipe,
        workers: usize,
        max_tasks: Option<usize>,
        owner: Option<Py<PyAny>>,
    ) -> PyResult<ExecutorCore> {
        let spawner = (Arc::clone(&rt), recipe.clone());
        let spawned = off_thread(
            py,
            move || spawner.1.spawn_all(&spawner.0, workers),
            |spawned| {
                for actor in spawned.into_iter().flatten() {
                    actor.kill();
                }
            },
        )?
        .map_err(|error| errors::spawn(py, &error))?;
        let owns_runtime = owner.is_some();
        Ok(ExecutorCore { pool: Pool::new(spawned, recipe, &rt, max_tasks, owns_runtime), _owner: owner })
    }

    fn enqueue(&self, py: Python<'_>, future: &Bound<'_, PyAny>, msg: Value) -> PyResult<u64> {
        crate::errors::not_forked()?;
        if self.pool.broken.get().is_some() {
            return Err(self.pool.broken_error(py));
        }
        if self.pool.closed.load(Ordering::Acquire) {
            return Err(pyo3::exceptions::PyRuntimeError::new_err("cannot schedule new futures after shutdown"));
        }
        let state = Arc::new(TaskState(AtomicU8::new(PENDING)));
        let entry =
            TaskEntry { future: future.clone().unbind(), state: Arc::clone(&state), pool: Arc::clone(&self.pool) };
        let ticket = dispatch::register(py, Target::Task(entry))?;
        // Before the task can complete (it is submitted next), so never counted down first.
        lock(&self.pool.work).tasks += 1;
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
    fn cancel_queued(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        crate::errors::not_forked()?;
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
        Ok(cancelled)
    }

    /// Takes no more tasks.
    fn close(&self) {
        self.pool.closed.store(true, Ordering::Release);
    }

    /// Waits until every task submitted has completed and no worker is being replaced
    /// (or `timeout` passes: then `False`); Ctrl-C interrupts the wait.
    #[pyo3(signature = (timeout=None))]
    fn wait_idle(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.pool.wait_idle(py, wait::deadline(timeout)?)
    }

    /// Stops the workers once they have finished what they hold; with `wait`, waits for
    /// them to end (Ctrl-C interrupts the wait).
    fn stop_workers(&self, py: Python<'_>, wait: bool) -> PyResult<()> {
        crate::errors::not_forked()?;
        self.pool.stop_workers();
        if wait {
            for actor in self.pool.actors() {
                wait::retry(py, None, (), move |(), slice| actor.blocking_wait_timeout(slice).map(drop).ok_or(()))?
                    .ok();
            }
        }
        Ok(())
    }

    /// In the background: waits until every task has completed, then stops the workers
    /// (and shuts down the executor's own runtime).
    fn stop_workers_when_idle(&self) -> PyResult<()> {
        crate::errors::not_forked()?;
        self.pool
            .stop_when_idle()
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start a thread: {e}")))
    }

    /// Kills the workers: what they run is interrupted, what they hold fails.
    fn kill_workers(&self) -> PyResult<()> {
        crate::errors::not_forked()?;
        self.pool.stopping.store(true, Ordering::SeqCst);
        for actor in self.pool.actors() {
            actor.kill();
        }
        Ok(())
    }

    /// The workers, as `ActorRef`s.
    #[getter]
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.pool.actors().into_iter().map(|actor| conv::new_ref(py, actor)).collect()
    }

    /// Tasks submitted and not yet completed.
    #[getter]
    fn outstanding(&self) -> usize {
        lock(&self.pool.work).tasks
    }

    /// Tasks waiting in the queue (not yet handed to a worker).
    #[getter]
    fn queued(&self) -> usize {
        self.pool.queue.1.len()
    }

    /// Whether an initializer has failed and the main interpreter has reported it.
    #[getter]
    fn broken(&self) -> bool {
        self.pool.broken_reported.load(Ordering::SeqCst)
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

/// At interpreter exit (before the runtimes close): every executor of the process,
/// abandoned ones included, takes no new task, runs what it was given, and stops its
/// workers, as `concurrent.futures`' executors do at exit. Ctrl-C interrupts the wait.
#[pyfunction]
pub(crate) fn _shutdown_executors(py: Python<'_>) -> PyResult<()> {
    if subactor_host::fork::inherited_runtime() {
        // A forked child: the workers (and their tasks) exist only in the parent.
        return Ok(());
    }
    let pools: Vec<Arc<Pool>> = lock(&POOLS).drain(..).filter_map(|p| p.upgrade()).collect();
    for pool in &pools {
        pool.closed.store(true, Ordering::Release);
    }
    for pool in &pools {
        pool.wait_idle(py, None)?;
        pool.stop_workers();
    }
    Ok(())
}
