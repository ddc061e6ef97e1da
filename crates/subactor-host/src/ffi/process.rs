//! The process's Python: the main interpreter, shared by every runtime in the process.
//!
//! When Rust embeds Python, the first [`Lease`] starts a thread named `python-main`
//! that initialises Python (`Py_InitializeFromConfig`, no signal handlers), releases the
//! main GIL and waits. Releasing the last lease wakes that thread, which re-attaches and
//! runs `Py_FinalizeEx`: initialisation and finalisation happen on the same OS thread,
//! and only after every subinterpreter has ended (each actor holds a lease through its
//! host). A later lease initialises Python again.
//!
//! When Python was already running (subactor loaded as an extension module by a Python
//! program), leases neither initialise nor finalise anything.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use pyo3_ffi as ffi;
use tracing::{debug, info, warn};

use super::object::c_str_lossy;
use crate::HostError;

/// What is known about the running Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PythonVersion {
    pub(crate) major: u8,
    pub(crate) minor: u8,
    pub(crate) micro: u8,
}

impl PythonVersion {
    fn running() -> PythonVersion {
        // SAFETY: Py_Version is a constant exported by libpython, readable at any time.
        let hex = unsafe { ffi::Py_Version };
        PythonVersion {
            major: ((hex >> 24) & 0xff) as u8,
            minor: ((hex >> 16) & 0xff) as u8,
            micro: ((hex >> 8) & 0xff) as u8,
        }
    }
}

/// The state behind the process-wide lock: how many leases exist, and the embedded
/// Python's thread when we started it.
struct Slot {
    leases: usize,
    embedded: Option<Embedded>,
}

struct Embedded {
    finalize: flume::Sender<()>,
    thread: JoinHandle<Result<(), HostError>>,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot { leases: 0, embedded: None });

fn slot() -> MutexGuard<'static, Slot> {
    SLOT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A share of the process's Python. While one exists, Python is initialised.
#[derive(Debug)]
pub(crate) struct Lease {
    version: PythonVersion,
    released: bool,
}

impl Lease {
    /// Takes a share, initialising Python if this is the first one.
    pub(crate) fn acquire() -> Result<Lease, HostError> {
        // Counted first: a fork while this thread may hold the lock below leaves a child
        // that knows it inherited a runtime (see `fork`).
        super::fork::lease_starting()?;
        let acquired = Lease::acquire_counted();
        if acquired.is_err() {
            super::fork::lease_ended();
        }
        acquired
    }

    fn acquire_counted() -> Result<Lease, HostError> {
        let mut slot = slot();
        if slot.leases == 0 {
            // SAFETY: Py_IsInitialized may be called at any time.
            let already_running = unsafe { ffi::Py_IsInitialized() } != 0;
            if already_running {
                debug!("Python is already initialised by the host program");
            } else {
                slot.embedded = Some(start_embedded()?);
            }
        }
        let version = PythonVersion::running();
        if (version.major, version.minor) < (3, 12) {
            // Only reachable if a different libpython was loaded at run time.
            let embedded = slot.embedded.take();
            drop(slot);
            if let Some(embedded) = embedded {
                let _ = finalize(embedded);
            }
            return Err(HostError::Version(format!("{}.{}.{}", version.major, version.minor, version.micro)));
        }
        // Before the first subinterpreter: a fork() must find the handler in place.
        super::fork::install();
        // Before the first subinterpreter too: its arenas must be recorded.
        super::reclaim::install();
        slot.leases += 1;
        Ok(Lease { version, released: false })
    }

    pub(crate) fn version(&self) -> PythonVersion {
        self.version
    }

    /// Gives the share back; finalises Python (and reports how that went) if it was the
    /// last one and we had initialised it.
    pub(crate) fn release(mut self) -> Result<(), HostError> {
        self.released = true;
        release_one()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            if let Err(error) = release_one() {
                warn!(%error, "finalising Python failed");
            }
        }
    }
}

fn release_one() -> Result<(), HostError> {
    let result = release_locked();
    super::fork::lease_ended();
    result
}

fn release_locked() -> Result<(), HostError> {
    // The lock is held while finalising, so that a new lease waits for it to finish.
    let mut slot = slot();
    slot.leases -= 1;
    if slot.leases > 0 {
        return Ok(());
    }
    match slot.embedded.take() {
        Some(embedded) => finalize(embedded),
        None => Ok(()),
    }
}

fn finalize(embedded: Embedded) -> Result<(), HostError> {
    let _ = embedded.finalize.send(());
    match embedded.thread.join() {
        Ok(result) => result,
        Err(_) => Err(HostError::Init("the python-main thread panicked".into())),
    }
}

/// The program name the embedded Python starts from: it decides `sys.prefix` and
/// `sys.executable`. An active virtualenv wins (its packages become importable), then
/// the interpreter subactor was built against.
fn program_name() -> Option<PathBuf> {
    let venv = std::env::var_os("VIRTUAL_ENV").map(|dir| PathBuf::from(dir).join("bin").join("python"));
    let built = option_env!("SUBACTOR_BUILD_PYTHON").map(PathBuf::from);
    venv.into_iter().chain(built).find(|path| path.exists())
}

fn start_embedded() -> Result<Embedded, HostError> {
    let (ready_tx, ready_rx) = flume::bounded::<Result<(), HostError>>(1);
    let (finalize_tx, finalize_rx) = flume::bounded::<()>(1);
    let program = program_name().and_then(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok());
    let thread = thread::Builder::new()
        .name("python-main".into())
        .spawn(move || -> Result<(), HostError> {
            // SAFETY: Python is not initialised (checked under the process-wide lock,
            // which the caller holds until `ready` arrives), and this thread is where it
            // will live and die.
            let main_state = match unsafe { initialize(program.as_deref()) } {
                Ok(state) => state,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            let _ = finalize_rx.recv();
            // SAFETY: main_state is the thread state PyEval_SaveThread returned on this
            // thread; every subinterpreter has ended (each held a lease).
            let code = unsafe {
                ffi::PyEval_RestoreThread(main_state);
                ffi::Py_FinalizeEx()
            };
            info!("Python finalised");
            if code == 0 { Ok(()) } else { Err(HostError::Finalize) }
        })
        .map_err(|e| HostError::Init(format!("cannot start the python-main thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Embedded { finalize: finalize_tx, thread }),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => {
            let _ = thread.join();
            Err(HostError::Init("the python-main thread ended during initialisation".into()))
        }
    }
}

/// Initialises Python on the calling thread, which keeps the main GIL: a template
/// process, taken over before `main`.
///
/// # Safety
///
/// Python is not initialised, and no other thread runs.
pub(crate) unsafe fn initialize_attached() -> Result<(), HostError> {
    let program = program_name().and_then(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok());
    // SAFETY: forwarded contract; the state returned is this thread's, re-attached.
    unsafe {
        let main_state = initialize(program.as_deref())?;
        ffi::PyEval_RestoreThread(main_state);
    }
    Ok(())
}

/// Initialises Python and releases the main GIL; returns the main thread state.
///
/// # Safety
///
/// Python is not initialised, and no other thread initialises it meanwhile.
unsafe fn initialize(program: Option<&std::ffi::CStr>) -> Result<*mut ffi::PyThreadState, HostError> {
    let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
    // SAFETY: PyConfig_InitPythonConfig fully initialises the struct it is given.
    unsafe { ffi::PyConfig_InitPythonConfig(config.as_mut_ptr()) };
    // SAFETY: initialised just above.
    let config = unsafe { config.assume_init_mut() };
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    if let Some(program) = program {
        // SAFETY: config is initialised and program_name is one of its wide-string
        // fields; on failure the field keeps its default, which is still usable.
        let status = unsafe { ffi::PyConfig_SetBytesString(config, &mut config.program_name, program.as_ptr()) };
        // SAFETY: reading a status by value.
        if unsafe { ffi::PyStatus_Exception(status) } != 0 {
            warn!("could not set Python's program name; using the default");
        }
    }
    // SAFETY: Python is not initialised (caller's contract); config is valid.
    let status = unsafe { ffi::Py_InitializeFromConfig(config) };
    // SAFETY: config is valid; clearing frees its strings.
    unsafe { ffi::PyConfig_Clear(config) };
    // SAFETY: reading a status by value; its strings are static.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 {
        // SAFETY: err_msg and func are null or static C strings.
        let (message, func) = unsafe { (c_str_lossy(status.err_msg), c_str_lossy(status.func)) };
        return Err(HostError::Init(format!(
            "{} (in {})",
            message.unwrap_or_else(|| "unknown error".into()),
            func.unwrap_or_else(|| "?".into())
        )));
    }
    // SAFETY: Python is initialised and this thread holds the main GIL.
    unsafe { build_shared_parsers() };
    // SAFETY: Python is initialised and this thread holds the main GIL.
    let main_state = unsafe { ffi::PyEval_SaveThread() };
    debug!("Python initialised");
    Ok(main_state)
}

/// Works around CPython gh-119213 (3.12.0 to 3.12.3): an extension function's argument
/// parser is process-wide, and the tuple of its keyword names is made by whichever
/// interpreter first calls the function with keywords, from that interpreter's
/// allocator; made in an actor's interpreter, it outlives it and the main interpreter's
/// `Py_FinalizeEx` frees it: "free(): invalid pointer", an abort at exit. The calls that
/// threads' work queues make (`_queue.SimpleQueue.get(block=True)`, run by every
/// `ThreadPoolExecutor`, so by `loop.run_in_executor` and `asyncio.to_thread` in actors)
/// are made here first, in the main interpreter. Other extension functions called with
/// keywords in actors first remain exposed there (README: use 3.12.4 or later).
///
/// Once per process: those versions' `Py_FinalizeEx` clears a parser's tuple but leaves
/// it marked as made, so a keyword call of it after Python is initialised again
/// dereferences null (a segfault, seen when a later lease initialises Python again).
/// Elsewhere this does nothing.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub(crate) unsafe fn build_shared_parsers() {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let version = PythonVersion::running();
    if (version.major, version.minor) != (3, 12) || version.micro >= 4 {
        return;
    }
    if DONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let code = c"import _queue\nq = _queue.SimpleQueue()\nq.put(None, block=True, timeout=None)\n\
                 q.get(block=True, timeout=None)\n";
    // SAFETY: attached to the main interpreter (contract); the dict and the result are
    // owned here and released before returning; an error is cleared (the work-around
    // is best effort: Python still runs without it).
    unsafe {
        let globals = ffi::PyDict_New();
        if globals.is_null() {
            ffi::PyErr_Clear();
            return;
        }
        let result = ffi::PyRun_StringFlags(code.as_ptr(), ffi::Py_file_input, globals, globals, std::ptr::null_mut());
        if result.is_null() {
            ffi::PyErr_Clear();
            warn!("could not prepare the work-around of CPython gh-119213 (3.12.0-3.12.3)");
        } else {
            ffi::Py_DECREF(result);
        }
        ffi::Py_DECREF(globals);
    }
}
