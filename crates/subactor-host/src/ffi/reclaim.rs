//! Giving back the allocator memory that CPython 3.12 and 3.13 keep after an own-GIL
//! interpreter ends.
//!
//! # What keeps it
//!
//! An interpreter with its own object allocator (obmalloc: 1 MiB arenas of 16 KiB
//! pools) frees its arenas when it ends only if no block is left in them
//! (`Objects/obmalloc.c`, `_PyInterpreterState_FinalizeAllocatedBlocks`); one block
//! keeps them all, and the radix tree that maps them (`arena_map_mid`/`bot` nodes,
//! 256 + 128 KiB `calloc`s). On 3.13.0 a block is always left: walking the arenas at
//! that point (gdb, a breakpoint on that function) found nothing but `str` objects,
//! immortal and no longer interned — the names of methods, attributes and module
//! globals that `PyUnicode_InternFromString`, type and module set-up immortalised while
//! the interpreter ran. `_PyUnicode_ClearInterned` unmarks them at the end but leaves
//! them immortal, so they are never freed (CPython's main branch makes them mortal there
//! and frees them). 2,744 of them for a bare interpreter (2 arenas, 1.7 MiB of RSS
//! kept); 12,233 once `asyncio`, `json`, `re`, `typing` and a few more were imported (7
//! arenas). 3.12 never frees an ended interpreter's arenas at all.
//!
//! # What the host does
//!
//! 1. [`install`] wraps the process's arena allocator (`PyObject_SetArenaAllocator`, a
//!    public API) with one that records which interpreter asked for each arena (by
//!    CPython's interpreter id, never reused) and delegates to the allocator it
//!    replaced. Installed once, never removed.
//! 2. Before ending one of its own interpreters, the host takes a [`Watch`]: the radix
//!    tree nodes that map that interpreter's arenas, found through the allocator's
//!    state with the layout read at build time from the interpreter's internal headers
//!    (`obmalloc_probe.c`), checked here against the live interpreter: every arena this
//!    module recorded for it must be in that state's arena table. A mismatch turns the
//!    whole mechanism off for the process (logged), touching nothing.
//! 3. After `Py_EndInterpreter`, if arenas recorded for that interpreter are still
//!    there (CPython kept them), every block left in them is checked: it must be an
//!    immortal `str` (or the UTF-8 copy of one). Only then are the arenas unmapped and
//!    the nodes freed; otherwise they are kept, as CPython would, and counted.
//!
//! Why freeing them is sound: at that point the interpreter's every other object is
//! gone, those strings are in no interned dict, and no object of another interpreter
//! refers to an object of this one (isolation: only `Value`s cross). What could still
//! point at them is an extension module that caches an interned string of one
//! interpreter in a C static and uses it in another — a bug CPython's main branch
//! exposes as well, since it frees those same strings.
//!
//! # Spare arenas
//!
//! An arena given back is not unmapped at once: up to [`SPARE_ARENAS`] of them are
//! kept, their pages still mapped, and handed to the next interpreter that asks for one
//! (`arena_alloc`), whatever its owner was. A new interpreter fills ~2 arenas while it
//! starts; fresh ones cost it a page fault per 4 KiB page (~376 faults, 0.5-0.9 ms of
//! a ~8 ms creation on this VM); spare ones none. Their old contents do not matter:
//! obmalloc never assumes an arena is zeroed (where it has no `mmap`, its arenas come
//! from `malloc`). What it costs: up to `SPARE_ARENAS` MiB stay mapped while no
//! interpreter needs them. Arenas CPython frees itself (an arena whose every pool is
//! empty) go through the same spare list.
//!
//! # The raw allocator's free top
//!
//! What an interpreter allocates outside its arenas (`PyMem_RawMalloc`: its state, the
//! radix tree nodes, large buffers) comes from glibc's `malloc`, which gives the free
//! top of a heap back to the kernel once it exceeds its trim threshold (128 KiB at
//! first). An ended interpreter frees about 1 MiB there, and the next one asks for it
//! again: given back, each of its pages faults again (246 faults, ~0.6 ms, in 40% of
//! the cold spawns of a probe: 100 spawns of `bench.Echo`, `getrusage` on the actor's
//! thread; 5 faults in all of them with a 2 MiB threshold). [`install`] therefore sets
//! the trim threshold to [`TRIM_THRESHOLD`] and, since a threshold set by hand stops
//! glibc from raising its `mmap` threshold as it goes (128 KiB at first), that one to
//! [`MMAP_THRESHOLD`]: on 3.12 the blocks of 128 KiB and more an interpreter asks for
//! (the radix tree's nodes) were otherwise fresh mappings each time, 51 faults more in
//! 40% of the spawns. `mallopt`, glibc only; each unless the environment chose it
//! (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`, or `GLIBC_TUNABLES` naming
//! `glibc.malloc.trim_threshold` / `glibc.malloc.mmap_threshold`). What it costs: up
//! to 4 MiB of free memory stays mapped at the top of each of malloc's heaps (one per
//! thread arena, at most 8 per core), and blocks up to 1 MiB come from those heaps
//! rather than from mappings of their own.
//!
//! Measured (1,000 own-GIL interpreters created and ended, each importing `os`,
//! `json`, `asyncio`, `threading`, `re`, `collections`, `dataclasses`, `typing`; a
//! C program on 3.13.0): 6.4 MiB of RSS kept per interpreter by CPython alone; 274 KiB
//! with its arenas unmapped (the radix nodes remained); 1.0 KiB with the nodes freed
//! too.

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};

use pyo3_ffi as ffi;
use tracing::{debug, warn};

/// The layout of CPython's allocator, as `obmalloc_probe.c` printed it at build time
/// (offsets and sizes in bytes).
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// `PY_VERSION_HEX` of the headers.
    python_hex: u64,
    interp_size: usize,
    /// `offsetof(PyInterpreterState, obmalloc)`.
    interp_obmalloc: usize,
    /// 3.12: the allocator's state is a field of the interpreter; 3.13: a pointer.
    obmalloc_in_place: bool,
    state_arenas: usize,
    state_maxarenas: usize,
    state_map_root: usize,
    arena_object_size: usize,
    arena_object_address: usize,
    arena_size: usize,
    pool_size: usize,
    pool_overhead: usize,
    alignment_shift: u32,
    small_request_threshold: usize,
    pool_count: usize,
    pool_freeblock: usize,
    pool_szidx: usize,
    pool_nextoffset: usize,
    map_top_shift: u32,
    map_top_mask: usize,
    map_mid_shift: u32,
    map_mid_mask: usize,
}

/// `None` when the build's CPython has no such allocator (free-threaded, no pymalloc,
/// no radix tree) or its headers could not be read.
const LAYOUT: Option<Layout> = include!(concat!(env!("OUT_DIR"), "/obmalloc_layout.rs"));

/// What the host gave back, and what it had to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimStats {
    /// Whether ended interpreters' memory is given back in this process (the layout
    /// was read at build time, checked against the running interpreter, and the
    /// allocator wrapper is installed).
    pub available: bool,
    /// Interpreters that ended with memory left, which was given back.
    pub interpreters_reclaimed: u64,
    /// Interpreters that ended with blocks left that were not dead strings: their
    /// memory was kept.
    pub interpreters_kept: u64,
    /// Arenas given back: unmapped, or kept as spares for the next interpreters.
    pub arenas_reclaimed: u64,
    /// Bytes of the arenas given back.
    pub bytes_reclaimed: u64,
    /// Spare arenas handed to new interpreters instead of new memory.
    pub arenas_reused: u64,
}

/// The allocator this module wrapped.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// The allocator this module wrapped; its context as an address (it is only ever
/// handed back to its own functions).
#[derive(Clone, Copy)]
struct Previous {
    ctx: usize,
    alloc: extern "C" fn(*mut c_void, usize) -> *mut c_void,
    free: extern "C" fn(*mut c_void, *mut c_void, usize),
}

impl Previous {
    fn alloc(&self, size: usize) -> *mut c_void {
        (self.alloc)(self.ctx as *mut c_void, size)
    }

    fn free(&self, arena: *mut c_void, size: usize) {
        (self.free)(self.ctx as *mut c_void, arena, size);
    }
}

/// Every arena handed out through the wrapper and not freed yet, by address.
static ARENAS: Mutex<Option<HashMap<usize, Arena>>> = Mutex::new(None);

/// An arena handed out through the wrapper.
#[derive(Clone, Copy, Debug)]
struct Arena {
    /// The interpreter attached when it was asked for (-1: none).
    owner: i64,
    /// That interpreter's allocator state at that moment (0: unknown): the one the
    /// arena belongs to. An interpreter being created allocates from the main
    /// interpreter's state until its own exists.
    state: usize,
    /// `ARENA_SIZE` for an arena; CPython also takes the chunks of its threads' frame
    /// stacks (16 KiB) from this allocator.
    size: usize,
}

/// Set in a forked child: the lock above may have been held by a thread of the parent,
/// so the wrapper only delegates from then on.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Cleared when the layout did not match the running interpreter.
static TRUSTED: AtomicBool = AtomicBool::new(true);

static INSTALL: Once = Once::new();

static RECLAIMED: AtomicU64 = AtomicU64::new(0);
static KEPT: AtomicU64 = AtomicU64::new(0);
static ARENAS_FREED: AtomicU64 = AtomicU64::new(0);
static BYTES_FREED: AtomicU64 = AtomicU64::new(0);
static REUSED: AtomicU64 = AtomicU64::new(0);

/// How many arenas given back are kept mapped for the next interpreters (module docs).
pub(crate) const SPARE_ARENAS: usize = 8;

/// Arenas given back and kept mapped (addresses; each `Layout::arena_size` bytes, from
/// the allocator we wrapped), at most [`SPARE_ARENAS`].
static SPARE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn spare() -> MutexGuard<'static, Vec<usize>> {
    SPARE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A spare arena of `size` bytes, if one is kept. Never in a forked child: the lock
/// may have been held by a thread of the parent.
fn take_spare(size: usize) -> Option<usize> {
    if FORKED.load(Ordering::Relaxed) || usable()?.arena_size != size {
        return None;
    }
    let arena = spare().pop()?;
    REUSED.fetch_add(1, Ordering::Relaxed);
    Some(arena)
}

/// Gives `arena` (`size` bytes, from `previous`) back: kept as a spare while there is
/// room and it is a whole arena, unmapped otherwise.
fn give_back(previous: &Previous, arena: usize, size: usize) {
    if !FORKED.load(Ordering::Relaxed) && usable().is_some_and(|layout| layout.arena_size == size) {
        let mut spare = spare();
        if spare.len() < SPARE_ARENAS {
            spare.push(arena);
            return;
        }
    }
    previous.free(arena as *mut c_void, size);
}

fn arenas() -> MutexGuard<'static, Option<HashMap<usize, Arena>>> {
    ARENAS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What was given back so far in this process.
pub(crate) fn stats() -> ReclaimStats {
    ReclaimStats {
        available: usable().is_some() && PREVIOUS.get().is_some(),
        interpreters_reclaimed: RECLAIMED.load(Ordering::Relaxed),
        interpreters_kept: KEPT.load(Ordering::Relaxed),
        arenas_reclaimed: ARENAS_FREED.load(Ordering::Relaxed),
        bytes_reclaimed: BYTES_FREED.load(Ordering::Relaxed),
        arenas_reused: REUSED.load(Ordering::Relaxed),
    }
}

/// The layout, if it exists, matches the running interpreter's version and has not
/// been found wrong.
fn usable() -> Option<&'static Layout> {
    let layout = LAYOUT.as_ref()?;
    // SAFETY: Py_Version is a constant exported by libpython.
    let running = unsafe { ffi::Py_Version };
    let same_minor = (running >> 16) == (layout.python_hex >> 16);
    let fits = layout.interp_obmalloc + size_of::<usize>() <= layout.interp_size;
    (same_minor && fits && TRUSTED.load(Ordering::Relaxed)).then_some(layout)
}

/// glibc's trim threshold while the host runs (see the module docs): the free top of a
/// heap that malloc keeps mapped.
pub(crate) const TRIM_THRESHOLD: usize = 4 << 20;

/// glibc's `mmap` threshold while the host runs (module docs): smaller blocks come from
/// malloc's heaps.
pub(crate) const MMAP_THRESHOLD: usize = 1 << 20;

/// Sets glibc's trim and `mmap` thresholds, once, each unless the environment set it
/// (module docs).
fn keep_malloc_top() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
            for (option, bytes, env, tunable) in [
                (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "malloc.trim_threshold"),
                (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "malloc.mmap_threshold"),
            ] {
                if std::env::var_os(env).is_some() || tunables.contains(tunable) {
                    debug!(env, "the environment sets a malloc threshold: left as it is");
                    continue;
                }
                // SAFETY: `mallopt` only changes a tunable of glibc's allocator (under
                // its own lock); the value is a positive int.
                if unsafe { libc::mallopt(option, bytes as libc::c_int) } != 1 {
                    warn!(env, "malloc refused a threshold: new interpreters may fault in freed memory again");
                }
            }
        });
    }
}

/// Wraps the process's arena allocator, once, and sets malloc's thresholds. Call with
/// Python initialised.
pub(crate) fn install() {
    keep_malloc_top();
    if usable().is_none() {
        return;
    }
    if std::env::var_os("SUBACTOR_KEEP_INTERPRETER_MEMORY").is_some_and(|v| v == "1") {
        // The user's way out, should an extension module keep one interpreter's string
        // in a C static and use it from another (see the module docs).
        debug!("SUBACTOR_KEEP_INTERPRETER_MEMORY=1: ended interpreters keep their memory");
        return;
    }
    INSTALL.call_once(|| {
        let mut previous = ffi::PyObjectArenaAllocator { ctx: std::ptr::null_mut(), alloc: None, free: None };
        // SAFETY: Python is initialised (caller's contract); the struct is written in full.
        unsafe { ffi::PyObject_GetArenaAllocator(&mut previous) };
        let (Some(alloc), Some(free)) = (previous.alloc, previous.free) else {
            warn!("CPython's arena allocator is not set: ended interpreters keep their memory");
            return;
        };
        let _ = PREVIOUS.set(Previous { ctx: previous.ctx as usize, alloc, free });
        *arenas() = Some(HashMap::new());
        // SAFETY: registering a plain `extern "C"` function without captured state.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        let mut ours =
            ffi::PyObjectArenaAllocator { ctx: std::ptr::null_mut(), alloc: Some(arena_alloc), free: Some(arena_free) };
        // SAFETY: our functions delegate to the allocator we replaced, so an arena
        // allocated by either is freed by the right one; the struct is copied.
        unsafe { ffi::PyObject_SetArenaAllocator(&mut ours) };
        debug!("CPython's arena allocator wrapped: ended interpreters give their memory back");
    });
}

extern "C" fn forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// The id of the interpreter attached on this thread and its allocator state, or
/// `(-1, 0)`.
fn current_interpreter() -> (i64, usize) {
    // SAFETY: reading the current thread state is allowed at any time; an attached
    // thread state's interpreter is alive while it is attached, and its id is set once
    // it exists.
    let (interp, id) = unsafe {
        let tstate = ffi::compat::PyThreadState_GetUnchecked();
        if tstate.is_null() {
            return (-1, 0);
        }
        let interp = ffi::PyThreadState_GetInterpreter(tstate);
        (interp, ffi::PyInterpreterState_GetID(interp))
    };
    (id, usable().and_then(|layout| state_of(layout, interp)).unwrap_or(0))
}

/// The allocator state of `interp`, per the layout.
fn state_of(layout: &Layout, interp: *mut ffi::PyInterpreterState) -> Option<usize> {
    let field = interp as usize + layout.interp_obmalloc;
    if layout.obmalloc_in_place { Some(field) } else { read_word(field) }
}

extern "C" fn arena_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    let Some(previous) = PREVIOUS.get() else { return std::ptr::null_mut() };
    let arena = match take_spare(size) {
        Some(arena) => arena as *mut c_void,
        None => previous.alloc(size),
    };
    if !arena.is_null() && !FORKED.load(Ordering::Relaxed) {
        let (owner, state) = current_interpreter();
        if let Some(map) = arenas().as_mut() {
            map.insert(arena as usize, Arena { owner, state, size });
        }
    }
    arena
}

extern "C" fn arena_free(_ctx: *mut c_void, arena: *mut c_void, size: usize) {
    if !FORKED.load(Ordering::Relaxed) {
        if let Some(map) = arenas().as_mut() {
            map.remove(&(arena as usize));
        }
    }
    // Every arena came from the allocator we replaced (ours delegates to it).
    if let Some(previous) = PREVIOUS.get() {
        give_back(previous, arena as usize, size);
    }
}

/// Reads `buf.len()` bytes at `address` without faulting on an unmapped address (a
/// layout that does not match would give a wild pointer).
fn read(address: usize, buf: &mut [u8]) -> bool {
    if address == 0 {
        return false;
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: address as *mut c_void, iov_len: buf.len() };
    // SAFETY: process_vm_readv on this process copies into `buf`, which is valid for
    // its length, and reports an unreadable source as an error instead of faulting.
    let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(copied).is_ok_and(|n| n == buf.len())
}

fn read_word(address: usize) -> Option<usize> {
    let mut buf = [0u8; size_of::<usize>()];
    read(address, &mut buf).then(|| usize::from_ne_bytes(buf))
}

fn read_u32(address: usize) -> Option<u32> {
    let mut buf = [0u8; 4];
    read(address, &mut buf).then(|| u32::from_ne_bytes(buf))
}

/// Turns the mechanism off for the process: the layout read at build time does not
/// match the running interpreter.
fn distrust(why: &str) {
    if TRUSTED.swap(false, Ordering::Relaxed) {
        warn!(
            why,
            "the layout of CPython's allocator read at build time does not match this interpreter: ended \
             interpreters keep their memory from now on"
        );
    }
}

/// What is needed after an interpreter ended to give its memory back: its id, and
/// the radix tree nodes that mapped its arenas.
#[derive(Debug)]
pub(crate) struct Watch {
    id: i64,
    state: usize,
    nodes: Vec<usize>,
}

/// Takes the [`Watch`] of the interpreter `interp` (id `id`), one of the host's own
/// (own allocator), just before it ends; `None` when nothing can be given back.
///
/// # Safety
///
/// `interp` is alive (its thread state is attached on this thread).
pub(crate) unsafe fn watch(interp: *mut ffi::PyInterpreterState, id: i64) -> Option<Watch> {
    let layout = usable()?;
    PREVIOUS.get()?;
    if FORKED.load(Ordering::Relaxed) {
        return None;
    }
    let Some(state) = state_of(layout, interp) else {
        distrust("the interpreter's allocator state cannot be read");
        return None;
    };
    let recorded: Vec<usize> = {
        let map = arenas();
        let mine =
            map.as_ref()?.iter().filter(|(_, a)| a.owner == id && a.state == state && a.size == layout.arena_size);
        mine.map(|(arena, _)| *arena).collect()
    };
    if recorded.is_empty() {
        // Its objects come from elsewhere (PYTHONMALLOC=malloc, a debug allocator).
        return None;
    }
    let found = {
        let table = read_word(state + layout.state_arenas).unwrap_or(0);
        let count = read_u32(state + layout.state_maxarenas).unwrap_or(0) as usize;
        let mut bytes = vec![0u8; count.min(1 << 20) * layout.arena_object_size];
        if count == 0 || count > 1 << 20 || !read(table, &mut bytes) {
            distrust("its arena table cannot be read");
            return None;
        }
        let word = size_of::<usize>();
        let known: HashSet<usize> = bytes
            .chunks_exact(layout.arena_object_size)
            .filter_map(|entry| entry.get(layout.arena_object_address..layout.arena_object_address + word))
            .filter_map(|w| w.try_into().ok().map(usize::from_ne_bytes))
            .collect();
        recorded.iter().all(|arena| known.contains(arena))
    };
    if !found {
        distrust("its arena table does not hold the arenas it asked for");
        return None;
    }
    let mut nodes = Vec::new();
    for arena in &recorded {
        // An arena that is not aligned to its size spans two entries of the tree.
        for address in [*arena, arena + layout.arena_size] {
            let top = (address >> layout.map_top_shift) & layout.map_top_mask;
            let Some(mid) = read_word(state + layout.state_map_root + top * size_of::<usize>()) else { continue };
            if mid == 0 {
                continue;
            }
            let index = (address >> layout.map_mid_shift) & layout.map_mid_mask;
            let bottom = read_word(mid + index * size_of::<usize>()).unwrap_or(0);
            for node in [mid, bottom] {
                if node != 0 && !nodes.contains(&node) {
                    nodes.push(node);
                }
            }
        }
    }
    Some(Watch { id, state, nodes })
}

/// After the watched interpreter ended: gives back the arenas CPython kept for it,
/// and their radix tree nodes, if every block left in them is a dead string.
pub(crate) fn after_end(watch: Watch) {
    let Some(layout) = usable() else { return };
    let Some(previous) = PREVIOUS.get() else { return };
    let left: Vec<(usize, usize)> = {
        let mut map = arenas();
        let Some(map) = map.as_mut() else { return };
        let mine =
            map.iter().filter(|(_, a)| a.owner == watch.id && a.state == watch.state && a.size == layout.arena_size);
        let left: Vec<(usize, usize)> = mine.map(|(arena, a)| (*arena, a.size)).collect();
        for (arena, _) in &left {
            map.remove(arena);
        }
        left
    };
    if left.is_empty() {
        // CPython freed everything itself (no block was left).
        return;
    }
    if let Err(why) = only_dead_strings(layout, &left) {
        KEPT.fetch_add(1, Ordering::Relaxed);
        debug!(interpreter = watch.id, arenas = left.len(), %why, "an ended interpreter's memory is kept");
        return;
    }
    let mut bytes = 0;
    for (arena, size) in &left {
        // The arena came from the allocator we wrapped, with this size; the interpreter
        // that used it has ended and only dead strings were left in it.
        give_back(previous, *arena, *size);
        bytes += *size as u64;
    }
    for node in &watch.nodes {
        // SAFETY: the nodes were allocated with PyMem_RawCalloc by the ended
        // interpreter's allocator, which frees them only when it frees its arenas
        // (it did not: they were still recorded); PyMem_RawFree needs no GIL.
        unsafe { ffi::PyMem_RawFree(*node as *mut c_void) };
    }
    RECLAIMED.fetch_add(1, Ordering::Relaxed);
    ARENAS_FREED.fetch_add(left.len() as u64, Ordering::Relaxed);
    BYTES_FREED.fetch_add(bytes, Ordering::Relaxed);
    debug!(
        interpreter = watch.id,
        arenas = left.len(),
        nodes = watch.nodes.len(),
        "an ended interpreter's memory was given back"
    );
}

/// Checks that every block allocated in `arenas` is an immortal `str`, or the UTF-8
/// copy of one of them.
fn only_dead_strings(layout: &Layout, arenas: &[(usize, usize)]) -> Result<(), String> {
    let within = |p: usize| arenas.iter().any(|(a, size)| p >= *a && p < a + size);
    let mut raw = Vec::new();
    let mut utf8 = Vec::new();
    let mut strings = 0usize;
    // The free blocks of the pool at hand, by offset in alignment units (every block
    // starts at a multiple of the alignment): plain flags, not a hashed set, since this
    // runs over every pool of every ended interpreter (~1 ms of a spawn/stop cycle's
    // CPU with a set).
    let mut free = vec![false; layout.pool_size >> layout.alignment_shift];
    for (arena, size) in arenas {
        let mut pool = (arena + layout.pool_size - 1) & !(layout.pool_size - 1);
        while pool + layout.pool_size <= arena + size {
            let count = peek_u32(pool + layout.pool_count) as usize;
            if count == 0 {
                pool += layout.pool_size;
                continue;
            }
            let block = ((peek_u32(pool + layout.pool_szidx) as usize) + 1) << layout.alignment_shift;
            let next = peek_u32(pool + layout.pool_nextoffset) as usize;
            if block > layout.small_request_threshold || next > layout.pool_size {
                return Err(format!("a pool header does not look like one (block {block}, next {next})"));
            }
            free.fill(false);
            let mut cursor = peek_word(pool + layout.pool_freeblock);
            while cursor != 0 {
                if cursor < pool + layout.pool_overhead || cursor >= pool + layout.pool_size {
                    return Err("a pool's free list leaves the pool".into());
                }
                if (cursor - pool) & ((1 << layout.alignment_shift) - 1) != 0 {
                    return Err("a pool's free list holds a misaligned block".into());
                }
                let slot = &mut free[(cursor - pool) >> layout.alignment_shift];
                if std::mem::replace(slot, true) {
                    return Err("a pool's free list loops".into());
                }
                cursor = peek_word(cursor);
            }
            let mut found = 0;
            let mut offset = layout.pool_overhead;
            while offset + block <= next {
                let address = pool + offset;
                offset += block;
                if free[(address - pool) >> layout.alignment_shift] {
                    continue;
                }
                found += 1;
                match dead_string(address, block) {
                    Some(copy) => {
                        strings += 1;
                        if let Some(copy) = copy.filter(|c| within(*c)) {
                            utf8.push(copy);
                        }
                    }
                    None => raw.push(address),
                }
            }
            if found != count {
                return Err(format!("a pool counts {count} blocks but {found} were found"));
            }
            pool += layout.pool_size;
        }
    }
    utf8.sort_unstable();
    let others = raw.iter().filter(|block| utf8.binary_search(block).is_err()).count();
    if others > 0 {
        return Err(format!("{others} blocks other than the {strings} dead strings are left"));
    }
    Ok(())
}

/// Reads a word inside an arena that is about to be given back (mapped, ours to read).
fn peek_word(address: usize) -> usize {
    // SAFETY: callers pass addresses inside a recorded arena of an ended interpreter,
    // still mapped; unaligned reads are allowed.
    unsafe { std::ptr::read_unaligned(address as *const usize) }
}

/// Reads a `u32` inside an arena that is about to be given back.
fn peek_u32(address: usize) -> u32 {
    // SAFETY: as for `peek_word`.
    unsafe { std::ptr::read_unaligned(address as *const u32) }
}

/// If the block at `address` (of `block` bytes) is an immortal `str`: `Some`, with the
/// address of its separate UTF-8 copy if it has one.
///
/// On 3.14 and later always `None` (so an ended interpreter's arenas are kept, as
/// CPython keeps them): the `str` state bits' accessors are no longer part of the API
/// that `pyo3-ffi` binds there, and a layout guessed here could misread a block.
#[cfg(Py_3_14)]
fn dead_string(_address: usize, _block: usize) -> Option<Option<usize>> {
    None
}

/// If the block at `address` (of `block` bytes) is an immortal `str`: `Some`, with the
/// address of its separate UTF-8 copy if it has one.
#[cfg(not(Py_3_14))]
fn dead_string(address: usize, block: usize) -> Option<Option<usize>> {
    if block < size_of::<ffi::PyASCIIObject>() {
        return None;
    }
    let object = address as *mut ffi::PyObject;
    // SAFETY: the block is at least a PyASCIIObject long and mapped; the type pointer is
    // only compared; the string fields are read only once the type is `str`.
    unsafe {
        if std::ptr::read(std::ptr::addr_of!((*object).ob_type)) != std::ptr::addr_of_mut!(ffi::PyUnicode_Type) {
            return None;
        }
        // Immortal: the low 32 bits of the count are negative as an i32 (3.12+).
        let count = std::ptr::read(object.cast::<isize>()) as i32;
        if count >= 0 || ffi::PyUnicode_IS_COMPACT(object) == 0 {
            return None;
        }
        if ffi::PyUnicode_IS_ASCII(object) != 0 {
            return Some(None);
        }
        if block < size_of::<ffi::PyCompactUnicodeObject>() {
            return None;
        }
        let copy = (*object.cast::<ffi::PyCompactUnicodeObject>()).utf8 as usize;
        Some((copy != 0).then_some(copy))
    }
}
