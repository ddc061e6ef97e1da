//! Process actors: Python actors whose handlers run in the main interpreter of a child
//! process (the [`Placement::Process`](subactor_core::Placement::Process) placement).
//!
//! The actor itself — its cell, mailbox, supervision, monitors, dead letters — lives in
//! the runtime like any other; only `receive` runs elsewhere. [`PyActor`](crate::PyActor)
//! holds a [`ChildProcess`] instead of an interpreter, and each message becomes a round
//! trip to the child over its data socket. A child that dies is a failure of that actor
//! ([`subactor_core::Fault::Died`]), seen through [`Actor::health`](subactor_core::Actor::health).
//!
//! - [`template`]: the runtime's side of the template process the children are forked
//!   from;
//! - [`child`]: the runtime's side of one child ([`ChildProcess`]);
//! - [`client`]: the child's side of its link, which turns every call on an actor
//!   reference into a call to the parent;
//! - [`proto`]: the frames;
//! - [`entry`]: how a re-executed binary becomes a template before `main`;
//! - `crate::ffi::zygote` and `crate::ffi::child`: the template's loop and the child's
//!   actor, which run Python.

pub(crate) mod child;
pub(crate) mod client;
pub(crate) mod entry;
pub(crate) mod proto;
pub(crate) mod sys;
pub(crate) mod template;

use std::time::Duration;

use subactor_core::{ActorSystem, AnyRef, BoxError, TimerId, Value};
use subactor_wire::{ActorEnv, NodesExt, RemoteError, SpawnRequest};

pub(crate) use child::ChildProcess;
pub use template::Launcher;

use crate::{PyActor, PythonActor, PythonException, ReceiveError};

/// A handler's error as it travels to another process.
pub(crate) fn describe(error: &BoxError) -> RemoteError {
    match error.downcast_ref::<ReceiveError>() {
        Some(ReceiveError::Exception(e)) => {
            RemoteError { type_name: e.type_name.clone(), message: e.message.clone(), traceback: e.traceback.clone() }
        }
        Some(other) => RemoteError {
            type_name: "subactor.ConversionError".into(),
            message: other.to_string(),
            traceback: other.exception().map(|e| e.traceback.clone()).unwrap_or_default(),
        },
        None => RemoteError { type_name: "Error".into(), message: error.to_string(), traceback: String::new() },
    }
}

/// The error a travelled one stands for here: a Python exception.
pub(crate) fn rebuild(error: RemoteError) -> BoxError {
    Box::new(ReceiveError::Exception(PythonException {
        type_name: error.type_name,
        message: error.message,
        traceback: error.traceback,
    }))
}

/// What the calls of a process actor's child are served against: the runtime itself.
pub(crate) struct LocalEnv {
    pub(crate) system: ActorSystem,
}

impl std::fmt::Debug for LocalEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEnv").finish_non_exhaustive()
    }
}

impl LocalEnv {
    /// The cluster this runtime is a node of, if it is one.
    fn nodes(&self) -> Option<std::sync::Arc<NodesExt>> {
        self.system.extension::<NodesExt>()
    }
}

impl ActorEnv for LocalEnv {
    fn lookup(&self, name: &str) -> Option<AnyRef> {
        match self.system.lookup::<PyActor>(name) {
            Some(actor) => Some(actor.into()),
            None => self.nodes().and_then(|nodes| nodes.0.lookup(name)),
        }
    }

    fn spawn(&self, mut request: SpawnRequest) -> Result<AnyRef, String> {
        if let Some(node) = request.node.take() {
            let nodes = self
                .nodes()
                .ok_or_else(|| format!("cannot spawn on node {node:?}: this runtime is not in a cluster"))?;
            if node != nodes.0.this_node() {
                return nodes.0.spawn_on(&node, request);
            }
        }
        let spec = PythonActor::from_request(request)?;
        match self.system.spawn(spec) {
            Ok(actor) => Ok(actor.into()),
            Err(error) => {
                let mut message = error.to_string();
                if let Some(exception) = error.start_error().and_then(crate::StartError::exception) {
                    if !exception.traceback.is_empty() {
                        message = format!("{message}\n\nTraceback in the child:\n{}", exception.traceback.trim_end());
                    }
                }
                Err(message)
            }
        }
    }

    fn send_after(&self, delay: Duration, to: AnyRef, msg: Value) -> Option<u64> {
        self.system.send_after(delay, to, msg).map(TimerId::as_u64)
    }

    fn cancel_timer(&self, id: u64) -> bool {
        self.system.cancel_timer(TimerId::from_u64(id))
    }

    fn describe(&self, error: &BoxError) -> RemoteError {
        describe(error)
    }

    fn rebuild(&self, error: RemoteError) -> BoxError {
        rebuild(error)
    }
}
