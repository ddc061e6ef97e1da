//! The main interpreter's side of subactor: the objects and conversions that the Python
//! package (`python-api`, whose native part uses PyO3 in the main interpreter only)
//! shares with actors. Public as `subactor_host::main_interpreter`.
//!
//! [`init`] builds, once per process and in the main interpreter:
//! - the bootstrap module (`bootstrap.py`, run without any of the set-up it does in
//!   actors), whose classes are the exceptions, `Down` and `RemoteTraceback` (see
//!   [`class`]);
//! - `ActorRef`, `Buffer` and `BufferMut` types made from the in-actor types' own specs
//!   (same layout, same slots), owned by a module object of the in-actor module's
//!   definition that is never imported and links no actor.
//!
//! Conversions ([`to_python`], [`from_python`]) are the actors' own, so a value has the
//! same form in every interpreter: an `ActorRef` or `Buffer` in a reply arrives as one of
//! the types above, a `Down` as the bootstrap's `Down`, other objects through pickle.
//!
//! Two differences from the in-actor types. The main `ActorRef` type has no methods of
//! its own and is not immutable: the package gives it its main-interpreter methods
//! (waits that Ctrl-C interrupts, asyncio) in Python. The main `Buffer` has no
//! `from_bytes`: there is no arena without a runtime (the package's `Runtime.buffer`
//! copies into its runtime's arena, through [`new_buffer`]).
//!
//! # Safety
//!
//! Every function here is `unsafe` with one contract: Python is initialised and the
//! calling thread holds the main interpreter's GIL. They check that the interpreter
//! attached is the main one (and fail otherwise). The objects of [`init`] live in a
//! process-wide static and are only touched under that GIL, which serialises every use.

use std::ffi::CStr;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::OnceLock;

use pyo3_ffi as ffi;
use subactor_arena::{Buffer, BufferMut};
use subactor_core::{AnyRef, Value};

use super::helpers::Helpers;
use super::module::{REF_SPEC, new_module};
use super::object::Obj;
use crate::{ConvertError, PythonException};

/// The main interpreter's objects, built once by [`init`].
struct MainObjects {
    /// Holds the types' module state; never imported.
    _module: Obj,
    helpers: Rc<Helpers>,
}

// SAFETY: the objects belong to the main interpreter and are only used (read, cloned,
// converted with) by threads that hold its GIL (every function's contract), which
// serialises all access to them, including the `Rc` and the cells inside `Helpers`.
unsafe impl Send for MainObjects {}
// SAFETY: as above.
unsafe impl Sync for MainObjects {}

static MAIN: OnceLock<MainObjects> = OnceLock::new();

/// An error of this module's own, as a Python exception description.
fn own_error(type_name: &str, message: &str) -> PythonException {
    PythonException { type_name: type_name.into(), message: message.into(), traceback: String::new() }
}

/// Whether the interpreter attached on this thread is the main one.
///
/// # Safety
///
/// An interpreter is attached on this thread.
unsafe fn in_main_interpreter() -> bool {
    // SAFETY: attached (contract); both calls only read interpreter pointers.
    unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() }
}

/// The objects of [`init`], if it ran and this is the main interpreter.
///
/// # Safety
///
/// As the module's contract.
unsafe fn objects() -> Result<&'static MainObjects, PythonException> {
    // SAFETY: attached (contract).
    if !unsafe { in_main_interpreter() } {
        return Err(own_error("RuntimeError", "subactor's main-interpreter API used outside the main interpreter"));
    }
    MAIN.get().ok_or_else(|| own_error("RuntimeError", "subactor_host::main_interpreter::init has not run"))
}

/// Raises a described exception as a Python `RuntimeError`-like builtin.
///
/// # Safety
///
/// As the module's contract.
unsafe fn raise(error: &PythonException) {
    let text = std::ffi::CString::new(error.to_string().replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: attached (contract); PyErr_SetString copies the message.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_RuntimeError, text.as_ptr()) };
}

/// A copy of a type spec with its methods dropped and, unless `immutable`, without
/// `Py_TPFLAGS_IMMUTABLETYPE`. Leaked: built once per process, and the type keeps
/// pointers into what its spec points to.
///
/// # Safety
///
/// `spec` is a valid, zero-terminated type spec.
unsafe fn without_methods(spec: *const ffi::PyType_Spec, immutable: bool) -> *mut ffi::PyType_Spec {
    // SAFETY: (whole block) the spec is valid and its slot array ends with a zero slot
    // (contract).
    unsafe {
        let spec = &*spec;
        let mut slots = Vec::new();
        let mut slot = spec.slots;
        loop {
            let current = &*slot;
            if current.slot == 0 {
                break;
            }
            if current.slot != ffi::Py_tp_methods {
                slots.push(ffi::PyType_Slot { slot: current.slot, pfunc: current.pfunc });
            }
            slot = slot.add(1);
        }
        slots.push(ffi::PyType_Slot { slot: 0, pfunc: ptr::null_mut() });
        let slots: &'static mut [ffi::PyType_Slot] = Box::leak(slots.into_boxed_slice());
        let mut flags = spec.flags;
        if !immutable {
            flags &= !(ffi::Py_TPFLAGS_IMMUTABLETYPE as std::ffi::c_uint);
        }
        Box::into_raw(Box::new(ffi::PyType_Spec {
            name: spec.name,
            basicsize: spec.basicsize,
            itemsize: spec.itemsize,
            flags,
            slots: slots.as_mut_ptr(),
        }))
    }
}

/// Builds the main interpreter's objects, once per process; later calls do nothing.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn init() -> Result<(), PythonException> {
    // SAFETY: attached (contract).
    if !unsafe { in_main_interpreter() } {
        return Err(own_error(
            "RuntimeError",
            "subactor_host::main_interpreter::init called outside the main interpreter",
        ));
    }
    if MAIN.get().is_some() {
        return Ok(());
    }
    // SAFETY: the main interpreter is attached (contract).
    unsafe { super::process::build_shared_parsers() };
    // SAFETY: the main interpreter is attached (contract); every object is owned by an
    // `Obj`; the specs are statics (copies without methods are leaked, made once).
    let objects = unsafe {
        let helpers = Rc::new(Helpers::load_bare()?);
        // The link stays null: no actor is behind this module, and its own functions
        // (never reachable from Python: the module is not imported) raise ActorStopped.
        let (module, types) = new_module(
            &helpers,
            [
                without_methods(REF_SPEC.as_ptr(), false),
                without_methods(super::buffers::BUFFER_SPEC.as_ptr(), true),
                super::buffers::BUFFER_MUT_SPEC.as_ptr(),
            ],
        )?;
        helpers.set_types(Some(types));
        MainObjects { _module: module, helpers }
    };
    // Another thread may have won while this one ran Python code (which can release the
    // GIL): then its objects stay, and these go (still under the GIL).
    let _ = MAIN.set(objects);
    Ok(())
}

/// Builds the Python object for a value: a new reference.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn to_python(value: &Value) -> Result<NonNull<ffi::PyObject>, ConvertError> {
    // SAFETY: the main interpreter is attached (contract); the helpers are its own.
    unsafe {
        let objects = objects().map_err(ConvertError::Build)?;
        super::convert::to_python(value, &objects.helpers)
            .map(|obj| NonNull::new(obj.into_ptr()).unwrap_or_else(|| unreachable!("an Obj is never null")))
    }
}

/// Reads a Python object into a value: the built-in types natively, `ActorRef`s and
/// `Buffer`s as handles, anything else through pickle.
///
/// # Safety
///
/// `obj` is a valid object; Python is initialised and the calling thread holds the main
/// interpreter's GIL.
pub unsafe fn from_python(obj: NonNull<ffi::PyObject>) -> Result<Value, ConvertError> {
    // SAFETY: the main interpreter is attached and `obj` is one of its objects (contract).
    unsafe {
        let objects = objects().map_err(ConvertError::Build)?;
        super::convert::from_python(obj.as_ptr(), &objects.helpers)
    }
}

/// The main interpreter's types: `ActorRef`, `Buffer` and `BufferMut`, borrowed.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn types() -> Result<[NonNull<ffi::PyObject>; 3], PythonException> {
    // SAFETY: contract forwarded.
    let objects = unsafe { objects() }?;
    let types = objects.helpers.types().ok_or_else(|| own_error("RuntimeError", "the main types are missing"))?;
    let non_null = |ptr| NonNull::new(ptr).ok_or_else(|| own_error("RuntimeError", "a main type is null"));
    Ok([non_null(types.actor_ref)?, non_null(types.buffer)?, non_null(types.buffer_mut)?])
}

/// An attribute of the main interpreter's bootstrap module, such as an exception class
/// (`c"RemoteError"`), `c"Down"` or `c"RemoteTraceback"`: a new reference.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn class(name: &CStr) -> Result<NonNull<ffi::PyObject>, PythonException> {
    // SAFETY: the main interpreter is attached (contract).
    unsafe {
        let objects = objects()?;
        let obj = objects.helpers.attr(name)?;
        Ok(NonNull::new(obj.into_ptr()).unwrap_or_else(|| unreachable!("an Obj is never null")))
    }
}

/// A new `ActorRef` object for `actor`; null with an exception set on failure.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn new_actor_ref(actor: AnyRef) -> *mut ffi::PyObject {
    // SAFETY: the main interpreter is attached (contract); the type is its ActorRef.
    unsafe {
        match types() {
            Ok([actor_ref, _, _]) => super::module::new_ref(actor_ref.as_ptr(), actor),
            Err(error) => {
                raise(&error);
                ptr::null_mut()
            }
        }
    }
}

/// The actor behind an `ActorRef` object of the main interpreter, or `None` if `obj`
/// is not one.
///
/// # Safety
///
/// `obj` is a valid object; Python is initialised and the calling thread holds the main
/// interpreter's GIL.
pub unsafe fn actor_ref_of(obj: NonNull<ffi::PyObject>) -> Option<AnyRef> {
    // SAFETY: attached (contract); the layout is an ActorRef's once the type matches.
    unsafe {
        let [actor_ref, _, _] = types().ok()?;
        (ffi::Py_TYPE(obj.as_ptr()).cast() == actor_ref.as_ptr())
            .then(|| super::module::ref_actor(obj.as_ptr()).clone())
    }
}

/// A new `Buffer` object; null with an exception set on failure.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn new_buffer(buffer: Buffer) -> *mut ffi::PyObject {
    // SAFETY: the main interpreter is attached (contract); the type is its Buffer.
    unsafe {
        match types() {
            Ok([_, ty, _]) => super::buffers::new_buffer(ty.as_ptr(), buffer),
            Err(error) => {
                raise(&error);
                ptr::null_mut()
            }
        }
    }
}

/// A new `BufferMut` object; null with an exception set on failure.
///
/// # Safety
///
/// Python is initialised and the calling thread holds the main interpreter's GIL.
pub unsafe fn new_buffer_mut(buffer: BufferMut) -> *mut ffi::PyObject {
    // SAFETY: the main interpreter is attached (contract); the type is its BufferMut.
    unsafe {
        match types() {
            Ok([_, _, ty]) => super::buffers::new_buffer_mut(ty.as_ptr(), buffer),
            Err(error) => {
                raise(&error);
                ptr::null_mut()
            }
        }
    }
}

/// The arena buffer behind a `Buffer` object of the main interpreter, or `None` if `obj`
/// is not one.
///
/// # Safety
///
/// `obj` is a valid object; Python is initialised and the calling thread holds the main
/// interpreter's GIL.
pub unsafe fn buffer_of(obj: NonNull<ffi::PyObject>) -> Option<Buffer> {
    // SAFETY: attached (contract); the layout is a Buffer's once the type matches.
    unsafe {
        let [_, buffer, _] = types().ok()?;
        (ffi::Py_TYPE(obj.as_ptr()).cast() == buffer.as_ptr()).then(|| super::buffers::buffer_of(obj.as_ptr()).clone())
    }
}

/// Describes an exception object (type, message, formatted traceback), as actors'
/// exceptions are described.
///
/// # Safety
///
/// `exc` is a valid exception object; Python is initialised and the calling thread holds
/// the main interpreter's GIL.
pub unsafe fn describe(exc: NonNull<ffi::PyObject>) -> PythonException {
    // SAFETY: attached (contract); a new reference is taken for the helper to consume.
    unsafe {
        match (objects(), Obj::from_borrowed(exc.as_ptr())) {
            (Ok(objects), Some(exc)) => objects.helpers.describe(exc).0,
            (Err(error), _) => error,
            (_, None) => own_error("SystemError", "no exception"),
        }
    }
}
