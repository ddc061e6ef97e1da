//! Dead letters from Python: a subscription is a queue of the messages the runtime could
//! not deliver from then on.

use flume::{Receiver, TryRecvError};
use pyo3::prelude::*;
use subactor_core::{DeadLetter as CoreDeadLetter, DeadLetterReason};

use crate::conv;
use crate::wait::{self, Waited};

/// A message that was not delivered.
#[pyclass(module = "subactor", name = "DeadLetter", frozen, get_all)]
pub(crate) struct DeadLetter {
    /// The id of the actor it was meant for.
    recipient: u64,
    /// That actor's name, if it has one.
    name: Option<String>,
    /// Why: "not_running", "killed", "stopped", "panicked", "mailbox_full", "shut_down" or
    /// "failed".
    reason: &'static str,
    /// The Rust type of the message (`subactor_core::Value` for Python actors).
    message_type: &'static str,
    /// The message, when it still exists (a failed tell was consumed by its handler), as
    /// a Python object; `None` otherwise.
    message: Py<PyAny>,
}

#[pymethods]
impl DeadLetter {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DeadLetter(recipient={}, name={}, reason='{}', message={})",
            self.recipient,
            self.name.as_deref().into_pyobject(py)?.repr()?,
            self.reason,
            self.message.bind(py).repr()?
        ))
    }
}

fn reason_name(reason: DeadLetterReason) -> &'static str {
    match reason {
        DeadLetterReason::NotRunning => "not_running",
        DeadLetterReason::Killed => "killed",
        DeadLetterReason::Stopped => "stopped",
        DeadLetterReason::Panicked => "panicked",
        DeadLetterReason::MailboxFull => "mailbox_full",
        DeadLetterReason::ShutDown => "shut_down",
        DeadLetterReason::Failed => "failed",
    }
}

fn to_python(py: Python<'_>, letter: CoreDeadLetter) -> PyResult<DeadLetter> {
    let message = match &letter.message {
        Some(value) => conv::to_object(py, value).map(Bound::unbind).unwrap_or_else(|_| py.None()),
        None => py.None(),
    };
    Ok(DeadLetter {
        recipient: letter.recipient.as_u64(),
        name: letter.name.as_deref().map(str::to_owned),
        reason: reason_name(letter.reason),
        message_type: letter.message_type,
        message,
    })
}

/// The dead letters from the moment of subscribing; a subscriber that falls more than
/// 4096 behind misses newer ones (they are still counted).
#[pyclass(module = "subactor", name = "DeadLetterSubscription", frozen)]
pub(crate) struct DeadLetterSubscription {
    rx: Receiver<CoreDeadLetter>,
}

impl DeadLetterSubscription {
    pub(crate) fn new(rx: Receiver<CoreDeadLetter>) -> DeadLetterSubscription {
        DeadLetterSubscription { rx }
    }
}

#[pymethods]
impl DeadLetterSubscription {
    /// The next dead letter, waiting up to `timeout` seconds (forever if `None`;
    /// Ctrl-C interrupts); `None` at the timeout.
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<wait::Secs>) -> PyResult<Option<DeadLetter>> {
        match wait::recv(py, &self.rx, wait::deadline(timeout.map(f64::from))?)? {
            Waited::Got(letter) => to_python(py, letter).map(Some),
            Waited::TimedOut | Waited::Disconnected => Ok(None),
        }
    }

    /// The next dead letter if there is one, without waiting.
    fn get_nowait(&self, py: Python<'_>) -> PyResult<Option<DeadLetter>> {
        crate::errors::not_forked()?;
        match self.rx.try_recv() {
            Ok(letter) => to_python(py, letter).map(Some),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Ok(None),
        }
    }

    /// Every dead letter waiting now.
    fn drain(&self, py: Python<'_>) -> PyResult<Vec<DeadLetter>> {
        crate::errors::not_forked()?;
        self.rx.try_iter().map(|letter| to_python(py, letter)).collect()
    }
}
