//! [`OnNode`]: a Python actor on another node of the cluster, supervised here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use subactor_core::{
    Actor, ActorContext, AnyRef, AskError, BoxError, Death, Fault, Placement, Spawn, SpawnOptions, StopReason, Value,
};

use tracing::warn;

use crate::{Cluster, PythonActor};

/// How long a restart waits for the former incarnation's actor on the other node to end
/// (a failed one is still ending: its `stopped` hook, its process; one stopped by the
/// restart finishes its message first) before killing it.
const FORMER_STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a restart then waits for the killed actor to end.
const FORMER_KILL_GRACE: Duration = Duration::from_secs(5);

/// The cluster's key-value store as the host's store of actors' states
/// ([`StateStore::Cluster`](crate::StateStore::Cluster)).
pub(crate) struct ClusterStateStore(pub(crate) Cluster);

impl subactor_host::StateBackend for ClusterStateStore {
    fn save(&self, key: &str, state: &Value) -> Result<(), String> {
        self.0.save_state(key, state)
    }

    fn load(&self, key: &str) -> Result<Option<Value>, String> {
        self.0.load_state(key)
    }
}

/// The recipe of a Python actor that runs on another node of the cluster, represented
/// here by a local actor ([`NodeActor`]) that a supervisor can watch and restart.
///
/// Messages sent to the local actor are forwarded to the remote one, in order; its
/// replies and failures come back. When the remote actor stops, or its node goes down,
/// the local actor fails ([`Fault::Died`]), and its supervisor decides: a restart spawns
/// the actor again **on the same node** (if that node is down, the restart fails and
/// counts against the supervisor's intensity, so a lost node ends in the supervisor's
/// own failure, which its parent handles). A restart starts the new actor once the
/// former one has ended on that node (its name is free again there then): a failure is
/// known here as soon as the failed message's error comes back, while the actor is still
/// ending there (its `stopped` hook, its process's exit). One that has not ended after
/// 5 s is killed, and the restart waits 5 s more.
///
/// ```no_run
/// use subactor::{ChildSpec, OnNode, PythonActor, Strategy, SupervisorSpec};
///
/// let spec = SupervisorSpec::new(Strategy::OneForOne)
///     .child(ChildSpec::new(OnNode::new("worker-1", PythonActor::new("jobs", "Scorer"))));
/// ```
#[derive(Clone, Debug)]
pub struct OnNode {
    node: String,
    actor: PythonActor,
    options: SpawnOptions,
    /// The actor the last incarnation started, until the next start has seen it end.
    former: Option<Former>,
}

/// The remote actor of an incarnation, and whether it has ended.
#[derive(Clone, Debug)]
struct Former {
    remote: AnyRef,
    ended: Arc<Ended>,
}

/// Set once the remote actor has ended (its monitor was told), or its node is down.
#[derive(Debug, Default)]
struct Ended {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Ended {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for the end, or until `give_up` says so; whether it ended.
    fn wait(&self, timeout: Duration, give_up: &dyn Fn() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            let now = Instant::now();
            if now >= deadline || give_up() {
                return false;
            }
            // In slices, to notice `give_up`.
            let slice = (deadline - now).min(Duration::from_millis(50));
            done = self.changed.wait_timeout(done, slice).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

impl Former {
    /// Waits for the former actor to end, killing it if it takes too long.
    fn wait_ended(&self, node: &str, give_up: &dyn Fn() -> bool) {
        if self.ended.wait(FORMER_STOP_GRACE, give_up) || give_up() {
            return;
        }
        warn!(%node, actor = %self.remote.id(), "the former actor on the node has not ended: killing it before the restart");
        self.remote.kill();
        if !self.ended.wait(FORMER_KILL_GRACE, give_up) {
            warn!(%node, actor = %self.remote.id(), "the former actor on the node has not ended after a kill: restarting anyway");
        }
    }
}

impl OnNode {
    /// `actor` on `node`. Its name, if any, names the remote actor (unique across the
    /// cluster); the local one takes the name with `@local` appended.
    pub fn new(node: impl Into<String>, actor: PythonActor) -> OnNode {
        let mut options = SpawnOptions::default();
        if let Some(name) = &actor.options().name {
            options = options.name(format!("{name}@local"));
        }
        OnNode { node: node.into(), actor, options, former: None }
    }

    /// The node.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// The local side of an actor on another node (see [`OnNode`]).
#[derive(Debug)]
pub struct NodeActor {
    remote: AnyRef,
    gone: Arc<AtomicBool>,
    why: Arc<Mutex<Option<String>>>,
}

impl NodeActor {
    /// The actor on the other node.
    pub fn remote(&self) -> &AnyRef {
        &self.remote
    }
}

/// What failed on the other node.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteFailure(pub BoxError);

/// A spawn on another node failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the actor on node {node:?}: {why}")]
pub struct RemoteStartError {
    /// The node.
    pub node: String,
    /// Why.
    pub why: String,
}

impl Spawn for OnNode {
    type Actor = NodeActor;
    type Error = RemoteStartError;

    fn options(&self) -> &SpawnOptions {
        &self.options
    }

    fn start(&mut self, ctx: &ActorContext<NodeActor>) -> Result<NodeActor, RemoteStartError> {
        let fail = |why: String| RemoteStartError { node: self.node.clone(), why };
        let cluster =
            ctx.system().extension::<Cluster>().ok_or_else(|| fail("this runtime did not join a cluster".into()))?;
        if let Some(former) = self.former.take() {
            // A restart: the former actor may still hold its name there.
            former.wait_ended(&self.node, &|| ctx.interrupt_requested());
        }
        let request = self.actor.to_request();
        let remote = cluster.spawn_on(&self.node, request).map_err(fail)?;
        let gone = Arc::new(AtomicBool::new(false));
        let why = Arc::new(Mutex::new(None));
        let ended = Arc::new(Ended::default());
        let alarm = ctx.health_alarm();
        let (flag, reason, end) = (Arc::clone(&gone), Arc::clone(&why), Arc::clone(&ended));
        remote.monitor(move |down| {
            *reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(down.reason.to_string());
            flag.store(true, Ordering::Release);
            end.set();
            alarm.ring();
        });
        self.former = Some(Former { remote: remote.clone(), ended });
        Ok(NodeActor { remote, gone, why })
    }

    fn placement(&self) -> Placement {
        self.actor.requested_placement()
    }
}

impl Actor for NodeActor {
    type Msg = Value;
    type Reply = Value;
    type Error = RemoteFailure;

    fn node(&self) -> Option<Arc<str>> {
        self.remote.node().map(Arc::from)
    }

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: Value) -> Result<Value, RemoteFailure> {
        match self.remote.blocking_ask(msg, Duration::from_secs(u64::from(u32::MAX))) {
            Ok(reply) => Ok(reply),
            Err(AskError::Failed(error)) => Err(RemoteFailure(error)),
            Err(other) => {
                // The remote actor or its node went away with the message.
                self.gone.store(true, Ordering::Release);
                Err(RemoteFailure(Box::new(std::io::Error::other(format!("{other:?}")))))
            }
        }
    }

    fn handle_tell(&mut self, _ctx: &ActorContext<Self>, msg: Value) -> Result<(), RemoteFailure> {
        self.remote.blocking_tell(msg).map_err(|error| {
            self.gone.store(true, Ordering::Release);
            RemoteFailure(Box::new(std::io::Error::other(error.to_string())))
        })
    }

    fn health(&mut self) -> Result<(), Fault> {
        if !self.gone.load(Ordering::Acquire) {
            return Ok(());
        }
        let why = self.why.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let node = self.remote.node().unwrap_or("?");
        Err(Fault::Died(Death::Lost(why.unwrap_or_else(|| format!("the actor on node {node} is gone")).into())))
    }

    fn stopped(&mut self, _ctx: &ActorContext<Self>, _reason: &StopReason) {
        // The remote actor goes with its local side (a restart starts a new one).
        if !self.gone.load(Ordering::Acquire) {
            self.remote.stop();
        }
    }

    fn placement(&self) -> Placement {
        self.remote.placement()
    }
}
