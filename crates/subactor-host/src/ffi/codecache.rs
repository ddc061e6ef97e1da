//! The process's cache of compiled Python source, shared by every actor interpreter.
//!
//! An actor's interpreter is new, so it imports its actor's module anew at every spawn.
//! Where no valid `.pyc` can be read (`PYTHONDONTWRITEBYTECODE`, a read-only folder, a
//! module file given by path before its first import wrote one), that import compiles
//! the source each time: ~1 ms for a small module here, as much as the rest of the
//! spawn above the interpreter's creation. Code objects cannot cross interpreters; their
//! marshalled bytes can: the bootstrap's source loader (`bootstrap.py`,
//! `_CachedSourceFileLoader`) asks [`get`] before it compiles and gives [`put`] what it
//! compiled.
//!
//! An entry is the module's file path, its source bytes and its marshalled code: a hit
//! needs the very same source text at the same path, so it always gives what compiling
//! would (the compile flags are the loader's defaults, the same in every interpreter of
//! the process). At most [`LIMIT`] bytes are kept; past that, new sources are compiled
//! and not kept. The lock is only ever tried: an interpreter that finds it taken (or a
//! child forked while another thread held it) compiles, as without the cache.

use std::collections::BTreeMap;
use std::ptr;
use std::sync::{Arc, Mutex, TryLockError};

use pyo3_ffi as ffi;

use super::module::{CStatic, guard, method};
use super::object::to_rust_string;

/// How many bytes (sources and marshalled code) the cache keeps at most.
const LIMIT: usize = 64 << 20;

/// One compiled source file.
struct Entry {
    source: Box<[u8]>,
    code: Arc<[u8]>,
}

/// The entries by path, and their total size.
struct Cache {
    entries: BTreeMap<String, Entry>,
    bytes: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache { entries: BTreeMap::new(), bytes: 0 });

/// The cache, if no other thread holds it right now.
fn try_cache() -> Option<std::sync::MutexGuard<'static, Cache>> {
    match CACHE.try_lock() {
        Ok(cache) => Some(cache),
        // The entries are whole values: a panic elsewhere cannot have left one half made.
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

static METHODS: CStatic<[ffi::PyMethodDef; 2]> = CStatic::new([
    method(
        c"_code_cache_get",
        ffi::PyMethodDefPointer { PyCFunctionFast: get },
        ffi::METH_FASTCALL,
        c"_code_cache_get(path, source): the code object compiled before from this source at this path, or None.",
    ),
    method(
        c"_code_cache_put",
        ffi::PyMethodDefPointer { PyCFunctionFast: put },
        ffi::METH_FASTCALL,
        c"_code_cache_put(path, source, code): keeps code, compiled from source at path, for other interpreters.",
    ),
]);

/// Puts `_code_cache_get` and `_code_cache_put` in `dict` (the bootstrap module's).
///
/// # Safety
///
/// An interpreter is attached on this thread and `dict` is a dict of it.
pub(super) unsafe fn add_functions(dict: *mut ffi::PyObject) -> Result<(), ()> {
    for i in 0..2 {
        // SAFETY: attached (contract); the definitions are static, so they outlive every
        // function object made from them; the new function is released after the dict
        // took its own reference.
        unsafe {
            let def = METHODS.as_ptr().cast::<ffi::PyMethodDef>().add(i);
            let function = ffi::PyCFunction_NewEx(def, ptr::null_mut(), ptr::null_mut());
            if function.is_null() {
                return Err(());
            }
            let added = ffi::PyDict_SetItemString(dict, (*def).ml_name, function);
            ffi::Py_DECREF(function);
            if added < 0 {
                return Err(());
            }
        }
    }
    Ok(())
}

/// The contents of a `bytes` object, or `None` if it is not one.
///
/// # Safety
///
/// Attached; `obj` is a valid object, alive while the slice is used.
unsafe fn bytes<'a>(obj: *mut ffi::PyObject) -> Option<&'a [u8]> {
    // SAFETY: attached (contract); a bytes object's buffer is immutable and lives as
    // long as the object.
    unsafe {
        if ffi::PyBytes_Check(obj) == 0 {
            return None;
        }
        let len = usize::try_from(ffi::PyBytes_Size(obj)).ok()?;
        Some(std::slice::from_raw_parts(ffi::PyBytes_AsString(obj).cast::<u8>(), len))
    }
}

unsafe extern "C" fn get(
    _module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this attached, with `nargs` valid arguments.
        unsafe {
            if nargs != 2 {
                ffi::PyErr_SetString(ffi::PyExc_TypeError, c"_code_cache_get() takes (path, source)".as_ptr());
                return Err(super::module::Raised);
            }
            let (Some(path), Some(source)) = (to_rust_string(*args), bytes(*args.add(1))) else {
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            };
            let code = try_cache().and_then(|cache| {
                let entry = cache.entries.get(&path)?;
                (*entry.source == *source).then(|| Arc::clone(&entry.code))
            });
            let Some(code) = code else {
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            };
            let len = ffi::Py_ssize_t::try_from(code.len()).unwrap_or(ffi::Py_ssize_t::MAX);
            let loaded = ffi::PyMarshal_ReadObjectFromString(code.as_ptr().cast(), len);
            if loaded.is_null() {
                // Bytes this libpython wrote cannot fail to load but for lack of memory:
                // compile instead.
                ffi::PyErr_Clear();
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            }
            Ok(loaded)
        }
    })
}

unsafe extern "C" fn put(
    _module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this attached, with `nargs` valid arguments; the
        // marshalled bytes object is released before returning.
        unsafe {
            if nargs != 3 {
                ffi::PyErr_SetString(ffi::PyExc_TypeError, c"_code_cache_put() takes (path, source, code)".as_ptr());
                return Err(super::module::Raised);
            }
            let (Some(path), Some(source), code) = (to_rust_string(*args), bytes(*args.add(1)), *args.add(2)) else {
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            };
            if ffi::PyCode_Check(code) == 0 || source.len() > LIMIT {
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            }
            let marshalled = ffi::PyMarshal_WriteObjectToString(code, super::helpers::MARSHAL_VERSION);
            if marshalled.is_null() {
                // Caching is optional: a code object marshal refuses is just not kept.
                ffi::PyErr_Clear();
                return Ok(ffi::Py_NewRef(ffi::Py_None()));
            }
            let entry = bytes(marshalled).map(|code| Entry { source: source.into(), code: code.into() });
            ffi::Py_DECREF(marshalled);
            if let (Some(entry), Some(mut cache)) = (entry, try_cache()) {
                let size = entry.source.len() + entry.code.len();
                if let Some(old) = cache.entries.remove(&path) {
                    cache.bytes -= old.source.len() + old.code.len();
                }
                if cache.bytes + size <= LIMIT {
                    cache.bytes += size;
                    cache.entries.insert(path, entry);
                }
            }
            Ok(ffi::Py_NewRef(ffi::Py_None()))
        }
    })
}
