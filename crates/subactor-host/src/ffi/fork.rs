//! `fork()` while actors run: what the child must find.
//!
//! **Why a forked child died.** After `fork()`, CPython's `PyOS_AfterFork_Child`
//! (`Modules/posixmodule.c`) calls `_PyInterpreterState_DeleteExceptMain`
//! (`Python/pystate.c`), which swaps the current thread state to `NULL` and then calls
//! `PyInterpreterState_Clear` on every interpreter but the main one. Clearing needs a
//! current thread state (python/cpython#101437, open): on 3.13 and 3.14 the child aborts
//! with "Fatal Python error: PyThreadState_Get: ... the current Python thread state is
//! NULL"; on 3.12, `interpreter_clear` takes the runtime's `HEAD_LOCK`, which
//! `_PyInterpreterState_DeleteExceptMain` already holds, and the child hangs forever.
//! Any subinterpreter alive at the fork does it, running or idle (a bare
//! `_interpreters.create()` then `os.fork()` is enough).
//!
//! Clearing them would not be sound anyway: an actor's interpreter is, at the moment of
//! the fork, in whatever state its thread left it (mid-bytecode, its own GIL held by a
//! thread that does not exist in the child); running its objects' finalizers there
//! would read half-updated objects.
//!
//! **What the child must see instead:** a runtime whose only interpreter is the main
//! one. The main interpreter is consistent: the forking thread holds its GIL, and
//! CPython re-initialises the runtime-wide locks in the child itself
//! (`_PyRuntimeState_ReInitThreads`). The actors' interpreters must simply be *gone*:
//! never cleared, never touched again. Their memory is left as it is (copy-on-write
//! pages the child never writes), the only state that is safe for them.
//!
//! **How.** `pthread_atfork` child handlers run inside `fork()`, in the child, before
//! `fork()` returns to `os.fork()` and so before `PyOS_AfterFork_Child`. The handler
//! installed here unlinks every subinterpreter from the runtime's list of interpreters
//! (`_PyRuntime.interpreters.head` = the main interpreter, which is always the last of
//! that newest-first list, its `next` null). `_PyInterpreterState_DeleteExceptMain`
//! then finds nothing to delete. The handler only reads and writes memory (no lock, no
//! allocation, no Python call), as a handler in the child of a multi-threaded process
//! must.
//!
//! The address of `interpreters.head` inside `_PyRuntime` is not public API:
//! - 3.13 and later publish it for out-of-process debuggers: `_PyRuntime` begins with
//!   `_Py_DebugOffsets` (cookie `"xdebugpy"`, then the version, `free_threaded`, and
//!   `runtime_state.{size, finalizing, interpreters_head}`), which is stable within a
//!   minor version and read by debuggers of every version, so its head is too;
//! - 3.12 has no such table; its `_PyRuntimeState` begins with five `int`s, the
//!   `_finalizing` pointer and `struct pyinterpreters { mutex; head; main; ... }`, so
//!   `head` is at byte 40 on every LP64 target (`Include/internal/pycore_runtime.h`).
//!
//! Either way the offset is only trusted once checked against the public API: the word
//! there must equal `PyInterpreterState_Head()` and the next one
//! `PyInterpreterState_Main()` (the field that follows `head`). If the check fails,
//! nothing is installed and a warning says that a fork with actors running would abort.
//!
//! **What stays behind.** Each interpreter counted itself as a user of CPython's static
//! builtin types (`_PyRuntime.types.managed_static`); unlinked, it never uncounts. A
//! release build does not look at those counts again; a debug build (`Py_DEBUG`)
//! asserts that they are zero when the child's main interpreter finalizes, so there a
//! forked child that exits through finalization (`sys.exit`, the end of its script)
//! aborts with "managed_static_type_state_clear: Assertion ..." after its `atexit`
//! callbacks ran, and one that ends with `os._exit` (multiprocessing's children) does
//! not. Fixing the counts would mean writing more of CPython's private state, of a
//! layout no table publishes; the fork tests expect exactly this on debug builds.
//!
//! **The rest of subactor in the child.** The actor threads do not exist there, and
//! whatever process-wide state they held a lock on at that moment is stuck. The handler
//! therefore also records that this process is a fork of one whose runtime was open
//! ([`inherited_runtime`]): the runtime and everything of it (references, executors,
//! buffers of its arena, whose memory is shared with the parent) refuses to be used
//! with [`ForkedChild`]'s message, closing it does nothing, dropping it leaks it, and
//! no new runtime can start in that process (a fork taken while no runtime was open
//! leaves a clean child, where runtimes start as usual).

use std::ffi::c_void;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use pyo3_ffi as ffi;
use tracing::{debug, warn};

/// Leases alive (runtimes open) in this process, counted before a lease takes the
/// process-wide lock and after it lets go of it: while that lock may be held, this is
/// positive.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Set in a child forked while a runtime was open (and in its own forks).
static INHERITED: AtomicBool = AtomicBool::new(false);

/// The process that opened the runtimes this one inherited (0: none).
static RUNTIME_PID: AtomicU32 = AtomicU32::new(0);

/// `&_PyRuntime.interpreters.head`, once checked; null if the workaround is off.
static HEAD_SLOT: AtomicPtr<*mut ffi::PyInterpreterState> = AtomicPtr::new(std::ptr::null_mut());

/// The main interpreter's state (a static inside `_PyRuntime`, so it never moves).
static MAIN: AtomicPtr<ffi::PyInterpreterState> = AtomicPtr::new(std::ptr::null_mut());

static INSTALL: Once = Once::new();

/// Whether this process was forked (`os.fork()`, multiprocessing's `fork` start
/// method, ...) from a process whose subactor runtime was open: the runtimes it
/// inherited have no actors or threads here, and none can be started.
pub fn inherited_runtime() -> bool {
    INHERITED.load(Ordering::Relaxed)
}

/// The error of a use of an inherited runtime in a forked child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "this process (pid {pid}) was forked from process {parent} while a subactor runtime was open there: \
     its actors and threads exist only in that process, so nothing of it can be used here, and no runtime \
     can start here. Use subactor in the parent, or start the child with the 'spawn' or 'forkserver' \
     multiprocessing start method (or as a subprocess) to give it a runtime of its own"
)]
pub struct ForkedChild {
    /// This process.
    pub pid: u32,
    /// The process whose runtime was open at the fork.
    pub parent: u32,
}

/// `Err(ForkedChild)` in a process that [inherited a runtime](inherited_runtime).
pub fn check_not_forked() -> Result<(), ForkedChild> {
    if inherited_runtime() {
        Err(ForkedChild { pid: std::process::id(), parent: RUNTIME_PID.load(Ordering::Relaxed) })
    } else {
        Ok(())
    }
}

/// Counts a lease about to be taken; refuses in a forked child of an open runtime.
pub(crate) fn lease_starting() -> Result<(), ForkedChild> {
    check_not_forked()?;
    LIVE.fetch_add(1, Ordering::SeqCst);
    RUNTIME_PID.store(std::process::id(), Ordering::Relaxed);
    Ok(())
}

/// Counts a lease gone (or one that could not be taken).
pub(crate) fn lease_ended() {
    LIVE.fetch_sub(1, Ordering::SeqCst);
}

/// Installs the `fork()` handler, once per process. Call with Python initialised and
/// before the first subinterpreter of subactor exists.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: Python is initialised (caller's contract); see `locate_head`.
        let slot = unsafe { locate_head() };
        match slot {
            Some((slot, main)) => {
                MAIN.store(main, Ordering::SeqCst);
                HEAD_SLOT.store(slot, Ordering::SeqCst);
                debug!("fork handler installed: a forked child drops the actors' interpreters");
            }
            None => warn!(
                "subactor cannot locate CPython's list of interpreters in this build: a fork() while \
                 actors run would abort the child (python/cpython#101437)"
            ),
        }
        // The handler also marks inherited runtimes, so it is installed even without
        // the interpreter list.
        // SAFETY: registering plain `extern "C"` functions without captured state.
        let status = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        if status != 0 {
            warn!(status, "pthread_atfork failed: a fork() while actors run would abort the child");
        }
    });
}

/// Where `_PyRuntime.interpreters.head` lives, checked against the public API, and the
/// main interpreter.
///
/// # Safety
///
/// Python is initialised.
unsafe fn locate_head() -> Option<(*mut *mut ffi::PyInterpreterState, *mut ffi::PyInterpreterState)> {
    // SAFETY: dlsym with a NUL-terminated name; libpython (or the executable linking it
    // statically) exports `_PyRuntime` for its own extension modules.
    let runtime = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_PyRuntime".as_ptr()) }.cast::<u8>();
    if runtime.is_null() {
        return None;
    }
    // SAFETY: reading a constant exported by libpython.
    let version = unsafe { ffi::Py_Version };
    let minor = (version >> 16) & 0xff;
    let offset = if minor >= 13 {
        // _Py_DebugOffsets: cookie[8], version, free_threaded, runtime_state.size,
        // runtime_state.finalizing, runtime_state.interpreters_head.
        // SAFETY: `_PyRuntime` is far larger than these 48 bytes; unaligned reads of
        // plain bytes.
        let (cookie, table_version, interpreters_head) = unsafe {
            (
                std::ptr::read_unaligned(runtime.cast::<[u8; 8]>()),
                std::ptr::read_unaligned(runtime.add(8).cast::<u64>()),
                std::ptr::read_unaligned(runtime.add(40).cast::<u64>()),
            )
        };
        // `Py_Version` is a C `unsigned long`: 32 bits on some targets.
        #[allow(clippy::useless_conversion)]
        let expected = u64::from(version);
        if &cookie != b"xdebugpy" || table_version != expected {
            return None;
        }
        usize::try_from(interpreters_head).ok()?
    } else if cfg!(target_pointer_width = "64") {
        40
    } else {
        return None;
    };
    // SAFETY: reading the runtime's list head and main interpreter through the public
    // API (plain loads), with Python initialised.
    let (head, main) = unsafe { (ffi::PyInterpreterState_Head(), ffi::PyInterpreterState_Main()) };
    if head.is_null() || main.is_null() || offset > 1 << 20 {
        return None;
    }
    let slot = runtime.wrapping_add(offset).cast::<*mut ffi::PyInterpreterState>();
    // SAFETY: `offset` is inside `_PyRuntime` (the debug table's own value, or 3.12's
    // layout), checked just below before it is ever written.
    let (found_head, found_main) = unsafe {
        (
            std::ptr::read_volatile(slot.cast::<*mut c_void>()),
            std::ptr::read_volatile(slot.add(1).cast::<*mut c_void>()),
        )
    };
    // The head may have changed between the two reads if another thread created an
    // interpreter meanwhile; `main` never changes: both must match.
    if found_main != main.cast::<c_void>() || found_head != head.cast::<c_void>() {
        return None;
    }
    Some((slot, main))
}

/// Runs in the child, inside `fork()`, before CPython's own after-fork code.
extern "C" fn after_fork_in_child() {
    if LIVE.load(Ordering::SeqCst) > 0 {
        INHERITED.store(true, Ordering::SeqCst);
    }
    let slot = HEAD_SLOT.load(Ordering::SeqCst);
    let main = MAIN.load(Ordering::SeqCst);
    if slot.is_null() || main.is_null() {
        return;
    }
    // SAFETY: `slot` was checked to be `_PyRuntime.interpreters.head`; this process has
    // one thread now, so nothing else reads or writes the list (CPython re-initialises
    // the lock that guards it, HEAD_LOCK, right after this handler, in
    // `_PyRuntimeState_ReInitThreads`). A null head means Python is not initialised (an
    // embedding program between two runtimes): then there is nothing to do.
    // `PyInterpreterState_Next` only reads.
    unsafe {
        let head = std::ptr::read_volatile(slot);
        if !head.is_null() && head != main && ffi::PyInterpreterState_Next(main).is_null() {
            std::ptr::write_volatile(slot, main);
        }
    }
}
