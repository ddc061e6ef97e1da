//! Pipelines from Python: [`PipelineCore`] wraps the core's [`Pipeline`], with sends and
//! receives that release the GIL and that Ctrl-C interrupts.
//!
//! Feeding and consuming usually happen on two threads (a full output stops the whole
//! pipeline, by design): the input and the output side have separate locks, and the
//! ordered output is re-sequenced here from the core's raw output channel.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use flume::Receiver;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use subactor_core::{Fault, Output, Pipeline, PipelineError, Routing, Value};
use subactor_host::ReceiveError;

use crate::wait::{self, Waited};
use crate::{conv, errors};

/// What comes out of a pipeline: an item's last answer, or how it failed.
#[pyclass(module = "subactor", name = "PipelineOutput", frozen, get_all)]
pub(crate) struct PipelineOutput {
    /// The item's sequence number (the order it was sent in, from 0).
    seq: u64,
    /// The last stage's answer, or `None` if the item failed.
    value: Py<PyAny>,
    /// The exception for a failed item (a `RemoteError` for a raising worker), or `None`.
    error: Py<PyAny>,
    /// The stage where it failed, or `None`.
    stage: Option<String>,
}

#[pymethods]
impl PipelineOutput {
    /// Whether the item made it through.
    #[getter]
    fn ok(&self, py: Python<'_>) -> bool {
        self.error.is_none(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match &self.stage {
            Some(stage) => {
                format!("PipelineOutput(seq={}, stage='{stage}', error={})", self.seq, self.error.bind(py).repr()?)
            }
            None => format!("PipelineOutput(seq={}, value={})", self.seq, self.value.bind(py).repr()?),
        })
    }
}

struct Reorder {
    buffered: BTreeMap<u64, Output>,
    next: u64,
}

/// The native side of `subactor.Pipeline`.
#[pyclass(module = "subactor._native", frozen)]
pub(crate) struct PipelineCore {
    shared: Arc<Shared>,
}

/// A pipeline's state, shared with its runtime (which aborts it when it closes: see
/// [`Shared::abort`]).
pub(crate) struct Shared {
    input: Mutex<Option<Pipeline>>,
    /// `None` once aborted: senders of outputs then fail at once instead of waiting.
    outputs: Mutex<Option<Receiver<Output>>>,
    ordered: bool,
    reorder: Mutex<Reorder>,
    /// Items sent so far (kept after the input closes).
    sent: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Closes the input and drops the outputs still to come. A worker's reply callback
    /// waits while the output is full, so a pipeline nobody consumes would keep its
    /// workers from ever ending (and the runtime from closing); without receivers, those
    /// waits end at once.
    pub(crate) fn abort(&self) {
        if let Some(mut pipeline) = lock(&self.input).take() {
            pipeline.close();
        }
        lock(&self.outputs).take();
    }
}

impl PipelineCore {
    /// Its shared state, for the runtime to abort it when it closes.
    pub(crate) fn shared(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    pub(crate) fn build(
        stages: Vec<(String, Vec<Bound<'_, PyAny>>, String)>,
        ordered: bool,
        capacity: Option<usize>,
    ) -> PyResult<PipelineCore> {
        let mut builder = Pipeline::builder().ordered(ordered);
        if let Some(capacity) = capacity {
            builder = builder.capacity(capacity);
        }
        for (name, workers, routing) in stages {
            let routing = match routing.as_str() {
                "round_robin" => Routing::RoundRobin,
                "least_loaded" => Routing::LeastLoaded,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "routing must be 'round_robin' or 'least_loaded', got {other:?}"
                    )));
                }
            };
            let workers = workers.iter().map(conv::actor_of).collect::<PyResult<Vec<_>>>()?;
            builder = builder.stage(name, workers, routing);
        }
        let pipeline = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let outputs = pipeline.outputs();
        Ok(PipelineCore {
            shared: Arc::new(Shared {
                input: Mutex::new(Some(pipeline)),
                outputs: Mutex::new(Some(outputs)),
                ordered,
                reorder: Mutex::new(Reorder { buffered: BTreeMap::new(), next: 0 }),
                sent: AtomicU64::new(0),
            }),
        })
    }

    fn closed_error(py: Python<'_>) -> PyErr {
        errors::new(py, c"ActorStopped", ("the pipeline's input is closed",))
    }
}

/// The exception for an item that failed in a stage.
fn failure_error(py: Python<'_>, error: &subactor_core::BoxError) -> PyErr {
    if error.downcast_ref::<ReceiveError>().is_some() {
        return errors::handler(py, error);
    }
    match error.downcast_ref::<Fault>() {
        Some(fault) => errors::fault(py, fault),
        None => errors::new(py, c"ActorError", (error.to_string(),)),
    }
}

fn to_output(py: Python<'_>, output: Output) -> PyResult<PipelineOutput> {
    Ok(match output {
        Output::Item { seq, value } => {
            PipelineOutput { seq, value: conv::to_object(py, &value)?.unbind(), error: py.None(), stage: None }
        }
        Output::Failed(failure) => PipelineOutput {
            seq: failure.seq,
            value: py.None(),
            error: failure_error(py, &failure.error).into_value(py).into_any(),
            stage: Some(failure.stage.to_string()),
        },
    })
}

#[pymethods]
impl PipelineCore {
    /// Feeds an item, waiting (interruptibly, up to `timeout`) while the first stage's
    /// queue is full; returns its sequence number.
    #[pyo3(signature = (item, timeout=None))]
    fn send(&self, py: Python<'_>, item: &Bound<'_, PyAny>, timeout: Option<wait::Secs>) -> PyResult<u64> {
        errors::not_forked()?;
        let mut value = conv::to_value(item)?;
        let deadline = wait::deadline(timeout.map(f64::from))?;
        let input = &self.shared.input;
        // Nearly always there is room: send at once, without releasing the GIL.
        if let Ok(mut guard) = input.try_lock() {
            match guard.as_mut() {
                None => return Err(Self::closed_error(py)),
                Some(pipeline) => match pipeline.send_timeout(value, std::time::Duration::ZERO) {
                    Ok(seq) => {
                        self.shared.sent.fetch_max(seq + 1, Ordering::Relaxed);
                        return Ok(seq);
                    }
                    Err(PipelineError::Full(back)) => value = back,
                    Err(_) => return Err(Self::closed_error(py)),
                },
            }
        }
        let sent = wait::retry(py, deadline, value, |value: Value, slice| match lock(input).as_mut() {
            None => Ok(Err(PipelineError::Closed(value))),
            Some(pipeline) => match pipeline.send_timeout(value, slice) {
                Ok(seq) => Ok(Ok(seq)),
                Err(PipelineError::Full(value)) => Err(value),
                Err(other) => Ok(Err(other)),
            },
        })?;
        match sent {
            Ok(Ok(seq)) => {
                self.shared.sent.fetch_max(seq + 1, Ordering::Relaxed);
                Ok(seq)
            }
            Ok(Err(_)) => Err(Self::closed_error(py)),
            Err(_) => Err(PyTimeoutError::new_err("the pipeline's input stayed full until the timeout")),
        }
    }

    /// Takes no more items: once those sent have come out, `recv` returns `None`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        errors::not_forked()?;
        let input = &self.shared.input;
        // The lock may be held by a send waiting for room: wait for it without the GIL.
        let pipeline = py.detach(|| lock(input).take());
        if let Some(mut pipeline) = pipeline {
            pipeline.close();
        }
        Ok(())
    }

    /// Closes the input and drops the outputs still to come (an abandoned pipeline must
    /// not hold its workers: a full output would block them).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        errors::not_forked()?;
        let shared = &self.shared;
        py.detach(|| shared.abort());
        Ok(())
    }

    /// The next output (in order if the pipeline is ordered), waiting up to `timeout`
    /// (then `TimeoutError`); `None` once the input is closed and every item has come
    /// out.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<wait::Secs>) -> PyResult<Option<PipelineOutput>> {
        errors::not_forked()?;
        let deadline = wait::deadline(timeout.map(f64::from))?;
        let Ok(mut reorder) = self.shared.reorder.try_lock() else {
            return Err(PyRuntimeError::new_err("recv() is already waiting in another thread"));
        };
        let Some(outputs) = lock(&self.shared.outputs).clone() else { return Ok(None) };
        loop {
            if self.shared.ordered {
                let next = reorder.next;
                if let Some(output) = reorder.buffered.remove(&next) {
                    reorder.next += 1;
                    return to_output(py, output).map(Some);
                }
            }
            match wait::recv(py, &outputs, deadline)? {
                Waited::Got(output) if self.shared.ordered => {
                    reorder.buffered.insert(output.seq(), output);
                }
                Waited::Got(output) => return to_output(py, output).map(Some),
                Waited::TimedOut => return Err(PyTimeoutError::new_err("no pipeline output within the timeout")),
                Waited::Disconnected => {
                    // Complete: whatever is buffered comes out in order.
                    let Some((&seq, _)) = reorder.buffered.iter().next() else { return Ok(None) };
                    reorder.next = seq + 1;
                    let output = reorder.buffered.remove(&seq);
                    return output.map(|output| to_output(py, output)).transpose();
                }
            }
        }
    }

    /// How many items have been sent.
    #[getter]
    fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }
}
