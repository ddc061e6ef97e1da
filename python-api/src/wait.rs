//! Waiting without the GIL, in slices, so that Ctrl-C (any signal with a Python
//! handler) interrupts every wait of the main thread: between slices the waiter takes
//! the GIL back and runs the signal handlers, whose exception (`KeyboardInterrupt`)
//! ends the wait.

use std::time::{Duration, Instant};

use flume::{Receiver, RecvTimeoutError, TryRecvError};
use pyo3::prelude::*;

/// How long a wait sleeps before it looks at signals again.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// How long a waiter spins for an answer before it sleeps: a reply due in a few
/// microseconds is picked up without two futex wake-ups.
const SPIN: Duration = Duration::from_micros(50);

/// How a wait ended.
pub(crate) enum Waited<T> {
    /// With an item.
    Got(T),
    /// At the deadline.
    TimedOut,
    /// Every sender is gone.
    Disconnected,
}

/// Polls `rx` for up to [`SPIN`], by the runtime's one spin policy
/// ([`subactor_core::spin_for`]: it spins only on a spare core, which it claims, so that
/// this waiter and the thread of the actor it waits for, when that thread waits in turn
/// for its child process, do not both spin on a 2-core machine and leave the child none).
fn spin<T>(rx: &Receiver<T>) -> Option<Result<T, RecvTimeoutError>> {
    subactor_core::spin_for(SPIN, || match rx.try_recv() {
        Ok(item) => Some(Ok(item)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        Err(TryRecvError::Empty) => None,
    })
}

/// Receives from `rx` with the GIL released, until `deadline` (or for good), running
/// the signal handlers between slices; their exception ends the wait.
pub(crate) fn recv<T: Send>(py: Python<'_>, rx: &Receiver<T>, deadline: Option<Instant>) -> PyResult<Waited<T>> {
    crate::errors::not_forked()?;
    let mut first = true;
    loop {
        let slice_end = {
            let next = Instant::now() + SLICE;
            deadline.map_or(next, |deadline| deadline.min(next))
        };
        let spin_first = first;
        first = false;
        let got = py.detach(|| {
            if spin_first {
                if let Some(result) = spin(rx) {
                    return result;
                }
            }
            rx.recv_deadline(slice_end)
        });
        match got {
            Ok(item) => return Ok(Waited::Got(item)),
            Err(RecvTimeoutError::Disconnected) => return Ok(Waited::Disconnected),
            Err(RecvTimeoutError::Timeout) => {
                py.check_signals()?;
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Ok(Waited::TimedOut);
                }
            }
        }
    }
}

/// Runs `ask`, a direct ask (`subactor_core::AnyRef::ask_direct_then`: this thread
/// talks to an idle process actor's child itself), with the GIL released; its waits for
/// the outcome go in slices, with the signal handlers run between them. An exception
/// of theirs, or `deadline`, stops the waiting (the actor's thread then finishes the
/// ask and sends its outcome where `ask` said); the exception is returned.
pub(crate) fn direct<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    ask: impl FnOnce(&mut dyn FnMut() -> Option<Instant>) -> T + Send,
) -> PyResult<T> {
    crate::errors::not_forked()?;
    let mut raised = None;
    let mut first = true;
    let result = py.detach(|| {
        ask(&mut || {
            if !std::mem::replace(&mut first, false) {
                if let Err(error) = Python::attach(|py| py.check_signals()) {
                    raised = Some(error);
                    return None;
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                return None;
            }
            let next = now + SLICE;
            Some(deadline.map_or(next, |deadline| deadline.min(next)))
        })
    });
    match raised {
        Some(error) => Err(error),
        None => Ok(result),
    }
}

/// Runs `attempt` with the GIL released, once per slice, until it returns `Some` or
/// `deadline` passes (then `None`); runs the signal handlers between attempts. Each
/// attempt gets the time it may wait.
pub(crate) fn retry<T: Send, S: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut state: S,
    mut attempt: impl FnMut(S, Duration) -> Result<T, S> + Send,
) -> PyResult<Result<T, S>> {
    crate::errors::not_forked()?;
    loop {
        let slice = deadline.map_or(SLICE, |deadline| deadline.saturating_duration_since(Instant::now()).min(SLICE));
        state = match py.detach(|| attempt(state, slice)) {
            Ok(done) => return Ok(Ok(done)),
            Err(state) => state,
        };
        py.check_signals()?;
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(Err(state));
        }
    }
}

/// Converts a timeout in seconds (`None`: no limit) into a deadline. One too far to
/// represent (hundreds of years) is no limit.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(match timeout {
        Some(secs) => Instant::now().checked_add(seconds(secs, "timeout")?),
        None => None,
    })
}

/// A timeout as a Python argument: an `int` or a `float` (or any other object with
/// `__float__`), but not a `bool` (`timeout=True` is a mistake, not one second) nor a
/// `str`; [`deadline`] then checks its range. (The package checks the other durations,
/// `spin`, `delay`, `time_limit`, ..., in Python before they get here.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct Secs(pub(crate) f64);

impl From<Secs> for f64 {
    fn from(secs: Secs) -> f64 {
        secs.0
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Secs {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Secs> {
        if obj.is_instance_of::<pyo3::types::PyBool>() || obj.is_instance_of::<pyo3::types::PyString>() {
            let kind = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "timeout must be a number of seconds (an int or a float) or None, not {kind}"
            )));
        }
        obj.extract::<f64>().map(Secs).map_err(|_| {
            let kind = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            pyo3::exceptions::PyTypeError::new_err(format!(
                "timeout must be a number of seconds (an int or a float) or None, not {kind}"
            ))
        })
    }
}

/// The longest duration an argument may give, in seconds (about 317 years; as the
/// package's `_check.MAX_SECONDS` and the in-actor module's).
const MAX_SECONDS: f64 = 1e10;

/// Reads a number of seconds: finite, from 0 to [`MAX_SECONDS`].
pub(crate) fn seconds(secs: f64, what: &str) -> PyResult<Duration> {
    if secs > MAX_SECONDS {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{what} must be at most {MAX_SECONDS:.0e} seconds (about 317 years), got {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("{what} must be a finite number of seconds >= 0, got {secs}"))
    })
}
