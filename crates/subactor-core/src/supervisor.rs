//! Supervisors in the Erlang/OTP tradition, for Rust and Python actors alike.
//!
//! A supervisor is an actor that starts its children from [`ChildSpec`]s, in order, and
//! decides what happens when one fails:
//!
//! - **A handler fails** (an error under [`FailurePolicy::Restart`], the default for
//!   supervised actors, or a panic): the child asks its supervisor, which answers
//!   *restart* or *stop*. A restart happens **in place**: on the child's own thread, with
//!   the same mailbox and the same [`ActorRef`], so queued messages survive and
//!   references held elsewhere stay valid. A Python actor restarts in a fresh
//!   interpreter (its recipe creates one). The message being handled when it failed is
//!   reported: its asker gets the error, a tell becomes a dead letter.
//! - **A child exits** (stopped, killed, or failed for good): its [`RestartType`] says
//!   whether it is started again, from its spec, under a new id.
//!
//! The [`Strategy`] says who else restarts: nobody ([`Strategy::OneForOne`]), every
//! other child ([`Strategy::OneForAll`]), or the children started after it
//! ([`Strategy::RestForOne`]); siblings restart in place after the message in hand.
//! Restarts are limited by an [`Intensity`] (at most N in T): beyond it the supervisor
//! stops its children and fails itself, which its own supervisor handles (escalation) —
//! supervisors are children like any other, so they form trees. An optional
//! [`Backoff`] delays repeated restarts of the same child. A supervisor stops its
//! children in reverse start order, each with its own shutdown timeout, after which it
//! is killed.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use subactor_core::{Actor, ActorContext, ActorSystem, ChildSpec, Props, Strategy, SupervisorSpec};
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("odd input")]
//! struct Odd;
//!
//! struct Halver;
//! impl Actor for Halver {
//!     type Msg = u32;
//!     type Reply = u32;
//!     type Error = Odd;
//!     fn handle(&mut self, _: &ActorContext<Self>, n: u32) -> Result<u32, Odd> {
//!         if n % 2 == 1 { Err(Odd) } else { Ok(n / 2) }
//!     }
//! }
//!
//! let system = ActorSystem::builder().build();
//! let spec = SupervisorSpec::new(Strategy::OneForOne)
//!     .child(ChildSpec::new(Props::new(|| Ok::<_, Infallible>(Halver))));
//! let supervisor = system.spawn(spec)?;
//! let halver = supervisor.child::<Halver>(0).expect("started");
//! assert!(halver.blocking_ask(3u32, Duration::from_secs(5)).is_err()); // fails: restarted
//! assert_eq!(halver.blocking_ask(4u32, Duration::from_secs(5))?, 2); // same reference, new actor
//! assert_eq!(halver.restarts(), 1);
//! system.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use crate::cell::Signal;
use crate::timers::Job;
use crate::{
    Actor, ActorContext, ActorId, ActorRef, ActorSystem, Down, FailurePolicy, MonitorId, Spawn, SpawnError,
    SpawnOptions,
};

/// Who restarts when a child fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that failed.
    #[default]
    OneForOne,
    /// Every child.
    OneForAll,
    /// The child that failed and those started after it.
    RestForOne,
}

/// Whether a child is started again when it exits or fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RestartType {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal end (a failure, a kill); not after a graceful stop.
    Transient,
    /// Never.
    Temporary,
}

/// At most `max_restarts` restarts within `within`; one more and the supervisor gives
/// up (stops its children and fails).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    /// How many restarts are allowed in the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

impl Default for Intensity {
    /// 3 restarts in 5 seconds, as in OTP.
    fn default() -> Intensity {
        Intensity { max_restarts: 3, within: Duration::from_secs(5) }
    }
}

/// Delays repeated restarts of the same child: `initial`, then doubling up to `max`,
/// while failures keep coming within the intensity window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

/// The answer to a failed child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Restart in place after the delay.
    Restart(Duration),
    /// Stop for good.
    Stop,
}

/// What a supervised child knows of its supervisor.
pub(crate) struct ParentLink {
    supervisor: ActorRef<Supervisor>,
    index: usize,
}

impl ParentLink {
    /// The supervisor's id.
    pub(crate) fn supervisor_id(&self) -> ActorId {
        self.supervisor.cell.id
    }

    /// Asks the supervisor what to do about a failure; stops waiting (and stops) if the
    /// child is told to stop meanwhile or the supervisor is gone.
    pub(crate) fn decide(&self, child: ActorId, failure: String, stop_requested: &dyn Fn() -> bool) -> Decision {
        let (reply, decision) = flume::bounded(1);
        // Urgent: never refused for a full mailbox; a dead letter if the supervisor is
        // gone, which drops `reply` and so reads as Stop below.
        self.supervisor.cell.notify(SupervisorMsg(Msg::Failed { index: self.index, child, failure, reply }));
        loop {
            match decision.recv_timeout(Duration::from_millis(10)) {
                Ok(decision) => return decision,
                Err(flume::RecvTimeoutError::Timeout) if !stop_requested() => {}
                Err(_) => return Decision::Stop,
            }
        }
    }
}

/// A running child, whatever its actor type.
trait ChildControl: Send + Sync {
    fn id(&self) -> ActorId;
    fn name(&self) -> Option<&str>;
    fn restarts(&self) -> u64;
    fn request(&self, signal: Signal);
    fn wait_timeout(&self, timeout: Duration) -> bool;
    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId;
    fn typed(&self) -> Arc<dyn Any + Send + Sync>;
}

impl<A: Actor> ChildControl for ActorRef<A> {
    fn id(&self) -> ActorId {
        ActorRef::id(self)
    }

    fn name(&self) -> Option<&str> {
        ActorRef::name(self)
    }

    fn restarts(&self) -> u64 {
        ActorRef::restarts(self)
    }

    fn request(&self, signal: Signal) {
        self.cell.request(signal);
    }

    fn wait_timeout(&self, timeout: Duration) -> bool {
        self.blocking_wait_timeout(timeout).is_some()
    }

    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        self.cell.on_stop(f)
    }

    fn typed(&self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(self.clone())
    }
}

/// Starts a child from its recipe.
trait Starter: Send {
    fn start(&self, system: &ActorSystem, parent: ParentLink) -> Result<Arc<dyn ChildControl>, StartFailure>;
    fn boxed_clone(&self) -> Box<dyn Starter>;
    fn name(&self) -> Option<Arc<str>>;
}

/// Why a child did not start.
struct StartFailure {
    shut_down: bool,
    message: String,
}

struct SpecStarter<S>(S);

impl<S: Spawn + Clone> Starter for SpecStarter<S> {
    fn start(&self, system: &ActorSystem, parent: ParentLink) -> Result<Arc<dyn ChildControl>, StartFailure> {
        match system.spawn_child(self.0.clone(), Some(parent)) {
            Ok(child) => Ok(Arc::new(child)),
            Err(SpawnError::ShutDown) => {
                Err(StartFailure { shut_down: true, message: "the system is shut down".into() })
            }
            Err(error) => Err(StartFailure { shut_down: false, message: error.to_string() }),
        }
    }

    fn boxed_clone(&self) -> Box<dyn Starter> {
        Box::new(SpecStarter(self.0.clone()))
    }

    fn name(&self) -> Option<Arc<str>> {
        self.0.options().name.clone()
    }
}

/// How to start (and start again) one child of a supervisor.
pub struct ChildSpec {
    starter: Box<dyn Starter>,
    restart: RestartType,
    shutdown: Duration,
}

impl ChildSpec {
    /// A child from any recipe that can be cloned (each start uses a clone): a
    /// `PythonActor`, [`Props`](crate::Props) with a cloneable factory, or another
    /// [`SupervisorSpec`].
    pub fn new<S: Spawn + Clone>(spec: S) -> ChildSpec {
        ChildSpec {
            starter: Box::new(SpecStarter(spec)),
            restart: RestartType::Permanent,
            shutdown: Duration::from_secs(5),
        }
    }

    /// When the child is started again ([`RestartType::Permanent`] unless set).
    #[must_use]
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// How long a graceful stop may take before the child is killed (5 s unless set).
    #[must_use]
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.shutdown = timeout;
        self
    }
}

impl Clone for ChildSpec {
    fn clone(&self) -> ChildSpec {
        ChildSpec { starter: self.starter.boxed_clone(), restart: self.restart, shutdown: self.shutdown }
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.starter.name())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// The recipe of a supervisor.
#[derive(Clone, Debug, Default)]
pub struct SupervisorSpec {
    children: Vec<ChildSpec>,
    strategy: Strategy,
    intensity: Intensity,
    backoff: Option<Backoff>,
    options: SpawnOptions,
}

impl SupervisorSpec {
    /// A supervisor with this strategy, no children yet, the default intensity and no
    /// backoff.
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec { strategy, ..SupervisorSpec::default() }
    }

    /// Adds a child; children start in the order they are added.
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Allows at most `max_restarts` restarts within `within`.
    #[must_use]
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.intensity = Intensity { max_restarts, within };
        self
    }

    /// Delays repeated restarts of a child, from `initial` doubling up to `max`.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Some(Backoff { initial, max });
        self
    }

    /// Names the supervisor.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.options = self.options.name(name);
        self
    }
}

/// Why a supervisor failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A child could not be started.
    #[error("child {index} could not be started: {message}")]
    ChildStart {
        /// Its position among the children.
        index: usize,
        /// Why.
        message: String,
    },
    /// More restarts than the intensity allows.
    #[error("more than {max_restarts} restarts within {within:?}: giving up")]
    Intensity {
        /// The limit.
        max_restarts: u32,
        /// The window.
        within: Duration,
    },
}

impl Spawn for SupervisorSpec {
    type Actor = Supervisor;
    type Error = SupervisorError;

    fn options(&self) -> &SpawnOptions {
        &self.options
    }

    /// A supervisor that gave up restarts under its own supervisor, and stops without one.
    fn default_failure_policy(&self, supervised: bool) -> FailurePolicy {
        if supervised { FailurePolicy::Restart } else { FailurePolicy::Stop }
    }

    fn start(&mut self, ctx: &ActorContext<Supervisor>) -> Result<Supervisor, SupervisorError> {
        let mut supervisor = Supervisor {
            me: ctx.myself().clone(),
            system: ctx.system().clone(),
            specs: self.children.clone(),
            running: (0..self.children.len()).map(|_| None).collect(),
            strategy: self.strategy,
            intensity: self.intensity,
            backoff: self.backoff,
            recent: VecDeque::new(),
            streak: vec![(0, Instant::now()); self.children.len()],
            restarts: 0,
            stopping: false,
        };
        for index in 0..self.children.len() {
            if let Err(failure) = supervisor.start_child(index) {
                supervisor.stop_children();
                return Err(SupervisorError::ChildStart { index, message: failure.message });
            }
        }
        Ok(supervisor)
    }
}

/// What a supervisor receives: built by subactor only. Use the methods of
/// `ActorRef<Supervisor>` ([`ActorRef::child`], [`ActorRef::children`]).
pub struct SupervisorMsg(Msg);

impl fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0 {
            Msg::Failed { .. } => "Failed",
            Msg::Down { .. } => "Down",
            Msg::Respawn { .. } => "Respawn",
            Msg::Children(_) => "Children",
        };
        write!(f, "SupervisorMsg::{kind}")
    }
}

enum Msg {
    /// A child's handler failed; it waits for the decision.
    Failed {
        /// The child's position.
        index: usize,
        /// The child (stale reports are ignored).
        child: ActorId,
        /// What went wrong.
        failure: String,
        /// Where the decision goes.
        reply: flume::Sender<Decision>,
    },
    /// A child stopped for good.
    Down {
        /// The child's position.
        index: usize,
        /// How it ended.
        down: Down,
    },
    /// Time to start a child again (after a backoff).
    Respawn {
        /// The child's position.
        index: usize,
    },
    /// Describe the children.
    Children(flume::Sender<Vec<ChildInfo>>),
}

/// A child as its supervisor sees it.
#[derive(Clone)]
pub struct ChildInfo {
    /// Its position among the children.
    pub index: usize,
    /// Its current id (a new one after a respawn; the same after an in-place restart).
    pub id: ActorId,
    /// Its name.
    pub name: Option<Arc<str>>,
    /// How often this incarnation was restarted in place.
    pub restarts: u64,
    typed: Arc<dyn Any + Send + Sync>,
}

impl ChildInfo {
    /// The child's reference, if its actor is of type `A`.
    pub fn actor<A: Actor>(&self) -> Option<ActorRef<A>> {
        self.typed.downcast_ref::<ActorRef<A>>().cloned()
    }
}

impl fmt::Debug for ChildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildInfo")
            .field("index", &self.index)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("restarts", &self.restarts)
            .finish()
    }
}

/// A running supervisor (an actor).
pub struct Supervisor {
    me: ActorRef<Supervisor>,
    system: ActorSystem,
    specs: Vec<ChildSpec>,
    running: Vec<Option<Arc<dyn ChildControl>>>,
    strategy: Strategy,
    intensity: Intensity,
    backoff: Option<Backoff>,
    /// When recent restarts happened (within the intensity window).
    recent: VecDeque<Instant>,
    /// Per child: consecutive failures, and when the last one happened (for backoff).
    streak: Vec<(u32, Instant)>,
    /// Restarts decided so far (in place and respawns).
    restarts: u64,
    /// Children are being stopped on purpose: their exits are not failures.
    stopping: bool,
}

impl Supervisor {
    fn start_child(&mut self, index: usize) -> Result<(), StartFailure> {
        let parent = ParentLink { supervisor: self.me.clone(), index };
        let child = self.specs[index].starter.start(&self.system, parent)?;
        self.me.notify_on_stop(&*child, move |down| SupervisorMsg(Msg::Down { index, down }));
        debug!(index, child = %child.id(), "child started");
        self.running[index] = Some(child);
        Ok(())
    }

    /// Stops the children in reverse start order, each within its shutdown timeout.
    fn stop_children(&mut self) {
        self.stopping = true;
        for index in (0..self.running.len()).rev() {
            let Some(child) = self.running[index].take() else { continue };
            child.request(Signal::Stop);
            if !child.wait_timeout(self.specs[index].shutdown) {
                warn!(index, child = %child.id(), "child did not stop in time: killing it");
                child.request(Signal::Kill);
                child.wait_timeout(Duration::from_secs(60));
            }
        }
    }

    /// Counts a restart against the intensity; `false` when it is exceeded.
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > self.intensity.within) {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.intensity.max_restarts as usize {
            return false;
        }
        self.recent.push_back(now);
        self.restarts += 1;
        true
    }

    /// The backoff before restarting child `index` once more.
    fn delay(&mut self, index: usize) -> Duration {
        let now = Instant::now();
        let (count, last) = &mut self.streak[index];
        *count = if now.duration_since(*last) > self.intensity.within { 1 } else { *count + 1 };
        *last = now;
        match self.backoff {
            Some(backoff) => {
                let factor = 1u32.checked_shl(count.saturating_sub(1).min(31)).unwrap_or(u32::MAX);
                backoff.initial.saturating_mul(factor).min(backoff.max)
            }
            None => Duration::ZERO,
        }
    }

    /// Restarts in place the siblings the strategy names.
    fn restart_siblings(&self, failed: usize) {
        let siblings: Box<dyn Iterator<Item = usize>> = match self.strategy {
            Strategy::OneForOne => return,
            Strategy::OneForAll => Box::new((0..self.running.len()).filter(move |&i| i != failed)),
            Strategy::RestForOne => Box::new(failed + 1..self.running.len()),
        };
        for index in siblings {
            if let Some(child) = &self.running[index] {
                debug!(index, child = %child.id(), "restarting a sibling");
                child.request(Signal::Restart);
            }
        }
    }

    fn give_up(&mut self) -> SupervisorError {
        error!(
            max_restarts = self.intensity.max_restarts,
            within = ?self.intensity.within,
            "restart intensity exceeded: the supervisor stops its children and fails"
        );
        self.stop_children();
        SupervisorError::Intensity { max_restarts: self.intensity.max_restarts, within: self.intensity.within }
    }

    fn respawn(&mut self, index: usize) -> Result<(), SupervisorError> {
        if self.stopping || self.running[index].is_some() {
            return Ok(());
        }
        match self.start_child(index) {
            Ok(()) => Ok(()),
            Err(failure) if failure.shut_down => Ok(()),
            Err(failure) => {
                warn!(index, error = %failure.message, "child could not be started again");
                if !self.allow_restart() {
                    return Err(self.give_up());
                }
                self.schedule_respawn(index);
                Ok(())
            }
        }
    }

    fn schedule_respawn(&mut self, index: usize) {
        let delay = self.delay(index);
        if delay.is_zero() {
            self.me.cell.notify(SupervisorMsg(Msg::Respawn { index }));
        } else {
            self.system.schedule(delay, Box::new(RespawnJob { supervisor: self.me.clone(), index }));
        }
    }

    fn child_failed(&mut self, index: usize, child: ActorId, failure: &str) -> Result<Decision, SupervisorError> {
        let current = self.running.get(index).and_then(|c| c.as_ref()).map(|c| c.id());
        if self.stopping || current != Some(child) {
            return Ok(Decision::Stop);
        }
        warn!(index, %child, %failure, "child failed");
        if self.specs[index].restart == RestartType::Temporary {
            return Ok(Decision::Stop);
        }
        if !self.allow_restart() {
            return Err(self.give_up());
        }
        let delay = self.delay(index);
        self.restart_siblings(index);
        Ok(Decision::Restart(delay))
    }

    fn child_down(&mut self, index: usize, down: &Down) -> Result<(), SupervisorError> {
        let current = self.running.get(index).and_then(|c| c.as_ref()).map(|c| c.id());
        if self.stopping || current != Some(down.id) {
            return Ok(());
        }
        self.running[index] = None;
        let restart = match self.specs[index].restart {
            RestartType::Permanent => true,
            RestartType::Transient => down.reason.is_abnormal(),
            RestartType::Temporary => false,
        };
        info!(index, child = %down.id, reason = %down.reason, restart, "child exited");
        if !restart {
            return Ok(());
        }
        if !self.allow_restart() {
            return Err(self.give_up());
        }
        self.restart_siblings(index);
        self.schedule_respawn(index);
        Ok(())
    }

    fn describe(&self) -> Vec<ChildInfo> {
        self.running
            .iter()
            .enumerate()
            .filter_map(|(index, child)| {
                let child = child.as_ref()?;
                Some(ChildInfo {
                    index,
                    id: child.id(),
                    name: child.name().map(Arc::from),
                    restarts: child.restarts(),
                    typed: child.typed(),
                })
            })
            .collect()
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type Reply = ();
    type Error = SupervisorError;

    fn handle(&mut self, _ctx: &ActorContext<Self>, SupervisorMsg(msg): SupervisorMsg) -> Result<(), SupervisorError> {
        match msg {
            Msg::Failed { index, child, failure, reply } => match self.child_failed(index, child, &failure) {
                Ok(decision) => {
                    let _ = reply.send(decision);
                    Ok(())
                }
                Err(error) => {
                    let _ = reply.send(Decision::Stop);
                    Err(error)
                }
            },
            Msg::Down { index, down } => self.child_down(index, &down),
            Msg::Respawn { index } => self.respawn(index),
            Msg::Children(reply) => {
                let _ = reply.send(self.describe());
                Ok(())
            }
        }
    }

    fn stopped(&mut self, _ctx: &ActorContext<Self>, _reason: &crate::StopReason) {
        self.stop_children();
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("children", &self.running.iter().flatten().count())
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_children();
    }
}

/// Sends a supervisor its `Respawn` when a backoff ends.
struct RespawnJob {
    supervisor: ActorRef<Supervisor>,
    index: usize,
}

impl Job for RespawnJob {
    fn run(self: Box<Self>) {
        self.supervisor.cell.notify(SupervisorMsg(Msg::Respawn { index: self.index }));
    }

    fn abandon(self: Box<Self>) {}
}

impl ActorRef<Supervisor> {
    /// The running children, in start order.
    pub fn children(&self) -> Vec<ChildInfo> {
        let (tx, rx) = flume::bounded(1);
        self.cell.notify(SupervisorMsg(Msg::Children(tx)));
        rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default()
    }

    /// Queues `f(down)` for this supervisor when `child` stops for good.
    fn notify_on_stop(&self, child: &dyn ChildControl, f: impl FnOnce(Down) -> SupervisorMsg + Send + 'static) {
        let me = Arc::downgrade(&self.cell);
        child.monitor(Box::new(move |down| {
            if let Some(me) = me.upgrade() {
                me.notify(f(down.clone()));
            }
        }));
    }

    /// The child at `index` (its position in the spec), if it runs and is of type `A`.
    pub fn child<A: Actor>(&self, index: usize) -> Option<ActorRef<A>> {
        self.children().into_iter().find(|c| c.index == index)?.actor()
    }
}

#[cfg(test)]
mod tests;
