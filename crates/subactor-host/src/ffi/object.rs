//! [`Obj`]: an owned reference to a Python object, plus the few helpers that read
//! Python strings and exceptions.

use std::ffi::{CStr, c_char};
use std::ptr::NonNull;

use pyo3_ffi as ffi;

/// A strong reference to a Python object, released on drop.
///
/// Invariant: the thread that creates, uses and drops an `Obj` has the object's
/// interpreter attached. `NonNull` makes the type neither `Send` nor `Sync`, which keeps
/// it on that thread; the owning [`Interpreter`](super::interp::Interpreter) keeps it
/// attached while `Obj`s are dropped.
pub(crate) struct Obj(NonNull<ffi::PyObject>);

impl Obj {
    /// Takes ownership of a new reference; `None` if `ptr` is null (then a Python
    /// exception is normally set).
    ///
    /// # Safety
    ///
    /// `ptr` is null or a strong reference the caller owns, and the object's interpreter
    /// is attached on this thread.
    pub(crate) unsafe fn from_owned(ptr: *mut ffi::PyObject) -> Option<Obj> {
        NonNull::new(ptr).map(Obj)
    }

    /// Takes a new reference to a borrowed object; `None` if `ptr` is null.
    ///
    /// # Safety
    ///
    /// `ptr` is null or a valid object, and its interpreter is attached on this thread.
    pub(crate) unsafe fn from_borrowed(ptr: *mut ffi::PyObject) -> Option<Obj> {
        let obj = NonNull::new(ptr)?;
        // SAFETY: the object is valid and its interpreter attached (caller's contract).
        unsafe { ffi::Py_INCREF(ptr) };
        Some(Obj(obj))
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    /// Gives up ownership, for C API calls that steal a reference.
    pub(crate) fn into_ptr(self) -> *mut ffi::PyObject {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we own one reference, and the type's invariant says the object's
        // interpreter is attached on this thread.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

/// Takes the exception currently raised in the attached interpreter, if any.
///
/// # Safety
///
/// An interpreter is attached on this thread.
pub(crate) unsafe fn take_exception() -> Option<Obj> {
    // SAFETY: an interpreter is attached (caller's contract); the call returns a new
    // reference or null, and clears the error indicator.
    unsafe { Obj::from_owned(ffi::PyErr_GetRaisedException()) }
}

/// Copies a Python `str` into a Rust `String`; `None` if `obj` is not a `str` or holds
/// lone surrogates (the exception is cleared).
///
/// # Safety
///
/// `obj` is a valid object of the attached interpreter.
pub(crate) unsafe fn to_rust_string(obj: *mut ffi::PyObject) -> Option<String> {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: obj is valid and its interpreter attached (caller's contract).
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj, &mut len) };
    if data.is_null() {
        // SAFETY: as above; clears the exception PyUnicode_AsUTF8AndSize raised.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    let len = usize::try_from(len).ok()?;
    // SAFETY: CPython guarantees `len` bytes of UTF-8 at `data`, alive as long as `obj`.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Reads a C string that CPython owns (an error message, a function name).
///
/// # Safety
///
/// `ptr` is null or a valid NUL-terminated string.
pub(crate) unsafe fn c_str_lossy(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated (caller's contract).
    Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}
