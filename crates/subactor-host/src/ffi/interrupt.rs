//! Breaking into a Python actor's running handler from another thread.
//!
//! `PyThreadState_SetAsyncExc` only reaches threads of the *current* interpreter, so
//! the [`Interrupter`] (called on the core's watchdog thread, which has no thread state
//! of its own) attaches a fresh thread state of the actor's interpreter. That takes the
//! interpreter's GIL: a handler running Python code hands it over at its next switch
//! interval (5 ms by default); one blocked in a call that released the GIL (`time.sleep`,
//! a socket read, `subactor`'s own waits) is paused already. Holding the GIL, it asks the
//! core whether the same handler still runs (`confirm`), and if so plants
//! `subactor.Killed` or `subactor.TimeLimitExceeded` in the actor's thread, then deletes
//! its thread state, which releases the GIL.
//!
//! What cannot be interrupted: a handler blocked in C code that holds the GIL, or that
//! swallows the exception (`except BaseException`). A handler blocked in C code that
//! released the GIL sees the exception only when that call returns.
//!
//! Lifetime: the [`Interrupter`] names the interpreter only while it is alive. The
//! actor's thread [`disarm`](Interrupter::disarm)s it, with the GIL released, before
//! ending the interpreter; an interrupt in flight finishes first.

use std::ffi::c_ulong;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use pyo3_ffi as ffi;
use subactor_core::{Interrupt, InterruptCause};

/// The interpreter and thread to interrupt, and the exception classes to raise there.
struct Target {
    interp: NonNull<ffi::PyInterpreterState>,
    thread: c_ulong,
    /// Borrowed from the interpreter's bootstrap module, which outlives the target.
    killed: NonNull<ffi::PyObject>,
    time_limit: NonNull<ffi::PyObject>,
}

// SAFETY: the pointers are only dereferenced by CPython, with the target interpreter's
// GIL held (see `interrupt`), while the interpreter is alive (`disarm` clears the
// target, under the same mutex, before the interpreter ends).
unsafe impl Send for Target {}

/// How the watchdog breaks into one Python actor (see the module docs).
pub(crate) struct Interrupter {
    target: Mutex<Option<Target>>,
    /// An exception was planted and may still be pending in the actor's thread.
    planted: AtomicBool,
}

impl Interrupter {
    /// An interrupter for the interpreter attached on the calling thread, raising
    /// `killed` or `time_limit` (exception classes of that interpreter).
    ///
    /// # Safety
    ///
    /// An interpreter is attached on this thread; the classes belong to it and live as
    /// long as it does; [`disarm`](Self::disarm) is called before it ends.
    pub(crate) unsafe fn for_current_thread(
        killed: NonNull<ffi::PyObject>,
        time_limit: NonNull<ffi::PyObject>,
    ) -> Option<Interrupter> {
        // SAFETY: attached (contract).
        let (interp, thread) = unsafe { (ffi::PyInterpreterState_Get(), ffi::PyThread_get_thread_ident()) };
        let target = Target { interp: NonNull::new(interp)?, thread, killed, time_limit };
        Some(Interrupter { target: Mutex::new(Some(target)), planted: AtomicBool::new(false) })
    }

    fn target(&self) -> MutexGuard<'_, Option<Target>> {
        self.target.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets the interpreter; waits for an interrupt in flight.
    ///
    /// Must be called on the actor's thread with its interpreter *detached*: an
    /// interrupt in flight may be waiting for that interpreter's GIL.
    pub(crate) fn disarm(&self) {
        self.target().take();
    }

    /// Clears an exception planted too late to be raised in the handler it was meant
    /// for, so that it cannot go off in the next one (or in the interpreter's teardown).
    ///
    /// # Safety
    ///
    /// The actor's interpreter is attached on this thread (the actor's own).
    pub(crate) unsafe fn clear_pending(&self) {
        if self.planted.swap(false, Ordering::Relaxed) {
            // SAFETY: attached (contract); NULL clears this thread's pending exception.
            unsafe { ffi::PyThreadState_SetAsyncExc(ffi::PyThread_get_thread_ident() as _, std::ptr::null_mut()) };
        }
    }
}

impl Interrupt for Interrupter {
    fn interrupt(&self, cause: InterruptCause, confirm: &dyn Fn() -> bool) {
        let target = self.target();
        let Some(target) = target.as_ref() else { return };
        let class = match cause {
            InterruptCause::Kill => target.killed,
            InterruptCause::TimeLimit => target.time_limit,
        };
        // SAFETY: this thread (the watchdog's) has no thread state; the interpreter is
        // alive while the target is set, and we hold the mutex that `disarm` needs. The
        // new thread state is attached (taking the interpreter's GIL), used, then
        // cleared and deleted, which releases the GIL.
        unsafe {
            let tstate = ffi::PyThreadState_New(target.interp.as_ptr());
            if tstate.is_null() {
                tracing::warn!("cannot create a thread state to interrupt a Python actor");
                return;
            }
            ffi::PyEval_RestoreThread(tstate);
            if confirm() {
                let found = ffi::PyThreadState_SetAsyncExc(target.thread as _, class.as_ptr());
                self.planted.store(found > 0, Ordering::Relaxed);
                tracing::debug!(?cause, found, "exception planted in a Python actor's handler");
            }
            ffi::PyThreadState_Clear(tstate);
            ffi::PyThreadState_DeleteCurrent();
        }
    }
}
