//! Arena buffers in Python: `subactor.Buffer` (immutable, shared) and
//! `subactor.BufferMut` (writable, from `subactor.alloc(n)`), one pair of heap types per
//! interpreter, kept in the in-actor module's state.
//!
//! Both export the arena's memory itself through the buffer protocol
//! (`PyBuffer_FillInfo`), so `memoryview`, `bytes()`, `numpy.frombuffer` and friends see
//! the same address in every interpreter. An exported view holds a reference to its
//! Python object, which owns a Rust handle: the memory lives until the last view and the
//! last handle in any interpreter are gone.
//!
//! A `BufferMut` can be frozen only while no view of it is alive (like `bytearray`
//! refusing to resize), so nothing can write to a buffer after it was frozen.

use std::ffi::{c_int, c_void};
use std::ptr;

use pyo3_ffi as ffi;
use subactor_arena::{ArenaError, Buffer, BufferMut};

use super::module::{CStatic, PyResult, Raised, guard, method, state_of_module};
use super::object::Obj;

/// A `Buffer` instance.
#[repr(C)]
struct BufferObject {
    ob_base: ffi::PyObject,
    /// Owned (`Box::into_raw`).
    buffer: *mut Buffer,
}

/// A `BufferMut` instance.
#[repr(C)]
struct BufferMutObject {
    ob_base: ffi::PyObject,
    /// Owned (`Box::into_raw`); null once frozen.
    buffer: *mut BufferMut,
    /// Views currently exported.
    exports: ffi::Py_ssize_t,
}

static BUFFER_METHODS: CStatic<[ffi::PyMethodDef; 2]> = CStatic::new([
    method(
        c"from_bytes",
        ffi::PyMethodDefPointer { PyCFunctionWithKeywords: from_bytes_entry },
        ffi::METH_CLASS | ffi::METH_VARARGS | ffi::METH_KEYWORDS,
        c"from_bytes(data) -> Buffer\n\nCopies any bytes-like object into a new arena buffer (one copy).",
    ),
    ffi::PyMethodDef::zeroed(),
]);

static BUFFER_MUT_METHODS: CStatic<[ffi::PyMethodDef; 2]> = CStatic::new([
    method(
        c"freeze",
        ffi::PyMethodDefPointer { PyCFunction: freeze },
        ffi::METH_NOARGS,
        c"freeze() -> Buffer\n\nTurns this buffer into an immutable Buffer over the same memory, without copying. \
          Fails while memoryviews of it exist; the BufferMut cannot be used afterwards.",
    ),
    ffi::PyMethodDef::zeroed(),
]);

static BUFFER_GETSET: CStatic<[ffi::PyGetSetDef; 2]> = CStatic::new([
    ffi::PyGetSetDef {
        name: c"address".as_ptr(),
        get: Some(buffer_address),
        set: None,
        doc: c"The address of the first byte (the same in every interpreter).".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef { name: ptr::null(), get: None, set: None, doc: ptr::null(), closure: ptr::null_mut() },
]);

static BUFFER_MUT_GETSET: CStatic<[ffi::PyGetSetDef; 2]> = CStatic::new([
    ffi::PyGetSetDef {
        name: c"address".as_ptr(),
        get: Some(buffer_mut_address),
        set: None,
        doc: c"The address of the first byte.".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef { name: ptr::null(), get: None, set: None, doc: ptr::null(), closure: ptr::null_mut() },
]);

static BUFFER_SLOTS: CStatic<[ffi::PyType_Slot; 9]> = CStatic::new([
    ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: buffer_dealloc as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_bf_getbuffer, pfunc: buffer_getbuffer as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_mp_length, pfunc: buffer_len as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_mp_subscript, pfunc: buffer_subscript as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_repr, pfunc: buffer_repr as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: BUFFER_METHODS.as_ptr().cast() },
    ffi::PyType_Slot { slot: ffi::Py_tp_getset, pfunc: BUFFER_GETSET.as_ptr().cast() },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_doc,
        pfunc: c"An immutable buffer of the shared arena: read-only, sent between actors without copying. \
                 Slicing with step 1 shares the memory."
            .as_ptr() as *mut c_void,
    },
    ffi::PyType_Slot { slot: 0, pfunc: ptr::null_mut() },
]);

static BUFFER_MUT_SLOTS: CStatic<[ffi::PyType_Slot; 8]> = CStatic::new([
    ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: buffer_mut_dealloc as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_bf_getbuffer, pfunc: buffer_mut_getbuffer as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_bf_releasebuffer, pfunc: buffer_mut_releasebuffer as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_mp_length, pfunc: buffer_mut_len as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: BUFFER_MUT_METHODS.as_ptr().cast() },
    ffi::PyType_Slot { slot: ffi::Py_tp_getset, pfunc: BUFFER_MUT_GETSET.as_ptr().cast() },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_doc,
        pfunc: c"A writable buffer of the shared arena, from subactor.alloc(n). Write through memoryview(buf), \
                 then freeze() it to send it."
            .as_ptr() as *mut c_void,
    },
    ffi::PyType_Slot { slot: 0, pfunc: ptr::null_mut() },
]);

const FLAGS: u64 = ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_IMMUTABLETYPE | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION;

pub(super) static BUFFER_SPEC: CStatic<ffi::PyType_Spec> = CStatic::new(ffi::PyType_Spec {
    name: c"subactor.Buffer".as_ptr(),
    basicsize: size_of::<BufferObject>() as c_int,
    itemsize: 0,
    flags: FLAGS as _,
    slots: BUFFER_SLOTS.as_ptr().cast(),
});

pub(super) static BUFFER_MUT_SPEC: CStatic<ffi::PyType_Spec> = CStatic::new(ffi::PyType_Spec {
    name: c"subactor.BufferMut".as_ptr(),
    basicsize: size_of::<BufferMutObject>() as c_int,
    itemsize: 0,
    flags: FLAGS as _,
    slots: BUFFER_MUT_SLOTS.as_ptr().cast(),
});

/// Makes a new `Buffer` object of this interpreter.
///
/// # Safety
///
/// `ty` is this interpreter's `Buffer` type; attached.
pub(crate) unsafe fn new_buffer(ty: *mut ffi::PyObject, buffer: Buffer) -> *mut ffi::PyObject {
    // SAFETY: attached (contract); not a GC type, no custom tp_alloc: PyType_GenericAlloc
    // is its allocator. The field is filled before anyone sees the object.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.cast(), 0);
        if !obj.is_null() {
            (*obj.cast::<BufferObject>()).buffer = Box::into_raw(Box::new(buffer));
        }
        obj
    }
}

/// Makes a new `BufferMut` object of this interpreter; null (with an exception set)
/// on failure.
///
/// # Safety
///
/// `ty` is this interpreter's `BufferMut` type; attached.
pub(crate) unsafe fn new_buffer_mut(ty: *mut ffi::PyObject, buffer: BufferMut) -> *mut ffi::PyObject {
    // SAFETY: attached (contract); as in `new_buffer`. The fields are filled before
    // anyone sees the object.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.cast(), 0);
        if !obj.is_null() {
            let this = obj.cast::<BufferMutObject>();
            (*this).buffer = Box::into_raw(Box::new(buffer));
            (*this).exports = 0;
        }
        obj
    }
}

/// The arena buffer behind a `Buffer` object.
///
/// # Safety
///
/// `obj` is a `Buffer` object.
pub(crate) unsafe fn buffer_of<'a>(obj: *mut ffi::PyObject) -> &'a Buffer {
    // SAFETY: every Buffer object gets a valid Box in `new_buffer`, freed only in dealloc.
    unsafe { &*(*obj.cast::<BufferObject>()).buffer }
}

/// Whether a `BufferMut` object has been frozen (its memory now belongs to a `Buffer`).
///
/// # Safety
///
/// `obj` is a `BufferMut` object.
pub(crate) unsafe fn buffer_mut_frozen(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: `obj` is a BufferMut object (the caller checked its type); its field is a
    // pointer, null once frozen.
    unsafe { (*obj.cast::<BufferMutObject>()).buffer.is_null() }
}

/// Frees an object of a non-GC heap type and releases its type.
///
/// # Safety
///
/// Called once, from the type's tp_dealloc, after the fields are released.
unsafe fn free_object(obj: *mut ffi::PyObject) {
    // SAFETY: forwarded contract; a heap type's instances own a reference to it.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        ffi::PyObject_Free(obj.cast());
        ffi::Py_DECREF(ty.cast());
    }
}

/// Raises `MemoryError` for an arena refusal (the message says what was asked and why).
fn raise_arena(error: &ArenaError) -> Raised {
    let text = std::ffi::CString::new(error.to_string().replace('\0', "")).unwrap_or_default();
    // SAFETY: called from callbacks, which run attached.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_MemoryError, text.as_ptr()) };
    Raised
}

// ---- subactor.alloc and Buffer.from_bytes --------------------------------------------------

/// `subactor.alloc(size)`.
pub(super) unsafe extern "C" fn alloc(module: *mut ffi::PyObject, size: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with a valid argument.
        unsafe {
            let state = state_of_module(module);
            if ffi::PyBool_Check(size) != 0 || ffi::PyLong_Check(size) == 0 {
                return Err(state.helpers().raise_builtin(ffi::PyExc_TypeError, "alloc(): the size must be an int"));
            }
            let size = ffi::PyLong_AsSsize_t(size);
            if size == -1 && !ffi::PyErr_Occurred().is_null() {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_OverflowError) == 0 {
                    return Err(Raised);
                }
                ffi::PyErr_Clear();
                return Err(state.helpers().raise_builtin(ffi::PyExc_ValueError, "alloc(): the size is too large"));
            }
            let Ok(size) = usize::try_from(size) else {
                return Err(state.helpers().raise_builtin(ffi::PyExc_ValueError, "alloc(): the size must be >= 0"));
            };
            let buffer = state.link()?.arena.alloc(size).map_err(|e| raise_arena(&e))?;
            let obj = new_buffer_mut(state.buffer_mut_type, buffer);
            if obj.is_null() { Err(Raised) } else { Ok(obj) }
        }
    })
}

/// `Buffer.from_bytes(data)` (a class method: `cls` is this interpreter's `Buffer`).
unsafe extern "C" fn from_bytes_entry(
    cls: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this with our Buffer type and an args tuple, attached.
        unsafe {
            let module = ffi::PyType_GetModuleByDef(cls.cast(), super::module::module_def());
            if module.is_null() {
                return Err(Raised);
            }
            let state = state_of_module(module);
            let helpers = state.helpers();
            let has_kwargs = !kwargs.is_null() && ffi::PyDict_Size(kwargs) > 0;
            if has_kwargs || ffi::PyTuple_GET_SIZE(args) != 1 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "from_bytes() takes one bytes-like object"));
            }
            let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
            if ffi::PyObject_GetBuffer(ffi::PyTuple_GET_ITEM(args, 0), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) < 0 {
                return Err(Raised);
            }
            let mut view = view.assume_init();
            let data = std::slice::from_raw_parts(view.buf.cast::<u8>(), usize::try_from(view.len).unwrap_or(0));
            let copied = state.link().and_then(|link| link.arena.copy_from(data).map_err(|e| raise_arena(&e)));
            ffi::PyBuffer_Release(&mut view);
            Ok(new_buffer(state.buffer_type, copied?))
        }
    })
}

// ---- Buffer -------------------------------------------------------------------------------

unsafe extern "C" fn buffer_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, attached. Exported views hold a reference to
    // `obj`, so none is alive now; dropping the handle may return the memory.
    unsafe {
        let this = obj.cast::<BufferObject>();
        let buffer = std::mem::replace(&mut (*this).buffer, ptr::null_mut());
        if !buffer.is_null() {
            release_handle(Box::from_raw(buffer));
        }
        free_object(obj);
    }
}

unsafe extern "C" fn buffer_getbuffer(obj: *mut ffi::PyObject, view: *mut ffi::Py_buffer, flags: c_int) -> c_int {
    if refuse_in_forked_child() {
        return -1;
    }
    // SAFETY: `obj` is a Buffer, attached. The view refers to `obj` (FillInfo takes a
    // reference), which keeps the Rust handle, hence the memory, alive. A request for a
    // writable view fails with BufferError.
    unsafe {
        let buffer = buffer_of(obj);
        let len = ffi::Py_ssize_t::try_from(buffer.len()).unwrap_or(ffi::Py_ssize_t::MAX);
        ffi::PyBuffer_FillInfo(view, obj, buffer.as_ptr().cast_mut().cast(), len, 1, flags)
    }
}

unsafe extern "C" fn buffer_len(obj: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    // SAFETY: `obj` is a Buffer.
    unsafe { ffi::Py_ssize_t::try_from(buffer_of(obj).len()).unwrap_or(ffi::Py_ssize_t::MAX) }
}

unsafe extern "C" fn buffer_subscript(obj: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is a Buffer of this interpreter, attached; `key` is valid.
        unsafe {
            let buffer = buffer_of(obj);
            let len = ffi::Py_ssize_t::try_from(buffer.len()).unwrap_or(ffi::Py_ssize_t::MAX);
            if ffi::PySlice_Check(key) != 0 {
                let (mut start, mut stop, mut step) = (0, 0, 0);
                if ffi::PySlice_Unpack(key, &mut start, &mut stop, &mut step) < 0 {
                    return Err(Raised);
                }
                let count = ffi::PySlice_AdjustIndices(len, &mut start, &mut stop, step);
                if step == 1 {
                    let (start, count) = (usize::try_from(start).unwrap_or(0), usize::try_from(count).unwrap_or(0));
                    let shared = buffer.slice(start..start + count);
                    return Ok(new_buffer(ffi::Py_TYPE(obj).cast(), shared));
                }
                // A strided slice cannot share the memory: it is copied into bytes.
                let bytes: Vec<u8> =
                    (0..count).map(|i| buffer[usize::try_from(start + i * step).unwrap_or(0)]).collect();
                let out = ffi::PyBytes_FromStringAndSize(bytes.as_ptr().cast(), count);
                return if out.is_null() { Err(Raised) } else { Ok(out) };
            }
            let mut index = ffi::PyNumber_AsSsize_t(key, ffi::PyExc_IndexError);
            if index == -1 && !ffi::PyErr_Occurred().is_null() {
                return Err(Raised);
            }
            if index < 0 {
                index += len;
            }
            match usize::try_from(index).ok().and_then(|i| buffer.get(i)) {
                Some(byte) => Ok(ffi::PyLong_FromLong((*byte).into())),
                None => {
                    ffi::PyErr_SetString(ffi::PyExc_IndexError, c"Buffer index out of range".as_ptr());
                    Err(Raised)
                }
            }
        }
    })
}

unsafe extern "C" fn buffer_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `obj` is a Buffer; attached.
    unsafe {
        let text =
            format!("<subactor.Buffer of {} bytes at {:#x}>", buffer_of(obj).len(), buffer_of(obj).as_ptr() as usize);
        super::helpers::new_str(&text).map_or_else(
            |exc| {
                ffi::PyErr_SetRaisedException(exc.into_ptr());
                ptr::null_mut()
            },
            Obj::into_ptr,
        )
    }
}

unsafe extern "C" fn buffer_address(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is a Buffer; attached.
    unsafe { ffi::PyLong_FromSize_t(buffer_of(obj).as_ptr() as usize) }
}

// ---- BufferMut ----------------------------------------------------------------------------

unsafe extern "C" fn buffer_mut_address(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is a BufferMut; attached.
    unsafe {
        match (*obj.cast::<BufferMutObject>()).buffer.as_ref() {
            Some(buffer) => ffi::PyLong_FromSize_t(buffer.as_ptr() as usize),
            None => frozen_error(),
        }
    }
}

/// In a process forked from one whose runtime was open, an arena buffer is memory shared
/// with the parent (the segments are `MAP_SHARED` memfds), which the parent may have
/// freed and reused: reading or writing it is refused, with `RuntimeError`.
fn refuse_in_forked_child() -> bool {
    let Err(error) = super::fork::check_not_forked() else { return false };
    let message = std::ffi::CString::new(format!("cannot use an arena buffer: {error}")).unwrap_or_default();
    // SAFETY: called from callbacks, which run attached; the message is NUL-terminated.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_RuntimeError, message.as_ptr()) };
    true
}

/// Drops a buffer handle, except in a forked child of an open runtime: returning memory
/// to the arena takes its lock, which a thread of the parent may have held at the fork.
fn release_handle<T>(handle: Box<T>) {
    if super::fork::inherited_runtime() {
        std::mem::forget(handle);
    } else {
        drop(handle);
    }
}

fn frozen_error() -> *mut ffi::PyObject {
    // SAFETY: called from callbacks, which run attached.
    unsafe {
        ffi::PyErr_SetString(
            ffi::PyExc_ValueError,
            c"this BufferMut was frozen; use the Buffer freeze() returned".as_ptr(),
        )
    };
    ptr::null_mut()
}

unsafe extern "C" fn buffer_mut_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, attached; exported views hold a reference to
    // `obj`, so none is alive.
    unsafe {
        let this = obj.cast::<BufferMutObject>();
        let buffer = std::mem::replace(&mut (*this).buffer, ptr::null_mut());
        if !buffer.is_null() {
            release_handle(Box::from_raw(buffer));
        }
        free_object(obj);
    }
}

unsafe extern "C" fn buffer_mut_getbuffer(obj: *mut ffi::PyObject, view: *mut ffi::Py_buffer, flags: c_int) -> c_int {
    if refuse_in_forked_child() {
        return -1;
    }
    // SAFETY: `obj` is a BufferMut, attached; the view refers to `obj`, which owns the
    // memory until it is frozen, and freezing waits for every view to be released.
    unsafe {
        let this = obj.cast::<BufferMutObject>();
        let Some(buffer) = (*this).buffer.as_mut() else {
            frozen_error();
            return -1;
        };
        let len = ffi::Py_ssize_t::try_from(buffer.len()).unwrap_or(ffi::Py_ssize_t::MAX);
        let status = ffi::PyBuffer_FillInfo(view, obj, buffer.as_mut_ptr().cast(), len, 0, flags);
        if status == 0 {
            (*this).exports += 1;
        }
        status
    }
}

unsafe extern "C" fn buffer_mut_releasebuffer(obj: *mut ffi::PyObject, _view: *mut ffi::Py_buffer) {
    // SAFETY: `obj` is a BufferMut whose view is being released; attached.
    unsafe { (*obj.cast::<BufferMutObject>()).exports -= 1 };
}

unsafe extern "C" fn buffer_mut_len(obj: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    // SAFETY: `obj` is a BufferMut; attached.
    unsafe {
        match (*obj.cast::<BufferMutObject>()).buffer.as_ref() {
            Some(buffer) => ffi::Py_ssize_t::try_from(buffer.len()).unwrap_or(ffi::Py_ssize_t::MAX),
            None => {
                frozen_error();
                -1
            }
        }
    }
}

unsafe extern "C" fn freeze(obj: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| -> PyResult<*mut ffi::PyObject> {
        // SAFETY: `obj` is a BufferMut of this interpreter; attached.
        unsafe {
            let this = obj.cast::<BufferMutObject>();
            if (*this).buffer.is_null() {
                return Ok(frozen_error());
            }
            if (*this).exports > 0 {
                ffi::PyErr_SetString(
                    ffi::PyExc_BufferError,
                    c"cannot freeze while memoryviews of this buffer exist: release them first".as_ptr(),
                );
                return Err(Raised);
            }
            let module = ffi::PyType_GetModuleByDef(ffi::Py_TYPE(obj), super::module::module_def());
            if module.is_null() {
                return Err(Raised);
            }
            let buffer_type = state_of_module(module).buffer_type;
            let buffer = Box::from_raw(std::mem::replace(&mut (*this).buffer, ptr::null_mut()));
            Ok(new_buffer(buffer_type, buffer.freeze()))
        }
    })
}
