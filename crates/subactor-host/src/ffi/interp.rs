//! [`Interpreter`]: one own-GIL subinterpreter, owned by the thread that created it.
//!
//! Lifecycle, all on the owning thread:
//! 1. [`Interpreter::create`] attaches a fresh thread state of the main interpreter
//!    (taking the main GIL for a moment), calls `Py_NewInterpreterFromConfig` with its
//!    own GIL and its own object allocator, and ends attached to the new interpreter.
//! 2. Between messages the actor [`detach`](Interpreter::detach)es (releasing the
//!    interpreter's GIL, which lets the interpreter's own Python threads run) and
//!    [`attach`](Interpreter::attach)es again.
//! 3. Dropping it releases every object it holds, then `Py_EndInterpreter` (which waits
//!    for the interpreter's non-daemon threads and runs its `atexit` callbacks), then
//!    deletes the main-interpreter thread state from step 1.

use std::ptr::{self, NonNull};

use pyo3_ffi as ffi;
use subactor_core::Value;

use super::convert::{from_python, to_python};
use super::helpers::{Helpers, call};
use super::interrupt::Interrupter;
use super::module::{self, ActorLink};
use super::object::{Obj, c_str_lossy};
use crate::{PythonException, ReceiveError, StartError};
use std::rc::Rc;
use std::sync::Arc;

/// CPython 3.12 crashed when two threads created interpreters at once: there,
/// creation is serialised.
#[cfg(not(Py_3_13))]
static CREATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An own-GIL subinterpreter. Neither `Send` nor `Sync`: it lives and dies on the thread
/// that created it.
pub(crate) struct Interpreter {
    /// This interpreter's thread state for the owning thread.
    tstate: NonNull<ffi::PyThreadState>,
    /// The main interpreter's thread state for the owning thread, needed to create the
    /// interpreter and deleted after it ends; `None` for a process's main interpreter
    /// adopted by a process actor's child ([`Interpreter::adopt_main`]), which is never
    /// ended here.
    main_tstate: Option<NonNull<ffi::PyThreadState>>,
    attached: bool,
    id: i64,
    helpers: Option<Rc<Helpers>>,
    actor: Option<ActorObjects>,
    /// How the watchdog breaks into this interpreter's handlers.
    interrupter: Option<Arc<Interrupter>>,
}

/// How a new instance of an actor starts (see [`Interpreter::instantiate_with`]).
#[derive(Clone, Debug)]
pub(crate) struct Incarnation {
    /// How many messages an asyncio actor handles at once.
    pub(crate) max_concurrency: usize,
    /// The recipe's time limit: an asyncio actor with `max_concurrency` above 1
    /// enforces it per message.
    pub(crate) time_limit: Option<std::time::Duration>,
    /// `None`: no snapshots; `Some(0)`: on `subactor.checkpoint()` only; `Some(n)`:
    /// after every n messages (and on checkpoints).
    pub(crate) snapshot_every: Option<u32>,
    /// The state to restore before the first message.
    pub(crate) state: Option<Value>,
    /// An upgrade: the state goes to `upgrade(old_state)` when the class defines it.
    pub(crate) upgrading: bool,
    /// Load the module's code anew from its source, bypassing `sys.modules` and the
    /// bytecode cache (an upgrade).
    pub(crate) fresh_code: bool,
}

impl Default for Incarnation {
    fn default() -> Incarnation {
        Incarnation {
            max_concurrency: 1,
            time_limit: None,
            snapshot_every: None,
            state: None,
            upgrading: false,
            fresh_code: false,
        }
    }
}

/// The actor instance and its bound `receive` method.
struct ActorObjects {
    _instance: Obj,
    receive: Obj,
}

impl Interpreter {
    /// Creates a subinterpreter on the calling thread and leaves it attached, with
    /// `paths` first on its `sys.path`.
    ///
    /// The caller holds a [`Lease`](super::process::Lease), so Python is initialised.
    /// `main` is the driving Python program's main module, if any (see
    /// [`MainModule`](crate::MainModule)).
    pub(crate) fn create(paths: &[String], main: Option<&crate::MainModule>) -> Result<Interpreter, StartError> {
        #[cfg(not(Py_3_13))]
        let _serial = CREATE_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let config = ffi::PyInterpreterConfig {
            use_main_obmalloc: 0,
            allow_fork: 0,
            allow_exec: 0,
            allow_threads: 1,
            allow_daemon_threads: 0,
            check_multi_interp_extensions: 1,
            gil: ffi::PyInterpreterConfig_OWN_GIL,
        };
        // SAFETY: Python is initialised (the caller's lease) and no thread state is
        // attached on this thread (a fresh actor thread). We attach a new main-interpreter
        // thread state, which Py_NewInterpreterFromConfig detaches when it succeeds and
        // leaves attached when it fails.
        let (main_tstate, created) = unsafe {
            let main_tstate = ffi::PyThreadState_New(ffi::PyInterpreterState_Main());
            let Some(main_tstate) = NonNull::new(main_tstate) else {
                return Err(StartError::Interpreter("cannot create a thread state for the main interpreter".into()));
            };
            ffi::PyEval_RestoreThread(main_tstate.as_ptr());
            let mut tstate = ptr::null_mut();
            let status = ffi::Py_NewInterpreterFromConfig(&mut tstate, &config);
            let created = if ffi::PyStatus_Exception(status) == 0 {
                NonNull::new(tstate).ok_or_else(|| "no thread state returned".to_owned())
            } else {
                Err(c_str_lossy(status.err_msg).unwrap_or_else(|| "unknown error".into()))
            };
            (main_tstate, created)
        };
        let tstate = match created {
            Ok(tstate) => tstate,
            Err(message) => {
                // SAFETY: the failed call left the main thread state attached (or nothing
                // attached); make sure it is attached, then delete it.
                unsafe {
                    if ffi::compat::PyThreadState_GetUnchecked() != main_tstate.as_ptr() {
                        ffi::PyEval_RestoreThread(main_tstate.as_ptr());
                    }
                    ffi::PyThreadState_Clear(main_tstate.as_ptr());
                    ffi::PyThreadState_DeleteCurrent();
                }
                return Err(StartError::Interpreter(message));
            }
        };
        // SAFETY: the new interpreter is attached; its state pointer is valid.
        let id = unsafe { ffi::PyInterpreterState_GetID(ffi::PyThreadState_GetInterpreter(tstate.as_ptr())) };
        let mut interp = Interpreter {
            tstate,
            main_tstate: Some(main_tstate),
            attached: true,
            id,
            helpers: None,
            actor: None,
            interrupter: None,
        };
        // No cyclic collection while the host sets the interpreter up: what exists by
        // then lives as long as the interpreter, and a young collection during the
        // bootstrap's unmarshalling alone costs ~0.25 ms of a spawn. The bootstrap's
        // `setup` freezes those objects and turns collection back on (its
        // `_settle_startup`).
        // SAFETY: the new interpreter is attached on this thread.
        unsafe { ffi::PyGC_Disable() };
        // SAFETY: a fresh subinterpreter is attached on this thread. On error, dropping
        // `interp` ends the interpreter.
        let helpers = Rc::new(unsafe { Helpers::load(paths, main, true) }.map_err(StartError::Setup)?);
        interp.arm(helpers);
        Ok(interp)
    }

    /// The process's main interpreter, attached on this thread (a process actor's
    /// child, whose template loaded `helpers` in it), as an interpreter for one actor.
    /// Dropping it releases the actor's objects but does not end the interpreter.
    ///
    /// # Safety
    ///
    /// The main interpreter is attached on this thread, which is the only one that
    /// runs Python there from now on (other threads may attach only through the
    /// interrupter); `helpers` were loaded in it.
    pub(crate) unsafe fn adopt_main(helpers: Rc<Helpers>) -> Result<Interpreter, StartError> {
        // SAFETY: attached (contract).
        let tstate = unsafe { ffi::PyThreadState_Get() };
        let tstate = NonNull::new(tstate).ok_or_else(|| StartError::Interpreter("no thread state attached".into()))?;
        let mut interp = Interpreter {
            tstate,
            main_tstate: None,
            attached: true,
            id: 0,
            helpers: None,
            actor: None,
            interrupter: None,
        };
        interp.arm(helpers);
        Ok(interp)
    }

    /// Keeps `helpers` and makes the interrupter of the attached interpreter.
    fn arm(&mut self, helpers: Rc<Helpers>) {
        let class = |obj: &super::object::Obj| NonNull::new(obj.as_ptr());
        if let (Some(killed), Some(time_limit)) = (class(&helpers.killed), class(&helpers.time_limit_exceeded)) {
            // SAFETY: attached on this thread; the classes live in the bootstrap module,
            // which lives as long as the interpreter; Drop disarms before ending it.
            self.interrupter = unsafe { Interrupter::for_current_thread(killed, time_limit) }.map(Arc::new);
        }
        self.helpers = Some(helpers);
    }

    /// CPython's id of this interpreter.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// How other threads interrupt this interpreter's running handler.
    pub(crate) fn interrupter(&self) -> Option<Arc<Interrupter>> {
        self.interrupter.clone()
    }

    fn helpers(&self) -> &Helpers {
        self.helpers.as_ref().unwrap_or_else(|| unreachable!("helpers live as long as the interpreter"))
    }

    /// Installs the in-actor module `subactor`, linked to the actor's system.
    pub(crate) fn install_module(&mut self, link: ActorLink) -> Result<(), StartError> {
        self.prepare_module()?;
        self.link_module(link)
    }

    /// Installs the in-actor module `subactor`, not linked to an actor yet (its
    /// functions raise `ActorStopped` until [`Interpreter::link_module`]), unless it is
    /// installed already (a process actor's child inherits its template's).
    pub(crate) fn prepare_module(&mut self) -> Result<(), StartError> {
        assert!(self.attached, "prepare_module needs the interpreter attached");
        let helpers = self.helpers.as_ref().unwrap_or_else(|| unreachable!("helpers live as long as the interpreter"));
        // SAFETY: the interpreter is attached on this thread.
        if unsafe { module::installed(helpers) } {
            return Ok(());
        }
        // SAFETY: the interpreter is attached on this thread.
        unsafe { module::install(helpers) }.map_err(StartError::Setup)
    }

    /// Warms the import system for the actor's import (`warm_import_system` in
    /// bootstrap_late.py): what a process actor's spare does while it waits. A failure
    /// only leaves the import cold; it is logged.
    pub(crate) fn warm_import_system(&mut self) {
        assert!(self.attached, "warm_import_system needs the interpreter attached");
        // SAFETY: the interpreter is attached on this thread.
        if let Err(exception) = unsafe { self.helpers().call_attr(c"warm_import_system", &[]) } {
            tracing::debug!(%exception, "cannot warm the import system");
        }
    }

    /// Links the module [`Interpreter::prepare_module`] installed to its actor.
    pub(crate) fn link_module(&mut self, link: ActorLink) -> Result<(), StartError> {
        assert!(self.attached, "link_module needs the interpreter attached");
        // SAFETY: the interpreter is attached on this thread.
        unsafe { module::link(self.helpers(), link) }.map_err(StartError::Setup)
    }

    /// Imports `target` as an actor of it would (a warm pool's interpreter imports its
    /// actors' module in advance: the actor's own import then finds it loaded).
    pub(crate) fn preimport(&mut self, target: &str) -> Result<(), PythonException> {
        assert!(self.attached, "preimport needs the interpreter attached");
        let helpers = self.helpers();
        // SAFETY: the interpreter is attached; the module and exception are owned `Obj`s.
        unsafe { helpers.load_module(target).map(drop).map_err(|exc| helpers.describe(exc).0) }
    }

    /// Imports `target`, finds `class`, calls it with `args`, and keeps the instance
    /// and what handles its messages; then makes the instance ready as `incarnation`
    /// says: restores a kept state (or hands it to `upgrade`), starts an
    /// asyncio actor's event loop, runs `started`.
    pub(crate) fn instantiate_with(
        &mut self,
        target: &str,
        class: &str,
        args: &[Value],
        incarnation: &Incarnation,
    ) -> Result<(), StartError> {
        assert!(self.attached, "instantiate needs the interpreter attached");
        let helpers = self.helpers();
        // SAFETY: the interpreter is attached; every object is owned by an `Obj` of it.
        let objects = unsafe {
            let loaded =
                if incarnation.fresh_code { helpers.load_module_fresh(target) } else { helpers.load_module(target) };
            let module = loaded.map_err(|exc| {
                let (exception, refusing) = helpers.describe(exc);
                match refusing {
                    Some(module) => StartError::IncompatibleExtension { module, exception },
                    None => StartError::Import { module: target.to_owned(), exception },
                }
            })?;
            let cls = helpers.get_class(&module, class).map_err(|exc| StartError::MissingClass {
                module: target.to_owned(),
                class: class.to_owned(),
                exception: helpers.describe(exc).0,
            })?;
            let mut arg_objects = Vec::with_capacity(args.len());
            for arg in args {
                arg_objects.push(to_python(arg, helpers).map_err(StartError::Arguments)?);
            }
            let arg_ptrs: Vec<_> = arg_objects.iter().map(Obj::as_ptr).collect();
            let instance = call(&cls, &arg_ptrs).map_err(|exc| {
                let (exception, refusing) = helpers.describe(exc);
                match refusing {
                    Some(module) => StartError::IncompatibleExtension { module, exception },
                    None => StartError::Constructor { class: class.to_owned(), exception },
                }
            })?;
            let receive = helpers
                .prepare(&instance, incarnation)
                .map_err(|exc| StartError::Constructor { class: class.to_owned(), exception: helpers.describe(exc).0 })?
                .ok_or_else(|| StartError::NoReceive { class: class.to_owned() })?;
            ActorObjects { _instance: instance, receive }
        };
        self.actor = Some(objects);
        Ok(())
    }

    /// Drops the actor instance (the interpreter stays, with its modules).
    pub(crate) fn forget_instance(&mut self) {
        self.attach();
        self.end_actor();
    }

    /// Ends the actor's shell (its `stopped` hook, an asyncio actor's event loop), then
    /// drops the instance.
    fn end_actor(&mut self) {
        if self.actor.is_some() {
            if let Some(helpers) = &self.helpers {
                // SAFETY: attached (callers).
                if let Err(exception) = unsafe { helpers.call_attr(c"close_shell", &[]) } {
                    tracing::warn!(%exception, "the actor's stopped hook (or its event loop's end) failed");
                }
            }
        }
        self.actor = None;
    }

    /// Begins a message of an asyncio actor with `max_concurrency` above 1, as a task
    /// on its event loop; its end is reported through `subactor._finish`.
    pub(crate) fn begin(&mut self, token: u64, msg: &Value, reply: bool) -> Result<(), ReceiveError> {
        debug_assert!(self.attached, "begin needs the interpreter attached");
        let helpers = self.helpers();
        // SAFETY: attached; every object is owned by an `Obj` of this interpreter.
        unsafe {
            let arg = to_python(msg, helpers).map_err(ReceiveError::Message)?;
            let token = Obj::from_owned(ffi::PyLong_FromUnsignedLongLong(token))
                .ok_or_else(|| ReceiveError::Exception(helpers.current_exception()))?;
            let reply = Obj::from_borrowed(if reply { ffi::Py_True() } else { ffi::Py_False() })
                .unwrap_or_else(|| unreachable!("booleans always exist"));
            helpers
                .call_attr(c"begin", &[token.as_ptr(), arg.as_ptr(), reply.as_ptr()])
                .map(drop)
                .map_err(ReceiveError::Exception)
        }
    }

    /// Cancels every message an asyncio actor has in hand (`kill`: else a failure).
    pub(crate) fn cancel_all(&mut self, kill: bool) {
        let helpers = self.helpers();
        // SAFETY: attached (callers).
        unsafe {
            let kill = Obj::from_borrowed(if kill { ffi::Py_True() } else { ffi::Py_False() })
                .unwrap_or_else(|| unreachable!("booleans always exist"));
            if let Err(exception) = helpers.call_attr(c"cancel_all", &[kill.as_ptr()]) {
                tracing::warn!(%exception, "cancelling an asyncio actor's tasks failed");
            }
        }
    }

    /// A snapshot of the actor's state taken now (before an upgrade); `None` when its
    /// class has no `snapshot` method.
    pub(crate) fn snapshot_now(&mut self) -> Result<Option<Value>, PythonException> {
        self.snapshot_from(c"snapshot_now")
    }

    /// The snapshot of the actor's state that is due after the message it just handled
    /// (see `subactor.checkpoint()` and the recipe's snapshot policy), if one is.
    pub(crate) fn take_snapshot(&mut self) -> Result<Option<Value>, PythonException> {
        self.snapshot_from(c"take_snapshot")
    }

    /// Calls the bootstrap's `helper`, which answers `None` or `(state,)`.
    fn snapshot_from(&mut self, helper: &std::ffi::CStr) -> Result<Option<Value>, PythonException> {
        debug_assert!(self.attached, "snapshots need the interpreter attached");
        let helpers = self.helpers();
        // SAFETY: attached; the helper answers None or a 1-tuple.
        unsafe {
            let due = helpers.call_attr(helper, &[])?;
            if due.as_ptr() == ffi::Py_None() {
                return Ok(None);
            }
            if ffi::PyTuple_Check(due.as_ptr()) == 0 || ffi::PyTuple_GET_SIZE(due.as_ptr()) != 1 {
                return Err(PythonException {
                    type_name: "SystemError".into(),
                    message: "take_snapshot answered something else than (state,)".into(),
                    traceback: String::new(),
                });
            }
            let state = ffi::PyTuple_GET_ITEM(due.as_ptr(), 0);
            from_python(state, helpers).map(Some).map_err(|error| PythonException {
                type_name: "TypeError".into(),
                message: format!("the actor's snapshot() returned a state that cannot be kept: {error}"),
                traceback: String::new(),
            })
        }
    }

    /// Calls the actor's `receive(msg)`; converts the result back when `reply` is set
    /// (otherwise answers `None` without converting).
    pub(crate) fn receive(&mut self, msg: &Value, reply: bool) -> Result<Value, ReceiveError> {
        debug_assert!(self.attached, "receive needs the interpreter attached");
        let helpers = self.helpers();
        let Some(actor) = &self.actor else {
            return Err(ReceiveError::NotInstantiated);
        };
        // SAFETY: the interpreter is attached; objects are owned by `Obj`s of it.
        unsafe {
            let arg = to_python(msg, helpers).map_err(ReceiveError::Message)?;
            let result = call(&actor.receive, &[arg.as_ptr()]);
            if let Some(interrupter) = &self.interrupter {
                interrupter.clear_pending();
            }
            let result = result.map_err(|exc| ReceiveError::Exception(helpers.describe(exc).0))?;
            drop(arg);
            if reply { from_python(result.as_ptr(), helpers).map_err(ReceiveError::Reply) } else { Ok(Value::None) }
        }
    }

    /// Releases this interpreter's GIL (before the thread waits).
    pub(crate) fn detach(&mut self) {
        if self.attached {
            // SAFETY: our thread state is the attached one.
            unsafe { ffi::PyEval_SaveThread() };
            self.attached = false;
        }
    }

    /// Takes this interpreter's GIL again.
    pub(crate) fn attach(&mut self) {
        if !self.attached {
            // SAFETY: our thread state was detached by `detach` on this same thread.
            unsafe { ffi::PyEval_RestoreThread(self.tstate.as_ptr()) };
            self.attached = true;
        }
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        if let Some(interrupter) = self.interrupter.clone() {
            // With the GIL released: an interrupt in flight may be waiting for it.
            self.detach();
            interrupter.disarm();
        }
        self.attach();
        if let Some(interrupter) = self.interrupter.take() {
            // SAFETY: attached; nothing may go off during teardown.
            unsafe { interrupter.clear_pending() };
        }
        // Objects of this interpreter go while it is attached and alive.
        self.end_actor();
        if let Some(helpers) = self.helpers.take() {
            // SAFETY: attached just above.
            unsafe {
                module::uninstall(&helpers);
                helpers.teardown();
            }
        }
        let Some(main_tstate) = self.main_tstate else {
            // An adopted main interpreter stays, attached.
            return;
        };
        // SAFETY: our thread state is attached; after Py_EndInterpreter nothing is
        // attached, and the main-interpreter thread state we made in `create` (detached
        // since) is attached, cleared and deleted.
        unsafe {
            let watch = super::reclaim::watch(ffi::PyThreadState_GetInterpreter(self.tstate.as_ptr()), self.id);
            ffi::Py_EndInterpreter(self.tstate.as_ptr());
            if let Some(watch) = watch {
                super::reclaim::after_end(watch);
            }
            ffi::PyEval_RestoreThread(main_tstate.as_ptr());
            ffi::PyThreadState_Clear(main_tstate.as_ptr());
            ffi::PyThreadState_DeleteCurrent();
        }
    }
}
