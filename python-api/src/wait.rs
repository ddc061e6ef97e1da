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

/// Polls `rx` for up to [`SPIN`].
fn spin<T>(rx: &Receiver<T>) -> Option<Result<T, RecvTimeoutError>> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        match rx.try_recv() {
            Ok(item) => return Some(Ok(item)),
            Err(TryRecvError::Disconnected) => return Some(Err(RecvTimeoutError::Disconnected)),
            Err(TryRecvError::Empty) => {}
        }
        if round < 64 {
            round += 1;
            std::hint::spin_loop();
        } else if start.elapsed() < SPIN {
            std::thread::yield_now();
        } else {
            return None;
        }
    }
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

/// Converts a timeout in seconds (`None`: no limit) into a deadline.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    timeout.map(|secs| seconds(secs, "timeout").map(|d| Instant::now() + d)).transpose()
}

/// Reads a number of seconds.
pub(crate) fn seconds(secs: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("{what} must be a finite number of seconds >= 0, got {secs}"))
    })
}
