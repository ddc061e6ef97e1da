//! `subactor._native`: the native part of the `subactor` Python package.
//!
//! It drives the same Rust runtime as the `subactor` crate, from CPython's **main**
//! interpreter only: PyO3's high-level API keeps objects in process-wide statics, so it
//! is used here and nowhere near an actor's interpreter. Everything that touches an
//! actor's interpreter stays in `subactor-host`; this crate gets the objects it shares
//! with actors (`ActorRef`, `Buffer`, `BufferMut`, `Down`, the exceptions) and the
//! conversions of values from `subactor_host::main_interpreter`, so both sides use one
//! implementation.
//!
//! Map:
//! - [`runtime`]: `RuntimeCore` (spawn, lookup, timers, arena buffers, dead letters,
//!   close);
//! - [`refs`]: the main interpreter's `ActorRef` methods (waits that Ctrl-C interrupts);
//! - [`dispatch`]: how results reach the main interpreter from actor threads;
//! - [`executor`]: the pool behind `subactor.Executor`;
//! - [`supervision`], [`pipeline`], [`dead_letters`];
//! - [`otel`]: the OpenTelemetry export and `subactor.Span`;
//! - [`conv`], [`errors`], [`wait`]: conversions, exceptions, interruptible waiting.
//!
//! The Python package (`python/subactor`) wraps all of this in typed, documented
//! classes; its `_native.pyi` describes this module.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use subactor_host::main_interpreter as main;

mod conv;
mod dead_letters;
mod dispatch;
mod errors;
mod executor;
mod otel;
mod pipeline;
mod refs;
mod replies;
mod runtime;
mod supervision;
mod wait;

/// Objects of the Python package that the native code needs (registered at import by
/// `subactor/__init__.py`).
pub(crate) struct Hooks {
    /// `subactor.IncompatibleExtension(message, module)`.
    incompatible_extension: Py<PyAny>,
    /// `subactor.BrokenExecutor(message)`.
    broken_executor: Py<PyAny>,
    /// `resolve(future, ok, value)`: completes an asyncio future on its loop.
    resolve_async: Py<PyAny>,
    /// `task_traceback(text)`: the cause chained to an executor task's exception (the
    /// worker's traceback), as `ProcessPoolExecutor` chains it.
    task_traceback: Py<PyAny>,
    /// `initializer_failed(exc)`: reports (logs) an executor initializer's exception.
    initializer_failed: Py<PyAny>,
}

static HOOKS: PyOnceLock<Hooks> = PyOnceLock::new();

/// The registered hooks.
pub(crate) fn hooks(py: Python<'_>) -> PyResult<&'static Hooks> {
    HOOKS.get(py).ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("subactor._native is not initialised"))
}

/// Registers the package's hooks (once).
#[pyfunction]
fn _register_hooks(
    py: Python<'_>,
    incompatible_extension: Py<PyAny>,
    broken_executor: Py<PyAny>,
    resolve_async: Py<PyAny>,
    task_traceback: Py<PyAny>,
    initializer_failed: Py<PyAny>,
) -> PyResult<()> {
    let _ = HOOKS
        .set(py, Hooks { incompatible_extension, broken_executor, resolve_async, task_traceback, initializer_failed });
    Ok(())
}

/// Stops the dispatcher thread (at interpreter exit, after every runtime has closed).
/// The entry point of the template process of process actors: `python -c` runs it in
/// a fresh interpreter started by a runtime. Never returns.
#[pyfunction]
fn _run_template() -> PyResult<()> {
    match subactor_host::run_template() {
        Ok(never) => match never {},
        Err(error) => Err(pyo3::exceptions::PyRuntimeError::new_err(error)),
    }
}

#[pyfunction]
fn _stop_dispatcher(py: Python<'_>) -> PyResult<()> {
    dispatch::stop(py)
}

/// A function of the host's bootstrap module in the main interpreter (the package uses
/// `reference_of`: what actors can import by reference, see `subactor/_shipping.py`).
#[pyfunction]
fn _bootstrap<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let name = std::ffi::CString::new(name).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    errors::class(py, &name)
}

/// The classes of the host's bootstrap module that the package exports.
const CLASSES: [&std::ffi::CStr; 14] = [
    c"ActorError",
    c"ActorStopped",
    c"MailboxFull",
    c"AskTimeout",
    c"NoReply",
    c"SelfAskError",
    c"SpawnError",
    c"RemoteError",
    c"RemoteTraceback",
    c"ActorFailed",
    c"Interrupted",
    c"Killed",
    c"TimeLimitExceeded",
    c"Down",
];

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // SAFETY: module initialisation runs with the GIL held, in the main interpreter
    // (PyO3 refuses to initialise this module in any other).
    unsafe { main::init() }.map_err(|e| pyo3::exceptions::PyImportError::new_err(e.to_string()))?;
    // SAFETY: as above; the types are borrowed, `Bound::from_borrowed_ptr` takes a
    // reference of its own.
    let [actor_ref, buffer, buffer_mut] = unsafe { main::types() }
        .map_err(|e| pyo3::exceptions::PyImportError::new_err(e.to_string()))?
        .map(|ty| unsafe { Bound::from_borrowed_ptr(py, ty.as_ptr()) });
    m.add("ActorRef", actor_ref)?;
    m.add("Buffer", buffer)?;
    m.add("BufferMut", buffer_mut)?;
    for name in CLASSES {
        m.add(name.to_string_lossy().as_ref(), errors::class(py, name)?)?;
    }
    m.add_class::<runtime::RuntimeCore>()?;
    m.add_class::<executor::ExecutorCore>()?;
    m.add_class::<supervision::SupervisorRef>()?;
    m.add_class::<supervision::ChildInfo>()?;
    m.add_class::<pipeline::PipelineCore>()?;
    m.add_class::<pipeline::PipelineOutput>()?;
    m.add_class::<dead_letters::DeadLetter>()?;
    m.add_class::<dead_letters::DeadLetterSubscription>()?;
    m.add_class::<otel::Span>()?;
    m.add_function(wrap_pyfunction!(otel::otel_start, m)?)?;
    m.add_function(wrap_pyfunction!(otel::otel_flush, m)?)?;
    m.add_function(wrap_pyfunction!(otel::otel_endpoint, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_tell, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_try_tell, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_ask, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_ask_async, m)?)?;
    m.add_class::<replies::LoopReplies>()?;
    m.add_function(wrap_pyfunction!(replies::ask_begin, m)?)?;
    m.add_function(wrap_pyfunction!(replies::replies_take, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_stop, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_kill, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_state, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_mailbox_len, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_wait, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_monitor, m)?)?;
    m.add_function(wrap_pyfunction!(refs::ref_demonitor, m)?)?;
    m.add_function(wrap_pyfunction!(_register_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(_stop_dispatcher, m)?)?;
    m.add_function(wrap_pyfunction!(_run_template, m)?)?;
    m.add_function(wrap_pyfunction!(executor::_shutdown_executors, m)?)?;
    m.add_function(wrap_pyfunction!(_bootstrap, m)?)?;
    Ok(())
}
