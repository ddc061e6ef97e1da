//! The executor's pool: worker actors (`subactor/_subactor_worker.py`) fed from a
//! queue, with results going to `concurrent.futures.Future`s through the dispatcher.
//!
//! Each worker holds one task at a time; the rest wait in the queue. When a worker
//! finishes a task, its reply callback — on the worker's own thread, without any Python —
//! hands the result to the dispatcher and takes the next queued task into its mailbox. So
//! a busy pool never waits for the main interpreter between tasks, submitting never
//! blocks, and every task goes to a worker that is free: uneven tasks balance, and no task
//! waits behind a long one while a worker is idle. (Queueing a second task on each worker
//! in advance saved nothing measurable, since a worker fetches its next task itself, and
//! made a job's end uneven: the last tasks queued behind long ones while the other worker
//! idled.)
//!
//! A task is cancelled only while it waits in a queue; once handed to a worker it runs (as
//! `ProcessPoolExecutor`'s tasks do once they reach its call queue).
//!
//! **Lanes.** The workers and their queue form a [`Lane`], whose workers all come from one
//! [`WorkerRecipe`] (and so have one placement). A pool placed `interpreter` or `process`
//! has one lane. A pool placed `auto` has two: interpreter workers, and process workers
//! started on first use. There, a task runs in the interpreter lane unless it is known to
//! need a process; one that meets a module refusing own-GIL interpreters (its function's
//! module, a module its function imports, an object among its arguments, the initializer)
//! is not reported but sent to the process lane, whole (or, for a chunk, from the first call
//! that did not complete), and the pool remembers it ([`Routes`]): later tasks of the same
//! function (of any function of a module that cannot load) go straight to processes. So
//! the interpreter lane keeps a copy of each task it hands out, to send it again; the other
//! lanes keep nothing. An initializer that refuses interpreters moves every task to
//! processes. Counting (pending work, shutdown, a broken pool) is the pool's, across lanes.
//!
//! Workers start from their lane's recipe: the first ones all at once, and a replacement
//! (a fresh interpreter, or process) whenever a worker has run `max_tasks_per_child`
//! tasks. The replacement is decided on the retiring worker's thread before its last task
//! is reported, and made on a thread of its own; the pool counts it as work in progress, so
//! a shutdown that waits for the pool waits for it too. The process lane of an `auto` pool
//! starts the same way, each of its workers like a replacement.
//!
//! A worker runs the executor's initializer before its first task (the worker does it
//! itself, in `receive`). An initializer that raises *breaks* the pool, as in
//! `concurrent.futures`: that task and every queued one fail with `BrokenExecutor`, and no
//! task is taken any more.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use flume::{Receiver, Sender};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use subactor::{Placement, PythonActor, Runtime};
use subactor_core::{AnyRef, BoxError, Outcome, SendError, SpawnError, Value};
use subactor_host::{ReceiveError, StartError};

use crate::dispatch::{self, Event, Target};
use crate::runtime::off_thread;
use crate::{conv, errors, hooks, wait};

/// A worker that refused a task (it has stopped), or whose replacement failed, is never
/// picked again.
const DEAD: usize = usize::MAX / 2;

const PENDING: u8 = 0;
const DISPATCHED: u8 = 1;
const CANCELLED: u8 = 2;

/// The lane of the placement asked for (interpreters for `auto`).
const MAIN_LANE: usize = 0;
/// An `auto` pool's process workers.
const PROCESS_LANE: usize = 1;

/// What CPython (and the host's import guard) says of a module that refuses to load in an
/// own-GIL subinterpreter.
const REFUSAL: &str = "does not support loading in subinterpreters";

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
    /// The results of a chunk's first calls, which completed in an interpreter before a
    /// call met a refusing module: `msg` holds the rest, and its results follow these.
    done: Vec<Value>,
}

/// How the pool starts a worker, the first ones and every replacement alike: the worker
/// actor's file, its constructor's arguments (the initializer and its arguments, or
/// nothing) and where the worker runs (its placement, and pinned to a core or not).
#[derive(Clone)]
pub(crate) struct WorkerRecipe {
    /// The file of the worker actor (`_subactor_worker.py`), spawned by path.
    pub(crate) worker_path: String,
    /// `Worker(*args)`: `()` or `(initializer_ref, initargs)`.
    pub(crate) args: Value,
    /// Pin worker *i* to core *i* modulo the cores.
    pub(crate) pin: bool,
    /// [`Placement::Interpreter`] or [`Placement::Process`] (an `auto` pool has a recipe
    /// of each).
    pub(crate) placement: Placement,
}

impl WorkerRecipe {
    /// The recipe of the worker in slot `index`.
    fn spec(&self, index: usize) -> PythonActor {
        let spec =
            PythonActor::new(self.worker_path.clone(), "Worker").args(self.args.clone()).placement(self.placement);
        if self.pin {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            spec.pin_to_core(index % cores)
        } else {
            spec
        }
    }

    /// The same recipe, for process workers.
    fn in_processes(&self) -> WorkerRecipe {
        WorkerRecipe { placement: Placement::Process, ..self.clone() }
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
    /// `max_tasks`); `None` until the worker of a lane started on first use runs.
    actor: Mutex<Option<AnyRef>>,
    /// Tasks held: 0 or 1 (or [`DEAD`]). A worker being started or replaced holds its
    /// slot.
    inflight: AtomicUsize,
    /// Tasks handed to the current incarnation.
    given: AtomicUsize,
}

impl Slot {
    fn new(actor: Option<AnyRef>) -> Slot {
        let held = usize::from(actor.is_none());
        Slot { actor: Mutex::new(actor), inflight: AtomicUsize::new(held), given: AtomicUsize::new(0) }
    }
}

/// Workers of one placement and their queue.
struct Lane {
    slots: Vec<Slot>,
    queue: (Sender<Task>, Receiver<Task>),
    turn: AtomicUsize,
    /// Slots not retired.
    live: AtomicUsize,
    recipe: WorkerRecipe,
    /// Whether its workers have been started (an `auto` pool's process lane starts when
    /// its first task comes).
    started: AtomicBool,
    /// Why its last worker could not be started: what its queued tasks fail with.
    failed: OnceLock<String>,
    /// Keeps a copy of each task it hands out, to send it to the process lane if it meets
    /// a refusing module (an `auto` pool's interpreter lane).
    keeps: bool,
}

impl Lane {
    fn new(workers: Vec<Option<AnyRef>>, recipe: WorkerRecipe, keeps: bool) -> Lane {
        let started = workers.iter().all(Option::is_some);
        Lane {
            live: AtomicUsize::new(workers.len()),
            slots: workers.into_iter().map(Slot::new).collect(),
            queue: flume::unbounded(),
            turn: AtomicUsize::new(0),
            recipe,
            started: AtomicBool::new(started),
            failed: OnceLock::new(),
            keeps,
        }
    }

    /// The current worker of slot `index`, if it has started.
    fn actor(&self, index: usize) -> Option<AnyRef> {
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
}

/// Which tasks of an `auto` pool go straight to process workers (what was refused once).
#[derive(Default)]
struct Routes {
    /// Modules that cannot load in an interpreter: every function of theirs.
    modules: HashSet<String>,
    /// Functions that met a refusing module (inside them, or among their arguments).
    functions: HashSet<FnKey>,
}

/// A task's function, as the pool tells it apart: `(module, qualname)`, or a digest of the
/// pickled callable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum FnKey {
    Named(String, String),
    Pickled(u64),
}

impl FnKey {
    /// The function of a task message `(kind, fn_ref, payload, kwargs)`.
    fn of(msg: &Value) -> Option<FnKey> {
        let Value::Tuple(items) = msg else { return None };
        match items.get(1)? {
            Value::Tuple(pair) => match pair.as_slice() {
                [Value::Str(module), Value::Str(qualname)] => Some(FnKey::Named(module.clone(), qualname.clone())),
                _ => None,
            },
            Value::Pickled(data) => {
                let mut hasher = DefaultHasher::new();
                data.hash(&mut hasher);
                Some(FnKey::Pickled(hasher.finish()))
            }
            _ => None,
        }
    }

    fn module(&self) -> Option<&str> {
        match self {
            FnKey::Named(module, _) => Some(module),
            FnKey::Pickled(_) => None,
        }
    }
}

impl std::fmt::Display for FnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FnKey::Named(module, qualname) => write!(f, "{module}.{qualname}"),
            FnKey::Pickled(_) => f.write_str("a callable sent by value"),
        }
    }
}

/// Where a task met a module that refuses own-GIL interpreters.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// The worker's initializer.
    Init,
    /// Finding the function (importing its module).
    Resolve,
    /// The function itself.
    Call,
    /// The message (an argument, or a callable sent by value) could not be unpickled.
    Message,
}

/// A task's refusal by the interpreter lane: the refusing module, where, and the results
/// of a chunk's calls that completed before it.
struct Refusal {
    module: String,
    stage: Stage,
    done: Vec<Value>,
}

impl Refusal {
    /// The refusal an interpreter worker's outcome reports, if it is one: a failure reply
    /// with its sixth item `(module, stage, done)` (see `_subactor_worker.py`), or a
    /// message that could not be unpickled because of one.
    fn of(outcome: &Outcome<Value, BoxError>) -> Option<Refusal> {
        match outcome {
            Outcome::Replied(Value::Tuple(items))
                if matches!(items.first(), Some(Value::Bool(false) | Value::None)) =>
            {
                let Some(Value::Tuple(refusal)) = items.get(5) else { return None };
                let [Value::Str(module), Value::Str(stage), done] = refusal.as_slice() else { return None };
                let stage = match stage.as_str() {
                    "init" => Stage::Init,
                    "resolve" => Stage::Resolve,
                    _ => Stage::Call,
                };
                let done = match done {
                    Value::List(done) => done.clone(),
                    _ => Vec::new(),
                };
                Some(Refusal { module: module.clone(), stage, done })
            }
            Outcome::Failed(error) => {
                let Some(ReceiveError::Message(convert)) = error.downcast_ref::<ReceiveError>() else { return None };
                let text = match convert.exception() {
                    Some(exception) => exception.message.clone(),
                    None => convert.to_string(),
                };
                let at = text.find(REFUSAL)?;
                // "module numpy does not support loading in subinterpreters ...", perhaps
                // after what the conversion says about it.
                let before = &text[..at];
                let module = before
                    .rfind("module ")
                    .and_then(|i| before[i + "module ".len()..].split_whitespace().next())
                    .unwrap_or("an extension module");
                Some(Refusal { module: module.to_owned(), stage: Stage::Message, done: Vec::new() })
            }
            _ => None,
        }
    }
}

/// What the pool is busy with: tasks submitted and not yet completed (or cancelled), and
/// workers being started or replaced.
#[derive(Default)]
struct Work {
    tasks: usize,
    replacing: usize,
}

/// The lanes of workers and their queues, shared with the reply callbacks.
pub(crate) struct Pool {
    /// [`MAIN_LANE`], and an `auto` pool's [`PROCESS_LANE`].
    lanes: Vec<Lane>,
    /// What an `auto` pool sends to processes.
    routes: Mutex<Routes>,
    /// An `auto` pool's initializer refused interpreters: every task goes to processes.
    interpreters_refused: AtomicBool,
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
    runtime: Weak<Runtime>,
    /// Tasks a worker runs before it is replaced.
    max_tasks: Option<usize>,
    /// The executor opened this runtime for itself: shut it down with the workers.
    owns_runtime: bool,
    /// The placement asked for.
    placement: Placement,
    /// Tasks (a chunk is one) whose outcome came from an interpreter worker, and from a
    /// process worker.
    ran: [AtomicUsize; 2],
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pools of this process, for the executors' shutdown at interpreter exit.
static POOLS: LazyLock<Mutex<Vec<Weak<Pool>>>> = LazyLock::new(Mutex::default);

/// The reply of a worker whose initializer raised: `(None, pickled, type, message,
/// traceback[, refusal])` (see `_subactor_worker.py`).
fn init_failure(outcome: &Outcome<Value, BoxError>) -> Option<&Value> {
    match outcome {
        Outcome::Replied(reply @ Value::Tuple(items)) if matches!(items.first(), Some(Value::None)) => Some(reply),
        _ => None,
    }
}

/// A chunk's remaining calls: the message `(1, fn_ref, chunk, None)` without its first
/// `skip` items.
fn without_first(msg: Value, skip: usize) -> Value {
    let Value::Tuple(mut items) = msg else { return msg };
    if let Some(Value::List(chunk)) = items.get_mut(2) {
        chunk.drain(..skip.min(chunk.len()));
    }
    Value::Tuple(items)
}

/// A chunk's reply with the results of its first calls (made elsewhere) put back in front.
fn with_done(outcome: Outcome<Value, BoxError>, mut done: Vec<Value>) -> Outcome<Value, BoxError> {
    if done.is_empty() {
        return outcome;
    }
    match outcome {
        Outcome::Replied(Value::Tuple(mut items)) => {
            if let [Value::Bool(true), Value::List(rest)] = items.as_mut_slice() {
                done.append(rest);
                *rest = done;
            }
            Outcome::Replied(Value::Tuple(items))
        }
        other => other,
    }
}

impl Pool {
    fn new(
        lanes: Vec<Lane>,
        runtime: &Arc<Runtime>,
        max_tasks: Option<usize>,
        owns_runtime: bool,
        placement: Placement,
    ) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            lanes,
            routes: Mutex::default(),
            interpreters_refused: AtomicBool::new(false),
            work: Mutex::default(),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            broken: OnceLock::new(),
            broken_reported: AtomicBool::new(false),
            runtime: Arc::downgrade(runtime),
            max_tasks,
            owns_runtime,
            placement,
            ran: [AtomicUsize::new(0), AtomicUsize::new(0)],
        });
        let mut pools = lock(&POOLS);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
        pool
    }

    /// The lane a new task goes to: an `auto` pool's process lane when its function is
    /// known to need one.
    fn route(&self, msg: &Value) -> usize {
        if self.lanes.len() <= PROCESS_LANE {
            return MAIN_LANE;
        }
        if self.interpreters_refused.load(Ordering::SeqCst) {
            return PROCESS_LANE;
        }
        let routes = lock(&self.routes);
        if routes.modules.is_empty() && routes.functions.is_empty() {
            return MAIN_LANE;
        }
        let Some(key) = FnKey::of(msg) else { return MAIN_LANE };
        let refused =
            key.module().is_some_and(|module| routes.modules.contains(module)) || routes.functions.contains(&key);
        if refused { PROCESS_LANE } else { MAIN_LANE }
    }

    /// Queues a task in `lane`, or hands it to a free worker at once if nothing waits
    /// before it.
    fn submit(self: &Arc<Self>, lane: usize, task: Task) {
        let queue = &self.lanes[lane].queue;
        if queue.1.is_empty() {
            if let Some(index) = self.lanes[lane].claim() {
                self.hand(lane, index, task);
                return;
            }
        }
        let _ = queue.0.send(task);
        if lane == MAIN_LANE && self.interpreters_refused.load(Ordering::SeqCst) {
            // Queued while the interpreter lane closed: whoever closed it moved what
            // was queued, or this moves it.
            self.move_queued_to_processes();
        }
        if self.lanes[lane].live.load(Ordering::SeqCst) == 0 {
            // Every worker of the lane is gone: whoever retired the last one failed what
            // was queued, or this does.
            self.fail_lane(lane);
        }
        self.pump(lane);
    }

    /// Moves queued tasks to idle workers of `lane`. Runs after every submit and on the
    /// worker thread after every task: a task queued while every worker was busy is picked
    /// up either by the submitter (which looks for an idle worker after queueing) or by the
    /// worker that becomes idle (which looks at the queue after that).
    fn pump(self: &Arc<Self>, lane: usize) {
        let this = &self.lanes[lane];
        loop {
            let Some(index) = this.claim() else { return };
            match this.queue.1.try_recv() {
                Ok(task) => self.hand(lane, index, task),
                Err(_) => {
                    this.release(index);
                    if this.queue.1.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Sends a task to the worker claimed for it.
    fn hand(self: &Arc<Self>, lane: usize, index: usize, task: Task) {
        let Task { ticket, msg, state, done } = task;
        if !state.transition(PENDING, DISPATCHED) {
            // Cancelled while queued: the canceller completed its future.
            self.lanes[lane].release(index);
            return;
        }
        if self.broken.get().is_some() {
            // An initializer failed: no task runs any more.
            let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
            self.lanes[lane].release(index);
            return;
        }
        let Some(actor) = self.lanes[lane].actor(index) else {
            // Not expected: only a running worker's slot can be claimed. Queue it again.
            state.0.store(PENDING, Ordering::Release);
            self.lanes[lane].release(index);
            let _ = self.lanes[lane].queue.0.send(Task { ticket, msg, state, done });
            return;
        };
        let pool = Arc::clone(self);
        let report = dispatch::reply_to(ticket);
        let slot = &self.lanes[lane].slots[index];
        // What goes to a process worker if the interpreter refuses it.
        let kept = self.lanes[lane].keeps.then(|| Task {
            ticket,
            msg: msg.clone(),
            state: Arc::clone(&state),
            done: Vec::new(),
        });
        // Counted before the task can complete (the count decides the worker's
        // replacement, in the callback).
        slot.given.fetch_add(1, Ordering::SeqCst);
        let sent = actor.blocking_ask_then_timeout(msg, Duration::ZERO, move |outcome| {
            pool.finished(lane, index, with_done(outcome, done), report, kept);
        });
        match sent {
            Ok(()) => {}
            // Only the pool sends to its workers, so this is not expected; queue it again.
            Err(SendError::Full(msg)) => {
                slot.given.fetch_sub(1, Ordering::SeqCst);
                state.0.store(PENDING, Ordering::Release);
                self.lanes[lane].release(index);
                let _ = self.lanes[lane].queue.0.send(Task { ticket, msg, state, done: Vec::new() });
            }
            Err(SendError::Stopped(_)) => {
                let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
                self.retire(lane, index);
            }
        }
    }

    /// A worker has finished a task (on the worker's thread): reports the outcome (or, in
    /// an `auto` pool, sends a task that met a refusing module to a process worker), then
    /// takes the next task, or has the worker replaced, or breaks the pool when the
    /// worker's initializer failed.
    fn finished(
        self: &Arc<Self>,
        lane: usize,
        index: usize,
        outcome: Outcome<Value, BoxError>,
        report: impl FnOnce(Outcome<Value, BoxError>),
        kept: Option<Task>,
    ) {
        if let Some(task) = kept {
            if let Some(refusal) = Refusal::of(&outcome) {
                drop(outcome);
                self.reroute(lane, index, task, refusal);
                return;
            }
        }
        let kind = usize::from(self.lanes[lane].recipe.placement == Placement::Process);
        self.ran[kind].fetch_add(1, Ordering::Relaxed);
        if let Some(failure) = init_failure(&outcome) {
            let _ = self.broken.set(failure.clone());
            report(outcome);
            // This worker keeps its slot (it takes nothing more) until the workers stop.
            self.fail_queued();
            return;
        }
        self.done_with(lane, index, move || report(outcome));
    }

    /// After a worker's task: `report` it, then the worker takes the next task, or is
    /// replaced once it has run `max_tasks`.
    fn done_with(self: &Arc<Self>, lane: usize, index: usize, report: impl FnOnce()) {
        if lane == MAIN_LANE && self.interpreters_refused.load(Ordering::SeqCst) {
            // The initializer cannot run in interpreters: every task goes to processes now.
            report();
            self.close_lane(lane, Some(index));
            return;
        }
        let retire =
            self.max_tasks.is_some_and(|max| self.lanes[lane].slots[index].given.load(Ordering::SeqCst) >= max);
        if retire {
            // Counted before the task is reported done: whoever waits for the pool to
            // be idle (a shutdown) then also waits for the replacement.
            lock(&self.work).replacing += 1;
        }
        report();
        if retire {
            self.replace(lane, index);
        } else {
            self.lanes[lane].release(index);
            self.pump(lane);
        }
    }

    /// A task of the interpreter lane met a module that refuses interpreters: remembers
    /// it, sends the task to the process lane (started on first use), and frees the worker
    /// (or, when its initializer refused, moves the whole pool to processes).
    fn reroute(self: &Arc<Self>, lane: usize, index: usize, task: Task, refusal: Refusal) {
        let Refusal { module, stage, done } = refusal;
        let key = FnKey::of(&task.msg);
        let what = key.as_ref().map_or_else(|| "a task".to_owned(), ToString::to_string);
        let fresh = {
            let mut routes = lock(&self.routes);
            match (&stage, key) {
                (Stage::Init, _) => !self.interpreters_refused.swap(true, Ordering::SeqCst),
                (Stage::Resolve, Some(FnKey::Named(module, _))) => routes.modules.insert(module),
                (_, Some(key)) => routes.functions.insert(key),
                (_, None) => false,
            }
        };
        if fresh {
            let how = match stage {
                Stage::Init => "the initializer imports it: every task",
                Stage::Resolve => "its module imports it: this task and every function of its module",
                Stage::Call => "the function imports it: this task and later ones of this function",
                Stage::Message => "it is among the task's arguments: this task and later ones of this function",
            };
            tracing::info!(
                function = %what,
                refusing = %module,
                "module {module} refuses own-GIL interpreters ({how} now run on process workers)"
            );
        }
        let Task { ticket, msg, state, .. } = task;
        let msg = if done.is_empty() { msg } else { without_first(msg, done.len()) };
        if self.stopping.load(Ordering::SeqCst) {
            // Being killed: no worker will start for it.
            let _ = dispatch::sender().send(Event::Reply { ticket, outcome: Outcome::NotHandled });
        } else {
            // Waiting again (cancellable, as any queued task), in the process lane.
            state.0.store(PENDING, Ordering::Release);
            self.start_lane(PROCESS_LANE);
            self.submit(PROCESS_LANE, Task { ticket, msg, state, done });
        }
        if stage == Stage::Init {
            // The worker is of no use (its initializer cannot run here): it stops, and so do
            // the idle ones; what the interpreter lane holds moves to processes.
            self.move_queued_to_processes();
            self.close_lane(lane, Some(index));
        } else {
            self.done_with(lane, index, || {});
        }
    }

    /// Moves what waits in the interpreter lane to the process lane.
    fn move_queued_to_processes(self: &Arc<Self>) {
        let mut moved = false;
        while let Ok(task) = self.lanes[MAIN_LANE].queue.1.try_recv() {
            if !moved {
                self.start_lane(PROCESS_LANE);
                moved = true;
            }
            self.submit(PROCESS_LANE, task);
        }
    }

    /// Stops the workers of `lane` for good: `holding` (the one whose callback runs) and
    /// the idle ones; busy ones stop when their task is done.
    fn close_lane(self: &Arc<Self>, lane: usize, holding: Option<usize>) {
        let this = &self.lanes[lane];
        let idle: Vec<usize> = (0..this.slots.len()).filter(|&i| Some(i) != holding && this.claim_at(i)).collect();
        for index in holding.into_iter().chain(idle) {
            if let Some(actor) = this.actor(index) {
                actor.stop();
            }
            self.retire(lane, index);
        }
    }

    /// Starts the workers of `lane` if they have not been (an `auto` pool's process lane,
    /// on its first task), each from a thread of its own, counted as work in progress.
    fn start_lane(self: &Arc<Self>, lane: usize) {
        let this = &self.lanes[lane];
        if this.started.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&self.work).replacing += this.slots.len();
        for index in 0..this.slots.len() {
            self.start_worker(lane, index);
        }
    }

    /// Replaces the worker of slot `index` (it has run its `max_tasks`) with a fresh one,
    /// from a thread of its own; without one when no task can come any more.
    fn replace(self: &Arc<Self>, lane: usize, index: usize) {
        // It holds nothing else (only an idle worker is given a task): it ends now.
        if let Some(actor) = self.lanes[lane].actor(index) {
            actor.stop();
        }
        let unneeded = self.stopping.load(Ordering::SeqCst)
            || (self.closed.load(Ordering::SeqCst) && !self.may_get_tasks(lane))
            || self.broken.get().is_some()
            || (lane == MAIN_LANE && self.interpreters_refused.load(Ordering::SeqCst));
        if unneeded {
            self.retire(lane, index);
            self.replaced();
            return;
        }
        self.start_worker(lane, index);
    }

    /// Whether `lane` may still be given a task once the pool is closed: something waits in
    /// its queue, or (the process lane of an `auto` pool) an interpreter worker holds a
    /// task that may be sent to it. Read in this order: the interpreter lane's queue, its
    /// workers, then this lane's queue (a task moves from one to the next, and a worker is
    /// claimed before it takes a task and freed after its task moved on).
    fn may_get_tasks(&self, lane: usize) -> bool {
        if lane == PROCESS_LANE {
            let main = &self.lanes[MAIN_LANE];
            if !main.queue.1.is_empty() {
                return true;
            }
            let busy = main.slots.iter().any(|slot| matches!(slot.inflight.load(Ordering::SeqCst), 1..DEAD));
            if busy {
                return true;
            }
        }
        !self.lanes[lane].queue.1.is_empty()
    }

    /// Starts the worker of slot `index` of `lane` (held meanwhile, and counted in
    /// `replacing`) from a thread of its own; then it takes what is queued.
    fn start_worker(self: &Arc<Self>, lane: usize, index: usize) {
        let pool = Arc::clone(self);
        let started = std::thread::Builder::new().name("subactor-executor-replace".into()).spawn(move || {
            let this = &pool.lanes[lane];
            let spawned = match pool.runtime.upgrade() {
                Some(rt) => this.recipe.spawn(&rt, index),
                None => Err(SpawnError::ShutDown),
            };
            match spawned {
                Ok(actor) => {
                    let slot = &this.slots[index];
                    *lock(&slot.actor) = Some(actor.clone());
                    slot.given.store(0, Ordering::SeqCst);
                    if pool.stopping.load(Ordering::SeqCst) {
                        actor.stop();
                    }
                    this.release(index);
                    pool.pump(lane);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot start an executor worker");
                    let _ = this.failed.set(error.to_string());
                    pool.retire(lane, index);
                }
            }
            pool.replaced();
        });
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start a thread to start an executor worker");
            let _ = self.lanes[lane].failed.set(format!("cannot start a thread: {error}"));
            self.retire(lane, index);
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

    /// Takes slot `index` of `lane` out for good (its worker stopped, or could not be
    /// started), counting it out once; with the lane's last worker gone, what is queued
    /// there fails.
    fn retire(self: &Arc<Self>, lane: usize, index: usize) {
        let this = &self.lanes[lane];
        let was = this.slots[index].inflight.swap(DEAD, Ordering::SeqCst);
        if was < DEAD && this.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.fail_lane(lane);
        }
    }

    /// Fails what is queued in `lane` (its workers have all stopped, or the pool is
    /// broken): those tasks will never run. (What waits in the interpreter lane of an
    /// `auto` pool whose initializer refused interpreters goes to processes instead.)
    fn fail_lane(self: &Arc<Self>, lane: usize) {
        if lane == MAIN_LANE && self.interpreters_refused.load(Ordering::SeqCst) && self.broken.get().is_none() {
            self.move_queued_to_processes();
            return;
        }
        let this = &self.lanes[lane];
        let tx = dispatch::sender();
        while let Ok(task) = this.queue.1.try_recv() {
            if task.state.transition(PENDING, DISPATCHED) {
                let outcome = match this.failed.get() {
                    Some(why) if self.broken.get().is_none() => Outcome::Failed(BoxError::from(CannotStart(format!(
                        "the executor's {} workers cannot start: {why}",
                        this.recipe.placement.as_str()
                    )))),
                    _ => Outcome::NotHandled,
                };
                let _ = tx.send(Event::Reply { ticket: task.ticket, outcome });
            }
        }
    }

    /// Fails what is queued in every lane (the pool is broken).
    fn fail_queued(self: &Arc<Self>) {
        for lane in 0..self.lanes.len() {
            self.fail_lane(lane);
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
    /// started or replaced, or until `deadline`.
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

    /// The current workers, of every lane.
    fn actors(&self) -> Vec<AnyRef> {
        self.lanes.iter().flat_map(|lane| (0..lane.slots.len()).filter_map(|i| lane.actor(i))).collect()
    }

    /// The workers not retired for good (a slot that could not be restarted, or the
    /// interpreter workers of an `auto` pool whose initializer needs a process).
    fn live_actors(&self) -> Vec<AnyRef> {
        self.lanes
            .iter()
            .flat_map(|lane| {
                (0..lane.slots.len())
                    .filter(|&i| lane.slots[i].inflight.load(Ordering::SeqCst) != DEAD)
                    .filter_map(|i| lane.actor(i))
            })
            .collect()
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

impl Lane {
    /// Claims slot `index` if its worker is idle.
    fn claim_at(&self, index: usize) -> bool {
        self.slots[index].inflight.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }
}

/// Why a task waiting in a lane whose workers could not be started never runs (it fails
/// with `BrokenExecutor`, saying so).
#[derive(Debug)]
struct CannotStart(String);

impl std::fmt::Display for CannotStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CannotStart {}

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
        Outcome::Failed(error) => match error.downcast_ref::<CannotStart>() {
            Some(CannotStart(why)) => failed(broken_executor(py, why, None)),
            None => failed(errors::handler(py, &error)),
        },
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
    // A sixth item says that the failure is a refusal of the interpreter (an `auto` pool
    // sends such a task elsewhere; others fail it with the exception, which names it).
    let ([_, pickled, type_name, message, traceback] | [_, pickled, type_name, message, traceback, _]) =
        items.as_slice()
    else {
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
    /// the wait, and kills the workers that started meanwhile). The recipe's placement is
    /// the executor's: `Auto` starts interpreter workers, and a lane of as many process
    /// workers started when a task first needs one.
    pub(crate) fn start(
        py: Python<'_>,
        rt: Arc<Runtime>,
        recipe: WorkerRecipe,
        workers: usize,
        max_tasks: Option<usize>,
        owner: Option<Py<PyAny>>,
    ) -> PyResult<ExecutorCore> {
        let placement = recipe.placement;
        let first = match placement {
            Placement::Auto => WorkerRecipe { placement: Placement::Interpreter, ..recipe.clone() },
            Placement::Interpreter | Placement::Process => recipe.clone(),
            Placement::Thread => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "placement must be 'auto', 'interpreter' or 'process', got 'thread'",
                ));
            }
        };
        let spawner = (Arc::clone(&rt), first.clone());
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
        let auto = placement == Placement::Auto;
        let mut lanes = vec![Lane::new(spawned.into_iter().map(Some).collect(), first, auto)];
        if auto {
            lanes.push(Lane::new(vec![None; workers], recipe.in_processes(), false));
        }
        Ok(ExecutorCore { pool: Pool::new(lanes, &rt, max_tasks, owns_runtime, placement), _owner: owner })
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
        let lane = self.pool.route(&msg);
        if lane != MAIN_LANE {
            self.pool.start_lane(lane);
        }
        self.pool.submit(lane, Task { ticket, msg, state, done: Vec::new() });
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
        for lane in &self.pool.lanes {
            let mut keep = Vec::new();
            while let Ok(task) = lane.queue.1.try_recv() {
                match cancel_ticket(py, task.ticket) {
                    Some(future) => cancelled.push(future),
                    None => keep.push(task),
                }
            }
            for task in keep {
                let _ = lane.queue.0.send(task);
            }
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

    /// The workers, as `ActorRef`s (an `auto` executor's process workers once started).
    #[getter]
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.pool.live_actors().into_iter().map(|actor| conv::new_ref(py, actor)).collect()
    }

    /// Tasks submitted and not yet completed.
    #[getter]
    fn outstanding(&self) -> usize {
        lock(&self.pool.work).tasks
    }

    /// Tasks waiting in the queues (not yet handed to a worker).
    #[getter]
    fn queued(&self) -> usize {
        self.pool.lanes.iter().map(|lane| lane.queue.1.len()).sum()
    }

    /// Where the workers run: `"interpreter"`, `"process"` or `"auto"`.
    #[getter]
    fn placement(&self) -> &'static str {
        self.pool.placement.as_str()
    }

    /// Tasks (a chunk counts as one) that ran in interpreter workers, and in process
    /// workers (a task an interpreter refused counts once, where it ran in the end).
    #[getter]
    fn ran(&self) -> (usize, usize) {
        (self.pool.ran[0].load(Ordering::Relaxed), self.pool.ran[1].load(Ordering::Relaxed))
    }

    /// What an `auto` executor sends straight to process workers: whether everything is
    /// (its initializer refused interpreters), the modules that cannot load in an
    /// interpreter, and the functions (`module.qualname`, or `<by value>`) that met such a
    /// module.
    #[getter]
    fn routed(&self) -> (bool, Vec<String>, Vec<String>) {
        let everything = self.pool.interpreters_refused.load(Ordering::SeqCst);
        let routes = lock(&self.pool.routes);
        let mut modules: Vec<String> = routes.modules.iter().cloned().collect();
        let mut functions: Vec<String> = routes
            .functions
            .iter()
            .map(|key| match key {
                FnKey::Named(module, qualname) => format!("{module}.{qualname}"),
                FnKey::Pickled(_) => "<by value>".to_owned(),
            })
            .collect();
        modules.sort();
        functions.sort();
        (everything, modules, functions)
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
