//! `RuntimeCore`: the native side of `subactor.Runtime`, a [`subactor::Runtime`] driven
//! from the main interpreter.
//!
//! Everything that may wait for actors (spawning, closing, the executor's start) runs
//! with the GIL released: an actor's thread takes the main interpreter's GIL for a moment
//! when it creates or ends its interpreter, so waiting for it with the GIL held would
//! deadlock. Waits are sliced, so Ctrl-C interrupts them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use subactor::{
    ArenaConfig, Auth, ClusterConfig, Launcher, MainModule, Placement, PyActor, PythonActor, Runtime, Snapshots,
    StateStore, Upgrade,
};
use subactor_core::{FailurePolicy, SpawnError, TimerId, Value};
use subactor_host::{StartError, main_interpreter as main};

use crate::dead_letters::DeadLetterSubscription;
use crate::executor::{ExecutorCore, WorkerRecipe};
use crate::pipeline::{self, PipelineCore};
use crate::supervision::{SupervisorRef, supervisor_spec};
use crate::wait::{self, Waited};
use crate::{conv, dispatch, errors};

/// Runtimes of this process not yet closed; the dispatcher stops with the last.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The options of a Python actor that the Python API passes by keyword.
#[derive(Default)]
pub(crate) struct ActorOptions {
    pub(crate) name: Option<String>,
    pub(crate) mailbox: Option<usize>,
    pub(crate) core: Option<usize>,
    pub(crate) on_failure: Option<String>,
    pub(crate) time_limit: Option<f64>,
    pub(crate) placement: Option<String>,
    pub(crate) memory_limit: Option<u64>,
    /// An asyncio actor's `max_concurrency`.
    pub(crate) max_concurrency: Option<usize>,
    /// Snapshots: `"message"`, `"checkpoint"`, or every N messages.
    pub(crate) snapshots: Option<Snapshots>,
    /// A directory store for them.
    pub(crate) state_dir: Option<String>,
    /// Another store for them: `"memory"` or `"cluster"`.
    pub(crate) state_store: Option<String>,
}

/// Reads a snapshot policy: `"message"` (after every message), `"checkpoint"` (on
/// `subactor.checkpoint()` only) or a positive number of messages.
pub(crate) fn snapshot_policy(value: &Bound<'_, PyAny>) -> PyResult<Snapshots> {
    if let Ok(text) = value.extract::<String>() {
        return match text.as_str() {
            "message" => Ok(Snapshots::EveryMessage),
            "checkpoint" => Ok(Snapshots::OnCheckpoint),
            other => Err(PyValueError::new_err(format!(
                "snapshots must be 'message', 'checkpoint' or a positive number of messages, got {other:?}"
            ))),
        };
    }
    match value.extract::<u32>() {
        Ok(n) if n > 0 => Ok(Snapshots::Every(n)),
        _ => Err(PyValueError::new_err("snapshots must be 'message', 'checkpoint' or a positive number of messages")),
    }
}

impl ActorOptions {
    /// The recipe of `module.class(*args)` with these options.
    pub(crate) fn spec(self, module: String, class: String, args: &Bound<'_, PyTuple>) -> PyResult<PythonActor> {
        let args = conv::to_value(args.as_any())?;
        let mut spec = PythonActor::new(module, class).args(args);
        if let Some(name) = self.name {
            spec = spec.name(name);
        }
        if let Some(capacity) = self.mailbox {
            spec = spec.mailbox_capacity(capacity);
        }
        if let Some(core) = self.core {
            spec = spec.pin_to_core(core);
        }
        if let Some(policy) = self.on_failure {
            spec = spec.on_failure(failure_policy(&policy)?);
        }
        if let Some(limit) = self.time_limit {
            spec = spec.time_limit(wait::seconds(limit, "time_limit")?);
        }
        if let Some(placement) = self.placement {
            spec = spec.placement(placement_of(&placement)?);
        }
        if let Some(limit) = self.memory_limit {
            if spec.requested_placement() != Placement::Process {
                return Err(PyValueError::new_err(
                    "memory_limit applies to process actors only (placement=\"process\")",
                ));
            }
            if limit == 0 {
                return Err(PyValueError::new_err("memory_limit must be a positive number of bytes"));
            }
            spec = spec.memory_limit(limit);
        }
        if let Some(n) = self.max_concurrency {
            if n == 0 {
                return Err(PyValueError::new_err("max_concurrency must be at least 1"));
            }
            spec = spec.max_concurrency(n);
        }
        if let Some(policy) = self.snapshots {
            spec = spec.snapshots(policy);
        }
        if let Some(dir) = self.state_dir {
            if self.snapshots.is_none() {
                return Err(PyValueError::new_err("state_dir needs snapshots= (when to take them)"));
            }
            spec = spec.state_store(StateStore::Directory(PathBuf::from(dir)));
        }
        if let Some(store) = self.state_store {
            if self.snapshots.is_none() {
                return Err(PyValueError::new_err("state_store needs snapshots= (when to take them)"));
            }
            let store = match store.as_str() {
                "memory" => StateStore::Memory,
                "cluster" => StateStore::Cluster,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "state_store must be 'memory' or 'cluster', got {other:?}"
                    )));
                }
            };
            if spec.state_store_kind() != &StateStore::Memory {
                return Err(PyValueError::new_err(
                    "state_dir and state_store name two different stores: give one of them",
                ));
            }
            spec = spec.state_store(store);
        }
        Ok(spec)
    }
}

/// Reads a placement's name: where a Python actor's handlers run.
pub(crate) fn placement_of(name: &str) -> PyResult<Placement> {
    match name.parse::<Placement>() {
        Ok(placement @ (Placement::Interpreter | Placement::Process | Placement::Auto)) => Ok(placement),
        _ => Err(PyValueError::new_err(format!("placement must be 'auto', 'interpreter' or 'process', got {name:?}"))),
    }
}

/// Reads a failure policy's name.
pub(crate) fn failure_policy(name: &str) -> PyResult<FailurePolicy> {
    match name {
        "resume" => Ok(FailurePolicy::Resume),
        "restart" => Ok(FailurePolicy::Restart),
        "stop" => Ok(FailurePolicy::Stop),
        other => Err(PyValueError::new_err(format!("on_failure must be 'resume', 'restart' or 'stop', got {other:?}"))),
    }
}

/// Runs `work` on a new thread and waits for it (GIL released, Ctrl-C interrupts the
/// wait). If the wait is interrupted, `abandon` gets the result when it comes, on that
/// thread (to undo it: kill the actor that was spawned meanwhile).
pub(crate) fn off_thread<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send + 'static,
    abandon: impl FnOnce(T) + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = flume::bounded(1);
    std::thread::Builder::new()
        .name("subactor-spawn".into())
        .spawn(move || {
            if let Err(unwanted) = tx.send(work()) {
                abandon(unwanted.into_inner());
            }
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a thread: {e}")))?;
    match wait::recv(py, &rx, None)? {
        Waited::Got(result) => Ok(result),
        Waited::TimedOut | Waited::Disconnected => Err(PyRuntimeError::new_err("the spawning thread died")),
    }
}

/// Spawns a Python actor, waiting interruptibly: on this thread, with the GIL released
/// (a spawn made on a thread of its own, as before, cost the thread's start and one more
/// wake-up: 0.3-0.4 ms of a process actor's ~2 ms spawn). A signal handler's exception
/// gives the spawn up: the actor is killed once it has started.
pub(crate) fn spawn_actor(
    py: Python<'_>,
    rt: Arc<Runtime>,
    spec: PythonActor,
) -> PyResult<subactor::ActorRef<PyActor>> {
    let pending = py.detach(move || rt.begin_spawn(spec)).map_err(|error| errors::spawn(py, &error))?;
    match wait::retry(py, None, pending, |pending, slice| pending.wait_timeout(slice))? {
        Ok(spawned) => spawned.map_err(|error| errors::spawn(py, &error)),
        // No deadline: only an outcome ends the wait.
        Err(_still_starting) => Err(PyRuntimeError::new_err("the spawn ended without an outcome")),
    }
}

/// `Runtime`'s cluster options: (urls, node, cluster name, user, password, token,
/// trusted).
type ClusterTuple = (Vec<String>, String, Option<String>, Option<String>, Option<String>, Option<String>, bool);

/// What the template process of process actors runs (`python -c`).
const TEMPLATE_CODE: &str = "from subactor import _native; _native._run_template()";

/// The native side of `subactor.Runtime`.
#[pyclass(module = "subactor._native", frozen)]
pub(crate) struct RuntimeCore {
    rt: Mutex<Option<Arc<Runtime>>>,
    /// Its pipelines, aborted before it shuts down (see `pipeline::Shared::abort`).
    pipelines: Mutex<Vec<Weak<pipeline::Shared>>>,
}

impl RuntimeCore {
    fn slot(&self) -> MutexGuard<'_, Option<Arc<Runtime>>> {
        self.rt.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The runtime, or `ActorStopped` once closed.
    pub(crate) fn runtime(&self, py: Python<'_>) -> PyResult<Arc<Runtime>> {
        errors::not_forked()?;
        self.slot().clone().ok_or_else(|| errors::new(py, c"ActorStopped", ("the runtime is closed",)))
    }

    fn spawn_runtime(&self, py: Python<'_>) -> PyResult<Arc<Runtime>> {
        errors::not_forked()?;
        self.slot().clone().ok_or_else(|| errors::spawn(py, &SpawnError::<StartError>::ShutDown))
    }
}

#[pymethods]
impl RuntimeCore {
    /// Starts a runtime whose actors find modules on `python_path` first and load the
    /// main program (`main_path` or `main_name`) when they need what it defines.
    #[new]
    #[pyo3(signature = (python_path, main_path=None, main_name=None, mailbox_capacity=None, spin=None, arena_max_bytes=None, preload=Vec::new(), executable=None, cluster=None, warm_interpreters=0, metrics=false, observe=None, warm_imports=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        python_path: Vec<String>,
        main_path: Option<String>,
        main_name: Option<String>,
        mailbox_capacity: Option<usize>,
        spin: Option<f64>,
        arena_max_bytes: Option<usize>,
        preload: Vec<String>,
        executable: Option<String>,
        cluster: Option<ClusterTuple>,
        warm_interpreters: usize,
        metrics: bool,
        observe: Option<String>,
        warm_imports: Option<Vec<String>>,
    ) -> PyResult<RuntimeCore> {
        // None: the modules of recently spawned actors; a list (empty: nothing).
        let imports = match warm_imports {
            None => subactor::WarmImports::Recent,
            Some(modules) if modules.is_empty() => subactor::WarmImports::None,
            Some(modules) => subactor::WarmImports::Modules(modules),
        };
        let mut builder = Runtime::builder()
            .python_path(python_path)
            .preload(preload)
            .warm_imports(imports)
            .warm_interpreters(warm_interpreters)
            .metrics(metrics);
        if let Some(addr) = observe {
            builder = builder.observe(subactor::ObserveConfig::at(addr));
        }
        if let Some((urls, node, name, user, password, token, trusted)) = cluster {
            let auth = match (user, password, token) {
                (Some(user), Some(password), _) => Auth::UserPassword { user, password },
                (_, _, Some(token)) => Auth::Token(token),
                _ => Auth::None,
            };
            let mut config = ClusterConfig::new(urls, node).auth(auth).trusted(trusted);
            if let Some(name) = name {
                config = config.cluster_name(name);
            }
            builder = builder.cluster(config);
        }
        // Process actors are forked from a template process: this Python interpreter,
        // running the package's entry point (the program's own binary is Python here).
        if let Some(executable) = executable {
            builder = builder
                .launcher(Launcher::Python { executable: PathBuf::from(executable), code: TEMPLATE_CODE.to_owned() });
        }
        if let Some(path) = main_path {
            builder = builder.main_module(MainModule::Script(PathBuf::from(path)));
        } else if let Some(name) = main_name {
            builder = builder.main_module(MainModule::Module(name));
        }
        if let Some(capacity) = mailbox_capacity {
            if capacity == 0 {
                return Err(PyValueError::new_err("mailbox_capacity must be at least 1"));
            }
            builder = builder.mailbox_capacity(capacity);
        }
        if let Some(spin) = spin {
            builder = builder.spin(wait::seconds(spin, "spin")?);
        }
        if let Some(max) = arena_max_bytes {
            // A small limit gets segments (and a large-buffer threshold) that fit in it.
            let defaults = ArenaConfig::new();
            let segment = defaults.segment_size().min(max);
            let config = ArenaConfig::new()
                .with_max_bytes(max)
                .with_segment_size(segment)
                .with_large_threshold(defaults.large_threshold().min(segment));
            builder = builder.arena(config);
        }
        let rt = builder.build().map_err(|e| match e {
            subactor::Error::Observe(subactor::ObserveError::BadAddress(_)) => PyValueError::new_err(e.to_string()),
            subactor::Error::Observe(subactor::ObserveError::Bind { .. }) => {
                pyo3::exceptions::PyOSError::new_err(e.to_string())
            }
            e => PyRuntimeError::new_err(e.to_string()),
        })?;
        OPEN.fetch_add(1, Ordering::SeqCst);
        Ok(RuntimeCore { rt: Mutex::new(Some(Arc::new(rt))), pipelines: Mutex::default() })
    }

    /// Spawns `module.class_name(*args)` and returns its `ActorRef` once it runs.
    #[pyo3(signature = (module, class_name, args, name=None, mailbox=None, core=None, on_failure=None, time_limit=None, placement=None, memory_limit=None, node=None, max_concurrency=None, snapshots=None, state_dir=None, state_store=None))]
    #[allow(clippy::too_many_arguments)]
    fn spawn<'py>(
        &self,
        py: Python<'py>,
        module: String,
        class_name: String,
        args: &Bound<'py, PyTuple>,
        name: Option<String>,
        mailbox: Option<usize>,
        core: Option<usize>,
        on_failure: Option<String>,
        time_limit: Option<f64>,
        placement: Option<String>,
        memory_limit: Option<u64>,
        node: Option<String>,
        max_concurrency: Option<usize>,
        snapshots: Option<Bound<'py, PyAny>>,
        state_dir: Option<String>,
        state_store: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let snapshots = snapshots.map(|s| snapshot_policy(&s)).transpose()?;
        let options = ActorOptions {
            name,
            mailbox,
            core,
            on_failure,
            time_limit,
            placement,
            memory_limit,
            max_concurrency,
            snapshots,
            state_dir,
            state_store,
        };
        let spec = options.spec(module, class_name, args)?;
        let rt = self.spawn_runtime(py)?;
        if let Some(node) = node {
            let spawned = off_thread(
                py,
                move || rt.spawn_on(&node, spec),
                |spawned| {
                    if let Ok(actor) = spawned {
                        actor.kill();
                    }
                },
            )?;
            let actor = spawned.map_err(|error| errors::new(py, c"SpawnError", (error.to_string(),)))?;
            return conv::new_ref(py, actor);
        }
        let actor = spawn_actor(py, rt, spec)?;
        conv::new_ref(py, actor.into())
    }

    /// Upgrades the Python actor with this id in place (see `Runtime.upgrade`).
    #[pyo3(signature = (actor_id, module=None, class_name=None))]
    fn upgrade(
        &self,
        py: Python<'_>,
        actor_id: u64,
        module: Option<String>,
        class_name: Option<String>,
    ) -> PyResult<()> {
        let rt = self.runtime(py)?;
        let host = rt
            .system()
            .extension::<subactor::PythonHost>()
            .ok_or_else(|| errors::new(py, c"ActorStopped", ("the runtime is closed",)))?;
        host.upgrade(subactor::ActorId::from_u64(actor_id), Upgrade { module, class: class_name })
            .map_err(|error| errors::new(py, c"ActorStopped", (error.to_string(),)))
    }

    /// Upgrades every running Python child of `supervisor` (see
    /// `Runtime.upgrade_children`); returns how many.
    #[pyo3(signature = (supervisor, module=None, class_name=None))]
    fn upgrade_children(
        &self,
        py: Python<'_>,
        supervisor: PyRef<'_, SupervisorRef>,
        module: Option<String>,
        class_name: Option<String>,
    ) -> PyResult<usize> {
        let rt = self.runtime(py)?;
        rt.upgrade_children(supervisor.actor(), &Upgrade { module, class: class_name })
            .map_err(|error| errors::new(py, c"ActorStopped", (error.to_string(),)))
    }

    /// Starts an executor's pool: `workers` workers (the class `Worker` of the file
    /// `worker_path`, constructed with `worker_args`), all at once; worker i is pinned to
    /// core i modulo the cores when `pin` is set. A worker is replaced by a fresh one
    /// after `max_tasks` tasks. `owner`: this runtime's Python object when the executor
    /// opened it for itself (the pool then shuts it down with its workers). `placement`:
    /// where the workers run (`"auto"`: interpreters, and processes for the tasks that
    /// need one; see `executor.rs`).
    #[pyo3(signature = (workers, worker_path, pin=false, worker_args=None, max_tasks=None, owner=None, placement="interpreter"))]
    #[allow(clippy::too_many_arguments)]
    fn executor(
        &self,
        py: Python<'_>,
        workers: usize,
        worker_path: String,
        pin: bool,
        worker_args: Option<&Bound<'_, PyTuple>>,
        max_tasks: Option<usize>,
        owner: Option<Py<PyAny>>,
        placement: &str,
    ) -> PyResult<ExecutorCore> {
        let placement = placement_of(placement)?;
        if workers == 0 {
            return Err(PyValueError::new_err("max_workers must be greater than 0"));
        }
        if max_tasks == Some(0) {
            return Err(PyValueError::new_err("max_tasks_per_child must be >= 1"));
        }
        let args = match worker_args {
            Some(args) => conv::to_value(args.as_any())?,
            None => Value::Tuple(Vec::new()),
        };
        let rt = self.spawn_runtime(py)?;
        let recipe = WorkerRecipe { worker_path, args, pin, placement };
        ExecutorCore::start(py, rt, recipe, workers, max_tasks, owner)
    }

    /// Spawns a supervisor from a spec tree (see `subactor/_supervision.py`).
    fn supervise(&self, py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<SupervisorRef> {
        let spec = supervisor_spec(spec)?;
        let rt = self.spawn_runtime(py)?;
        let supervisor = off_thread(
            py,
            move || rt.spawn(spec),
            |spawned| {
                if let Ok(supervisor) = spawned {
                    supervisor.kill();
                }
            },
        )?
        .map_err(|error| errors::new(py, c"SpawnError", (error.to_string(),)))?;
        Ok(SupervisorRef::new(supervisor))
    }

    /// Builds a pipeline from `(name, workers, routing)` stages.
    #[pyo3(signature = (stages, ordered=false, capacity=None))]
    fn pipeline(
        &self,
        py: Python<'_>,
        stages: Vec<(String, Vec<Bound<'_, PyAny>>, String)>,
        ordered: bool,
        capacity: Option<usize>,
    ) -> PyResult<PipelineCore> {
        self.runtime(py)?;
        let pipeline = PipelineCore::build(stages, ordered, capacity)?;
        let mut pipelines = self.pipelines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pipelines.retain(|p| p.strong_count() > 0);
        pipelines.push(pipeline.shared());
        Ok(pipeline)
    }

    /// The running Python actor with this name, or `None`.
    fn lookup<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let rt = self.runtime(py)?;
        let name = name.to_owned();
        // A lookup in a cluster may ask the registry over the network: off the GIL.
        let found = py.detach(move || rt.lookup_any(&name));
        found.map(|actor| conv::new_ref(py, actor)).transpose()
    }

    /// Tells `msg` to `actor` after `delay` seconds; returns the timer's id.
    fn send_after(
        &self,
        py: Python<'_>,
        delay: f64,
        actor: &Bound<'_, PyAny>,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let rt = self.runtime(py)?;
        let delay = wait::seconds(delay, "delay")?;
        let target = conv::actor_of(actor)?;
        let msg = conv::to_value(msg)?;
        rt.system()
            .send_after(delay, target, msg)
            .map(TimerId::as_u64)
            .ok_or_else(|| errors::new(py, c"ActorStopped", ("the runtime is closed",)))
    }

    /// Cancels a `send_after` timer; `True` if it had not fired.
    fn cancel_timer(&self, py: Python<'_>, timer: u64) -> PyResult<bool> {
        Ok(self.runtime(py)?.system().cancel_timer(TimerId::from_u64(timer)))
    }

    /// The arena's counters: `(bytes_live, buffers_live, segments_mapped, bytes_mapped)`.
    fn arena_stats(&self, py: Python<'_>) -> PyResult<(usize, usize, usize, usize)> {
        let stats = self.runtime(py)?.arena().stats();
        Ok((stats.bytes_live, stats.buffers_live, stats.segments_mapped, stats.bytes_mapped))
    }

    /// A writable, zero-filled buffer of the runtime's arena.
    fn alloc<'py>(&self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyAny>> {
        let buffer = self.runtime(py)?.arena().alloc(size).map_err(|e| PyMemoryError::new_err(e.to_string()))?;
        // SAFETY: GIL held in the main interpreter; a new reference or null with an
        // exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, main::new_buffer_mut(buffer)) }
    }

    /// Copies a bytes-like object into a new immutable buffer of the runtime's arena.
    fn buffer<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let rt = self.runtime(py)?;
        let view = PyBuffer::<u8>::get(data)?;
        if !view.is_c_contiguous() {
            return Err(PyValueError::new_err("buffer() takes a contiguous bytes-like object"));
        }
        // SAFETY: the view keeps the exporter's memory alive and unchanged in size while
        // it lives; it is C-contiguous with `len_bytes` bytes at `buf_ptr`; the copy
        // happens before the view is released.
        let data = unsafe { std::slice::from_raw_parts(view.buf_ptr().cast::<u8>(), view.len_bytes()) };
        let buffer = rt.arena().copy_from(data).map_err(|e| PyMemoryError::new_err(e.to_string()))?;
        drop(view);
        // SAFETY: as in `alloc`.
        unsafe { Bound::from_owned_ptr_or_err(py, main::new_buffer(buffer)) }
    }

    /// How many messages have become dead letters.
    fn dead_letter_count(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.runtime(py)?.dead_letters().count())
    }

    /// A subscription to the dead letters from now on.
    fn subscribe_dead_letters(&self, py: Python<'_>) -> PyResult<DeadLetterSubscription> {
        Ok(DeadLetterSubscription::new(self.runtime(py)?.dead_letters().subscribe()))
    }

    /// The warm pool's (size, ready, hits, misses, imported).
    fn warm_pool(&self, py: Python<'_>) -> PyResult<(usize, usize, u64, u64, u64)> {
        let stats = self.runtime(py)?.warm_pool();
        Ok((stats.size, stats.ready, stats.hits, stats.misses, stats.imported))
    }

    /// A snapshot of the runtime's actors and totals, as the JSON of the observation
    /// endpoint's `/api/metrics` (without rates).
    fn metrics_json(&self, py: Python<'_>) -> PyResult<String> {
        let rt = self.runtime(py)?;
        Ok(subactor::metrics::json::snapshot(&rt.metrics(), None).to_string())
    }

    /// Where the observation endpoint listens (`host:port`), if one was started.
    fn observe_address(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.runtime(py)?.observer_addr().map(|a| a.to_string()))
    }

    /// How many actors are alive.
    fn actor_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.runtime(py)?.system().actor_count())
    }

    /// Whether `close` has run.
    #[getter]
    fn closed(&self) -> bool {
        // In a forked child nothing of it runs (and its lock may be stuck).
        subactor_host::fork::inherited_runtime() || self.slot().is_none()
    }

    /// Shuts the runtime down: kills every actor (each finishes the message it handles;
    /// a handler running Python code is interrupted), ends every interpreter, and waits
    /// for all of it. Calling it again does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if subactor_host::fork::inherited_runtime() {
            // A forked child: the actors and threads live in the parent. Closed here by
            // doing nothing (and leaking what the child's copy holds; see `Drop`).
            return Ok(());
        }
        let Some(rt) = self.slot().take() else { return Ok(()) };
        let pipelines: Vec<_> =
            std::mem::take(&mut *self.pipelines.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let result = py.detach(move || {
            for pipeline in pipelines.iter().filter_map(Weak::upgrade) {
                pipeline.abort();
            }
            rt.shutdown()
        });
        if OPEN.fetch_sub(1, Ordering::SeqCst) == 1 {
            dispatch::stop(py)?;
        }
        result.map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

impl Drop for RuntimeCore {
    fn drop(&mut self) {
        let rt = self.rt.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if subactor_host::fork::inherited_runtime() {
            // A forked child: shutting down would wait for threads that exist only in
            // the parent. The child's copy is left as it is.
            std::mem::forget(rt);
            std::mem::forget(std::mem::take(
                self.pipelines.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner),
            ));
            return;
        }
        if let Some(rt) = rt {
            OPEN.fetch_sub(1, Ordering::SeqCst);
            let pipelines = std::mem::take(self.pipelines.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
            for pipeline in pipelines.iter().filter_map(Weak::upgrade) {
                pipeline.abort();
            }
            // Shutting down waits for actor threads, which need the main GIL to end their
            // interpreters: release it meanwhile.
            Python::attach(|py| py.detach(move || drop(rt.shutdown())));
        }
    }
}
