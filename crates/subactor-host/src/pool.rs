//! The warm pool: interpreters created in advance, each on the thread that will run the
//! actor that takes it (see [`PythonHost::with_warm_interpreters`](crate::PythonHost::with_warm_interpreters)).
//!
//! Each slot is a [`WarmThread`] that creates an own-GIL interpreter, builds its
//! in-actor `subactor` module (not linked to an actor yet), imports the module of the
//! actors it is kept for, if any (see [`WarmImports`]), detaches it, keeps it in a
//! thread-local (`actor::WARM`) and waits. A spawn of an interpreter actor that finds a
//! ready slot hands its actor's body to that thread, where the actor's start takes the
//! interpreter instead of creating one and only links the module to its actor. Once
//! that actor has started and its spawner has been told (or its start failed), a new
//! slot starts filling in the background: not before, so that the refill's
//! interpreter creation does not compete with the spawn for a core. A slot that is
//! never taken ends its interpreter on its own thread when the pool closes.
//!
//! **Which interpreter an actor may take.** Imports run code, so an interpreter that
//! imported a module is handed only to an actor of that same module (the same target
//! string: a dotted name or a `.py` path, as [`PythonActor::new`](crate::PythonActor::new)
//! got it), which would have imported it first thing anyway; an interpreter that
//! imported nothing goes to any actor. A spawn takes one prepared for its module if one
//! is ready, else a plain one, else it creates its interpreter (a miss).

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use subactor_core::{ThreadJob, WarmThread};
use tracing::{debug, info, warn};

use crate::MainModule;
use crate::ffi::interp::Interpreter;

/// Its interpreter is being created (or its module imported).
const CREATING: u8 = 0;
/// Ready, with the slot's module imported (or with nothing imported, for a slot kept
/// for no module).
const READY: u8 = 1;
/// Ready with nothing imported: the slot's module failed to import, and a fresh
/// interpreter replaced the one that tried.
const READY_PLAIN: u8 = 2;
/// No interpreter could be created.
const FAILED: u8 = 3;

/// Which modules a warm pool's interpreters import while they wait (see
/// [`PythonHost::with_warm_imports`](crate::PythonHost::with_warm_imports)).
///
/// Whatever is imported in advance, an interpreter that imported a module is handed
/// only to an actor of that module (the same target string as the actor's); one that
/// imported nothing goes to any actor. An import that fails in advance is not an error:
/// the interpreter that tried is ended, a fresh one that imported nothing takes its
/// place, the pool imports that module in advance no more, and the actor's own import
/// at spawn raises what it raises. A module's top-level code runs on the pool's thread
/// before any actor exists there: `subactor`'s functions that need the actor (`self_ref`,
/// `spawn`, `lookup`...) raise `ActorStopped` at that point, which makes the import
/// fail in advance (and so it is done at spawn, as without a pool).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum WarmImports {
    /// Nothing is imported in advance: a spawn that takes an interpreter imports its
    /// module itself.
    None,
    /// The default: the pool remembers the module of each actor that took one of its
    /// interpreters, and that interpreter's replacement imports it. When a spawn finds
    /// no interpreter for its module and none that imported nothing, one ready for
    /// another module is ended and its slot refilled for the spawn's module, so that
    /// the pool follows what is spawned.
    #[default]
    Recent,
    /// The pool's interpreters are kept for these modules (dotted names or `.py`
    /// paths, as the actors' recipes name them): slots are shared out among them in
    /// turn, and the replacement of an interpreter that an actor took imports that
    /// actor's module if it is one of these, else the one that has the fewest slots.
    Modules(Vec<String>),
}

/// How a host's warm pool has served spawns so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmPoolStats {
    /// How many ready interpreters the pool keeps (0: no pool).
    pub size: usize,
    /// How many are ready now.
    pub ready: usize,
    /// Spawns of interpreter actors that found a ready interpreter.
    pub hits: u64,
    /// Spawns of interpreter actors that found none (the pool was still filling, or
    /// every ready one had imported another module) and created theirs.
    pub misses: u64,
    /// Of the hits, those whose interpreter had imported the actor's module already.
    pub imported: u64,
}

/// A slot of the pool: a thread, how far its interpreter is, and the module it imports.
struct Slot {
    thread: WarmThread,
    state: Arc<AtomicU8>,
    module: Option<Arc<str>>,
}

impl Slot {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Ready with `module` imported.
    fn ready_for(&self, module: &str) -> bool {
        self.state() == READY && self.module.as_deref() == Some(module)
    }

    /// Ready with nothing imported: any actor may take it.
    fn ready_plain(&self) -> bool {
        match self.state() {
            READY => self.module.is_none(),
            READY_PLAIN => true,
            _ => false,
        }
    }
}

/// The interpreters a host keeps ready.
pub(crate) struct WarmPool {
    shared: Arc<Shared>,
}

/// The pool's state, shared with its slots' threads (weakly: a slot asks for its
/// replacement once its actor has started).
struct Shared {
    size: usize,
    paths: Vec<String>,
    main: Option<MainModule>,
    imports: WarmImports,
    /// `None` once closed.
    slots: Mutex<Option<Vec<Slot>>>,
    /// The modules that the next refills import, one per slot taken (`None`: nothing).
    next: Mutex<VecDeque<Option<Arc<str>>>>,
    /// Modules whose import failed in advance: not imported in advance again.
    unimportable: Mutex<HashSet<Arc<str>>>,
    /// Threads of slots ended to make room for another module: joined on close.
    dismissed: Mutex<Vec<JoinHandle<()>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    imported: AtomicU64,
    /// Slots whose interpreter could not be created in a row: the pool stops refilling
    /// after a few (the error is logged), rather than failing forever in the background.
    failures: AtomicU64,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("size", &self.shared.size)
            .field("imports", &self.shared.imports)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// On a slot's thread whose interpreter an actor took: the pool to refill once that
    /// actor has started.
    static REFILL: RefCell<Option<Weak<Shared>>> = const { RefCell::new(None) };
}

/// Called on an actor's thread once its start is over (its spawner told, or the start
/// failed): if the actor took a warm interpreter, the pool starts filling a slot in
/// its place.
pub(crate) fn actor_started() {
    if let Some(shared) = REFILL.with_borrow_mut(Option::take).and_then(|weak| weak.upgrade()) {
        shared.refill_now();
    }
}

/// Refilling stops after this many interpreters in a row failed to be created.
const MAX_FAILURES: u64 = 3;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WarmPool {
    /// A pool of `size` interpreters importing what `imports` says, started filling
    /// now (in the background).
    pub(crate) fn start(size: usize, paths: Vec<String>, main: Option<MainModule>, imports: WarmImports) -> WarmPool {
        let next = match &imports {
            WarmImports::Modules(modules) if !modules.is_empty() => {
                modules.iter().cycle().take(size).map(|m| Some(Arc::<str>::from(m.as_str()))).collect()
            }
            _ => VecDeque::new(),
        };
        let shared = Arc::new(Shared {
            size,
            paths,
            main,
            imports,
            slots: Mutex::new(Some(Vec::with_capacity(size))),
            next: Mutex::new(next),
            unimportable: Mutex::default(),
            dismissed: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            imported: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        shared.refill_now();
        WarmPool { shared }
    }

    /// A thread with a ready interpreter for an actor of `module`, if one is (its
    /// replacement starts filling once its actor has started).
    pub(crate) fn take(&self, module: &str) -> Option<WarmThread> {
        self.shared.take(module)
    }

    pub(crate) fn stats(&self) -> WarmPoolStats {
        self.shared.stats()
    }

    /// Ends every waiting interpreter and its thread, and waits for them.
    pub(crate) fn close(&self) {
        self.shared.close();
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn refill_now(self: &Arc<Self>) {
        let mut slots = self.slots();
        if let Some(slots) = slots.as_mut() {
            self.refill(slots);
        }
    }

    fn slots(&self) -> MutexGuard<'_, Option<Vec<Slot>>> {
        lock(&self.slots)
    }

    /// What the next slot imports: the module queued by the take it replaces, or for
    /// [`WarmImports::Modules`] the listed module with the fewest slots.
    fn next_module(&self, slots: &[Slot]) -> Option<Arc<str>> {
        let queued = lock(&self.next).pop_front().flatten();
        let module = match (&self.imports, queued) {
            (WarmImports::None, _) => None,
            (WarmImports::Recent, queued) => queued,
            (WarmImports::Modules(listed), queued) => {
                match queued.filter(|q| listed.iter().any(|m| m.as_str() == &**q)) {
                    Some(queued) => Some(queued),
                    None => listed
                        .iter()
                        .min_by_key(|m| slots.iter().filter(|s| s.module.as_deref() == Some(m.as_str())).count())
                        .map(|m| Arc::from(m.as_str())),
                }
            }
        };
        module.filter(|m| !lock(&self.unimportable).contains(m))
    }

    /// Starts slots until there are `size` of them (ready or being created); drops the
    /// ones that failed.
    fn refill(self: &Arc<Self>, slots: &mut Vec<Slot>) {
        let failed = slots.iter().filter(|s| s.state() == FAILED).count() as u64;
        if failed > 0 {
            self.failures.fetch_add(failed, Ordering::Relaxed);
            slots.retain(|s| s.state() != FAILED);
        }
        if self.failures.load(Ordering::Relaxed) >= MAX_FAILURES {
            return;
        }
        while slots.len() < self.size {
            let module = self.next_module(slots);
            if !self.start_slot(slots, module) {
                return;
            }
        }
    }

    /// Starts one slot importing `module`; false if no thread could be started.
    fn start_slot(self: &Arc<Self>, slots: &mut Vec<Slot>, module: Option<Arc<str>>) -> bool {
        let state = Arc::new(AtomicU8::new(CREATING));
        let (paths, main, slot_state) = (self.paths.clone(), self.main.clone(), Arc::clone(&state));
        let pool = Arc::downgrade(self);
        let import = module.clone();
        let body = move |jobs| {
            let warm = Warm { paths: &paths, main: main.as_ref(), state: &slot_state, pool: &pool };
            warm.run(import.as_deref(), &jobs);
        };
        match WarmThread::spawn("subactor-warm".into(), body) {
            Ok(thread) => {
                slots.push(Slot { thread, state, module });
                true
            }
            Err(error) => {
                warn!(%error, "cannot start a thread for the warm pool");
                self.failures.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn take(self: &Arc<Self>, module: &str) -> Option<WarmThread> {
        let mut guard = self.slots();
        let slots = guard.as_mut()?;
        let (index, imported) = match slots.iter().position(|s| s.ready_for(module)) {
            Some(i) => (Some(i), true),
            None => (slots.iter().position(Slot::ready_plain), false),
        };
        let Some(index) = index else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            if self.imports == WarmImports::Recent {
                self.make_room_for(slots, module);
            }
            // Replaces slots that failed, if any.
            self.refill(slots);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        if imported {
            self.imported.fetch_add(1, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        // The replacement imports this actor's module (see `next_module`).
        lock(&self.next).push_back(Some(Arc::from(module)));
        Some(slots.swap_remove(index).thread)
    }

    /// A spawn of `module` found no interpreter it may take: if none is on its way
    /// either and one ready for another module waits, that one ends and a slot for
    /// `module` takes its place.
    fn make_room_for(self: &Arc<Self>, slots: &mut Vec<Slot>, module: &str) {
        let coming = slots.iter().any(|s| match s.state() {
            CREATING => s.module.as_deref() == Some(module) || s.module.is_none(),
            state => state == READY_PLAIN,
        });
        if coming || lock(&self.unimportable).contains(module) {
            return;
        }
        let Some(other) = slots.iter().position(|s| s.state() == READY && s.module.is_some()) else {
            return;
        };
        let slot = slots.swap_remove(other);
        debug!(from = ?slot.module, to = module, "a warm interpreter makes room for another module");
        let mut dismissed = lock(&self.dismissed);
        dismissed.retain(|t| !t.is_finished());
        dismissed.push(slot.thread.dismiss());
        drop(dismissed);
        self.start_slot(slots, Some(Arc::from(module)));
    }

    fn stats(&self) -> WarmPoolStats {
        let ready = self
            .slots()
            .as_ref()
            .map_or(0, |slots| slots.iter().filter(|s| matches!(s.state(), READY | READY_PLAIN)).count());
        WarmPoolStats {
            size: self.size,
            ready,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            imported: self.imported.load(Ordering::Relaxed),
        }
    }

    fn close(&self) {
        let slots = self.slots().take();
        for slot in slots.into_iter().flatten() {
            slot.thread.close();
        }
        let dismissed = std::mem::take(&mut *lock(&self.dismissed));
        for thread in dismissed {
            if thread.join().is_err() {
                warn!("a warm thread panicked");
            }
        }
    }
}

/// What a warm thread's body works with.
struct Warm<'a> {
    paths: &'a [String],
    main: Option<&'a MainModule>,
    state: &'a AtomicU8,
    pool: &'a Weak<Shared>,
}

impl Warm<'_> {
    /// A warm thread's body: create the interpreter (and its module, and import
    /// `module`), wait for an actor, run it; an interpreter that no actor took ends
    /// here, on the thread that created it.
    fn run(&self, module: Option<&str>, jobs: &flume::Receiver<ThreadJob>) {
        let Some((mut interp, state)) = self.prepare(module) else {
            self.state.store(FAILED, Ordering::Release);
            return;
        };
        interp.detach();
        debug!(interpreter = interp.id(), "a warm interpreter is ready");
        crate::actor::set_warm(interp);
        self.state.store(state, Ordering::Release);
        if let Ok(job) = jobs.recv() {
            crate::process::sys::name_this_thread(job.name());
            REFILL.set(Some(self.pool.clone()));
            job.run();
            // In case the actor's start never said it was over.
            actor_started();
        }
        // Not taken (the pool closed), or taken by an actor that did not use it.
        drop(crate::actor::take_warm());
    }

    /// An interpreter with its in-actor module built and `module` imported; if that
    /// import fails, a fresh interpreter with nothing imported (READY_PLAIN).
    fn prepare(&self, module: Option<&str>) -> Option<(Interpreter, u8)> {
        let mut interp = self.create()?;
        let Some(module) = module else {
            return Some((interp, READY));
        };
        match interp.preimport(module) {
            Ok(()) => {
                debug!(interpreter = interp.id(), module, "a warm interpreter imported its module");
                Some((interp, READY))
            }
            Err(exception) => {
                info!(
                    module,
                    %exception,
                    "the warm pool could not import the module in advance: spawns of its actors import it themselves"
                );
                if let Some(pool) = self.pool.upgrade() {
                    lock(&pool.unimportable).insert(Arc::from(module));
                }
                // Whatever the failed import left behind goes with its interpreter.
                drop(interp);
                Some((self.create()?, READY_PLAIN))
            }
        }
    }

    /// A new interpreter with its in-actor module built, attached.
    fn create(&self) -> Option<Interpreter> {
        let created = Interpreter::create(self.paths, self.main).and_then(|mut interp| {
            interp.prepare_module()?;
            Ok(interp)
        });
        match created {
            Ok(interp) => Some(interp),
            Err(error) => {
                warn!(%error, "the warm pool cannot create an interpreter");
                None
            }
        }
    }
}
