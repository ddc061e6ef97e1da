//! Supervisors from Python: spec trees turned into the core's [`SupervisorSpec`]s, and
//! [`SupervisorRef`], the reference to a running supervisor.
//!
//! The Python side (`subactor/_supervision.py`) flattens its `SupervisorSpec` and
//! `ChildSpec` objects into tuples:
//! - `("supervisor", strategy, max_restarts, within, backoff, name, children)`, where
//!   `backoff` is `None` or `(initial, max)` and `children` a list of child tuples;
//! - a child: `(kind_tuple, restart, shutdown)` where `kind_tuple` is a supervisor tuple
//!   or `("actor", module, class, args, name, mailbox, core, on_failure, time_limit,
//!   placement, memory_limit, (max_concurrency, snapshots, state_dir, state_store))`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use subactor_core::{ActorRef, ActorState, ChildSpec, RestartType, Strategy, Supervisor, SupervisorSpec, Value};
use subactor_host::PyActor;

use crate::runtime::{ActorOptions, snapshot_policy};
use crate::wait::{self, Waited};
use crate::{conv, errors};

fn strategy(name: &str) -> PyResult<Strategy> {
    match name {
        "one_for_one" => Ok(Strategy::OneForOne),
        "one_for_all" => Ok(Strategy::OneForAll),
        "rest_for_one" => Ok(Strategy::RestForOne),
        other => Err(PyValueError::new_err(format!(
            "strategy must be 'one_for_one', 'one_for_all' or 'rest_for_one', got {other:?}"
        ))),
    }
}

fn restart_type(name: &str) -> PyResult<RestartType> {
    match name {
        "permanent" => Ok(RestartType::Permanent),
        "transient" => Ok(RestartType::Transient),
        "temporary" => Ok(RestartType::Temporary),
        other => Err(PyValueError::new_err(format!(
            "restart must be 'permanent', 'transient' or 'temporary', got {other:?}"
        ))),
    }
}

/// `("supervisor", strategy, max_restarts, within, backoff, name, children)`.
type SupervisorTuple<'py> = (String, String, u32, f64, Option<(f64, f64)>, Option<String>, Bound<'py, PyList>);

/// `("actor", module, class, args, name, mailbox, core, on_failure, time_limit,
/// placement, memory_limit, services)`.
type ActorTuple<'py> = (
    String,
    String,
    String,
    Bound<'py, PyTuple>,
    Option<String>,
    Option<usize>,
    Option<usize>,
    Option<String>,
    Option<f64>,
    Option<String>,
    Option<u64>,
    ServiceTuple<'py>,
);

/// `(max_concurrency, snapshots, state_dir, state_store)`.
type ServiceTuple<'py> = (Option<usize>, Option<Bound<'py, PyAny>>, Option<String>, Option<String>);

/// A supervisor spec from its tuple.
pub(crate) fn supervisor_spec(obj: &Bound<'_, PyAny>) -> PyResult<SupervisorSpec> {
    let (kind, strategy_name, max_restarts, within, backoff, name, children): SupervisorTuple<'_> = obj.extract()?;
    if kind != "supervisor" {
        return Err(PyTypeError::new_err("not a supervisor spec"));
    }
    let mut spec =
        SupervisorSpec::new(strategy(&strategy_name)?).intensity(max_restarts, wait::seconds(within, "within")?);
    if let Some((initial, max)) = backoff {
        spec = spec.backoff(wait::seconds(initial, "backoff")?, wait::seconds(max, "backoff")?);
    }
    if let Some(name) = name {
        spec = spec.name(name);
    }
    for child in children.iter() {
        spec = spec.child(child_spec(&child)?);
    }
    Ok(spec)
}

fn child_spec(obj: &Bound<'_, PyAny>) -> PyResult<ChildSpec> {
    let (what, restart, shutdown): (Bound<'_, PyTuple>, String, f64) = obj.extract()?;
    let kind: String = what.get_item(0)?.extract()?;
    let child = match kind.as_str() {
        "supervisor" => ChildSpec::new(supervisor_spec(what.as_any())?),
        "actor" => {
            let (
                _,
                module,
                class,
                args,
                name,
                mailbox,
                core,
                on_failure,
                time_limit,
                placement,
                memory_limit,
                services,
            ): ActorTuple<'_> = what.extract()?;
            let (max_concurrency, snapshots, state_dir, state_store) = services;
            let options = ActorOptions {
                name,
                mailbox,
                core,
                on_failure,
                time_limit,
                placement,
                memory_limit,
                max_concurrency,
                snapshots: snapshots.map(|s| snapshot_policy(&s)).transpose()?,
                state_dir,
                state_store,
            };
            ChildSpec::new(options.spec(module, class, &args)?)
        }
        other => return Err(PyTypeError::new_err(format!("unknown child kind {other:?}"))),
    };
    Ok(child.restart(restart_type(&restart)?).shutdown(wait::seconds(shutdown, "shutdown")?))
}

/// A child of a supervisor, as `Supervisor.children()` reports it.
#[pyclass(module = "subactor", name = "ChildInfo", frozen, get_all)]
pub(crate) struct ChildInfo {
    /// Its position among the supervisor's children (its spec's).
    index: usize,
    /// Its id: the same after an in-place restart, a new one after a respawn.
    id: u64,
    /// Its name.
    name: Option<String>,
    /// How often this incarnation was restarted in place.
    restarts: u64,
    /// Its reference: an `ActorRef` for a Python actor, a `Supervisor` for a supervisor.
    actor: Py<PyAny>,
}

#[pymethods]
impl ChildInfo {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = self.name.as_deref().into_pyobject(py)?.repr()?;
        Ok(format!(
            "ChildInfo(index={}, id={}, name={name}, restarts={}, actor={})",
            self.index,
            self.id,
            self.restarts,
            self.actor.bind(py).repr()?
        ))
    }
}

/// A running supervisor.
#[pyclass(module = "subactor", name = "Supervisor", frozen)]
pub(crate) struct SupervisorRef {
    actor: ActorRef<Supervisor>,
}

impl SupervisorRef {
    pub(crate) fn new(actor: ActorRef<Supervisor>) -> SupervisorRef {
        SupervisorRef { actor }
    }

    /// The supervisor's reference.
    pub(crate) fn actor(&self) -> &ActorRef<Supervisor> {
        &self.actor
    }
}

#[pymethods]
impl SupervisorRef {
    /// The supervisor's id.
    #[getter]
    fn id(&self) -> u64 {
        self.actor.id().as_u64()
    }

    /// Its name.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.actor.name()
    }

    /// How many times it was restarted (by its own supervisor).
    #[getter]
    fn restarts(&self) -> u64 {
        self.actor.restarts()
    }

    /// "starting", "running", "stopping" or "stopped".
    #[getter]
    fn state(&self) -> &'static str {
        match self.actor.state() {
            ActorState::Starting => "starting",
            ActorState::Running => "running",
            ActorState::Stopping => "stopping",
            ActorState::Stopped => "stopped",
        }
    }

    /// The running children, in start order.
    fn children(&self, py: Python<'_>) -> PyResult<Vec<ChildInfo>> {
        errors::not_forked()?;
        let actor = self.actor.clone();
        let children = py.detach(move || actor.children());
        children
            .into_iter()
            .map(|child| {
                let actor = match (child.actor::<PyActor>(), child.actor::<Supervisor>()) {
                    (Some(actor), _) => conv::new_ref(py, actor.into())?.unbind(),
                    (None, Some(supervisor)) => Py::new(py, SupervisorRef::new(supervisor))?.into_any(),
                    (None, None) => py.None(),
                };
                Ok(ChildInfo {
                    index: child.index,
                    id: child.id.as_u64(),
                    name: child.name.as_deref().map(str::to_owned),
                    restarts: child.restarts,
                    actor,
                })
            })
            .collect()
    }

    /// The child at `index` (its position in the spec): an `ActorRef`, a `Supervisor`,
    /// or `None` if it does not run now.
    fn child(&self, py: Python<'_>, index: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let index = errors::index_arg(index, "index")?;
        let children = self.children(py)?;
        Ok(children.into_iter().find(|child| child.index == index).map_or_else(|| py.None(), |child| child.actor))
    }

    /// Stops the supervisor: its children stop first, in reverse start order.
    fn stop(&self) -> PyResult<()> {
        errors::not_forked()?;
        self.actor.stop();
        Ok(())
    }

    /// Kills the supervisor (its children are stopped as it ends).
    fn kill(&self) -> PyResult<()> {
        errors::not_forked()?;
        self.actor.kill();
        Ok(())
    }

    /// Waits until the supervisor has stopped; its `Down`, or `None` at the timeout.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<wait::Secs>) -> PyResult<Option<Bound<'py, PyAny>>> {
        errors::not_forked()?;
        let deadline = wait::deadline(timeout.map(f64::from))?;
        let (tx, rx) = flume::bounded(1);
        let id = self.actor.monitor(move |down| drop(tx.send(down.clone())));
        match wait::recv(py, &rx, deadline) {
            Ok(Waited::Got(down)) => conv::to_object(py, &Value::Down(Box::new(down))).map(Some),
            other => {
                self.actor.demonitor(id);
                other.map(|_| None)
            }
        }
    }

    fn __repr__(&self) -> String {
        match self.actor.name() {
            Some(name) => format!("<Supervisor {} {name:?}>", self.actor.id().as_u64()),
            None => format!("<Supervisor {}>", self.actor.id().as_u64()),
        }
    }
}
