//! The replies of asks made from asyncio code in an actor (`await ref.ask_async(...)`),
//! delivered to the event loop without a thread of the actor's interpreter.
//!
//! One [`Replies`] per event loop (made by the bootstrap's `_replies_for`, held in a
//! capsule; the mechanism is [`crate::replies`]'s, shared with the main interpreter's
//! `ask_async`): an ask is sent with a reply callback
//! ([`AnyRef::blocking_ask_then_timeout`]) that holds only Rust data; the loop's reader
//! takes the outcomes (`_replies_take`), converted to Python objects on the loop's own
//! thread, and completes the waiting futures. Nothing waits on a Python thread: a
//! pending ask to a local actor costs a map entry and a Rust closure; one to a remote
//! actor (across a process actor's link, or to another node) a Rust thread blocked in
//! the link's ask, which reports every error as a local ask would (`ActorStopped`
//! included). (Waiting on threads of the actor's interpreter, as `run_in_executor` did,
//! also ran `SimpleQueue.get(block=True)` there first, which on CPython 3.12.0-3.12.3
//! left a tuple of the actor's allocator in a process-wide argument parser, freed by
//! the main interpreter at exit: CPython gh-119213, a crash at `Py_FinalizeEx`.)
//!
//! An abandoned ask (its task cancelled, its timeout passed) leaves its outcome to be
//! dropped as Rust data when it comes; the eventfd closes when the capsule and every
//! pending callback are gone.

use std::ffi::{CStr, c_void};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use pyo3_ffi as ffi;
use subactor_core::{AskError, BoxError, Outcome, SendError, Value};

/// What an ask came to: the reply, or the error the ask raises.
type Reply = Result<Value, AskError<Value, BoxError>>;

use super::module::{DEFAULT_ASK_TIMEOUT, PyResult, Raised, guard, raise_ask, seconds, send_error, state_of_module};
use super::object::Obj;

/// The capsule's name (checked by `PyCapsule_GetPointer`).
const CAPSULE: &CStr = c"subactor._replies";

/// How much longer than the ask's own timeout a remote actor's ask may wait: the
/// loop's timer (`AskTimeout`) ends the ask first, and the remote side's wait (a thread
/// of the link's) ends soon after.
const REMOTE_GRACE: Duration = Duration::from_secs(1);

/// The replies of one event loop (see [`crate::replies`]).
type Replies = crate::replies::Replies<Reply>;

/// `PyCapsule` destructor: drops the capsule's `Arc<Replies>`.
unsafe extern "C" fn capsule_free(capsule: *mut ffi::PyObject) {
    // SAFETY: called by CPython once, with our capsule, whose pointer is the
    // `Box<Arc<Replies>>` made in `replies_new`.
    unsafe {
        let ptr = ffi::PyCapsule_GetPointer(capsule, CAPSULE.as_ptr());
        if ptr.is_null() {
            ffi::PyErr_Clear();
        } else {
            drop(Box::from_raw(ptr.cast::<Arc<Replies>>()));
        }
    }
}

/// The `Replies` in a capsule made by `replies_new`; raises `ValueError` otherwise.
///
/// # Safety
///
/// Attached; `obj` valid.
unsafe fn replies_of<'a>(obj: *mut ffi::PyObject) -> PyResult<&'a Arc<Replies>> {
    // SAFETY: attached (contract); the name check guarantees our pointer type, alive
    // as long as the capsule, which the caller's argument keeps.
    unsafe {
        let ptr = ffi::PyCapsule_GetPointer(obj, CAPSULE.as_ptr());
        if ptr.is_null() { Err(Raised) } else { Ok(&*ptr.cast::<Arc<Replies>>()) }
    }
}

/// `subactor._replies_new() -> (capsule, fd)`: the replies of one event loop and the
/// file descriptor to watch with `loop.add_reader`.
pub(super) unsafe extern "C" fn replies_new(module: *mut ffi::PyObject, _: *mut ffi::PyObject) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `module` is our module, attached; the capsule owns the Box.
        unsafe {
            let helpers = state_of_module(module).helpers();
            let replies = Replies::new().map_err(|error| {
                helpers.raise_builtin(ffi::PyExc_OSError, &format!("cannot make an eventfd for replies: {error}"))
            })?;
            let fd = replies.fd().as_raw_fd();
            let boxed = Box::into_raw(Box::new(Arc::new(replies)));
            let capsule = ffi::PyCapsule_New(boxed.cast::<c_void>(), CAPSULE.as_ptr(), Some(capsule_free));
            if capsule.is_null() {
                drop(Box::from_raw(boxed));
                return Err(Raised);
            }
            let capsule = Obj::from_owned(capsule).ok_or(Raised)?;
            let fd = Obj::from_owned(ffi::PyLong_FromLong(fd.into())).ok_or(Raised)?;
            let pair = ffi::PyTuple_Pack(2, capsule.as_ptr(), fd.as_ptr());
            if pair.is_null() { Err(Raised) } else { Ok(pair) }
        }
    })
}

/// `subactor._ask_begin(replies, ref, msg, timeout) -> int | None`: sends `msg` as an
/// ask whose outcome goes to `replies` under the returned ticket; `None` when the
/// mailbox is full (the caller retries: an event loop must not block). Raises
/// `ActorStopped`, or what converting `msg` raises.
pub(super) unsafe extern "C" fn ask_begin(
    module: *mut ffi::PyObject,
    args: *mut *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `module` is our module, attached; `args` holds `nargs` objects.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            if nargs != 4 {
                return Err(helpers.raise_builtin(ffi::PyExc_TypeError, "_ask_begin() takes 4 arguments"));
            }
            let replies = Arc::clone(replies_of(*args)?);
            let actor = state.actor_ref(*args.add(1), "ref")?;
            let timeout = match *args.add(3) {
                t if t == ffi::Py_None() => Duration::from_secs_f64(DEFAULT_ASK_TIMEOUT),
                t => seconds(t, helpers, "timeout")?,
            };
            let value = state.value(*args.add(2))?;
            let ticket = replies.next_ticket();
            if actor.as_remote().is_some() {
                // A remote actor (the parent's actors seen from a process actor's child,
                // another node's): its link answers a blocking ask with the whole error
                // (ActorStopped for an actor that is not running, as a local send
                // raises), so the ask runs on a Rust thread of its own; the loop's
                // timer ends it first (`AskTimeout`), the thread soon after.
                let spawned = std::thread::Builder::new().name("subactor-ask-async".into()).spawn(move || {
                    replies.complete(ticket, actor.blocking_ask(value, timeout + REMOTE_GRACE));
                });
                return match spawned {
                    Ok(_) => Obj::from_owned(ffi::PyLong_FromUnsignedLongLong(ticket)).map(Obj::into_ptr).ok_or(Raised),
                    Err(error) => {
                        tracing::warn!(%error, "cannot start a thread for an ask across a link");
                        Ok(ffi::Py_NewRef(ffi::Py_None()))
                    }
                };
            }
            // A local actor's mailbox is tried (never waited for); its run loop
            // completes the ask.
            let then = move |outcome| {
                replies.complete(
                    ticket,
                    match outcome {
                        Outcome::Replied(value) => Ok(value),
                        Outcome::Failed(error) => Err(AskError::Failed(error)),
                        Outcome::Fault(fault) => Err(AskError::Fault(fault)),
                        Outcome::NotHandled => Err(AskError::NoReply),
                    },
                );
            };
            match actor.blocking_ask_then_timeout(value, Duration::ZERO, then) {
                Ok(()) => Obj::from_owned(ffi::PyLong_FromUnsignedLongLong(ticket)).map(Obj::into_ptr).ok_or(Raised),
                Err(SendError::Full(_)) => Ok(ffi::Py_NewRef(ffi::Py_None())),
                Err(stopped) => Err(send_error(helpers, &stopped)),
            }
        }
    })
}

/// `subactor._replies_take(replies) -> list[(ticket, ok, value)]`: the outcomes that
/// came since the last call, each the reply (`ok`) or the exception the ask raises.
pub(super) unsafe extern "C" fn replies_take(
    module: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    guard(|| {
        // SAFETY: `module` is our module, attached; `arg` valid.
        unsafe {
            let state = state_of_module(module);
            let helpers = state.helpers();
            let done = replies_of(arg)?.take();
            let list = Obj::from_owned(ffi::PyList_New(0)).ok_or(Raised)?;
            for (ticket, outcome) in done {
                let result = match outcome {
                    Ok(value) => state.object(&value),
                    Err(error) => Err(raise_ask(helpers, error)),
                };
                let (ok, obj) = match result {
                    Ok(obj) => (true, Obj::from_owned(obj).ok_or(Raised)?),
                    Err(Raised) => (false, Obj::from_owned(ffi::PyErr_GetRaisedException()).ok_or(Raised)?),
                };
                let ticket = Obj::from_owned(ffi::PyLong_FromUnsignedLongLong(ticket)).ok_or(Raised)?;
                let ok = Obj::from_borrowed(if ok { ffi::Py_True() } else { ffi::Py_False() }).ok_or(Raised)?;
                let entry =
                    Obj::from_owned(ffi::PyTuple_Pack(3, ticket.as_ptr(), ok.as_ptr(), obj.as_ptr())).ok_or(Raised)?;
                if ffi::PyList_Append(list.as_ptr(), entry.as_ptr()) != 0 {
                    return Err(Raised);
                }
            }
            Ok(list.into_ptr())
        }
    })
}
