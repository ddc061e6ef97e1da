//! The exceptions of the main-interpreter API: the classes of the host's bootstrap
//! module (the same as in actors: `ActorError` and its subclasses, `RemoteTraceback`),
//! plus the few the package defines in Python (registered as [`crate::Hooks`]).
//!
//! A failure that happened in an actor is raised with the actor-side traceback chained
//! as its `__cause__`, a `subactor.RemoteTraceback`, so Python prints it first.

use std::ffi::CStr;

use pyo3::call::PyCallArgs;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use subactor_core::{BoxError, Fault, Outcome, SendError, SpawnError, Value};
use subactor_host::{ConvertError, PythonException, ReceiveError, StartError, main_interpreter as main};

use crate::{conv, hooks};

/// `RuntimeError` in a process forked from one whose runtime was open: nothing of that
/// runtime exists here (see `subactor_host::fork`). Every entry point that would use
/// the runtime's actors, threads or shared state checks this first, before it touches
/// a lock that a thread of the parent may have held at the fork.
pub(crate) fn not_forked() -> PyResult<()> {
    subactor_host::fork::check_not_forked().map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// An index argument: an `int` (not a `bool`) from 0 up; `TypeError` or `ValueError`
/// naming the argument otherwise (never `OverflowError`).
pub(crate) fn index_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    let kind = || obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    if obj.is_instance_of::<pyo3::types::PyBool>() || !obj.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, not {}", kind())));
    }
    match obj.extract::<i64>() {
        Ok(value) => {
            usize::try_from(value).map_err(|_| PyValueError::new_err(format!("{name} must be at least 0, got {value}")))
        }
        Err(_) => Err(PyValueError::new_err(format!("{name} is out of range, got {obj}"))),
    }
}

/// A class of the bootstrap module (an exception class, `Down`, `RemoteTraceback`).
pub(crate) fn class<'py>(py: Python<'py>, name: &CStr) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `py` proves the GIL is held, in the main interpreter (this extension loads
    // nowhere else); the result is a new reference, owned by the `Bound`.
    unsafe {
        let ptr = main::class(name).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(Bound::from_owned_ptr(py, ptr.as_ptr()))
    }
}

/// An instance of a bootstrap exception class, as a `PyErr`.
pub(crate) fn new<'py>(py: Python<'py>, name: &CStr, args: impl PyCallArgs<'py>) -> PyErr {
    match class(py, name).and_then(|cls| cls.call1(args)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// `err` with the actor-side `traceback` chained as its cause (a `RemoteTraceback`).
pub(crate) fn with_remote_traceback(py: Python<'_>, err: PyErr, traceback: &str) -> PyErr {
    if traceback.is_empty() {
        return err;
    }
    match class(py, c"RemoteTraceback").and_then(|cls| cls.call1((traceback,))) {
        Ok(cause) => err.set_cause(py, Some(PyErr::from_value(cause))),
        Err(failed) => return failed,
    }
    err
}

/// `RemoteError(type, message, traceback)` from the actor-side traceback.
pub(crate) fn remote(py: Python<'_>, exception: &PythonException) -> PyErr {
    let err = new(
        py,
        c"RemoteError",
        (exception.type_name.as_str(), exception.message.as_str(), exception.traceback.as_str()),
    );
    with_remote_traceback(py, err, &exception.traceback)
}

/// The exception for a handler's error (a Python actor's `ReceiveError`).
pub(crate) fn handler(py: Python<'_>, error: &BoxError) -> PyErr {
    match error.downcast_ref::<ReceiveError>() {
        Some(ReceiveError::Exception(exception)) => remote(py, exception),
        Some(other) => match other.exception() {
            // A message or reply that could not cross: say so, with what Python raised.
            Some(exception) => {
                let described = PythonException {
                    type_name: exception.type_name.clone(),
                    message: other.to_string(),
                    traceback: exception.traceback.clone(),
                };
                remote(py, &described)
            }
            None => new(py, c"RemoteError", ("subactor.ConversionError", other.to_string(), "")),
        },
        None => new(py, c"RemoteError", ("Error", error.to_string(), "")),
    }
}

/// `ActorFailed(kind, message)` for a fault of the actor.
pub(crate) fn fault(py: Python<'_>, fault: &Fault) -> PyErr {
    let kind = match fault {
        Fault::Panicked(_) => "panicked",
        Fault::Killed => "killed",
        Fault::TimeLimit(_) => "time_limit",
        Fault::Died(_) => "died",
    };
    new(py, c"ActorFailed", (kind, fault.to_string()))
}

/// `ActorStopped` or `MailboxFull` for a refused message.
pub(crate) fn send(py: Python<'_>, error: &SendError<Value>) -> PyErr {
    match error {
        SendError::Full(_) => new(py, c"MailboxFull", ("the actor's mailbox is full",)),
        SendError::Stopped(_) => stopped(py),
    }
}

/// `ActorStopped`.
pub(crate) fn stopped(py: Python<'_>) -> PyErr {
    new(py, c"ActorStopped", ("the actor is not running",))
}

/// The reply of an ask, or the exception for how it failed.
pub(crate) fn ask_outcome(py: Python<'_>, outcome: Outcome<Value, BoxError>) -> PyResult<Bound<'_, PyAny>> {
    match outcome {
        Outcome::Replied(value) => conv::to_object(py, &value),
        Outcome::Failed(error) => Err(handler(py, &error)),
        Outcome::Fault(f) => Err(fault(py, &f)),
        Outcome::NotHandled => Err(new(py, c"NoReply", ("the actor stopped before replying",))),
    }
}

/// The exception for a value that cannot cross.
pub(crate) fn convert(py: Python<'_>, error: &ConvertError) -> PyErr {
    let err = PyTypeError::new_err(error.to_string());
    match error.exception() {
        Some(exception) => with_remote_traceback(py, err, &exception.traceback),
        None => err,
    }
}

/// The exception for a failed spawn: `SpawnError`, or its subclass
/// `IncompatibleExtension` (with the module's name) when an extension module refused the
/// actor's interpreter; the child's traceback is the cause.
pub(crate) fn spawn(py: Python<'_>, error: &SpawnError<StartError>) -> PyErr {
    let message = error.to_string();
    let err = match error {
        SpawnError::Start(StartError::IncompatibleExtension { module, .. }) => {
            match hooks(py).and_then(|h| h.incompatible_extension.bind(py).call1((message.as_str(), module.as_str()))) {
                Ok(exc) => PyErr::from_value(exc),
                Err(failed) => failed,
            }
        }
        SpawnError::InvalidOptions(_) => PyValueError::new_err(message),
        _ => new(py, c"SpawnError", (message.as_str(),)),
    };
    match error.start_error().and_then(StartError::exception) {
        Some(exception) => with_remote_traceback(py, err, &exception.traceback),
        None => err,
    }
}
