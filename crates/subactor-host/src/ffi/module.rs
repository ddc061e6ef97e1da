//! The in-actor module `subactor`: what actor code imports to reach other actors.
//!
//! Built with multi-phase initialisation (`Py_mod_multiple_interpreters` = supported per
//! interpreter GIL), one module object and one `ActorRef` heap type per interpreter,
//! kept in the module's state. The host puts the module into each actor interpreter's
//! `sys.modules` before the actor's own module is imported, so `import subactor` works
//! at import time, in constructors and in handlers.
//!
//! Python API:
//! - `self_ref()`, `lookup(name)` (`None` when no such actor runs);
//! - `spawn(module_or_path, class_name, *args, name=None)`;
//! - `send_after(delay, ref, msg)` (returns a timer id), `cancel_timer(id)`;
//! - `monitor(ref)` (this actor then receives a `Down` when that one stops for good),
//!   `demonitor(ref, monitor_id)`;
//! - `ActorRef`: `tell(msg)`, `try_tell(msg)`, `ask(msg, timeout=30.0)`, `stop()`,
//!   `kill()`, `id`, `name`; references are values: they travel inside messages;
//! - the exceptions `ActorError` and its subclasses, `Interrupted` (raised in a handler
//!   that is killed or runs past its time limit) and the `Down` class (defined in
//!   `bootstrap.py`).
//!
//! Blocking calls (`tell` on a full mailbox, `ask`, `spawn`) release the interpreter's
//! GIL while they wait.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use pyo3_ffi as ffi;
use subactor_arena::Arena;
use subactor_core::{AnyRef, AskError, Fault, Finished, InterruptCause, MonitorId, Placement, SendError, Value, Waker};
use subactor_wire::{ActorEnv, SpawnRequest};

use super::convert::{from_python, to_python};
use super::helpers::{Helpers, ModuleTypes, new_str};
use super::object::{Obj, to_rust_string};
use crate::ReceiveError;

/// What actor code reaches of its runtime.
pub(crate) struct ActorLink {
    /// The runtime's registry, spawning and timers: the actor system itself in an
    /// interpreter actor, calls to the parent in a process actor's child.
    pub(crate) env: Arc<dyn ActorEnv>,
    pub(crate) myself: AnyRef,
    pub(crate) arena: Arena,
    /// Where an asyncio actor with `max_concurrency` above 1 reports the messages it
    /// finished (`subactor._finish`).
    pub(crate) finished: Option<Arc<FinishSink>>,
}

/// How a message's end leaves a process actor's child (to its parent).
pub(crate) type Forward = Box<dyn Fn(u64, Finished<Value, crate::ReceiveError>, Option<Value>) + Send + Sync>;

/// The outcomes of an asyncio actor's concurrent messages, from its event loop's
/// thread to the actor's (see `subactor_core::Actor::finished`). In a process actor's
/// child, each outcome is forwarded to the parent instead, whose watcher thread pushes
/// it into the actor's own sink.
#[derive(Default)]
pub(crate) struct FinishSink {
    outcomes: std::sync::Mutex<Vec<(u64, Finished<Value, crate::ReceiveError>)>>,
    /// The latest snapshot taken after a message finished, not kept yet.
    snapshot: std::sync::Mutex<Option<Value>>,
    waker: std::sync::Mutex<Option<Waker>>,
    forward: Option<Forward>,
}

impl FinishSink {
    /// A sink that hands every outcome to `forward` (a process actor's child).
    pub(crate) fn forwarding(forward: Forward) -> FinishSink {
        FinishSink { forward: Some(forward), ..FinishSink::default() }
    }

    pub(crate) fn set_waker(&self, waker: Waker) {
        *lock(&self.waker) = Some(waker);
    }

    pub(crate) fn take(&self) -> Vec<(u64, Finished<Value, crate::ReceiveError>)> {
        std::mem::take(&mut *lock(&self.outcomes))
    }

    pub(crate) fn take_snapshot(&self) -> Option<Value> {
        lock(&self.snapshot).take()
    }

    /// Records that message `token` ended (with the snapshot due after it) and wakes
    /// the actor's thread.
    pub(crate) fn push(&self, token: u64, outcome: Finished<Value, crate::ReceiveError>, snapshot: Option<Value>) {
        if let Some(forward) = &self.forward {
            forward(token, outcome, snapshot);
            return;
        }
        {
            // The snapshot is in place before the outcome can be taken: the actor keeps
            // it before the answer leaves.
            let mut outcomes = lock(&self.outcomes);
            if snapshot.is_some() {
                *lock(&self.snapshot) = snapshot;
            }
            outcomes.push((token, outcome));
        }
        if let Some(waker) = lock(&self.waker).as_ref() {
            waker.wake();
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The module's per-interpreter state (`m_size` bytes, zeroed by CPython).
#[repr(C)]
pub(super) struct ModuleState {
    /// Owned (`Box::into_raw`); null once the actor has ended.
    link: *mut ActorLink,
    /// Owned (`Rc::into_raw`): the interpreter's helpers, for conversions.
    pub(super) helpers: *const Helpers,
    /// Strong references to this interpreter's types.
    pub(super) actor_ref_type: *mut ffi::PyObject,
    pub(super) buffer_type: *mut ffi::PyObject,
    pub(super) buffer_mut_type: *mut ffi::PyObject,
}

/// An `ActorRef` instance.
#[repr(C)]
struct ActorRefObject {
    ob_base: ffi::PyObject,
    /// Owned (`Box::into_raw`).
    actor: *mut AnyRef,
}

/// A `static` the C API may write to (CPython initialises `PyModuleDef.m_base` in place).
pub(super) struct CStatic<T>(UnsafeCell<T>);

// SAFETY: CPython touches these definitions only while holding a GIL, and writes the
// same values whichever interpreter does it; Rust code never reads or writes them.
unsafe impl<T> Sync for CStatic<T> {}

impl<T> CStatic<T> {
    pub(super) const fn new(value: T) -> CStatic<T> {
        CStatic(UnsafeCell::new(value))
    }

    pub(super) const fn as_ptr(&self) -> *mut T {
        self.0.get()
    }
}

const FASTCALL_KW: c_int = ffi::METH_FASTCALL | ffi::METH_KEYWORDS;

pub(super) const fn method(
    name: &'static CStr,
    meth: ffi::PyMethodDefPointer,
    flags: c_int,
    doc: &'static CStr,
) -> ffi::PyMethodDef {
    ffi::PyMethodDef { ml_name: name.as_ptr(), ml_meth: meth, ml_flags: flags, ml_doc: doc.as_ptr() }
}

static MODULE_METHODS: CStatic<[ffi::PyMethodDef; 14]> = CStatic::new([
    method(
        c"self_ref",
        ffi::PyMethodDefPointer { PyCFunction: self_ref },
        ffi::METH_NOARGS,
        c"self_ref() -> ActorRef\n\nA reference to the actor running this code.",
    ),
    method(
        c"lookup",
        ffi::PyMethodDefPointer { PyCFunction: lookup },
        ffi::METH_O,
        c"lookup(name) -> ActorRef | None\n\nThe running Python actor with this name, or None.",
    ),
    method(
        c"spawn",
        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: spawn },
        FASTCALL_KW,
        c"spawn(module_or_path, class_name, *args, name=None) -> ActorRef\n\nStarts a Python actor in its own \
          interpreter and returns once it runs. Raises SpawnError.",
    ),
    method(
        c"send_after",
        ffi::PyMethodDefPointer { PyCFunctionFast: send_after },
        ffi::METH_FASTCALL,
        c"send_after(delay, ref, msg) -> int\n\nTells msg to ref after delay seconds; returns a timer id.",
    ),
    method(
        c"cancel_timer",
        ffi::PyMethodDefPointer { PyCFunction: cancel_timer },
        ffi::METH_O,
        c"cancel_timer(timer_id) -> bool\n\nCancels a send_after timer; True if it had not fired.",
    ),
    method(
        c"monitor",
        ffi::PyMethodDefPointer { PyCFunction: monitor },
        ffi::METH_O,
        c"monitor(ref) -> int\n\nWhen the actor behind ref stops for good, this actor receives a subactor.Down \
          (ahead of its queued mail). Returns a monitor id for demonitor().",
    ),
    method(
        c"demonitor",
        ffi::PyMethodDefPointer { PyCFunctionFast: demonitor },
        ffi::METH_FASTCALL,
        c"demonitor(ref, monitor_id) -> bool\n\nRemoves a monitor; True if it had not fired.",
    ),
    method(
        c"alloc",
        ffi::PyMethodDefPointer { PyCFunction: super::buffers::alloc },
        ffi::METH_O,
        c"alloc(size) -> BufferMut\n\nA writable, zero-filled buffer of the shared arena; freeze() it to send it.",
    ),
    method(
        c"_finish",
        ffi::PyMethodDefPointer { PyCFunctionFast: finish },
        ffi::METH_FASTCALL,
        c"_finish(token, kind, value, reply, snapshot)\n\nThe host's: an asyncio actor's message has ended.",
    ),
    method(
        c"_replies_new",
        ffi::PyMethodDefPointer { PyCFunction: super::replies::replies_new },
        ffi::METH_NOARGS,
        c"_replies_new() -> (replies, fd)\n\nThe host's: where the replies of one event loop's asks arrive, and the \
          file descriptor that becomes readable when some did.",
    ),
    method(
        c"_ask_begin",
        ffi::PyMethodDefPointer { PyCFunctionFast: super::replies::ask_begin },
        ffi::METH_FASTCALL,
        c"_ask_begin(replies, ref, msg, timeout) -> int | None\n\nThe host's: sends an ask whose outcome goes to \
          replies under the returned ticket; None when the mailbox is full.",
    ),
    method(
        c"_replies_take",
        ffi::PyMethodDefPointer { PyCFunction: super::replies::replies_take },
        ffi::METH_O,
        c"_replies_take(replies) -> list\n\nThe host's: the (ticket, ok, reply or exception) that came since the \
          last call.",
    ),
    method(
        c"_log",
        ffi::PyMethodDefPointer { PyCFunctionFast: log },
        ffi::METH_FASTCALL,
        c"_log(levelno, logger, message) -> bool\n\nThe host's: a logging record of this actor, to the runtime's \
          tracing; False when no tracing subscriber is installed.",
    ),
    ffi::PyMethodDef::zeroed(),
]);

static MODULE_SLOTS: CStatic<[ffi::PyModuleDef_Slot; 2]> = CStatic::new([
    ffi::PyModuleDef_Slot { slot: ffi::Py_mod_multiple_interpreters, value: ffi::Py_MOD_PER_INTERPRETER_GIL_SUPPORTED },
    ffi::PyModuleDef_Slot { slot: 0, value: ptr::null_mut() },
]);

static MODULE_DEF: CStatic<ffi::PyModuleDef> = CStatic::new(ffi::PyModuleDef {
    m_base: ffi::PyModuleDef_HEAD_INIT,
    m_name: c"subactor".as_ptr(),
    m_doc: c"subactor inside an actor: references to actors, spawning, timers.".as_ptr(),
    m_size: size_of::<ModuleState>() as ffi::Py_ssize_t,
    m_methods: MODULE_METHODS.as_ptr().cast(),
    m_slots: MODULE_SLOTS.as_ptr().cast(),
    m_traverse: Some(module_traverse),
    m_clear: Some(module_clear),
    m_free: Some(module_free),
});

static REF_METHODS: CStatic<[ffi::PyMethodDef; 8]> = CStatic::new([
    method(
        c"tell",
        ffi::PyMethodDefPointer { PyCFunction: ref_tell },
        ffi::METH_O,
        c"tell(msg)\n\nSends msg, waiting (GIL released) while the mailbox is full.",
    ),
    method(
        c"try_tell",
        ffi::PyMethodDefPointer { PyCFunction: ref_try_tell },
        ffi::METH_O,
        c"try_tell(msg) -> bool\n\nSends msg if the mailbox has room; False if it is full.",
    ),
    method(
        c"ask",
        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: ref_ask },
        FASTCALL_KW,
        c"ask(msg, timeout=30.0)\n\nSends msg and returns the reply, waiting with the GIL released.",
    ),
    method(
        c"stop",
        ffi::PyMethodDefPointer { PyCFunction: ref_stop },
        ffi::METH_NOARGS,
        c"stop()\n\nStops the actor once it has handled what is queued.",
    ),
    method(
        c"kill",
        ffi::PyMethodDefPointer { PyCFunction: ref_kill },
        ffi::METH_NOARGS,
        c"kill()\n\nStops the actor before its next message.",
    ),
    method(
        c"ask_async",
        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: ref_ask_async },
        ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        c"ask_async(msg, timeout=30.0)\n\nA coroutine: ask(msg, timeout) awaited on the running event loop.",
    ),
    method(
        c"tell_async",
        ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: ref_tell_async },
        ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        c"tell_async(msg)\n\nA coroutine: tell(msg) awaited, the loop going on while the mailbox is full.",
    ),
    ffi::PyMethodDef::zeroed(),
]);

static REF_GETSET: CStatic<[ffi::PyGetSetDef; 5]> = CStatic::new([
    ffi::PyGetSetDef {
        name: c"id".as_ptr(),
        get: Some(ref_id),
        set: None,
        doc: c"The actor's process-wide id.".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: c"name".as_ptr(),
        get: Some(ref_name),
        set: None,
        doc: c"The actor's name, or None.".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: c"restarts".as_ptr(),
        get: Some(ref_restarts),
        set: None,
        doc: c"How many times the actor has been restarted.".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef {
        name: c"placement".as_ptr(),
        get: Some(ref_placement),
        set: None,
        doc: c"Where the actor's handlers run: \"interpreter\" or \"process\".".as_ptr(),
        closure: ptr::null_mut(),
    },
    ffi::PyGetSetDef { name: ptr::null(), get: None, set: None, doc: ptr::null(), closure: ptr::null_mut() },
]);

static REF_SLOTS: CStatic<[ffi::PyType_Slot; 8]> = CStatic::new([
    ffi::PyType_Slot { slot: ffi::Py_tp_dealloc, pfunc: ref_dealloc as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_repr, pfunc: ref_repr as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_hash, pfunc: ref_hash as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_richcompare, pfunc: ref_richcompare as *mut c_void },
    ffi::PyType_Slot { slot: ffi::Py_tp_methods, pfunc: REF_METHODS.as_ptr().cast() },
    ffi::PyType_Slot { slot: ffi::Py_tp_getset, pfunc: REF_GETSET.as_ptr().cast() },
    ffi::PyType_Slot {
        slot: ffi::Py_tp_doc,
        pfunc: c"A reference to an actor. Made by self_ref(), lookup() and spawn(), or received in a message.".as_ptr()
            as *mut c_void,
    },
    ffi::PyType_Slot { slot: 0, pfunc: ptr::null_mut() },
]);

pub(super) static REF_SPEC: CStatic<ffi::PyType_Spec> = CStatic::new(ffi::PyType_Spec {
    name: c"subactor.ActorRef".as_ptr(),
    basicsize: size_of::<ActorRefObject>() as c_int,
    itemsize: 0,
    // Not subclassable, not constructible from Python (no tp_new).
    flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_IMMUTABLETYPE | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as _,
    slots: REF_SLOTS.as_ptr().cast(),
});

/// The exceptions the module holds from the start: classes of the bootstrap module.
/// The others, and `Down`, are made on first use (the module's `__getattr__`, set by
/// the bootstrap's `install`).
const EXCEPTIONS: [&CStr; 3] = [c"Interrupted", c"Killed", c"TimeLimitExceeded"];

/// The module's definition, to find the module from one of its types.
pub(super) fn module_def() -> *mut ffi::PyModuleDef {
    MODULE_DEF.as_ptr()
}

/// Creates a `subactor` module object from our definition with its three types (from
/// `specs`: `ActorRef`, `Buffer`, `BufferMut`), and fills its state but for the link
/// (left null: the module's functions raise `ActorStopped` until one is set). The types
/// are returned for the caller to hand to `helpers` once it has done with them.
///
/// # Safety
///
/// The interpreter that owns `helpers` is attached on this thread, and each spec is
/// valid for the module's lifetime.
pub(super) unsafe fn new_module(
    helpers: &Rc<Helpers>,
    specs: [*mut ffi::PyType_Spec; 3],
) -> Result<(Obj, ModuleTypes), crate::PythonException> {
    // SAFETY: attached (contract). The module is created from our static definition;
    // its state is zeroed by CPython and filled here before any of its types exists
    // outside this function.
    unsafe {
        let name = new_str("subactor").map_err(|e| helpers.describe(e).0)?;
        let spec = helpers.call_attr(c"module_spec", &[name.as_ptr()])?;
        let def = MODULE_DEF.as_ptr();
        let module = Obj::from_owned(ffi::PyModule_FromDefAndSpec(def, spec.as_ptr()))
            .ok_or_else(|| helpers.current_exception())?;
        if ffi::PyModule_ExecDef(module.as_ptr(), def) < 0 {
            return Err(helpers.current_exception());
        }
        let new_type = |spec: *mut ffi::PyType_Spec| {
            Obj::from_owned(ffi::PyType_FromModuleAndSpec(module.as_ptr(), spec, ptr::null_mut()))
                .ok_or_else(|| helpers.current_exception())
        };
        let [ref_spec, buffer_spec, buffer_mut_spec] = specs;
        let types = ModuleTypes {
            actor_ref: new_type(ref_spec)?,
            buffer: new_type(buffer_spec)?,
            buffer_mut: new_type(buffer_mut_spec)?,
        };
        let state = ffi::PyModule_GetState(module.as_ptr()).cast::<ModuleState>();
        if state.is_null() {
            return Err(helpers.current_exception());
        }
        (*state).helpers = Rc::into_raw(Rc::clone(helpers));
        let strong = |ty: &Obj| Obj::from_borrowed(ty.as_ptr()).map_or(ptr::null_mut(), Obj::into_ptr);
        (*state).actor_ref_type = strong(&types.actor_ref);
        (*state).buffer_type = strong(&types.buffer);
        (*state).buffer_mut_type = strong(&types.buffer_mut);
        Ok((module, types))
    }
}

/// Builds this interpreter's `subactor` module and makes it importable, not linked to
/// an actor yet: until [`link`] gives it one, its functions raise `ActorStopped`. (A
/// process actor's spare child builds it before it knows its actor.)
///
/// # Safety
///
/// The interpreter that owns `helpers` is attached on this thread.
pub(crate) unsafe fn install(helpers: &Rc<Helpers>) -> Result<(), crate::PythonException> {
    // SAFETY: attached (contract); the state is ours, filled by `new_module`, its link
    // left null.
    unsafe {
        let (module, types) = new_module(
            helpers,
            [REF_SPEC.as_ptr(), super::buffers::BUFFER_SPEC.as_ptr(), super::buffers::BUFFER_MUT_SPEC.as_ptr()],
        )?;
        for (name, ty) in
            [(c"ActorRef", &types.actor_ref), (c"Buffer", &types.buffer), (c"BufferMut", &types.buffer_mut)]
        {
            if ffi::PyModule_AddObjectRef(module.as_ptr(), name.as_ptr(), ty.as_ptr()) < 0 {
                return Err(helpers.current_exception());
            }
        }
        helpers.set_types(Some(types));
        for name in EXCEPTIONS {
            let class = helpers.attr(name)?;
            if ffi::PyModule_AddObjectRef(module.as_ptr(), name.as_ptr(), class.as_ptr()) < 0 {
                return Err(helpers.current_exception());
            }
        }
        helpers.call_attr(
            c"install",
            &[new_str("subactor").map_err(|e| helpers.describe(e).0)?.as_ptr(), module.as_ptr()],
        )?;
        Ok(())
    }
}

/// Whether [`install`] has built this interpreter's module (and no [`uninstall`] has
/// cut it off since): a process actor's child inherits the one its template built.
///
/// # Safety
///
/// The interpreter that owns `helpers` is attached on this thread.
pub(crate) unsafe fn installed(helpers: &Helpers) -> bool {
    // SAFETY: attached (contract).
    unsafe { module_state_of_interpreter(helpers) }.is_some()
}

/// Links the module [`install`] made to its actor (replacing the link it had, if any).
///
/// # Safety
///
/// The interpreter that owns `helpers` is attached on this thread.
pub(crate) unsafe fn link(helpers: &Helpers, link: ActorLink) -> Result<(), crate::PythonException> {
    // SAFETY: attached (contract); the state belongs to the module we installed, and
    // its non-null link is a Box it owns.
    unsafe {
        let Some(state) = module_state_of_interpreter(helpers) else {
            return Err(crate::PythonException {
                type_name: "RuntimeError".into(),
                message: "the subactor module is not installed in this interpreter".into(),
                traceback: String::new(),
            });
        };
        let old = std::mem::replace(&mut (*state).link, Box::into_raw(Box::new(link)));
        if !old.is_null() {
            drop(Box::from_raw(old));
        }
        Ok(())
    }
}

/// Cuts the module off from the runtime when the actor ends: afterwards its functions
/// raise `ActorStopped`, and nothing it holds keeps the runtime alive.
///
/// # Safety
///
/// The interpreter is attached on this thread.
pub(crate) unsafe fn uninstall(helpers: &Helpers) {
    // SAFETY: attached (contract); the state belongs to the module we installed.
    unsafe {
        let Some(state) = module_state_of_interpreter(helpers) else { return };
        let link = std::mem::replace(&mut (*state).link, ptr::null_mut());
        if !link.is_null() {
            drop(Box::from_raw(link));
        }
    }
    helpers.set_types(None);
}

/// The installed module's state, found through `sys.modules`.
///
/// # Safety
///
/// Attached interpreter.
unsafe fn module_state_of_interpreter(helpers: &Helpers) -> Option<*mut ModuleState> {
    // SAFETY: attached (contract); the type's module is checked to be ours.
    unsafe {
        let ty = helpers.types()?.actor_ref;
        let module = ffi::PyType_GetModuleByDef(ty.cast(), MODULE_DEF.as_ptr());
        if module.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(ffi::PyModule_GetState(module).cast())
    }
}

// ---- the module's GC hooks ------------------------------------------------------------

unsafe extern "C" fn module_traverse(module: *mut ffi::PyObject, visit: ffi::visitproc, arg: *mut c_void) -> c_int {
    // SAFETY: CPython calls this with a live module of our definition.
    unsafe {
        let state = ffi::PyModule_GetState(module).cast::<ModuleState>();
        if !state.is_null() {
            for ty in [(*state).actor_ref_type, (*state).buffer_type, (*state).buffer_mut_type] {
                if !ty.is_null() {
                    let status = visit(ty, arg);
                    if status != 0 {
                        return status;
                    }
                }
            }
        }
    }
    0
}

unsafe extern "C" fn module_clear(module: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython calls this with a live module of our definition, GIL held.
    unsafe {
        let state = ffi::PyModule_GetState(module).cast::<ModuleState>();
        if !state.is_null() {
            for field in [&mut (*state).actor_ref_type, &mut (*state).buffer_type, &mut (*state).buffer_mut_type] {
                ffi::Py_XDECREF(std::mem::replace(field, ptr::null_mut()));
            }
        }
    }
    0
}

unsafe extern "C" fn module_free(module: *mut c_void) {
    // SAFETY: CPython calls this once when the module goes, GIL held; the pointers in
    // the state were made by `install` with Box/Rc::into_raw, or are null.
    unsafe {
        module_clear(module.cast());
        let state = ffi::PyModule_GetState(module.cast()).cast::<ModuleState>();
        if state.is_null() {
            return;
        }
        let link = std::mem::replace(&mut (*state).link, ptr::null_mut());
        if !link.is_null() {
            drop(Box::from_raw(link));
        }
        let helpers = std::mem::replace(&mut (*state).helpers, ptr::null());
        if !helpers.is_null() {
            drop(Rc::from_raw(helpers));
        }
    }
}

// ---- helpers of the C callbacks -------------------------------------------------------

/// A Python exception is set; return NULL to CPython.
pub(super) struct Raised;

pub(super) type PyResult<T> = Result<T, Raised>;

/// Runs a callback body, turning a panic into a `SystemError` (a panic must not unwind
/// into CPython).
pub(super) fn guard(body: impl FnOnce() -> PyResult<*mut ffi::PyObject>) -> *mut ffi::PyObject {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(obj)) => obj,
        Ok(Err(Raised)) => ptr::null_mut(),
        Err(_) => {
            // SAFETY: callbacks run with the interpreter attached.
            unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"subactor: internal panic".as_ptr()) };
            ptr::null_mut()
        }
    }
}

/// The state of the module a module-level function was called on.
///
/// # Safety
///
/// `module` is our module; attached.
pub(super) unsafe fn state_of_module<'a>(module: *mut ffi::PyObject) -> &'a ModuleState {
    // SAFETY: our module's state is a ModuleState, alive as long as the module.
    unsafe { &*ffi::PyModule_GetState(module).cast::<ModuleState>() }
}

/// The state of the module that owns an `ActorRef` type.
///
/// # Safety
///
/// `obj` is an `ActorRef` of this interpreter; attached.
unsafe fn state_of_ref<'a>(obj: *mut ffi::PyObject) -> PyResult<&'a ModuleState> {
    // SAFETY: the type was made from our module by PyType_FromModuleAndSpec.
    unsafe {
        let module = ffi::PyType_GetModuleByDef(ffi::Py_TYPE(obj), MODULE_DEF.as_ptr());
        if module.is_null() {
            return Err(Raised);
        }
        Ok(state_of_module(module))
    }
}

impl ModuleState {
    pub(super) fn helpers(&self) -> &Helpers {
        // SAFETY: set by `install` before the module is reachable, released only in
        // `module_free`, after which no callback of this module runs.
        unsafe { &*self.helpers }
    }

    /// The actor's link, or `ActorStopped` once it has ended.
    pub(super) fn link(&self) -> PyResult<&ActorLink> {
        if self.link.is_null() {
            // SAFETY: attached (callbacks run attached).
            return Err(unsafe { self.helpers().raise(c"ActorStopped", "this actor has stopped") });
        }
        // SAFETY: non-null links are valid Boxes owned by the state.
        Ok(unsafe { &*self.link })
    }

    /// The actor behind `obj`, which must be an `ActorRef`; `what` names it in the
    /// `TypeError` otherwise.
    ///
    /// # Safety
    ///
    /// `obj` belongs to the attached interpreter.
    pub(super) unsafe fn actor_ref<'a>(&self, obj: *mut ffi::PyObject, what: &str) -> PyResult<&'a AnyRef> {
        // SAFETY: attached (contract); the type is checked before the cast.
        unsafe {
            if ffi::Py_TYPE(obj).cast() != self.actor_ref_type {
                return Err(self.helpers().raise_builtin(ffi::PyExc_TypeError, &format!("{what} must be an ActorRef")));
            }
            Ok(ref_actor(obj))
        }
    }

    /// Converts a Python object; raises on failure.
    ///
    /// # Safety
    ///
    /// `obj` belongs to the attached interpreter.
    pub(super) unsafe fn value(&self, obj: *mut ffi::PyObject) -> PyResult<Value> {
        // SAFETY: forwarded contract.
        unsafe { from_python(obj, self.helpers()) }.map_err(|e| {
            // SAFETY: attached.
            unsafe { self.helpers().raise_convert(&e) }
        })
    }

    /// Builds a Python object; raises on failure.
    ///
    /// # Safety
    ///
    /// Attached interpreter.
    pub(super) unsafe fn object(&self, value: &Value) -> PyResult<*mut ffi::PyObject> {
        // SAFETY: forwarded contract.
        unsafe { to_python(value, self.helpers()) }.map(Obj::into_ptr).map_err(|e| {
            // SAFETY: attached.
            unsafe { self.helpers().raise_convert(&e) }
        })
    }
}

/// Reads a non-negative int that fits in 64 bits (an id); raises otherwise.
///
/// # Safety
///
/// Attached; `obj` valid.
pub(super) unsafe fn unsigned(obj: *mut ffi::PyObject) -> PyResult<u64> {
    // SAFETY: attached (contract); an error is signalled by u64::MAX plus a set error.
    unsafe {
        let n = ffi::PyLong_AsUnsignedLongLong(obj);
        if n == u64::MAX && !ffi::PyErr_Occurred().is_null() { Err(Raised) } else { Ok(n) }
    }
}

/// Runs `f` with this interpreter's GIL released.
///
/// # Safety
///
/// Attached interpreter; `f` does not touch Python.
unsafe fn without_gil<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: attached (contract); the same thread state is restored after `f`.
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    let result = catch_unwind(AssertUnwindSafe(f));
    // SAFETY: restores what PyEval_SaveThread released on this thread.
    unsafe { ffi::PyEval_RestoreThread(tstate) };
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Makes a new `ActorRef` object of this interpreter.
///
/// # Safety
///
/// `ty` is this interpreter's `ActorRef` type; attached.
pub(crate) unsafe fn new_ref(ty: *mut ffi::PyObject, actor: AnyRef) -> *mut ffi::PyObject {
    // SAFETY: attached (contract). The type has no tp_new and no custom tp_alloc (not a
    // GC type), so PyType_GenericAlloc is its allocator; the one field is filled before
    // anyone sees the object.
    unsafe {
        let obj = ffi::PyType_GenericAlloc(ty.cast(), 0);
        if !obj.is_null() {
            (*obj.cast::<ActorRefObject>()).actor = Box::into_raw(Box::new(actor));
        }
        obj
    }
}

/// The actor behind an `ActorRef` object.
///
/// # Safety
///
/// `obj` is an `ActorRef` object.
pub(crate) unsafe fn ref_actor<'a>(obj: *mut ffi::PyObject) -> &'a AnyRef {
    // SAFETY: every ActorRef object gets a valid Box in `new_ref`, freed only in dealloc.
    unsafe { &*(*obj.cast::<ActorRefObject>()).actor }
}

/// Turns a failed ask into the matching Python exception.
///
/// # Safety
///
/// Attached interpreter.
pub(super) unsafe fn raise_ask(helpers: &Helpers, error: AskError<Value, subactor_core::BoxError>) -> Raised {
    // SAFETY: attached (contract).
    unsafe {
        match error {
            AskError::Stopped(_) => helpers.raise(c"ActorStopped", "the actor is not running"),
            AskError::MailboxFull(_) => {
                helpers.raise(c"MailboxFull", "the actor's mailbox stayed full until the timeout")
            }
            AskError::SelfAsk(_) => {
                helpers.raise(c"SelfAskError", "an actor cannot ask itself (it would wait forever)")
            }
            AskError::Timeout => helpers.raise(c"AskTimeout", "no reply within the timeout"),
            AskError::NoReply => helpers.raise(c"NoReply", "the actor stopped before replying"),
            AskError::Failed(error) => match error.downcast::<ReceiveError>() {
                Ok(receive) => match *receive {
                    ReceiveError::Exception(e) => helpers.raise_remote(&e.type_name, &e.message, &e.traceback),
                    other => helpers.raise_remote("subactor.ConversionError", &other.to_string(), ""),
                },
                Err(other) => helpers.raise_remote("Error", &other.to_string(), ""),
            },
            AskError::Fault(fault) => {
                let kind = match fault {
                    Fault::Panicked(_) => "panicked",
                    Fault::Killed => "killed",
                    Fault::TimeLimit(_) => "time_limit",
                    Fault::Died(_) => "died",
                };
                helpers.raise_failed(kind, &fault.to_string())
            }
        }
    }
}

pub(super) fn send_error(helpers: &Helpers, error: &SendError<Value>) -> Raised {
    // SAFETY: only called from callbacks, which run attached.
    unsafe {
        match error {
            SendError::Full(_) => helpers.raise(c"MailboxFull", "the actor's mailbox is full"),
            SendError::Stopped(_) => helpers.raise(c"ActorStopped", "the actor is not running"),
        }
    }
}

/// The longest duration an argument may give, in seconds (about 317 years; the
/// package's `subactor._check.MAX_SECONDS`): deadlines stay representable.
const MAX_SECONDS: f64 = 1e10;

/// Reads a number of seconds (an int or a float, not a bool), finite, from 0 to
/// [`MAX_SECONDS`]; raises `TypeError` or `ValueError` naming `what` otherwise.
///
/// # Safety
///
/// Attached; `obj` valid.
pub(super) unsafe fn seconds(obj: *mut ffi::PyObject, helpers: &Helpers, what: &str) -> PyResult<Duration> {
    let type_error = || {
        let message = format!("{what} must be a number of seconds (an int or a float)");
        // SAFETY: attached (contract of `seconds`, which alone calls this).
        unsafe { helpers.raise_builtin(ffi::PyExc_TypeError, &message) }
    };
    // SAFETY: attached (contract); type checks only read the object's type.
    if unsafe { ffi::PyBool_Check(obj) != 0 || ffi::PyUnicode_Check(obj) != 0 } {
        return Err(type_error());
    }
    // SAFETY: attached (contract).
    let secs = unsafe { ffi::PyFloat_AsDouble(obj) };
    // SAFETY: attached.
    if secs == -1.0 && unsafe { !ffi::PyErr_Occurred().is_null() } {
        // SAFETY: attached; the TypeError of a non-number is replaced by one naming `what`.
        unsafe {
            if ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0 {
                ffi::PyErr_Clear();
                return Err(type_error());
            }
        }
        return Err(Raised);
    }
    if secs > MAX_SECONDS {
        // SAFETY: attached.
        return Err(unsafe {
            helpers.raise_builtin(
                ffi::PyExc_ValueError,
                &format!("{what} must be at most {MAX_SECONDS:.0e} seconds (about 317 years), got {secs}"),
            )
        });
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        // SAFETY: attached.
        unsafe {
            helpers.raise_builtin(
                ffi::PyExc_ValueError,
                &format!("{what} must be a finite number of seconds >= 0, got {secs}"),
            )
        }
    })
}

/// Reads an id argument (a timer's, a monitor's): an int from 0 up, not a bool;
/// `TypeError` or `ValueError` naming `what` otherwise (never `OverflowError`).
///
/// # Safety
///
/// Attached; `obj` valid.
unsafe fn id_arg(obj: *mut ffi::PyObject, helpers: &Helpers, what: &str) -> PyResult<u64> {
    // SAFETY: attached (contract); type checks only read the object's type.
    if unsafe { ffi::PyBool_Check(obj) != 0 || ffi::PyLong_Check(obj) == 0 } {
        // SAFETY: attached.
        return Err(unsafe { helpers.raise_builtin(ffi::PyExc_TypeError, &format!("{what} must be an int")) });
    }
    // SAFETY: attached; `obj` is an int.
    match unsafe { unsigned(obj) } {
        Ok(id) => Ok(id),
        Err(raised) => {
            // SAFETY: attached; the OverflowError of a negative or huge int is replaced.
            unsafe {
                if ffi::PyErr_ExceptionMatches(ffi::PyExc_OverflowError) == 0 {
                    return Err(raised);
                }
                ffi::PyErr_Clear();
                Err(helpers.raise_builtin(ffi::PyExc_ValueError, &format!("{what} is not an id (an int from 0 up)")))
            }
        }
    }
}

// ---- module functions -----------------------------------------------------------------

unsafe extern "C" fn self_ref(module: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached.
        unsafe {
            let state = state_of_module(module);
            let link = state.link()?;
            Ok(new_ref(state.actor_ref_type, link.myself.clone()))
        }
    })
}

unsafe extern "C" fn lookup(module: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with a valid argument.
        unsafe {
            let state = state_of_module(module);
            let Some(name) = to_rust_string(name) else {
                return Err(state
                    .helpers()
                    .raise_builtin(ffi::PyExc_TypeError, "lookup() takes the actor's name (a str)"));
            };
            let env = Arc::clone(&state.link()?.env);
            match without_gil(move || env.lookup(&name)) {
                Some(actor) => Ok(new_ref(state.actor_ref_type, actor)),
                None => Ok(Obj::from_borrowed(ffi::Py_None()).map_or(ptr::null_mut(), Obj::into_ptr)),
            }
        }
    })
}

unsafe extern "C" fn spawn(
    module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with `nargs` positional
        // arguments followed by the values of `kwnames`.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            let positional = usize::try_from(ffi::PyVectorcall_NARGS(nargs as usize)).unwrap_or(0);
            if positional < 2 {
                return Err(
                    helpers.raise_builtin(ffi::PyExc_TypeError, "spawn() takes a module (or path) and a class name")
                );
            }
            let text = |i: usize, what: &str| {
                to_rust_string(*args.add(i)).ok_or_else(|| {
                    helpers.raise_builtin(ffi::PyExc_TypeError, &format!("spawn(): {what} must be a str"))
                })
            };
            let target = text(0, "the module")?;
            let class = text(1, "the class name")?;
            let mut ctor_args = Vec::with_capacity(positional - 2);
            for i in 2..positional {
                ctor_args.push(state.value(*args.add(i))?);
            }
            let mut request = SpawnRequest {
                module: target,
                class,
                args: ctor_args,
                name: None,
                placement: Placement::Auto,
                node: None,
                settings: subactor_wire::SpawnSettings::default(),
            };
            let keywords = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) };
            for k in 0..keywords {
                let key = to_rust_string(ffi::PyTuple_GET_ITEM(kwnames, k)).unwrap_or_default();
                let value = *args.add(positional + usize::try_from(k).unwrap_or(0));
                match key.as_str() {
                    "name" if value == ffi::Py_None() => {}
                    "name" => match to_rust_string(value) {
                        Some(name) if name.is_empty() => {
                            return Err(helpers.raise_builtin(ffi::PyExc_ValueError, "spawn(): name must not be empty"));
                        }
                        Some(name) => request.name = Some(name),
                        None => return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "spawn(): name must be a str")),
                    },
                    "node" if value == ffi::Py_None() => {}
                    "node" => match to_rust_string(value) {
                        Some(node) => request.node = Some(node),
                        None => return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "spawn(): node must be a str")),
                    },
                    "placement" => match to_rust_string(value).map(|p| p.parse::<Placement>()) {
                        Some(Ok(placement @ (Placement::Interpreter | Placement::Process | Placement::Auto))) => {
                            request.placement = placement;
                        }
                        Some(Ok(other)) => {
                            let message = format!("spawn(): placement {other:?} is not one for a Python actor");
                            return Err(helpers.raise_builtin(ffi::PyExc_ValueError, &message));
                        }
                        Some(Err(error)) => {
                            return Err(helpers.raise_builtin(ffi::PyExc_ValueError, &format!("spawn(): {error}")));
                        }
                        None => {
                            let message = "spawn(): placement must be a str (\"auto\", \"interpreter\" or \"process\")";
                            return Err(helpers.raise_builtin(ffi::PyExc_TypeError, message));
                        }
                    },
                    other => {
                        return Err(helpers.raise_builtin(
                            ffi::PyExc_TypeError,
                            &format!("spawn() got an unexpected keyword argument {other:?}"),
                        ));
                    }
                }
            }
            let env = Arc::clone(&state.link()?.env);
            match without_gil(move || env.spawn(request)) {
                Ok(child) => Ok(new_ref(state.actor_ref_type, child)),
                Err(message) => Err(helpers.raise(c"SpawnError", &message)),
            }
        }
    })
}

unsafe extern "C" fn send_after(
    module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with `nargs` arguments.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            if nargs != 3 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "send_after() takes (delay, ref, msg)"));
            }
            let delay = seconds(*args, helpers, "delay")?;
            let target = state.actor_ref(*args.add(1), "send_after(): ref")?;
            let msg = state.value(*args.add(2))?;
            let env = Arc::clone(&state.link()?.env);
            let target = target.clone();
            match without_gil(move || env.send_after(delay, target, msg)) {
                Some(id) => Ok(ffi::PyLong_FromUnsignedLongLong(id)),
                None => Err(helpers.raise(c"ActorStopped", "the runtime has shut down")),
            }
        }
    })
}

unsafe extern "C" fn monitor(module: *mut ffi::PyObject, target: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with a valid argument.
        unsafe {
            let state = state_of_module(module);
            let target = state.actor_ref(target, "monitor(): ref")?.clone();
            let myself = state.link()?.myself.clone();
            let id = without_gil(move || target.monitor_by(&myself));
            Ok(ffi::PyLong_FromUnsignedLongLong(id.as_u64()))
        }
    })
}

unsafe extern "C" fn demonitor(
    module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with `nargs` arguments.
        unsafe {
            let state = state_of_module(module);
            if nargs != 2 {
                let helpers = state.helpers();
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "demonitor() takes (ref, monitor_id)"));
            }
            let target = state.actor_ref(*args, "demonitor(): ref")?.clone();
            let id = MonitorId::from_u64(id_arg(*args.add(1), state.helpers(), "demonitor(): monitor_id")?);
            let removed = without_gil(move || target.demonitor(id));
            Ok(ffi::PyBool_FromLong(removed.into()))
        }
    })
}

/// `_log(levelno, logger, message)`: a Python `logging` record of this actor (the
/// handler `bootstrap.install` puts on the root logger) to the runtime's `tracing`,
/// with the actor's id and name (`ActorEnv::log`: in a process actor's child, it goes
/// to the parent). Returns whether a `tracing` subscriber took it (not before the
/// module is linked to its actor).
unsafe extern "C" fn log(
    module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with `nargs` arguments.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            if nargs != 3 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "_log() takes (levelno, logger, message)"));
            }
            let level = ffi::PyLong_AsLong(*args);
            if level == -1 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "_log(): levelno is not an int"));
            }
            let (Some(logger), Some(message)) =
                (super::object::to_rust_string(*args.add(1)), super::object::to_rust_string(*args.add(2)))
            else {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "_log(): logger and message are str"));
            };
            if state.link.is_null() {
                // No actor (yet): a warm pool's import in advance, or after the actor
                // ended. The handler falls back to `logging.lastResort`.
                return Ok(ffi::PyBool_FromLong(0));
            }
            let link = state.link()?;
            let record = subactor_wire::LogRecord {
                level,
                logger,
                message,
                actor_id: link.myself.id().as_u64(),
                actor_name: link.myself.name().map(str::to_owned),
            };
            // Whether a subscriber took it: without one, the handler falls back to
            // `logging.lastResort` (stderr), as Python would.
            Ok(ffi::PyBool_FromLong(link.env.log(record).into()))
        }
    })
}

unsafe extern "C" fn cancel_timer(module: *mut ffi::PyObject, id: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: CPython calls this on our module, attached, with a valid argument.
        unsafe {
            let state = state_of_module(module);
            let id = id_arg(id, state.helpers(), "cancel_timer(): timer_id")?;
            let env = Arc::clone(&state.link()?.env);
            let cancelled = without_gil(move || env.cancel_timer(id));
            Ok(ffi::PyBool_FromLong(cancelled.into()))
        }
    })
}

// ---- ActorRef -------------------------------------------------------------------------

unsafe extern "C" fn ref_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls this once, attached, when the object's count reaches zero.
    // A heap type's instances own a reference to their type, released last.
    unsafe {
        let this = obj.cast::<ActorRefObject>();
        let actor = std::mem::replace(&mut (*this).actor, ptr::null_mut());
        if !actor.is_null() {
            drop(Box::from_raw(actor));
        }
        let ty = ffi::Py_TYPE(obj);
        // Not a GC type: its tp_free is PyObject_Free.
        ffi::PyObject_Free(obj.cast());
        ffi::Py_DECREF(ty.cast());
    }
}

unsafe extern "C" fn ref_repr(obj: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef; attached.
        unsafe {
            let actor = ref_actor(obj);
            let text = match actor.name() {
                Some(name) => format!("<ActorRef {} {name:?}>", actor.id().as_u64()),
                None => format!("<ActorRef {}>", actor.id().as_u64()),
            };
            new_str(&text).map(Obj::into_ptr).map_err(|exc| {
                ffi::PyErr_SetRaisedException(exc.into_ptr());
                Raised
            })
        }
    })
}

unsafe extern "C" fn ref_hash(obj: *mut ffi::PyObject) -> ffi::Py_hash_t {
    // SAFETY: `obj` is an ActorRef. Ids start at 1, so the hash is never -1.
    unsafe { ffi::Py_hash_t::try_from(ref_actor(obj).id().as_u64()).unwrap_or(ffi::Py_hash_t::MAX) }
}

unsafe extern "C" fn ref_richcompare(a: *mut ffi::PyObject, b: *mut ffi::PyObject, op: c_int) -> *mut ffi::PyObject {
    // SAFETY: `a` is an ActorRef; `b` is checked to be of the same type; attached.
    unsafe {
        let same_type = ffi::Py_TYPE(a) == ffi::Py_TYPE(b);
        if !same_type || (op != ffi::Py_EQ && op != ffi::Py_NE) {
            return Obj::from_borrowed(ffi::Py_NotImplemented()).map_or(ptr::null_mut(), Obj::into_ptr);
        }
        let equal = ref_actor(a) == ref_actor(b);
        ffi::PyBool_FromLong(c_long_of(equal == (op == ffi::Py_EQ)))
    }
}

fn c_long_of(b: bool) -> std::ffi::c_long {
    std::ffi::c_long::from(b)
}

unsafe extern "C" fn ref_id(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is an ActorRef; attached.
    unsafe { ffi::PyLong_FromUnsignedLongLong(ref_actor(obj).id().as_u64()) }
}

unsafe extern "C" fn ref_name(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef; attached.
        unsafe {
            match ref_actor(obj).name() {
                Some(name) => new_str(name).map(Obj::into_ptr).map_err(|exc| {
                    ffi::PyErr_SetRaisedException(exc.into_ptr());
                    Raised
                }),
                None => Ok(Obj::from_borrowed(ffi::Py_None()).map_or(ptr::null_mut(), Obj::into_ptr)),
            }
        }
    })
}

unsafe extern "C" fn ref_placement(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef; attached.
        unsafe {
            new_str(ref_actor(obj).placement().as_str()).map(Obj::into_ptr).map_err(|exc| {
                ffi::PyErr_SetRaisedException(exc.into_ptr());
                Raised
            })
        }
    })
}

unsafe extern "C" fn ref_restarts(obj: *mut ffi::PyObject, _: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `obj` is an ActorRef; attached.
    unsafe {
        let actor = ref_actor(obj);
        let restarts = if actor.as_remote().is_some() {
            let actor = actor.clone();
            without_gil(move || actor.restarts())
        } else {
            actor.restarts()
        };
        ffi::PyLong_FromUnsignedLongLong(restarts)
    }
}

unsafe extern "C" fn ref_tell(obj: *mut ffi::PyObject, msg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef of this interpreter; attached.
        unsafe {
            let state = state_of_ref(obj)?;
            let value = state.value(msg)?;
            let actor = ref_actor(obj).clone();
            without_gil(move || actor.blocking_tell(value)).map_err(|e| send_error(state.helpers(), &e))?;
            Ok(Obj::from_borrowed(ffi::Py_None()).map_or(ptr::null_mut(), Obj::into_ptr))
        }
    })
}

unsafe extern "C" fn ref_try_tell(obj: *mut ffi::PyObject, msg: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef of this interpreter; attached.
        unsafe {
            let state = state_of_ref(obj)?;
            let value = state.value(msg)?;
            let actor = ref_actor(obj);
            let sent = if actor.as_remote().is_some() {
                let actor = actor.clone();
                without_gil(move || actor.try_tell(value))
            } else {
                actor.try_tell(value)
            };
            match sent {
                Ok(()) => Ok(ffi::PyBool_FromLong(1)),
                Err(SendError::Full(_)) => Ok(ffi::PyBool_FromLong(0)),
                Err(e) => Err(send_error(state.helpers(), &e)),
            }
        }
    })
}

/// The default `ask` timeout, in seconds.
pub(super) const DEFAULT_ASK_TIMEOUT: f64 = 30.0;

unsafe extern "C" fn ref_ask(
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `obj` is an ActorRef of this interpreter; attached; `args` holds
        // `nargs` positional arguments followed by the values of `kwnames`.
        unsafe {
            let state = state_of_ref(obj)?;
            let helpers = state.helpers();
            let positional = usize::try_from(ffi::PyVectorcall_NARGS(nargs as usize)).unwrap_or(0);
            let keywords =
                if kwnames.is_null() { 0 } else { usize::try_from(ffi::PyTuple_GET_SIZE(kwnames)).unwrap_or(0) };
            let mut timeout = None;
            for k in 0..keywords {
                let key = to_rust_string(ffi::PyTuple_GET_ITEM(kwnames, k as ffi::Py_ssize_t)).unwrap_or_default();
                if key != "timeout" {
                    return Err(helpers.raise_builtin(
                        ffi::PyExc_TypeError,
                        &format!("ask() got an unexpected keyword argument {key:?}"),
                    ));
                }
                timeout = Some(*args.add(positional + k));
            }
            if positional == 2 && timeout.is_none() {
                timeout = Some(*args.add(1));
            } else if positional != 1 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "ask() takes (msg, timeout=30.0)"));
            }
            let timeout = match timeout {
                Some(t) if t != ffi::Py_None() => seconds(t, helpers, "timeout")?,
                _ => Duration::from_secs_f64(DEFAULT_ASK_TIMEOUT),
            };
            let value = state.value(*args)?;
            let actor = ref_actor(obj).clone();
            match without_gil(move || actor.blocking_ask(value, timeout)) {
                Ok(reply) => state.object(&reply),
                Err(error) => Err(raise_ask(helpers, error)),
            }
        }
    })
}

/// `subactor._finish(token, kind, value, reply, snapshot)`: the bootstrap's shell
/// reports a concurrent message's end. `kind`: 0 answered `value` (converted when
/// `reply`), 1 raised `value`, 2 killed, 3 past its time limit; `snapshot` is None or
/// `(state,)`.
unsafe extern "C" fn finish(
    module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `module` is our module, attached; `args` holds `nargs` objects.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            if nargs != 5 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "_finish() takes 5 arguments"));
            }
            let link = state.link()?;
            let Some(sink) = link.finished.as_ref() else {
                return Err(helpers.raise_builtin(ffi::PyExc_RuntimeError, "this actor reports no concurrent messages"));
            };
            let token = unsigned(*args)?;
            let kind = unsigned(*args.add(1))?;
            let value = *args.add(2);
            let reply = ffi::PyObject_IsTrue(*args.add(3)) == 1;
            let outcome = match kind {
                0 if reply => match from_python(value, helpers) {
                    Ok(value) => Finished::Replied(value),
                    Err(error) => Finished::Failed(ReceiveError::Reply(error)),
                },
                0 => Finished::Replied(Value::None),
                1 => {
                    let exc = Obj::from_borrowed(value).ok_or(Raised)?;
                    Finished::Failed(ReceiveError::Exception(helpers.describe(exc).0))
                }
                2 => Finished::Interrupted(InterruptCause::Kill),
                _ => Finished::Interrupted(InterruptCause::TimeLimit),
            };
            let snapshot = *args.add(4);
            let mut outcome = outcome;
            let snapshot = if snapshot != ffi::Py_None()
                && ffi::PyTuple_Check(snapshot) != 0
                && ffi::PyTuple_GET_SIZE(snapshot) == 1
            {
                match from_python(ffi::PyTuple_GET_ITEM(snapshot, 0), helpers) {
                    Ok(state) => Some(state),
                    Err(error) => {
                        // As after a message handled one at a time: a snapshot that
                        // cannot be kept is the message's failure.
                        outcome = Finished::Failed(ReceiveError::Snapshot(crate::PythonException {
                            type_name: "TypeError".into(),
                            message: format!("the actor's snapshot() returned a state that cannot be kept: {error}"),
                            traceback: String::new(),
                        }));
                        None
                    }
                }
            } else {
                None
            };
            sink.push(token, outcome, snapshot);
            Ok(ffi::Py_NewRef(ffi::Py_None()))
        }
    })
}

unsafe extern "C" fn ref_ask_async(
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: forwarded from CPython's call of this method.
    unsafe { forward_to_bootstrap(c"ask_async", obj, args, nargs, kwnames) }
}

unsafe extern "C" fn ref_tell_async(
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: forwarded from CPython's call of this method.
    unsafe { forward_to_bootstrap(c"tell_async", obj, args, nargs, kwnames) }
}

/// Calls the bootstrap's function `name(obj, *args, **kwargs)` (the asyncio methods of
/// `ActorRef` are written in Python).
///
/// # Safety
///
/// `obj` is an ActorRef of the attached interpreter; `args` holds `nargs` positional
/// arguments followed by the values of `kwnames` (vectorcall's convention).
unsafe fn forward_to_bootstrap(
    name: &std::ffi::CStr,
    obj: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: attached (contract); the argument array is rebuilt with `obj` first.
        unsafe {
            let state = state_of_ref(obj)?;
            let helpers = state.helpers();
            let func = helpers.attr(name).map_err(|e| helpers.raise_builtin(ffi::PyExc_SystemError, &e.to_string()))?;
            let positional = usize::try_from(ffi::PyVectorcall_NARGS(nargs as usize)).unwrap_or(0);
            let keywords =
                if kwnames.is_null() { 0 } else { usize::try_from(ffi::PyTuple_GET_SIZE(kwnames)).unwrap_or(0) };
            let mut all = Vec::with_capacity(1 + positional + keywords);
            all.push(obj);
            all.extend((0..positional + keywords).map(|i| *args.add(i)));
            let result = ffi::PyObject_Vectorcall(func.as_ptr(), all.as_ptr(), positional + 1, kwnames);
            if result.is_null() { Err(Raised) } else { Ok(result) }
        }
    })
}

unsafe extern "C" fn ref_stop(obj: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `obj` is an ActorRef; attached.
    unsafe {
        let actor = ref_actor(obj).clone();
        without_gil(move || actor.stop());
        Obj::from_borrowed(ffi::Py_None()).map_or(ptr::null_mut(), Obj::into_ptr)
    }
}

unsafe extern "C" fn ref_kill(obj: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `obj` is an ActorRef; attached.
    unsafe {
        let actor = ref_actor(obj).clone();
        without_gil(move || actor.kill());
        Obj::from_borrowed(ffi::Py_None()).map_or(ptr::null_mut(), Obj::into_ptr)
    }
}

// ---- raising the module's exceptions --------------------------------------------------

impl Helpers {
    /// Raises the bootstrap's exception class `class` with `message`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(super) unsafe fn raise(&self, class: &CStr, message: &str) -> Raised {
        // SAFETY: attached (contract).
        unsafe {
            match self.attr(class) {
                Ok(class) => self.raise_builtin(class.as_ptr(), message),
                Err(_) => self.raise_builtin(ffi::PyExc_RuntimeError, message),
            }
        }
    }

    /// Raises `class(message)` for any exception class.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached; `class` is an exception class.
    pub(super) unsafe fn raise_builtin(&self, class: *mut ffi::PyObject, message: &str) -> Raised {
        let text = std::ffi::CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: attached (contract); PyErr_SetString copies the message.
        unsafe { ffi::PyErr_SetString(class, text.as_ptr()) };
        Raised
    }

    /// Raises `RemoteError(type_name, message, traceback)`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    unsafe fn raise_remote(&self, type_name: &str, message: &str, traceback: &str) -> Raised {
        // SAFETY: attached (contract); the new exception is handed to CPython.
        unsafe {
            let built = (|| {
                let class = self.attr(c"RemoteError").ok()?;
                let parts = [new_str(type_name).ok()?, new_str(message).ok()?, new_str(traceback).ok()?];
                let ptrs: Vec<_> = parts.iter().map(Obj::as_ptr).collect();
                super::helpers::call(&class, &ptrs).ok()
            })();
            match built {
                Some(exc) => {
                    ffi::PyErr_SetRaisedException(exc.into_ptr());
                    Raised
                }
                None => self.raise_builtin(ffi::PyExc_RuntimeError, &format!("{type_name}: {message}")),
            }
        }
    }

    /// Raises `ActorFailed(kind, message)`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    unsafe fn raise_failed(&self, kind: &str, message: &str) -> Raised {
        // SAFETY: attached (contract); the new exception is handed to CPython.
        unsafe {
            let built = (|| {
                let class = self.attr(c"ActorFailed").ok()?;
                let parts = [new_str(kind).ok()?, new_str(message).ok()?];
                let ptrs: Vec<_> = parts.iter().map(Obj::as_ptr).collect();
                super::helpers::call(&class, &ptrs).ok()
            })();
            match built {
                Some(exc) => {
                    ffi::PyErr_SetRaisedException(exc.into_ptr());
                    Raised
                }
                None => self.raise_builtin(ffi::PyExc_RuntimeError, message),
            }
        }
    }

    /// Raises the Python exception behind a conversion error, or a `TypeError`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    unsafe fn raise_convert(&self, error: &crate::ConvertError) -> Raised {
        // SAFETY: attached (contract).
        unsafe { self.raise_builtin(ffi::PyExc_TypeError, &error.to_string()) }
    }
}
