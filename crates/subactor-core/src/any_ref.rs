//! [`AnyRef`]: a reference to any actor that takes and answers [`Value`]s, whatever its
//! Rust type. This is how references travel inside messages (as [`Value::Actor`]) and
//! how Python code addresses actors.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cell::Signal;
use crate::dead_letters::DeadLetterReason;
use crate::{
    Actor, ActorId, ActorRef, ActorState, AskError, Down, MonitorId, Outcome, Placement, SendError, StopReason, Value,
};

/// A handler error of some actor, boxed: downcast it to the actor's own error type
/// (for a Python actor, `subactor_host::ReceiveError`).
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What an ask sent with a callback comes to, for [`RemoteActor::ask_then`].
pub type ValueCallback = Box<dyn FnOnce(Outcome<Value, BoxError>) + Send>;

/// What every actor of messages [`Value`] offers, whatever its type.
trait ValueActor: Send + Sync {
    fn id(&self) -> ActorId;
    fn name(&self) -> Option<&str>;
    fn placement(&self) -> Placement;
    fn state(&self) -> ActorState;
    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>>;
    fn blocking_tell(&self, msg: Value) -> Result<(), SendError<Value>>;
    fn blocking_tell_timeout(&self, msg: Value, timeout: Duration) -> Result<(), SendError<Value>>;
    fn blocking_ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>>;
    fn blocking_ask_then(&self, msg: Value, then: ValueCallback) -> Result<(), SendError<Value>>;
    fn blocking_ask_then_timeout(
        &self,
        msg: Value,
        timeout: Duration,
        then: ValueCallback,
    ) -> Result<(), SendError<Value>>;
    /// As [`ActorRef::ask_direct_then`]; an actor elsewhere has no direct path.
    fn ask_direct_then(
        &self,
        msg: Value,
        _then: ValueCallback,
        _wait: &mut dyn FnMut() -> Option<Instant>,
    ) -> Result<(), Value> {
        Err(msg)
    }
    /// As [`ActorRef::may_ask_direct`].
    fn may_ask_direct(&self) -> bool {
        false
    }
    fn mailbox_len(&self) -> usize;
    fn stop(&self);
    fn kill(&self);
    fn blocking_wait(&self) -> StopReason;
    fn blocking_wait_timeout(&self, timeout: Duration) -> Option<StopReason>;
    fn restarts(&self) -> u64;
    fn on_stop(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId;
    /// Makes `watcher` receive a [`Value::Down`] when this actor stops for good.
    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        let notify = watcher.0.notifier();
        self.on_stop(Box::new(move |down| notify(Value::Down(Box::new(down.clone())))))
    }
    fn demonitor(&self, id: MonitorId) -> bool;
    /// Delivers `msg` as an urgent message, holding the actor only weakly.
    fn notifier(&self) -> Box<dyn Fn(Value) + Send + Sync>;
    /// Whether the actor is being killed (or shut down with its system).
    fn killed(&self) -> bool;
    /// Records `msg`, meant for or coming from this actor, as a dead letter.
    fn dead_letter(&self, msg: Value, reason: DeadLetterReason);
    fn as_any(&self) -> &dyn Any;
}

impl<A: Actor<Msg = Value, Reply = Value>> ValueActor for ActorRef<A> {
    fn id(&self) -> ActorId {
        ActorRef::id(self)
    }

    fn name(&self) -> Option<&str> {
        ActorRef::name(self)
    }

    fn placement(&self) -> Placement {
        ActorRef::placement(self)
    }

    fn state(&self) -> ActorState {
        ActorRef::state(self)
    }

    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        ActorRef::try_tell(self, msg)
    }

    fn blocking_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        ActorRef::blocking_tell(self, msg)
    }

    fn blocking_tell_timeout(&self, msg: Value, timeout: Duration) -> Result<(), SendError<Value>> {
        ActorRef::blocking_tell_timeout(self, msg, timeout)
    }

    fn blocking_ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        ActorRef::blocking_ask(self, msg, timeout).map_err(|e| match e {
            AskError::Stopped(m) => AskError::Stopped(m),
            AskError::MailboxFull(m) => AskError::MailboxFull(m),
            AskError::SelfAsk(m) => AskError::SelfAsk(m),
            AskError::Timeout => AskError::Timeout,
            AskError::NoReply => AskError::NoReply,
            AskError::Failed(e) => AskError::Failed(Box::new(e) as BoxError),
            AskError::Fault(fault) => AskError::Fault(fault),
        })
    }

    fn blocking_ask_then(&self, msg: Value, then: ValueCallback) -> Result<(), SendError<Value>> {
        ActorRef::blocking_ask_then(self, msg, move |outcome| {
            then(match outcome {
                Outcome::Replied(reply) => Outcome::Replied(reply),
                Outcome::Failed(error) => Outcome::Failed(Box::new(error) as BoxError),
                Outcome::Fault(fault) => Outcome::Fault(fault),
                Outcome::NotHandled => Outcome::NotHandled,
            });
        })
    }

    fn blocking_ask_then_timeout(
        &self,
        msg: Value,
        timeout: Duration,
        then: ValueCallback,
    ) -> Result<(), SendError<Value>> {
        ActorRef::blocking_ask_then_timeout(self, msg, timeout, move |outcome| then(box_outcome(outcome)))
    }

    fn ask_direct_then(
        &self,
        msg: Value,
        then: ValueCallback,
        wait: &mut dyn FnMut() -> Option<Instant>,
    ) -> Result<(), Value> {
        ActorRef::ask_direct_then(self, msg, move |outcome| then(box_outcome(outcome)), wait)
    }

    fn may_ask_direct(&self) -> bool {
        ActorRef::may_ask_direct(self)
    }

    fn mailbox_len(&self) -> usize {
        ActorRef::mailbox_len(self)
    }

    fn stop(&self) {
        ActorRef::stop(self);
    }

    fn kill(&self) {
        ActorRef::kill(self);
    }

    fn blocking_wait(&self) -> StopReason {
        ActorRef::blocking_wait(self)
    }

    fn blocking_wait_timeout(&self, timeout: Duration) -> Option<StopReason> {
        ActorRef::blocking_wait_timeout(self, timeout)
    }

    fn restarts(&self) -> u64 {
        ActorRef::restarts(self)
    }

    fn on_stop(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        self.cell.on_stop(f)
    }

    fn demonitor(&self, id: MonitorId) -> bool {
        ActorRef::demonitor(self, id)
    }

    fn notifier(&self) -> Box<dyn Fn(Value) + Send + Sync> {
        let cell = Arc::downgrade(&self.cell);
        Box::new(move |msg| match cell.upgrade() {
            Some(cell) => cell.notify(msg),
            None => tracing::debug!(target: "subactor::dead_letters", "a Down for an actor that is gone"),
        })
    }

    fn killed(&self) -> bool {
        self.cell.signal() == Signal::Kill
    }

    fn dead_letter(&self, msg: Value, reason: DeadLetterReason) {
        self.cell.record_dead(reason, &msg);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An outcome with the handler's error boxed.
fn box_outcome<E: Error + Send + Sync + 'static>(outcome: Outcome<Value, E>) -> Outcome<Value, BoxError> {
    match outcome {
        Outcome::Replied(reply) => Outcome::Replied(reply),
        Outcome::Failed(error) => Outcome::Failed(Box::new(error) as BoxError),
        Outcome::Fault(fault) => Outcome::Fault(fault),
        Outcome::NotHandled => Outcome::NotHandled,
    }
}

/// A reference to an actor whose messages and replies are [`Value`]s (every Python
/// actor, and Rust actors of that shape), with its type erased.
///
/// Cheap to clone; equal when it refers to the same actor.
#[derive(Clone)]
pub struct AnyRef(Arc<dyn ValueActor>);

impl AnyRef {
    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.0.id()
    }

    /// The actor's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.0.name()
    }

    /// The node (of a cluster) the actor lives on, when that is not this runtime.
    pub fn node(&self) -> Option<&str> {
        self.as_remote().and_then(|remote| remote.node())
    }

    /// Where the actor's handlers run.
    pub fn placement(&self) -> Placement {
        self.0.placement()
    }

    /// Where the actor is in its life.
    pub fn state(&self) -> ActorState {
        self.0.state()
    }

    /// A reference to an actor that lives elsewhere (in the parent of a process actor's
    /// child process, on another node), reached through `actor`.
    pub fn remote(actor: Arc<dyn RemoteActor>) -> AnyRef {
        AnyRef(Arc::new(Remote(actor)))
    }

    /// The remote actor behind this reference, if it is one (see [`AnyRef::remote`]).
    pub fn as_remote(&self) -> Option<&Arc<dyn RemoteActor>> {
        self.0.as_any().downcast_ref::<Remote>().map(|remote| &remote.0)
    }

    /// As [`ActorRef::try_tell`].
    pub fn try_tell(&self, msg: impl Into<Value>) -> Result<(), SendError<Value>> {
        self.0.try_tell(msg.into())
    }

    /// As [`ActorRef::blocking_tell`].
    pub fn blocking_tell(&self, msg: impl Into<Value>) -> Result<(), SendError<Value>> {
        self.0.blocking_tell(msg.into())
    }

    /// As [`ActorRef::blocking_tell_timeout`].
    pub fn blocking_tell_timeout(&self, msg: impl Into<Value>, timeout: Duration) -> Result<(), SendError<Value>> {
        self.0.blocking_tell_timeout(msg.into(), timeout)
    }

    /// As [`ActorRef::blocking_ask`]; a handler's error comes boxed.
    pub fn blocking_ask(&self, msg: impl Into<Value>, timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        self.0.blocking_ask(msg.into(), timeout)
    }

    /// As [`ActorRef::blocking_ask_then`]; a handler's error comes boxed.
    pub fn blocking_ask_then(
        &self,
        msg: impl Into<Value>,
        then: impl FnOnce(Outcome<Value, BoxError>) + Send + 'static,
    ) -> Result<(), SendError<Value>> {
        self.0.blocking_ask_then(msg.into(), Box::new(then))
    }

    /// As [`ActorRef::blocking_ask_then_timeout`]; a handler's error comes boxed.
    pub fn blocking_ask_then_timeout(
        &self,
        msg: impl Into<Value>,
        timeout: Duration,
        then: impl FnOnce(Outcome<Value, BoxError>) + Send + 'static,
    ) -> Result<(), SendError<Value>> {
        self.0.blocking_ask_then_timeout(msg.into(), timeout, Box::new(then))
    }

    /// As [`ActorRef::ask_direct_then`]; a handler's error comes boxed. An actor on
    /// another node has no direct path (`Err` at once).
    pub fn ask_direct_then(
        &self,
        msg: impl Into<Value>,
        then: impl FnOnce(Outcome<Value, BoxError>) + Send + 'static,
        mut wait: impl FnMut() -> Option<Instant>,
    ) -> Result<(), Value> {
        self.0.ask_direct_then(msg.into(), Box::new(then), &mut wait)
    }

    /// As [`ActorRef::may_ask_direct`] (never for an actor on another node).
    pub fn may_ask_direct(&self) -> bool {
        self.0.may_ask_direct()
    }

    /// How many messages wait in the actor's mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.0.mailbox_len()
    }

    /// As [`ActorRef::stop`].
    pub fn stop(&self) {
        self.0.stop();
    }

    /// As [`ActorRef::kill`].
    pub fn kill(&self) {
        self.0.kill();
    }

    /// As [`ActorRef::blocking_wait`].
    pub fn blocking_wait(&self) -> StopReason {
        self.0.blocking_wait()
    }

    /// As [`ActorRef::blocking_wait_timeout`].
    pub fn blocking_wait_timeout(&self, timeout: Duration) -> Option<StopReason> {
        self.0.blocking_wait_timeout(timeout)
    }

    /// How many times the actor has been restarted.
    pub fn restarts(&self) -> u64 {
        self.0.restarts()
    }

    /// As [`ActorRef::monitor`].
    pub fn monitor(&self, f: impl FnOnce(&Down) + Send + 'static) -> MonitorId {
        self.0.on_stop(Box::new(f))
    }

    /// Makes `watcher` receive a [`Value::Down`] when this actor stops for good, as
    /// [`ActorRef::monitor_by`] does.
    pub fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        self.0.monitor_by(watcher)
    }

    /// Delivers `msg` to the actor as an urgent message (ahead of its mailbox, never
    /// refused for want of room), as a monitor's `Down` is delivered.
    pub fn notify(&self, msg: Value) {
        (self.0.notifier())(msg);
    }

    /// As [`ActorRef::demonitor`].
    pub fn demonitor(&self, id: MonitorId) -> bool {
        self.0.demonitor(id)
    }

    /// Whether the actor is being killed (or shut down with its system).
    pub(crate) fn killed(&self) -> bool {
        self.0.killed()
    }

    /// Records `msg`, meant for or coming from this actor, as a dead letter.
    pub(crate) fn dead_letter(&self, msg: Value, reason: DeadLetterReason) {
        self.0.dead_letter(msg, reason);
    }

    /// The typed reference, if the actor is of type `A`.
    pub fn downcast<A: Actor>(&self) -> Option<ActorRef<A>> {
        self.0.as_any().downcast_ref::<ActorRef<A>>().cloned()
    }
}

impl<A: Actor<Msg = Value, Reply = Value>> From<ActorRef<A>> for AnyRef {
    fn from(actor: ActorRef<A>) -> AnyRef {
        AnyRef(Arc::new(actor))
    }
}

impl<A: Actor<Msg = Value, Reply = Value>> From<ActorRef<A>> for Value {
    fn from(actor: ActorRef<A>) -> Value {
        Value::Actor(actor.into())
    }
}

impl From<AnyRef> for Value {
    fn from(actor: AnyRef) -> Value {
        Value::Actor(actor)
    }
}

/// Two references are equal when they name the same actor: the same id on the same
/// node (ids are unique per runtime).
impl PartialEq for AnyRef {
    fn eq(&self, other: &AnyRef) -> bool {
        self.id() == other.id() && self.node() == other.node()
    }
}

impl Eq for AnyRef {}

impl fmt::Debug for AnyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node().map(|node| format!(" on {node}")).unwrap_or_default();
        match self.name() {
            Some(name) => write!(f, "<actor {}{node} {name:?}>", self.id()),
            None => write!(f, "<actor {}{node}>", self.id()),
        }
    }
}

/// A live reference leaves its process only through a link, which encodes it as its
/// [`Handles`](crate::codec::Handles) say; anywhere else, encoding one is an error.
impl serde::Serialize for AnyRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match crate::codec::current_handles() {
            Some(handles) => handles.encode_ref(self).map_err(serde::ser::Error::custom)?.serialize(serializer),
            None => Err(serde::ser::Error::custom(format!(
                "{self:?} is a live actor reference and cannot be serialised out of its process"
            ))),
        }
    }
}

/// Only a link (see [`codec::decode_with`](crate::codec::decode_with)) decodes references.
impl<'de> serde::Deserialize<'de> for AnyRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AnyRef, D::Error> {
        let Some(handles) = crate::codec::current_handles() else {
            return Err(serde::de::Error::custom("actor references cannot be deserialised"));
        };
        let addr = crate::codec::RefAddr::deserialize(deserializer)?;
        handles.decode_ref(addr).map_err(serde::de::Error::custom)
    }
}

/// An actor reached through a link to another process or node: what a reference to it
/// does, implemented by the link (see [`AnyRef::remote`]). The semantics are those of
/// the same methods on [`AnyRef`]; failures of the link itself are reported as the
/// actor having stopped ([`SendError::Stopped`], [`AskError::Stopped`] or
/// [`AskError::NoReply`]), never silently.
pub trait RemoteActor: Send + Sync + 'static {
    /// The actor's id.
    fn id(&self) -> ActorId;
    /// The actor's name, if it has one.
    fn name(&self) -> Option<&str>;
    /// The node (of a cluster) the actor lives on, if it is not this process's runtime.
    fn node(&self) -> Option<&str> {
        None
    }
    /// Where the actor's handlers run.
    fn placement(&self) -> Placement;
    /// Where the actor is in its life.
    fn state(&self) -> ActorState;
    /// Sends without waiting for room.
    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>>;
    /// Sends, waiting for room up to `timeout` (forever with `None`).
    fn tell(&self, msg: Value, timeout: Option<Duration>) -> Result<(), SendError<Value>>;
    /// Sends and waits for the reply, up to `timeout`.
    fn ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>>;
    /// Sends (waiting for room up to `timeout`, forever with `None`) and runs `then`
    /// with the outcome, once.
    fn ask_then(&self, msg: Value, timeout: Option<Duration>, then: ValueCallback) -> Result<(), SendError<Value>>;
    /// How many messages wait in the actor's mailbox.
    fn mailbox_len(&self) -> usize;
    /// Stops the actor once its mailbox is empty.
    fn stop(&self);
    /// Kills the actor.
    fn kill(&self);
    /// Waits until the actor has stopped, up to `timeout` (forever with `None`).
    fn wait(&self, timeout: Option<Duration>) -> Option<StopReason>;
    /// How many times the actor has been restarted.
    fn restarts(&self) -> u64;
    /// Runs `f` once the actor has stopped for good.
    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId;
    /// Makes `watcher` receive a [`Value::Down`] when the actor stops for good.
    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId;
    /// Removes a monitor.
    fn demonitor(&self, id: MonitorId) -> bool;
    /// Delivers an urgent message (a `Down`) to the actor.
    fn notify(&self, msg: Value);
    /// The implementation, for downcasts.
    fn as_any(&self) -> &dyn Any;
}

/// A [`RemoteActor`] as [`AnyRef`] holds it.
struct Remote(Arc<dyn RemoteActor>);

impl ValueActor for Remote {
    fn id(&self) -> ActorId {
        self.0.id()
    }

    fn name(&self) -> Option<&str> {
        self.0.name()
    }

    fn placement(&self) -> Placement {
        self.0.placement()
    }

    fn state(&self) -> ActorState {
        self.0.state()
    }

    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        self.0.try_tell(msg)
    }

    fn blocking_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        self.0.tell(msg, None)
    }

    fn blocking_tell_timeout(&self, msg: Value, timeout: Duration) -> Result<(), SendError<Value>> {
        self.0.tell(msg, Some(timeout))
    }

    fn blocking_ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        self.0.ask(msg, timeout)
    }

    fn blocking_ask_then(&self, msg: Value, then: ValueCallback) -> Result<(), SendError<Value>> {
        self.0.ask_then(msg, None, then)
    }

    fn blocking_ask_then_timeout(
        &self,
        msg: Value,
        timeout: Duration,
        then: ValueCallback,
    ) -> Result<(), SendError<Value>> {
        self.0.ask_then(msg, Some(timeout), then)
    }

    fn mailbox_len(&self) -> usize {
        self.0.mailbox_len()
    }

    fn stop(&self) {
        self.0.stop();
    }

    fn kill(&self) {
        self.0.kill();
    }

    fn blocking_wait(&self) -> StopReason {
        loop {
            if let Some(reason) = self.0.wait(None) {
                return reason;
            }
        }
    }

    fn blocking_wait_timeout(&self, timeout: Duration) -> Option<StopReason> {
        self.0.wait(Some(timeout))
    }

    fn restarts(&self) -> u64 {
        self.0.restarts()
    }

    fn on_stop(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        self.0.monitor(f)
    }

    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        self.0.monitor_by(watcher)
    }

    fn demonitor(&self, id: MonitorId) -> bool {
        self.0.demonitor(id)
    }

    fn notifier(&self) -> Box<dyn Fn(Value) + Send + Sync> {
        let remote = Arc::clone(&self.0);
        Box::new(move |msg| remote.notify(msg))
    }

    fn killed(&self) -> bool {
        false
    }

    fn dead_letter(&self, msg: Value, reason: DeadLetterReason) {
        tracing::warn!(
            target: "subactor::dead_letters",
            recipient = %self.0.id(),
            ?reason,
            message = %msg,
            "a message for a remote actor was not delivered"
        );
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
