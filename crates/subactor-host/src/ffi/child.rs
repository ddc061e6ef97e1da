//! A process actor's child: the actor's class in the main interpreter of a process
//! forked from the template (see `crate::process`).
//!
//! The child's main thread is the actor's thread: it waits for the parent's messages
//! on the data socket (with the GIL released) and calls `receive` for each, answering
//! with the outcome. `import subactor` gives the same in-actor module as in an
//! interpreter actor; its references reach the parent's actors through the
//! [`Client`]. When the parent closes the link, the child runs its `atexit` callbacks,
//! flushes its standard streams and exits (without finalizing Python).

use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use pyo3_ffi as ffi;
use subactor_arena::Arena;
use subactor_wire::stream;
use subactor_wire::{LinkError, LinkHandles};
use tracing::{debug, warn};

use super::helpers::Helpers;
use super::interp::{Incarnation, Interpreter};
use super::module::{ActorLink, FinishSink};
use crate::process::client::Client;
use crate::process::proto::{self, Ended, FromChild, ToChild};
use crate::process::sys;
use crate::{ReceiveError, StartError};
use subactor_core::{Finished, InterruptCause, Value};

/// Runs the child on the calling thread (the forked template's only thread, holding
/// the main interpreter's GIL); never returns. `spare`: it waits for an actor not
/// chosen yet (lent to the runtime in advance).
pub(crate) fn run(data: OwnedFd, control: OwnedFd, helpers: Rc<Helpers>, spare: bool) -> ! {
    // SAFETY: the main interpreter is attached on this, the process's only thread.
    let code = unsafe { serve(data, control, Rc::clone(&helpers), spare) };
    // SAFETY: attached; the actor's objects are gone. Runs atexit callbacks and flushes
    // the standard streams, without finalizing: the template's launcher may be a
    // `python -c` whose main frame still runs here, and finalizing under it trips
    // CPython's checks (`PyThreadState_Clear` of the thread running `__main__`).
    if let Err(exception) = unsafe { helpers.call_attr(c"exit_child", &[]) } {
        warn!(%exception, "the child's exit callbacks failed");
    }
    sys::exit_now(code)
}

/// The snapshot due after a message handled without error; a failed snapshot is the
/// message's failure.
fn snapshot_after(
    interp: &mut Interpreter,
    result: Result<Value, ReceiveError>,
) -> (Result<Value, ReceiveError>, Option<Value>) {
    match result {
        Ok(value) => match interp.take_snapshot() {
            Ok(snapshot) => (Ok(value), snapshot),
            Err(exception) => (Err(ReceiveError::Snapshot(exception)), None),
        },
        Err(error) => (Err(error), None),
    }
}

/// Releases the GIL around `f`.
///
/// # Safety
///
/// An interpreter is attached on this thread.
unsafe fn without_gil<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: attached (contract); restored below on the same thread.
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    let result = f();
    // SAFETY: what PyEval_SaveThread released on this thread.
    unsafe { ffi::PyEval_RestoreThread(tstate) };
    result
}

/// Starts the actor and serves its messages; the process's exit status.
///
/// # Safety
///
/// The main interpreter is attached on this thread, the process's only thread.
unsafe fn serve(data: OwnedFd, control: OwnedFd, helpers: Rc<Helpers>, spare: bool) -> i32 {
    let (Ok((data_w, data_r)), Ok((ctrl_w, ctrl_r))) =
        (stream::offer_shared(data, Duration::ZERO), stream::split(control, Duration::ZERO))
    else {
        return 3;
    };
    let arena = Arena::new();
    let client = Arc::new(Client::new(data_w, data_r, ctrl_w));
    let link = Arc::new(LinkHandles::borrower(Arc::clone(&client) as _, arena.clone()));
    client.set_link(Arc::clone(&link));
    let handles = client.handles();
    // What does not depend on the actor is done before the spare waits for it. The
    // in-actor module is the template's, built before the fork (`prepare_module` finds
    // it). A forked child's first import writes to ~170 pages it shares with the
    // template, each a copy-on-write fault: a spare takes them while it waits, with an
    // import of its own, rather than while its actor starts (the import of the bench's
    // actor module in such a child: ~0.75-1.4 ms cold, ~0.35 ms warmed). A child
    // handed over at once has its actor waiting: the warm-up would only delay it.
    // SAFETY: attached (contract); this thread is the only one that runs Python here.
    let prepared = unsafe { Interpreter::adopt_main(helpers) }.and_then(|mut interp| {
        interp.prepare_module()?;
        if spare {
            interp.warm_import_system();
        }
        Ok(interp)
    });
    // So is the control thread's start (it sends its id, for pinning to a core).
    let control = {
        let client = Arc::clone(&client);
        let (tid_tx, tid_rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("subactor-control".into())
            .spawn(move || {
                let _ = tid_tx.send(rustix::thread::gettid());
                client.read_control(ctrl_r);
            })
            .map(|_| tid_rx)
    };
    // A spare waits here until it is handed over (or its template ends).
    // SAFETY: attached (contract).
    let mut frame = match unsafe { without_gil(|| client.recv_data(None, false)) } {
        Ok(frame) => frame,
        Err(LinkError::Closed) => return 0,
        Err(error) => {
            warn!(%error, "a child's link failed before its start");
            return 3;
        }
    };
    let mut spec = match proto::decode::<ToChild<'static>>(&mut frame, &handles) {
        Ok(ToChild::Start(spec)) => spec,
        Ok(other) => {
            warn!(?other, "a child's first frame is not its start");
            return 3;
        }
        Err(error) => {
            warn!(%error, "a child's start frame is malformed");
            return 3;
        }
    };
    client.set_spin(Duration::from_micros(spec.spin_us));
    let refuse = |error: StartError| {
        let _ = client.send_data(&FromChild::Started(Err(error)));
        1
    };
    if let Some(limit) = spec.memory_limit {
        if let Err(error) = sys::limit_memory(limit) {
            return refuse(StartError::Process(format!("cannot limit the child's memory to {limit} bytes: {error}")));
        }
    }
    let control = match control.map(|tid| tid.recv()) {
        Ok(Ok(tid)) => tid,
        Ok(Err(_)) => return refuse(StartError::Process("the child's control thread ended at its start".into())),
        Err(error) => return refuse(StartError::Process(format!("cannot start the child's control thread: {error}"))),
    };
    if let Some(core) = spec.core {
        if let Err(error) = sys::pin_to_core(core, control) {
            return refuse(StartError::Process(format!("cannot pin the child to core {core}: {error}")));
        }
    }
    let mut interp = match prepared {
        Ok(interp) => interp,
        Err(error) => return refuse(error),
    };
    if let Some(interrupter) = interp.interrupter() {
        client.set_interrupter(interrupter);
    }
    // An asyncio actor handling several messages at once reports each end from its
    // event loop's thread, on the control socket.
    let finished = (spec.max_concurrency > 1).then(|| {
        let client = Arc::clone(&client);
        Arc::new(FinishSink::forwarding(Box::new(move |token, outcome, snapshot| {
            let ended = match outcome {
                Finished::Replied(value) => Ended::Replied(value),
                Finished::Failed(error) => Ended::Failed(error),
                Finished::Interrupted(cause) => Ended::Interrupted { kill: cause == InterruptCause::Kill },
            };
            let frame = FromChild::Finished { token, ended, snapshot };
            if let Err(error) = client.send_control(&frame) {
                match error {
                    // A reply that cannot travel is that message's failure.
                    LinkError::Encode(why) => {
                        let error = ReceiveError::Reply(crate::ConvertError::Build(crate::PythonException {
                            type_name: "ValueError".into(),
                            message: why,
                            traceback: String::new(),
                        }));
                        let frame = FromChild::Finished { token, ended: Ended::Failed(error), snapshot: None };
                        if let Err(error) = client.send_control(&frame) {
                            debug!(%error, "cannot report a message's end: the parent has gone");
                        }
                    }
                    other => debug!(error = %other, "cannot report a message's end: the parent has gone"),
                }
            }
        })))
    });
    let link = ActorLink { env: Arc::clone(&client) as _, myself: link.import(spec.myself), arena, finished };
    if let Err(error) = interp.link_module(link) {
        return refuse(error);
    }
    client.serving(Some(0));
    let incarnation = Incarnation {
        max_concurrency: spec.max_concurrency.max(1),
        time_limit: spec.time_limit,
        snapshot_every: spec.snapshot_every,
        state: spec.state.take(),
        upgrading: spec.upgrading,
        fresh_code: spec.upgrading,
    };
    let started = interp.instantiate_with(&spec.module, &spec.class, &spec.args, &incarnation);
    drop(incarnation);
    client.serving(None);
    let failed = started.is_err();
    if let Err(error) = client.send_data(&FromChild::Started(started)) {
        warn!(%error, "cannot report the actor's start");
        return 3;
    }
    if failed {
        return 1;
    }
    // After an ask the child spins for its next message: an asker that runs its asks
    // itself (`subactor_core::DirectAsk`) spins for the answer and sends the next one
    // at once, and a wake-up from sleep costs more than the round trip on a machine
    // whose cores idle. After tells (a batch, or an actor thread's mailbox between
    // them) it sleeps: the parent's threads need the cores more.
    let mut spin_next = false;
    loop {
        interp.detach();
        let frame = client.recv_data(None, spin_next);
        interp.attach();
        spin_next = false;
        let mut frame = match frame {
            Ok(frame) => frame,
            Err(LinkError::Closed) => break,
            Err(error) => {
                warn!(%error, "the link to the parent failed");
                return 3;
            }
        };
        match proto::decode::<ToChild<'static>>(&mut frame, &handles) {
            Ok(ToChild::Msg { seq, msg, reply }) => {
                spin_next = reply;
                client.defer_releases();
                client.serving(Some(seq));
                let result = interp.receive(&msg, reply);
                let (result, snapshot) = snapshot_after(&mut interp, result);
                client.serving(None);
                drop(msg);
                let released = client.deferred();
                if let Err(error) = client.send_data(&FromChild::Done { seq, result, snapshot, released }) {
                    debug!(%error, "cannot report a handler's outcome: the parent has gone");
                    break;
                }
            }
            Ok(ToChild::Tells { seq, msgs, stop_at_failure }) => {
                client.serving(Some(seq));
                let mut results = Vec::with_capacity(msgs.len());
                let mut nanos = Vec::with_capacity(msgs.len());
                let mut snapshot = None;
                for msg in msgs.iter() {
                    // Two clock reads a tell (tens of nanoseconds) against a Python call
                    // and a share of a round trip: the parent's histogram gets them all.
                    let started = std::time::Instant::now();
                    let received = interp.receive(msg, false);
                    nanos.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    let (result, due) = snapshot_after(&mut interp, received);
                    if due.is_some() {
                        snapshot = due;
                    }
                    let result = result.map(drop);
                    let failed = result.is_err();
                    results.push(result);
                    if failed && (stop_at_failure || client.kill_requested()) {
                        break;
                    }
                }
                client.serving(None);
                drop(msgs);
                if let Err(error) = client.send_data(&FromChild::Told { seq, results, nanos, snapshot }) {
                    debug!(%error, "cannot report the tells' outcomes: the parent has gone");
                    break;
                }
            }
            Ok(ToChild::Snapshot { seq }) => {
                client.serving(Some(seq));
                let result = interp.snapshot_now().map_err(ReceiveError::Snapshot);
                client.serving(None);
                let result = result.map(|state| state.map_or(Value::None, |state| Value::Tuple(vec![state])));
                if let Err(error) =
                    client.send_data(&FromChild::Done { seq, result, snapshot: None, released: Vec::new() })
                {
                    debug!(%error, "cannot send a snapshot: the parent has gone");
                    break;
                }
            }
            Ok(ToChild::Begin { token, msg, reply }) => {
                if let Err(error) = interp.begin(token, &msg, reply) {
                    drop(msg);
                    let frame = FromChild::Finished { token, ended: Ended::Failed(error), snapshot: None };
                    if let Err(error) = client.send_control(&frame) {
                        debug!(%error, "cannot report a message's end: the parent has gone");
                        break;
                    }
                }
            }
            Ok(ToChild::CancelAll { kill }) => interp.cancel_all(kill),
            Ok(ToChild::Answer { call, .. }) => debug!(call, "a late answer"),
            Ok(other) => {
                warn!(?other, "unexpected frame from the parent");
                return 3;
            }
            Err(error) => {
                warn!(%error, "malformed frame from the parent");
                return 3;
            }
        }
    }
    drop(interp);
    0
}
