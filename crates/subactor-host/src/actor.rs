//! [`PythonActor`] (the recipe) and [`PyActor`] (the running actor).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use subactor_core::{
    Actor, ActorContext, FailurePolicy, Fault, Finished, Interrupt, InterruptCause, Placement, Spawn, SpawnOptions,
    StopReason, TellBatch, Value, Waker,
};
use tracing::{debug, info, warn};

use crate::ffi::interp::{Incarnation, Interpreter};
use crate::ffi::module::{ActorLink, FinishSink};
use crate::process::{ChildProcess, LocalEnv};
use crate::state::{Keeper, Snapshots, StateStore, Store, Upgrade};
use crate::{PythonException, PythonHost, ReceiveError, StartError};
use subactor_wire::{SpawnRequest, SpawnSettings};

/// How long a process actor's handler may take to end after a kill or a time limit
/// was raised in it, before its process is killed.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_millis(500);

/// The recipe of a Python actor: a module, a class in it, and constructor arguments.
///
/// The module is a dotted import path (`"examples.python.primes"`, found on the
/// runtime's Python path) or the path of a `.py` file. Each actor gets its own
/// own-GIL subinterpreter on its own thread, imports the module there, and calls
/// `Class(*args)`. Every message then calls the instance's `receive(msg)`; an ask gets
/// its return value.
///
/// ```no_run
/// use subactor_host::PythonActor;
///
/// let counter = PythonActor::new("examples.python.primes", "Counter").args((0,)).name("c");
/// ```
#[derive(Clone, Debug)]
pub struct PythonActor {
    module: String,
    class: String,
    args: Vec<Value>,
    options: SpawnOptions,
    keep_interpreter: bool,
    placement: Placement,
    memory_limit: Option<u64>,
    kill_grace: Duration,
    snapshots: Option<Snapshots>,
    store: StateStore,
    /// The store as this runtime provides it, once the actor has started.
    resolved: Option<Store>,
    max_concurrency: usize,
    /// The host, kept for `release` to unregister the actor from its upgrades.
    host_for_release: Option<Arc<PythonHost>>,
    /// Shared by the recipe's clones and its running actor: the memory store, upgrades.
    keeper: Arc<Keeper>,
    /// The actor this recipe runs, once started (for the host's upgrade registry).
    id: Option<subactor_core::ActorId>,
}

thread_local! {
    /// The interpreter an actor of this thread keeps across restarts
    /// ([`PythonActor::keep_interpreter_on_restart`]); emptied by `Spawn::release`.
    static KEPT: RefCell<Option<PyActor>> = const { RefCell::new(None) };
    /// An interpreter of the warm pool, created on this thread and waiting for the
    /// actor this thread will run (see `pool.rs`).
    static WARM: RefCell<Option<Interpreter>> = const { RefCell::new(None) };
}

/// Keeps `interp`, created on this thread, for the actor this thread will run.
pub(crate) fn set_warm(interp: Interpreter) {
    WARM.set(Some(interp));
}

/// The warm interpreter of this thread, if it has one not taken yet.
pub(crate) fn take_warm() -> Option<Interpreter> {
    WARM.with_borrow_mut(Option::take)
}

impl PythonActor {
    /// An actor of `class` from `module` (dotted name or `.py` path), built with no
    /// arguments.
    pub fn new(module: impl Into<String>, class: impl Into<String>) -> PythonActor {
        PythonActor {
            module: module.into(),
            class: class.into(),
            args: Vec::new(),
            options: SpawnOptions::default(),
            keep_interpreter: false,
            placement: Placement::Auto,
            memory_limit: None,
            kill_grace: DEFAULT_KILL_GRACE,
            snapshots: None,
            store: StateStore::Memory,
            resolved: None,
            max_concurrency: 1,
            host_for_release: None,
            keeper: Keeper::new(),
            id: None,
        }
    }

    /// Keeps snapshots of the actor's state so that a restart restores it: the class
    /// defines `snapshot(self)`, returning its state (any value that can be sent to an
    /// actor), and `restore(self, state)`. A snapshot is taken after the messages
    /// `policy` counts, and whenever the actor calls `subactor.checkpoint()` (when that
    /// handler returns); never after a handler that raised. A restart — in a fresh
    /// interpreter, or in a new process for a process actor — calls `restore` with the
    /// latest snapshot, after `__init__` and before `started` and the first message.
    ///
    /// What a restart loses: whatever the messages handled since the latest snapshot
    /// did to the state (with [`Snapshots::EveryMessage`], nothing but the message that
    /// failed, whose effects die with its incarnation), and module-level state. The
    /// messages still queued are not lost: they wait for the next incarnation.
    ///
    /// The recipe's clones (a supervisor's child spec) share its memory store.
    #[must_use]
    pub fn snapshots(mut self, policy: Snapshots) -> PythonActor {
        self.snapshots = Some(policy);
        self
    }

    /// How many messages an asyncio actor (`async def receive`) handles at once, each
    /// as a task on its event loop (1 by default: one after the other). Above 1, a
    /// message is begun as soon as fewer are in hand, and each is answered when it
    /// ends; a time limit applies to each message on its own, and a kill cancels them
    /// all (`CancelledError` inside). A class whose `receive` is not `async def` fails
    /// to spawn with it. In a process actor the tasks run on the event loop of its
    /// child, and a kill whose cancelled tasks do not end within the grace period
    /// ([`PythonActor::kill_grace`]) ends the child.
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> PythonActor {
        self.max_concurrency = n.max(1);
        self
    }

    /// Where snapshots are kept ([`StateStore::Memory`] by default).
    #[must_use]
    pub fn state_store(mut self, store: StateStore) -> PythonActor {
        self.store = store;
        self.resolved = None;
        self
    }

    /// Where snapshots are kept.
    pub fn state_store_kind(&self) -> &StateStore {
        &self.store
    }

    /// How many messages an asyncio actor handles at once.
    pub fn concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The snapshot policy, if the actor keeps snapshots.
    pub fn snapshot_policy(&self) -> Option<Snapshots> {
        self.snapshots
    }

    /// The latest snapshot kept for this recipe's actor, if any.
    pub fn kept_state(&self) -> Result<Option<Value>, crate::StateError> {
        let store = match (&self.resolved, &self.store) {
            (Some(store), _) => store.clone(),
            (None, StateStore::Memory) => Store::Memory,
            (None, StateStore::Directory(dir)) => Store::Directory(dir.clone()),
            (None, _) => return Err(crate::StateError::NoCluster),
        };
        self.keeper.load(&store, self.options.name.as_deref())
    }

    /// How the next incarnation starts: the kept state (or the one an upgrade carries),
    /// and whether it is an upgrade (then with the module and class it names).
    fn next_incarnation(&mut self, system: &subactor_core::ActorSystem) -> Result<Incarnation, StartError> {
        let named = self.options.name.clone();
        let name = named.as_deref();
        if self.snapshots.is_some() && name.is_none() {
            match self.store {
                StateStore::Directory(_) => return Err(StartError::State(crate::StateError::Unnamed.to_string())),
                StateStore::Cluster => {
                    return Err(StartError::State(crate::StateError::UnnamedInCluster.to_string()));
                }
                _ => {}
            }
        }
        let store = match &self.resolved {
            Some(store) => store.clone(),
            None => {
                let store = Store::resolve(&self.store, system).map_err(|e| StartError::State(e.to_string()))?;
                self.resolved = Some(store.clone());
                store
            }
        };
        let upgrade = self.keeper.take_upgrade();
        let state = match &upgrade {
            Some(Upgrade { module, class }) => {
                if let Some(module) = module {
                    self.module.clone_from(module);
                }
                if let Some(class) = class {
                    self.class.clone_from(class);
                }
                let carried = self.keeper.take_carried();
                if let (Some(state), Some(_)) = (&carried, self.snapshots) {
                    self.keeper.save(&store, name, state.clone()).map_err(|e| StartError::State(e.to_string()))?;
                }
                carried
            }
            None if self.snapshots.is_some() => {
                self.keeper.load(&store, name).map_err(|e| StartError::State(e.to_string()))?
            }
            None => None,
        };
        Ok(Incarnation {
            max_concurrency: self.max_concurrency,
            time_limit: self.options.time_limit,
            snapshot_every: self.snapshots.map(Snapshots::every),
            state,
            upgrading: upgrade.is_some(),
            fresh_code: upgrade.is_some(),
        })
    }

    /// What the running actor needs of the recipe's state keeping.
    fn keeping(&self) -> Keeping {
        Keeping {
            keeper: Arc::clone(&self.keeper),
            snapshots: self.snapshots.is_some(),
            store: self.resolved.clone().unwrap_or(Store::Memory),
            name: self.options.name.clone(),
        }
    }

    /// Where the actor's handlers run: in an own-GIL subinterpreter on the actor's
    /// thread ([`Placement::Interpreter`]), in the main interpreter of a child process
    /// ([`Placement::Process`]: every extension module works there — numpy, pandas,
    /// anything built with PyO3 — and a crash ends only that process, which is a failure
    /// of this actor alone), or ([`Placement::Auto`], the default) in an interpreter
    /// unless the actor's module imports an extension that refuses own-GIL
    /// interpreters, in which case it starts as a process actor, with an info log naming
    /// the extension; the outcome is remembered per class, so later spawns go straight
    /// to the right place. `Interpreter` is strict: such a module fails the spawn with
    /// [`StartError::IncompatibleExtension`]. (An import inside `receive` is not seen at
    /// spawn: it raises `ImportError` there, naming the module.)
    ///
    /// A process actor has the same semantics as any other (mailbox, supervision,
    /// monitors, dead letters live in this process); each message is a round trip to
    /// its child. A restart starts a new child; `keep_interpreter_on_restart` does not
    /// apply. [`Placement::Thread`] is for Rust actors and is refused at spawn.
    #[must_use]
    pub fn placement(mut self, placement: Placement) -> PythonActor {
        self.placement = placement;
        self
    }

    /// Limits a process actor's memory to `bytes` (`RLIMIT_DATA` of its process: the
    /// heap and private mappings, the interpreter's own included; shared memory such
    /// as arena buffers does not count). An allocation past it fails in the handler
    /// (`MemoryError`), a failure of this actor, not of the machine.
    #[must_use]
    pub fn memory_limit(mut self, bytes: u64) -> PythonActor {
        self.memory_limit = Some(bytes);
        self
    }

    /// How long a process actor's handler may take to end after a kill or a time limit
    /// was raised in it before its process is killed ([`DEFAULT_KILL_GRACE`]).
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> PythonActor {
        self.kill_grace = grace;
        self
    }

    /// Where the actor's handlers run.
    pub fn requested_placement(&self) -> Placement {
        self.placement
    }

    /// The constructor's arguments.
    pub fn arguments(&self) -> &[Value] {
        &self.args
    }

    /// Starts the actor in a child process.
    fn start_process(
        &self,
        ctx: &ActorContext<PyActor>,
        host: Arc<PythonHost>,
        incarnation: &Incarnation,
    ) -> Result<PyActor, StartError> {
        let finished = (incarnation.max_concurrency > 1).then(|| Arc::new(FinishSink::default()));
        let child = ChildProcess::start(&host, ctx, self, incarnation, finished.clone())?;
        Ok(PyActor {
            interp: None,
            child: Some(child),
            finished,
            concurrency: incarnation.max_concurrency,
            keep: false,
            keeping: self.keeping(),
            _host: host,
        })
    }

    /// Starts the actor in an own-GIL interpreter on this thread (the one it kept, on a
    /// restart with `keep_interpreter_on_restart`).
    fn start_interpreter(
        &self,
        ctx: &ActorContext<PyActor>,
        host: Arc<PythonHost>,
        incarnation: &Incarnation,
    ) -> Result<PyActor, StartError> {
        if let Some(mut kept) = KEPT.with_borrow_mut(Option::take) {
            debug!(interpreter = kept.interpreter_id(), "restarting in the kept interpreter");
            let interp = kept.interp();
            interp.attach();
            interp.instantiate_with(&self.module, &self.class, &self.args, incarnation)?;
            kept.keeping = self.keeping();
            kept.concurrency = incarnation.max_concurrency;
            return Ok(kept);
        }
        let finished = Arc::new(FinishSink::default());
        let link = ActorLink {
            env: Arc::new(LocalEnv { system: ctx.system().clone() }),
            myself: ctx.myself().clone().into(),
            arena: host.arena().clone(),
            finished: Some(Arc::clone(&finished)),
        };
        let interp = match take_warm() {
            Some(mut warm) => {
                debug!(interpreter = warm.id(), "a warm interpreter from the pool");
                warm.attach();
                // The pool built the module while the interpreter waited.
                warm.link_module(link)?;
                warm
            }
            None => {
                let mut interp = Interpreter::create(host.python_path(), host.main_module())?;
                interp.install_module(link)?;
                interp
            }
        };
        let mut interp = interp;
        debug!(interpreter = interp.id(), module = %self.module, class = %self.class, "interpreter created");
        interp.instantiate_with(&self.module, &self.class, &self.args, incarnation)?;
        Ok(PyActor {
            interp: Some(interp),
            child: None,
            finished: Some(finished),
            concurrency: incarnation.max_concurrency,
            keep: self.keep_interpreter,
            keeping: self.keeping(),
            _host: host,
        })
    }

    pub(crate) fn kill_grace_period(&self) -> Duration {
        self.kill_grace
    }

    pub(crate) fn memory_limit_bytes(&self) -> Option<u64> {
        self.memory_limit
    }

    pub(crate) fn options_core(&self) -> Option<usize> {
        self.options.core
    }

    /// The constructor's positional arguments: a tuple gives one argument per item
    /// (`()` none, `(0,)` one); any other value is the single argument.
    #[must_use]
    pub fn args(mut self, args: impl Into<Value>) -> PythonActor {
        self.args = match args.into() {
            Value::Tuple(items) => items,
            single => vec![single],
        };
        self
    }

    /// Sets the actor's unique name.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> PythonActor {
        self.options = self.options.name(name);
        self
    }

    /// Sets the mailbox capacity (at least 1).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> PythonActor {
        self.options = self.options.mailbox_capacity(capacity);
        self
    }

    /// Pins the actor's thread to a CPU core (0-based).
    #[must_use]
    pub fn pin_to_core(mut self, core: usize) -> PythonActor {
        self.options = self.options.pin_to_core(core);
        self
    }

    /// Sets what happens when `receive` raises: keep the instance
    /// ([`FailurePolicy::Resume`], the default without a supervisor), restart in a fresh
    /// interpreter ([`FailurePolicy::Restart`], the default under one), or stop.
    #[must_use]
    pub fn on_failure(mut self, policy: FailurePolicy) -> PythonActor {
        self.options = self.options.on_failure(policy);
        self
    }

    /// Limits how long one `receive` call may run: past it, `subactor.TimeLimitExceeded`
    /// is raised in the handler and the call counts as a failure.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> PythonActor {
        self.options = self.options.time_limit(limit);
        self
    }

    /// Restarts the actor in the interpreter it already has, calling the class again,
    /// instead of in a fresh interpreter (the default). A restart then costs the
    /// constructor alone, and CPython's per-interpreter memory (about 1.7 MiB that an
    /// ended interpreter never gives back) is not spent again; but module state
    /// survives the restart, so a failure that corrupted it stays.
    #[must_use]
    pub fn keep_interpreter_on_restart(mut self, keep: bool) -> PythonActor {
        self.keep_interpreter = keep;
        self
    }

    /// The module (dotted name or file path).
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The class name.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The recipe as data, for spawning it in another process or on another node
    /// (everything it says travels; a memory state store is the other side's memory).
    pub fn to_request(&self) -> SpawnRequest {
        let options = &self.options;
        SpawnRequest {
            module: self.module.clone(),
            class: self.class.clone(),
            args: self.args.clone(),
            name: options.name.as_deref().map(str::to_owned),
            placement: self.placement,
            node: None,
            settings: SpawnSettings {
                mailbox: options.mailbox_capacity.map(|n| n as u64),
                core: options.core.map(|n| n as u64),
                on_failure: options.on_failure,
                time_limit: options.time_limit,
                keep_interpreter: self.keep_interpreter,
                memory_limit: self.memory_limit,
                kill_grace: Some(self.kill_grace),
                max_concurrency: Some(self.max_concurrency as u64),
                snapshot_every: self.snapshots.map(Snapshots::every),
                state_dir: match &self.store {
                    StateStore::Directory(dir) => Some(dir.clone()),
                    StateStore::Memory | StateStore::Cluster => None,
                },
                state_in_cluster: self.store == StateStore::Cluster,
            },
        }
    }

    /// The recipe a [`SpawnRequest`] carries (its `node` is not part of it); an
    /// impossible setting (a mailbox of 0, a core number beyond this machine's word) is
    /// an error naming it.
    pub fn from_request(request: SpawnRequest) -> Result<PythonActor, String> {
        let SpawnRequest { module, class, args, name, placement, node: _, settings } = request;
        let mut spec = PythonActor::new(module, class).args(Value::Tuple(args)).placement(placement);
        if let Some(name) = name {
            spec = spec.name(name);
        }
        let count = |n: u64, what: &str| usize::try_from(n).map_err(|_| format!("{what} {n} is out of range"));
        if let Some(mailbox) = settings.mailbox {
            if mailbox == 0 {
                return Err("a mailbox capacity must be at least 1".into());
            }
            spec = spec.mailbox_capacity(count(mailbox, "mailbox capacity")?);
        }
        if let Some(core) = settings.core {
            spec = spec.pin_to_core(count(core, "core")?);
        }
        if let Some(policy) = settings.on_failure {
            spec = spec.on_failure(policy);
        }
        if let Some(limit) = settings.time_limit {
            spec = spec.time_limit(limit);
        }
        spec = spec.keep_interpreter_on_restart(settings.keep_interpreter);
        if let Some(bytes) = settings.memory_limit {
            spec = spec.memory_limit(bytes);
        }
        if let Some(grace) = settings.kill_grace {
            spec = spec.kill_grace(grace);
        }
        if let Some(n) = settings.max_concurrency {
            spec = spec.max_concurrency(count(n, "max_concurrency")?);
        }
        if let Some(every) = settings.snapshot_every {
            spec = spec.snapshots(match every {
                0 => Snapshots::OnCheckpoint,
                1 => Snapshots::EveryMessage,
                n => Snapshots::Every(n),
            });
        }
        match (settings.state_dir, settings.state_in_cluster) {
            (Some(_), true) => return Err("snapshots cannot be kept both in a directory and in the cluster".into()),
            (Some(dir), false) => spec = spec.state_store(StateStore::Directory(dir)),
            (None, true) => spec = spec.state_store(StateStore::Cluster),
            (None, false) => {}
        }
        Ok(spec)
    }
}

impl Spawn for PythonActor {
    type Actor = PyActor;
    type Error = StartError;

    fn options(&self) -> &SpawnOptions {
        &self.options
    }

    fn start(&mut self, ctx: &ActorContext<PyActor>) -> Result<PyActor, StartError> {
        let started = self.start_here(ctx);
        if started.is_err() {
            // A warm pool's slot that this actor took is replaced from now on.
            crate::pool::actor_started();
        }
        started
    }

    fn spawned(&mut self) {
        // A warm pool's slot that this actor took is replaced from now on, once its
        // spawner has its reference.
        crate::pool::actor_started();
    }

    fn placement(&self) -> Placement {
        self.placement
    }

    fn warm_thread(&mut self, system: &subactor_core::ActorSystem) -> Option<subactor_core::WarmThread> {
        let host = system.extension::<PythonHost>()?;
        let interpreter = match self.placement {
            Placement::Interpreter => true,
            Placement::Auto => {
                host.known_placement(&format!("{}:{}", self.module, self.class)) != Some(Placement::Process)
            }
            Placement::Process | Placement::Thread => false,
        };
        if interpreter { host.take_warm(&self.module) } else { None }
    }

    fn release(&mut self) {
        if let (Some(id), Some(host)) = (self.id.take(), self.host_for_release.take()) {
            host.forget_keeper(id);
        }
        // The last incarnation kept its interpreter for a restart that will not come:
        // end it now.
        if let Some(mut kept) = KEPT.with_borrow_mut(Option::take) {
            kept.keep = false;
            drop(kept);
        }
    }
}

impl PythonActor {
    /// Starts an incarnation of the actor (see `Spawn::start`).
    fn start_here(&mut self, ctx: &ActorContext<PyActor>) -> Result<PyActor, StartError> {
        let host = ctx.system().extension::<PythonHost>().ok_or(StartError::NoHost)?;
        if self.id.is_none() {
            self.id = Some(ctx.id());
            host.register_keeper(ctx.myself(), Arc::clone(&self.keeper));
        }
        let incarnation = self.next_incarnation(ctx.system())?;
        let started = self.start_placed(ctx, host, &incarnation);
        if started.is_err() && incarnation.upgrading {
            // The state stays for the next attempt (a supervisor's restart).
            if let Some(state) = incarnation.state {
                self.keeper.carry(Some(state));
            }
        }
        started
    }

    /// Starts the actor where its placement says.
    fn start_placed(
        &mut self,
        ctx: &ActorContext<PyActor>,
        host: Arc<PythonHost>,
        incarnation: &Incarnation,
    ) -> Result<PyActor, StartError> {
        if self.host_for_release.is_none() {
            self.host_for_release = Some(Arc::clone(&host));
        }
        match self.placement {
            Placement::Interpreter => self.start_interpreter(ctx, host, incarnation),
            Placement::Process => self.start_process(ctx, host, incarnation),
            Placement::Auto => {
                // Remembered per class: a module's constructor may import what its other
                // classes never touch.
                let key = format!("{}:{}", self.module, self.class);
                if host.known_placement(&key) == Some(Placement::Process) {
                    return self.start_process(ctx, host, incarnation);
                }
                match self.start_interpreter(ctx, Arc::clone(&host), incarnation) {
                    Err(StartError::IncompatibleExtension { module: refusing, .. }) => {
                        info!(
                            module = %self.module,
                            refusing = %refusing,
                            "the actor's module imports an extension that refuses own-GIL interpreters: \
                             it runs in a process actor (and so will later actors of this module)"
                        );
                        host.remember_placement(&key, Placement::Process);
                        self.start_process(ctx, host, incarnation)
                    }
                    started => {
                        if started.is_ok() {
                            host.remember_placement(&key, Placement::Interpreter);
                        }
                        started
                    }
                }
            }
            Placement::Thread => Err(StartError::Process("a Python actor cannot have the thread placement".into())),
        }
    }
}

/// What a running actor needs of its recipe's state keeping.
#[derive(Clone, Debug)]
struct Keeping {
    keeper: Arc<Keeper>,
    snapshots: bool,
    store: Store,
    name: Option<Arc<str>>,
}

/// A running Python actor: an instance in its own subinterpreter, or in a child
/// process (see [`PythonActor::placement`]).
///
/// Its messages and replies are [`Value`]s. Messages handled back to back run under
/// one attach of the interpreter's GIL, which is released whenever the mailbox is empty.
pub struct PyActor {
    // Declared first: the interpreter ends before the host lease is given back. `None`
    // once handed to the next incarnation (see `Drop`), and for a process actor.
    interp: Option<Interpreter>,
    /// A process actor's child.
    child: Option<ChildProcess>,
    /// Where an asyncio actor's event loop reports messages it finished.
    finished: Option<Arc<FinishSink>>,
    /// How many messages it handles at once.
    concurrency: usize,
    /// Whether a restart reuses the interpreter.
    keep: bool,
    /// Snapshots and upgrades.
    keeping: Keeping,
    _host: Arc<PythonHost>,
}

impl PyActor {
    /// CPython's id of the actor's interpreter (-1 for a process actor).
    pub fn interpreter_id(&self) -> i64 {
        self.interp.as_ref().map_or(-1, Interpreter::id)
    }

    /// The process id of a process actor's child.
    pub fn process_id(&self) -> Option<i32> {
        self.child.as_ref().map(ChildProcess::pid)
    }

    /// Keeps the snapshot due after a message handled without error, if one is.
    fn keep_snapshot(&mut self) -> Result<(), ReceiveError> {
        if !self.keeping.snapshots {
            return Ok(());
        }
        let due = match (&mut self.child, &mut self.interp) {
            (Some(child), _) => child.take_snapshot(),
            (None, Some(interp)) => interp.take_snapshot().map_err(ReceiveError::Snapshot)?,
            (None, None) => None,
        };
        let Some(state) = due else { return Ok(()) };
        let keeping = &self.keeping;
        keeping.keeper.save(&keeping.store, keeping.name.as_deref(), state).map_err(|error| {
            ReceiveError::Snapshot(PythonException {
                type_name: "subactor.StateError".into(),
                message: error.to_string(),
                traceback: String::new(),
            })
        })
    }

    fn interp(&mut self) -> &mut Interpreter {
        self.interp.as_mut().unwrap_or_else(|| unreachable!("an actor has its interpreter until dropped"))
    }
}

impl Drop for PyActor {
    fn drop(&mut self) {
        if !self.keep {
            return;
        }
        // Keep the interpreter (without the instance) for a restart on this thread; if
        // none comes, `Spawn::release` ends it.
        if let Some(mut interp) = self.interp.take() {
            interp.forget_instance();
            interp.detach();
            let kept = PyActor {
                interp: Some(interp),
                child: None,
                finished: self.finished.clone(),
                concurrency: 1,
                keep: true,
                keeping: self.keeping.clone(),
                _host: Arc::clone(&self._host),
            };
            KEPT.with_borrow_mut(|slot| *slot = Some(kept));
        }
    }
}

impl std::fmt::Debug for PyActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyActor")
            .field("interpreter", &self.interpreter_id())
            .field("process", &self.process_id())
            .finish_non_exhaustive()
    }
}

impl Actor for PyActor {
    type Msg = Value;
    type Reply = Value;
    type Error = ReceiveError;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: Value) -> Result<Value, ReceiveError> {
        let reply = match &mut self.child {
            Some(child) => child.receive(msg, true),
            None => self.interp().receive(&msg, true),
        }?;
        self.keep_snapshot()?;
        Ok(reply)
    }

    fn handle_tell(&mut self, _ctx: &ActorContext<Self>, msg: Value) -> Result<(), ReceiveError> {
        let result = match &mut self.child {
            Some(child) => child.receive(msg, false),
            None => self.interp().receive(&msg, false),
        };
        let result = result.and_then(|_| self.keep_snapshot());
        result.inspect_err(|error| {
            if let Some(exception) = error.exception() {
                debug!(traceback = %exception.traceback, "receive() failed on a tell");
            }
        })
    }

    fn direct(&self) -> Option<Arc<dyn subactor_core::DirectAsk<Self>>> {
        // A process actor's asks may be run by their callers while it is idle, unless
        // each message's snapshot is to be kept (that is the actor's thread's work).
        match &self.child {
            Some(child) if self.concurrency <= 1 && !self.keeping.snapshots => Some(child.direct()),
            _ => None,
        }
    }

    fn tell_batch(&self) -> usize {
        // A process actor's tells go to its child in batches of up to this many, one
        // round trip each.
        if self.child.is_some() { 256 } else { 1 }
    }

    fn handle_tells(
        &mut self,
        ctx: &ActorContext<Self>,
        msgs: Vec<Value>,
        stop_at_failure: bool,
    ) -> TellBatch<Value, ReceiveError> {
        let Some(child) = &mut self.child else {
            // Interpreter actors take tells one at a time (tell_batch is 1).
            let mut results = Vec::with_capacity(msgs.len());
            let mut msgs = msgs.into_iter();
            for msg in msgs.by_ref() {
                let result = self.handle_tell(ctx, msg);
                let failed = result.is_err();
                results.push(result);
                if failed && stop_at_failure {
                    break;
                }
            }
            return TellBatch { results, unhandled: msgs.collect(), handler_times: Vec::new() };
        };
        let mut batch = child.receive_tells(msgs, stop_at_failure);
        if let Err(error) = self.keep_snapshot() {
            // The batch's last handled message is the one whose snapshot failed.
            match batch.results.last_mut() {
                Some(last @ Ok(())) => *last = Err(error),
                _ => warn!(%error, "a snapshot after a batch of tells failed"),
            }
        }
        for error in batch.results.iter().filter_map(|r| r.as_ref().err()) {
            if let Some(exception) = error.exception() {
                debug!(traceback = %exception.traceback, "receive() failed on a tell");
            }
        }
        batch
    }

    fn before_wait(&mut self) {
        if let Some(interp) = &mut self.interp {
            interp.detach();
        }
    }

    fn after_wait(&mut self) {
        if let Some(interp) = &mut self.interp {
            interp.attach();
        }
    }

    fn stopped(&mut self, _ctx: &ActorContext<Self>, reason: &StopReason) {
        if self.keeping.keeper.pending_upgrade().is_some() {
            // An upgrade restarts the actor: carry its state over, in a fresh
            // interpreter.
            self.keep = false;
            let state = match (&mut self.child, &mut self.interp) {
                (Some(child), _) => child.snapshot_now(),
                (None, Some(interp)) => {
                    interp.attach();
                    interp.snapshot_now().map_err(ReceiveError::Snapshot)
                }
                (None, None) => Ok(None),
            };
            match state {
                Ok(state) => self.keeping.keeper.carry(state),
                Err(error) => {
                    warn!(%error, "the actor's snapshot() failed before its upgrade: the new code starts without a state");
                    self.keeping.keeper.carry(None);
                }
            }
        }
        debug!(interpreter = self.interpreter_id(), %reason, keep = self.keep, "instance ended");
    }

    fn interrupter(&self) -> Option<Arc<dyn Interrupt>> {
        if let Some(child) = &self.child {
            return Some(child.interrupter());
        }
        self.interp.as_ref()?.interrupter().map(|i| i as Arc<dyn Interrupt>)
    }

    fn health(&mut self) -> Result<(), Fault> {
        match &self.child {
            Some(child) => child.health(),
            None => Ok(()),
        }
    }

    fn placement(&self) -> Placement {
        if self.child.is_some() { Placement::Process } else { Placement::Interpreter }
    }

    fn max_concurrency(&self) -> usize {
        self.concurrency
    }

    fn set_waker(&mut self, waker: Waker) {
        if let Some(finished) = &self.finished {
            finished.set_waker(waker);
        }
        // The event loop's thread runs the messages: it needs the GIL from now on.
        if let Some(interp) = &mut self.interp {
            interp.detach();
        }
    }

    fn begin(&mut self, _ctx: &ActorContext<Self>, token: u64, msg: Value, reply: bool) -> Result<(), ReceiveError> {
        if let Some(child) = &mut self.child {
            return child.begin_task(token, msg, reply);
        }
        let interp = self.interp();
        interp.attach();
        let begun = interp.begin(token, &msg, reply);
        interp.detach();
        begun
    }

    fn finished(&mut self, _ctx: &ActorContext<Self>) -> Vec<(u64, Finished<Value, ReceiveError>)> {
        let Some(sink) = self.finished.clone() else { return Vec::new() };
        let mut outcomes = sink.take();
        if let Some(state) = sink.take_snapshot() {
            let keeping = &self.keeping;
            if let Err(error) = keeping.keeper.save(&keeping.store, keeping.name.as_deref(), state) {
                warn!(%error, "an asyncio actor's snapshot cannot be kept");
                // The latest answered message is the one whose snapshot failed.
                if let Some((_, last)) = outcomes.iter_mut().rev().find(|(_, o)| matches!(o, Finished::Replied(_))) {
                    *last = Finished::Failed(ReceiveError::Snapshot(PythonException {
                        type_name: "subactor.StateError".into(),
                        message: error.to_string(),
                        traceback: String::new(),
                    }));
                }
            }
        }
        outcomes
    }

    fn cancel_all(&mut self, cause: InterruptCause) {
        if let Some(child) = &mut self.child {
            child.cancel_tasks(cause);
            return;
        }
        let interp = self.interp();
        interp.attach();
        interp.cancel_all(cause == InterruptCause::Kill);
        interp.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_of_a_recipe_travels_in_a_spawn_request() {
        let spec = PythonActor::new("mod", "Class")
            .args((1, "two"))
            .name("n")
            .placement(Placement::Process)
            .mailbox_capacity(3)
            .pin_to_core(1)
            .on_failure(FailurePolicy::Stop)
            .time_limit(Duration::from_millis(250))
            .keep_interpreter_on_restart(true)
            .memory_limit(1 << 30)
            .kill_grace(Duration::from_millis(40))
            .max_concurrency(7)
            .snapshots(Snapshots::Every(5))
            .state_store(StateStore::Directory("/tmp/states".into()));
        let request = spec.to_request();
        assert_eq!(request.settings.mailbox, Some(3));
        assert_eq!(request.settings.snapshot_every, Some(5));
        let again = PythonActor::from_request(request.clone()).expect("a good request");
        assert_eq!(again.to_request(), request);
        for every in [0, 1, 9] {
            let mut request = request.clone();
            request.settings.snapshot_every = Some(every);
            let again = PythonActor::from_request(request.clone()).expect("a good request");
            assert_eq!(again.to_request().settings.snapshot_every, Some(every));
        }
    }

    #[test]
    fn an_impossible_setting_in_a_request_is_an_error_naming_it() {
        let mut request = PythonActor::new("mod", "Class").to_request();
        request.settings.mailbox = Some(0);
        let Err(error) = PythonActor::from_request(request) else { panic!("a mailbox of 0 is refused") };
        assert!(error.contains("mailbox"), "{error}");
    }
}
