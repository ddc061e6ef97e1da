//! Python objects <-> [`Value`]s in the main interpreter, through the host's own
//! conversions (`subactor_host::main_interpreter`): the same code that converts in
//! actors, so a value has the same form on both sides.

use std::ptr::NonNull;

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::prelude::*;
use subactor_core::{AnyRef, Value};
use subactor_host::main_interpreter as main;

use crate::errors;

/// A `Bound`'s pointer, which is never null.
fn non_null(obj: &Bound<'_, PyAny>) -> PyResult<NonNull<pyo3::ffi::PyObject>> {
    NonNull::new(obj.as_ptr()).ok_or_else(|| PySystemError::new_err("a null object"))
}

/// Reads a Python object into a value (pickling what is not a plain value).
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let ptr = non_null(obj)?;
    // SAFETY: the `Bound` proves that this thread holds the GIL, and this extension
    // only runs in the main interpreter (PyO3 refuses to load it in any other).
    unsafe { main::from_python(ptr) }.map_err(|error| errors::convert(obj.py(), &error))
}

/// Builds the Python object for a value.
pub(crate) fn to_object<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `py` proves that this thread holds the GIL, in the main interpreter (see
    // `to_value`); the pointer returned is a new reference, owned by the `Bound`.
    unsafe {
        let ptr = main::to_python(value).map_err(|error| errors::convert(py, &error))?;
        Ok(Bound::from_owned_ptr(py, ptr.as_ptr()))
    }
}

/// The actor behind an `ActorRef`.
pub(crate) fn actor_of(obj: &Bound<'_, PyAny>) -> PyResult<AnyRef> {
    errors::not_forked()?;
    let ptr = non_null(obj)?;
    // SAFETY: GIL held in the main interpreter (see `to_value`); `obj` is alive.
    unsafe { main::actor_ref_of(ptr) }.ok_or_else(|| {
        let kind = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("expected a subactor.ActorRef, got {kind}"))
    })
}

/// A new `ActorRef` object.
pub(crate) fn new_ref(py: Python<'_>, actor: AnyRef) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: GIL held in the main interpreter (see `to_value`); the result is a new
    // reference or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, main::new_actor_ref(actor)) }
}
