//! [`Value`] <-> Python objects, in the attached interpreter.
//!
//! Python -> `Value` recognises the built-in types by exact type (a subclass such as an
//! `IntEnum` or a `namedtuple` keeps its identity by going through pickle), refuses
//! reference cycles and nesting deeper than [`MAX_DEPTH`], and pickles everything else.
//! `Value` -> Python builds fresh objects; a pickled value is unpickled.

use std::ffi::c_long;
use std::ptr;

use num_bigint::BigInt;
use pyo3_ffi as ffi;
use subactor_core::{ActorId, Down, MAX_DEPTH, StopReason, Value};

use super::helpers::Helpers;
use super::object::{Obj, to_rust_string};
use crate::{ConvertError, PythonException};

/// Builds the Python object for a value.
///
/// # Safety
///
/// The interpreter that owns `helpers` is attached on this thread.
pub(crate) unsafe fn to_python(value: &Value, helpers: &Helpers) -> Result<Obj, ConvertError> {
    // SAFETY: forwarded contract.
    unsafe { build(value, helpers, 0) }
}

/// Reads a Python object into a value.
///
/// # Safety
///
/// `obj` is a valid object of the interpreter that owns `helpers`, which is attached on
/// this thread.
pub(crate) unsafe fn from_python(obj: *mut ffi::PyObject, helpers: &Helpers) -> Result<Value, ConvertError> {
    let mut path = Vec::new();
    // SAFETY: forwarded contract.
    unsafe { read(obj, helpers, &mut path) }
}

/// The in-actor module's types; values that need them cannot exist without it.
fn module_types(helpers: &Helpers) -> Result<super::helpers::TypePtrs, ConvertError> {
    helpers.types().ok_or_else(|| {
        ConvertError::Build(PythonException {
            type_name: "TypeError".into(),
            message: "actor references and buffers need the in-actor subactor module".into(),
            traceback: String::new(),
        })
    })
}

/// Wraps a new reference, turning null into the Python error it signals.
///
/// # Safety
///
/// As for [`Obj::from_owned`].
unsafe fn owned(ptr: *mut ffi::PyObject, helpers: &Helpers) -> Result<Obj, ConvertError> {
    // SAFETY: forwarded contract.
    match unsafe { Obj::from_owned(ptr) } {
        Some(obj) => Ok(obj),
        // SAFETY: attached (forwarded contract).
        None => Err(ConvertError::Build(unsafe { helpers.current_exception() })),
    }
}

/// Converts a length for the C API (a Rust allocation never exceeds `isize::MAX`).
fn ssize(len: usize) -> ffi::Py_ssize_t {
    ffi::Py_ssize_t::try_from(len).unwrap_or(ffi::Py_ssize_t::MAX)
}

/// # Safety
///
/// As for [`to_python`].
unsafe fn build(value: &Value, helpers: &Helpers, depth: usize) -> Result<Obj, ConvertError> {
    if depth > MAX_DEPTH {
        return Err(ConvertError::TooDeep { limit: MAX_DEPTH });
    }
    // SAFETY: (whole block) the interpreter is attached (contract); every pointer handed
    // to the C API is either a fresh object owned by an `Obj` or a Rust buffer that
    // outlives the call; stolen references are given up with `into_ptr`.
    unsafe {
        let ptr = match value {
            Value::None => {
                return Ok(Obj::from_borrowed(ffi::Py_None()).unwrap_or_else(|| unreachable!()));
            }
            Value::Bool(b) => ffi::PyBool_FromLong(c_long::from(*b)),
            Value::Int(n) => ffi::PyLong_FromLongLong(*n),
            Value::BigInt(n) => big_to_python(n),
            Value::Float(x) => ffi::PyFloat_FromDouble(*x),
            Value::Str(s) => ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), ssize(s.len())),
            Value::Bytes(b) => ffi::PyBytes_FromStringAndSize(b.as_ptr().cast(), ssize(b.len())),
            Value::List(items) => {
                let list = owned(ffi::PyList_New(ssize(items.len())), helpers)?;
                for (i, item) in items.iter().enumerate() {
                    let item = build(item, helpers, depth + 1)?;
                    // Steals `item`; slots not yet filled are NULL, which the list's
                    // deallocator accepts if we bail out.
                    ffi::PyList_SET_ITEM(list.as_ptr(), ssize(i), item.into_ptr());
                }
                return Ok(list);
            }
            Value::Tuple(items) => {
                let tuple = owned(ffi::PyTuple_New(ssize(items.len())), helpers)?;
                for (i, item) in items.iter().enumerate() {
                    let item = build(item, helpers, depth + 1)?;
                    ffi::PyTuple_SET_ITEM(tuple.as_ptr(), ssize(i), item.into_ptr());
                }
                return Ok(tuple);
            }
            Value::Dict(pairs) => {
                let dict = owned(ffi::PyDict_New(), helpers)?;
                for (key, value) in pairs {
                    let key = build(key, helpers, depth + 1)?;
                    let value = build(value, helpers, depth + 1)?;
                    if ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) < 0 {
                        return Err(ConvertError::Build(helpers.current_exception()));
                    }
                }
                return Ok(dict);
            }
            Value::Set(items) | Value::FrozenSet(items) => {
                let set = if matches!(value, Value::Set(_)) {
                    ffi::PySet_New(ptr::null_mut())
                } else {
                    ffi::PyFrozenSet_New(ptr::null_mut())
                };
                let set = owned(set, helpers)?;
                for item in items {
                    let item = build(item, helpers, depth + 1)?;
                    // PySet_Add also fills a frozenset nobody else has seen yet.
                    if ffi::PySet_Add(set.as_ptr(), item.as_ptr()) < 0 {
                        return Err(ConvertError::Build(helpers.current_exception()));
                    }
                }
                return Ok(set);
            }
            Value::Actor(actor) => super::module::new_ref(module_types(helpers)?.actor_ref, actor.clone()),
            Value::Buffer(buffer) => super::buffers::new_buffer(module_types(helpers)?.buffer, buffer.clone()),
            Value::Down(down) => return down_to_python(down, helpers),
            Value::Pickled(bytes) => {
                let pickle = helpers.pickle().map_err(ConvertError::Unpickle)?;
                let data = owned(ffi::PyBytes_FromStringAndSize(bytes.as_ptr().cast(), ssize(bytes.len())), helpers)?;
                return pickle.loads(data.as_ptr()).map_err(|exc| ConvertError::Unpickle(helpers.describe(exc).0));
            }
        };
        owned(ptr, helpers)
    }
}

/// # Safety
///
/// As for [`from_python`]; `path` holds the containers being read, outermost first.
unsafe fn read(
    obj: *mut ffi::PyObject,
    helpers: &Helpers,
    path: &mut Vec<*mut ffi::PyObject>,
) -> Result<Value, ConvertError> {
    // SAFETY: (whole block) `obj` is valid and its interpreter attached (contract). The
    // type checks compare against the static type objects; items borrowed from a
    // container are turned into owned references before any Python code can run.
    unsafe {
        if obj == ffi::Py_None() {
            return Ok(Value::None);
        }
        if obj == ffi::Py_True() {
            return Ok(Value::Bool(true));
        }
        if obj == ffi::Py_False() {
            return Ok(Value::Bool(false));
        }
        let ty = ffi::Py_TYPE(obj);
        if ty == &raw mut ffi::PyLong_Type {
            let mut overflow = 0;
            let n = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
            if overflow == 0 {
                if n == -1 && !ffi::PyErr_Occurred().is_null() {
                    return Err(ConvertError::Build(helpers.current_exception()));
                }
                return Ok(Value::Int(n));
            }
            return big_from_python(obj, helpers).map(Value::BigInt);
        }
        if ty == &raw mut ffi::PyFloat_Type {
            return Ok(Value::Float(ffi::PyFloat_AS_DOUBLE(obj)));
        }
        if ty == &raw mut ffi::PyUnicode_Type {
            // A str with lone surrogates has no UTF-8 form: pickle keeps it intact.
            return match to_rust_string(obj) {
                Some(s) => Ok(Value::Str(s)),
                None => pickled(obj, helpers),
            };
        }
        if ty == &raw mut ffi::PyBytes_Type {
            let len = usize::try_from(ffi::PyBytes_Size(obj)).unwrap_or(0);
            let data = ffi::PyBytes_AsString(obj);
            return Ok(Value::Bytes(std::slice::from_raw_parts(data.cast::<u8>(), len).to_vec()));
        }
        if let Some(types) = helpers.types() {
            if ty.cast() == types.actor_ref {
                return Ok(Value::Actor(super::module::ref_actor(obj).clone()));
            }
            if ty.cast() == types.buffer {
                return Ok(Value::Buffer(super::buffers::buffer_of(obj).clone()));
            }
            if ty.cast() == types.buffer_mut {
                let message = if super::buffers::buffer_mut_frozen(obj) {
                    "this BufferMut was frozen: send the Buffer freeze() returned"
                } else {
                    "a BufferMut cannot be sent: freeze() it into a Buffer first"
                };
                return Err(ConvertError::Build(PythonException {
                    type_name: "TypeError".into(),
                    message: message.into(),
                    traceback: String::new(),
                }));
            }
        }
        let container = ty == &raw mut ffi::PyList_Type
            || ty == &raw mut ffi::PyTuple_Type
            || ty == &raw mut ffi::PyDict_Type
            || ty == &raw mut ffi::PySet_Type
            || ty == &raw mut ffi::PyFrozenSet_Type;
        if !container {
            if ty.cast() == helpers.down_type() {
                return down_from_python(obj, helpers).map(|down| Value::Down(Box::new(down)));
            }
            return pickled(obj, helpers);
        }
        if path.contains(&obj) {
            return Err(ConvertError::Cycle { type_name: helpers.type_name(obj) });
        }
        if path.len() >= MAX_DEPTH {
            return Err(ConvertError::TooDeep { limit: MAX_DEPTH });
        }
        path.push(obj);
        let value = read_container(obj, ty, helpers, path);
        path.pop();
        value
    }
}

/// # Safety
///
/// As for [`read`]; `obj` is exactly of type `ty`, one of the five container types.
unsafe fn read_container(
    obj: *mut ffi::PyObject,
    ty: *mut ffi::PyTypeObject,
    helpers: &Helpers,
    path: &mut Vec<*mut ffi::PyObject>,
) -> Result<Value, ConvertError> {
    // SAFETY: (whole block) as in `read`. Lists and dicts may change while pickling an
    // item runs Python code, so their items are fetched with bounds checks and owned
    // before use; tuples are immutable and kept alive by `obj`.
    unsafe {
        if ty == &raw mut ffi::PyTuple_Type {
            let len = ffi::PyTuple_GET_SIZE(obj);
            let mut items = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            for i in 0..len {
                items.push(read(ffi::PyTuple_GET_ITEM(obj, i), helpers, path)?);
            }
            return Ok(Value::Tuple(items));
        }
        if ty == &raw mut ffi::PyList_Type {
            let mut items = Vec::with_capacity(usize::try_from(ffi::PyList_GET_SIZE(obj)).unwrap_or(0));
            let mut i = 0;
            while i < ffi::PyList_GET_SIZE(obj) {
                let item = owned(ffi::compat::PyList_GetItemRef(obj, i), helpers)?;
                items.push(read(item.as_ptr(), helpers, path)?);
                i += 1;
            }
            return Ok(Value::List(items));
        }
        if ty == &raw mut ffi::PyDict_Type {
            let mut pairs = Vec::with_capacity(usize::try_from(ffi::PyDict_Size(obj)).unwrap_or(0));
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key = ptr::null_mut();
            let mut value = ptr::null_mut();
            while ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) != 0 {
                let (Some(key), Some(value)) = (Obj::from_borrowed(key), Obj::from_borrowed(value)) else {
                    break;
                };
                let key = read(key.as_ptr(), helpers, path)?;
                let value = read(value.as_ptr(), helpers, path)?;
                pairs.push((key, value));
            }
            return Ok(Value::Dict(pairs));
        }
        // set or frozenset: iterate with the iterator protocol, which notices mutation.
        let iter = owned(ffi::PyObject_GetIter(obj), helpers)?;
        let mut items = Vec::new();
        loop {
            match Obj::from_owned(ffi::PyIter_Next(iter.as_ptr())) {
                Some(item) => items.push(read(item.as_ptr(), helpers, path)?),
                None if ffi::PyErr_Occurred().is_null() => break,
                None => return Err(ConvertError::Build(helpers.current_exception())),
            }
        }
        Ok(if ty == &raw mut ffi::PySet_Type { Value::Set(items) } else { Value::FrozenSet(items) })
    }
}

/// A stop reason as the kind and detail a Python `Down` carries.
fn reason_parts(reason: &StopReason) -> (&'static str, Option<&str>) {
    match reason {
        StopReason::Normal => ("normal", None),
        StopReason::Killed => ("killed", None),
        StopReason::StartFailed(why) => ("start_failed", Some(why)),
        StopReason::Panicked(why) => ("panicked", Some(why)),
        StopReason::Failed(why) => ("failed", Some(why)),
    }
}

/// The stop reason of a Python `Down`'s kind and detail.
fn reason_of(kind: &str, detail: Option<String>) -> Option<StopReason> {
    let detail = || -> std::sync::Arc<str> { detail.clone().unwrap_or_default().into() };
    Some(match kind {
        "normal" => StopReason::Normal,
        "killed" => StopReason::Killed,
        "start_failed" => StopReason::StartFailed(detail()),
        "panicked" => StopReason::Panicked(detail()),
        "failed" => StopReason::Failed(detail()),
        _ => return None,
    })
}

/// # Safety
///
/// As for [`to_python`].
unsafe fn down_to_python(down: &Down, helpers: &Helpers) -> Result<Obj, ConvertError> {
    let (kind, detail) = reason_parts(&down.reason);
    let text = |s: Option<&str>| -> Result<Obj, ConvertError> {
        // SAFETY: attached (contract).
        unsafe {
            match s {
                Some(s) => super::helpers::new_str(s).map_err(|e| ConvertError::Build(helpers.describe(e).0)),
                None => Ok(Obj::from_borrowed(ffi::Py_None()).unwrap_or_else(|| unreachable!("None always exists"))),
            }
        }
    };
    // SAFETY: attached (contract); every argument is a fresh object owned here.
    unsafe {
        let id = owned(ffi::PyLong_FromUnsignedLongLong(down.id.as_u64()), helpers)?;
        let args = [id, text(down.name.as_deref())?, text(Some(kind))?, text(detail)?];
        let ptrs: Vec<_> = args.iter().map(Obj::as_ptr).collect();
        helpers.new_down(&ptrs).map_err(|e| ConvertError::Build(helpers.describe(e).0))
    }
}

/// # Safety
///
/// As for [`read`]; `obj` is exactly a `subactor.Down`.
unsafe fn down_from_python(obj: *mut ffi::PyObject, helpers: &Helpers) -> Result<Down, ConvertError> {
    let invalid = || {
        ConvertError::Build(PythonException {
            type_name: "TypeError".into(),
            message: "a subactor.Down whose fields are not (int, str | None, kind, str | None)".into(),
            traceback: String::new(),
        })
    };
    // SAFETY: attached (contract); the helper returns a 4-tuple, each item checked.
    unsafe {
        let parts = helpers.down_parts(obj).map_err(|e| ConvertError::Build(helpers.describe(e).0))?;
        let item = |i| ffi::PyTuple_GET_ITEM(parts.as_ptr(), i);
        let optional = |i| {
            let obj = item(i);
            if obj == ffi::Py_None() { Ok(None) } else { to_rust_string(obj).map(Some).ok_or_else(invalid) }
        };
        let Ok(id) = super::module::unsigned(item(0)) else {
            ffi::PyErr_Clear();
            return Err(invalid());
        };
        let name = optional(1)?;
        let kind = optional(2)?.ok_or_else(invalid)?;
        let reason = reason_of(&kind, optional(3)?).ok_or_else(invalid)?;
        Ok(Down { id: ActorId::from_u64(id), name: name.map(Into::into), reason })
    }
}

/// Pickles an object that is not one of the plain value types.
///
/// # Safety
///
/// As for [`read`].
unsafe fn pickled(obj: *mut ffi::PyObject, helpers: &Helpers) -> Result<Value, ConvertError> {
    // SAFETY: attached (contract); `obj` is valid.
    unsafe {
        let unpicklable = |error| ConvertError::Unpicklable { type_name: helpers.type_name(obj), error };
        let pickle = helpers.pickle().map_err(unpicklable)?;
        let data = pickle.dumps(obj).map_err(|exc| unpicklable(helpers.describe(exc).0))?;
        if ffi::Py_TYPE(data.as_ptr()) != &raw mut ffi::PyBytes_Type {
            return Err(ConvertError::Build(PythonException {
                type_name: "TypeError".into(),
                message: "pickle.dumps did not return bytes".into(),
                traceback: String::new(),
            }));
        }
        let len = usize::try_from(ffi::PyBytes_Size(data.as_ptr())).unwrap_or(0);
        let bytes = std::slice::from_raw_parts(ffi::PyBytes_AsString(data.as_ptr()).cast::<u8>(), len);
        Ok(Value::Pickled(bytes.to_vec()))
    }
}

/// # Safety
///
/// Attached interpreter.
unsafe fn big_to_python(n: &BigInt) -> *mut ffi::PyObject {
    let bytes = n.to_signed_bytes_le();
    // SAFETY: attached (contract); `bytes` outlives the call.
    unsafe {
        #[cfg(Py_3_13)]
        {
            ffi::PyLong_FromNativeBytes(
                bytes.as_ptr().cast::<std::ffi::c_void>(),
                bytes.len(),
                ffi::Py_ASNATIVEBYTES_LITTLE_ENDIAN,
            )
        }
        #[cfg(not(Py_3_13))]
        {
            ffi::_PyLong_FromByteArray(bytes.as_ptr(), bytes.len(), 1, 1)
        }
    }
}

#[cfg(not(Py_3_13))]
unsafe extern "C" {
    /// Exported by CPython 3.12 (`cpython/longobject.h`), unlike its 3.13 replacement
    /// `PyLong_AsNativeBytes`.
    fn _PyLong_NumBits(v: *mut ffi::PyObject) -> usize;
}

/// Reads an `int` too large for an `i64`.
///
/// # Safety
///
/// `obj` is an `int` of the attached interpreter.
unsafe fn big_from_python(obj: *mut ffi::PyObject, helpers: &Helpers) -> Result<BigInt, ConvertError> {
    // SAFETY: attached (contract); the buffer is as long as we tell CPython.
    unsafe {
        #[cfg(Py_3_13)]
        {
            let flags = ffi::Py_ASNATIVEBYTES_LITTLE_ENDIAN;
            let needed = ffi::PyLong_AsNativeBytes(obj, ptr::null_mut(), 0, flags);
            let Ok(len) = usize::try_from(needed) else {
                return Err(ConvertError::Build(helpers.current_exception()));
            };
            let mut buf = vec![0u8; len];
            if ffi::PyLong_AsNativeBytes(obj, buf.as_mut_ptr().cast(), needed, flags) < 0 {
                return Err(ConvertError::Build(helpers.current_exception()));
            }
            Ok(BigInt::from_signed_bytes_le(&buf))
        }
        #[cfg(not(Py_3_13))]
        {
            let len = _PyLong_NumBits(obj) / 8 + 1;
            let mut buf = vec![0u8; len];
            if ffi::_PyLong_AsByteArray(obj.cast(), buf.as_mut_ptr(), len, 1, 1) < 0 {
                return Err(ConvertError::Build(helpers.current_exception()));
            }
            Ok(BigInt::from_signed_bytes_le(&buf))
        }
    }
}
