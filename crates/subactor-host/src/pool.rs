//! The warm pool: interpreters created in advance, each on the thread that will run the
//! actor that takes it (see [`PythonHost::with_warm_interpreters`](crate::PythonHost::with_warm_interpreters)).
//!
//! Each slot is a [`WarmThread`] that creates an own-GIL interpreter, detaches it, keeps
//! it in a thread-local (`actor::WARM`) and waits. A spawn of an interpreter actor that
//! finds a ready slot hands its actor's body to that thread, where the actor's start
//! takes the interpreter instead of creating one. Once that actor has started (its
//! constructor ran, or the start failed), a new slot starts filling in the background:
//! not before, so that the refill's interpreter creation does not compete with the spawn
//! for a core. A slot that is never taken ends its interpreter on its own thread when the
//! pool closes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use subactor_core::{ThreadJob, WarmThread};
use tracing::{debug, warn};

use crate::MainModule;
use crate::ffi::interp::Interpreter;

const CREATING: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;

/// How a host's warm pool has served spawns so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmPoolStats {
    /// How many ready interpreters the pool keeps (0: no pool).
    pub size: usize,
    /// How many are ready now.
    pub ready: usize,
    /// Spawns of interpreter actors that found a ready interpreter.
    pub hits: u64,
    /// Spawns of interpreter actors that found none (the pool was still filling) and
    /// created theirs.
    pub misses: u64,
}

/// A slot of the pool: a thread and how far its interpreter is.
struct Slot {
    thread: WarmThread,
    state: Arc<AtomicU8>,
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
    /// `None` once closed.
    slots: Mutex<Option<Vec<Slot>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Slots whose interpreter could not be created in a row: the pool stops refilling
    /// after a few (the error is logged), rather than failing forever in the background.
    failures: AtomicU64,
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool").field("size", &self.shared.size).finish_non_exhaustive()
    }
}

thread_local! {
    /// On a slot's thread whose interpreter an actor took: the pool to refill once that
    /// actor has started.
    static REFILL: RefCell<Option<Weak<Shared>>> = const { RefCell::new(None) };
}

/// Called on an actor's thread once its start is over: if the actor took a warm
/// interpreter, the pool starts filling a slot in its place.
pub(crate) fn actor_started() {
    if let Some(shared) = REFILL.with_borrow_mut(Option::take).and_then(|weak| weak.upgrade()) {
        shared.refill_now();
    }
}

/// Refilling stops after this many interpreters in a row failed to be created.
const MAX_FAILURES: u64 = 3;

impl WarmPool {
    /// A pool of `size` interpreters, started filling now (in the background).
    pub(crate) fn start(size: usize, paths: Vec<String>, main: Option<MainModule>) -> WarmPool {
        let shared = Arc::new(Shared {
            size,
            paths,
            main,
            slots: Mutex::new(Some(Vec::with_capacity(size))),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        shared.refill_now();
        WarmPool { shared }
    }

    /// A thread with a ready interpreter, if one is (its replacement starts filling
    /// once its actor has started).
    pub(crate) fn take(&self) -> Option<WarmThread> {
        self.shared.take()
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
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts slots until there are `size` of them (ready or being created); drops the
    /// ones that failed.
    fn refill(self: &Arc<Self>, slots: &mut Vec<Slot>) {
        let failed = slots.iter().filter(|s| s.state.load(Ordering::Acquire) == FAILED).count() as u64;
        if failed > 0 {
            self.failures.fetch_add(failed, Ordering::Relaxed);
            slots.retain(|s| s.state.load(Ordering::Acquire) != FAILED);
        }
        if self.failures.load(Ordering::Relaxed) >= MAX_FAILURES {
            return;
        }
        while slots.len() < self.size {
            let state = Arc::new(AtomicU8::new(CREATING));
            let (paths, main, slot_state) = (self.paths.clone(), self.main.clone(), Arc::clone(&state));
            let pool = Arc::downgrade(self);
            let body = move |jobs| warm_body(&paths, main.as_ref(), &slot_state, &jobs, pool);
            match WarmThread::spawn("subactor-warm".into(), body) {
                Ok(thread) => slots.push(Slot { thread, state }),
                Err(error) => {
                    warn!(%error, "cannot start a thread for the warm pool");
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn take(self: &Arc<Self>) -> Option<WarmThread> {
        let mut guard = self.slots();
        let slots = guard.as_mut()?;
        let ready = slots.iter().position(|s| s.state.load(Ordering::Acquire) == READY);
        let taken = ready.map(|i| slots.swap_remove(i).thread);
        match &taken {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.failures.store(0, Ordering::Relaxed);
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                // Replaces slots that failed, if any.
                self.refill(slots);
            }
        }
        taken
    }

    fn stats(&self) -> WarmPoolStats {
        let ready = self
            .slots()
            .as_ref()
            .map_or(0, |slots| slots.iter().filter(|s| s.state.load(Ordering::Acquire) == READY).count());
        WarmPoolStats {
            size: self.size,
            ready,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn close(&self) {
        let slots = self.slots().take();
        for slot in slots.into_iter().flatten() {
            slot.thread.close();
        }
    }
}

/// A warm thread's body: create the interpreter, wait for an actor, run it; an
/// interpreter that no actor took ends here, on the thread that created it.
fn warm_body(
    paths: &[String],
    main: Option<&MainModule>,
    state: &AtomicU8,
    jobs: &flume::Receiver<ThreadJob>,
    pool: Weak<Shared>,
) {
    match Interpreter::create(paths, main) {
        Ok(mut interp) => {
            interp.detach();
            debug!(interpreter = interp.id(), "a warm interpreter is ready");
            crate::actor::set_warm(interp);
            state.store(READY, Ordering::Release);
        }
        Err(error) => {
            warn!(%error, "the warm pool cannot create an interpreter");
            state.store(FAILED, Ordering::Release);
            return;
        }
    }
    if let Ok(job) = jobs.recv() {
        crate::process::sys::name_this_thread(job.name());
        REFILL.set(Some(pool));
        job.run();
        // In case the actor's start never said it was over.
        actor_started();
    }
    // Not taken (the pool closed), or taken by an actor that did not use it.
    drop(crate::actor::take_warm());
}
