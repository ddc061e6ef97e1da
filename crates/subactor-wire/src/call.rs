//! Calls: what one side of a link asks the other to do with the actors that live
//! there, and serving them.
//!
//! A process actor's child has no actors of its own: every reference it holds reaches
//! an actor of its parent, so every `tell`, `ask`, `spawn` or `lookup` made in the
//! child is a [`Call`] that the parent serves with [`serve`] against its own actors,
//! answering with an [`Answer`]. References inside calls and answers travel as the
//! link's [`Handles`](subactor_core::codec::Handles) say.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subactor_core::{
    ActorState, AnyRef, AskError, BoxError, Down, FailurePolicy, Fault, MonitorId, Placement, SendError, StopReason,
    Value,
};

/// How to start a Python actor somewhere else: the recipe, as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpawnRequest {
    /// The module (dotted name or `.py` path).
    pub module: String,
    /// The class's (qualified) name.
    pub class: String,
    /// The constructor's positional arguments.
    pub args: Vec<Value>,
    /// The actor's unique name.
    pub name: Option<String>,
    /// Where its handlers run.
    pub placement: Placement,
    /// The node of a cluster to spawn it on (`None`: where the request is served).
    pub node: Option<String>,
    /// Everything else the recipe says (mailbox, limits, failure policy, snapshots...).
    pub settings: SpawnSettings,
}

/// A Python actor's settings beyond its class, arguments, name and placement, as they
/// travel with a [`SpawnRequest`]: none is dropped on the way to another process or
/// node. `None` (and `false`) is the serving side's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpawnSettings {
    /// The mailbox's capacity.
    pub mailbox: Option<u64>,
    /// The CPU core its thread is pinned to.
    pub core: Option<u64>,
    /// What a failing handler leads to.
    pub on_failure: Option<FailurePolicy>,
    /// The longest a handler may run.
    pub time_limit: Option<Duration>,
    /// Whether a restart keeps the interpreter.
    pub keep_interpreter: bool,
    /// The bytes a process actor's process may allocate.
    pub memory_limit: Option<u64>,
    /// How long a killed process actor has before SIGKILL.
    pub kill_grace: Option<Duration>,
    /// How many messages an asyncio actor handles at once.
    pub max_concurrency: Option<u64>,
    /// Snapshots of its state: after every `n` messages (1: every message; 0: only when
    /// the actor calls `subactor.checkpoint()`); `None`: none.
    pub snapshot_every: Option<u32>,
    /// The directory its snapshots are kept in (`None`: the serving runtime's memory,
    /// unless `state_in_cluster`).
    pub state_dir: Option<std::path::PathBuf>,
    /// Its snapshots are kept in the cluster's key-value store (the serving runtime must
    /// be a node of a cluster).
    pub state_in_cluster: bool,
}

/// A request to act on the other side's actors.
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    /// [`AnyRef::try_tell`].
    TryTell {
        /// The recipient.
        to: AnyRef,
        /// The message.
        msg: Value,
    },
    /// [`AnyRef::blocking_tell`] (waits for room up to `timeout`; forever with `None`).
    Tell {
        /// The recipient.
        to: AnyRef,
        /// The message.
        msg: Value,
        /// How long to wait for room.
        timeout: Option<Duration>,
    },
    /// [`AnyRef::blocking_ask`].
    Ask {
        /// The recipient.
        to: AnyRef,
        /// The message.
        msg: Value,
        /// How long to wait for room and reply together.
        timeout: Duration,
    },
    /// [`AnyRef::stop`].
    Stop(AnyRef),
    /// [`AnyRef::kill`].
    Kill(AnyRef),
    /// [`AnyRef::state`].
    State(AnyRef),
    /// [`AnyRef::restarts`].
    Restarts(AnyRef),
    /// [`AnyRef::mailbox_len`].
    MailboxLen(AnyRef),
    /// [`AnyRef::blocking_wait_timeout`] (forever with `None`).
    Wait {
        /// The actor.
        of: AnyRef,
        /// How long to wait.
        timeout: Option<Duration>,
    },
    /// [`AnyRef::monitor_by`].
    Monitor {
        /// The actor watched.
        target: AnyRef,
        /// The actor that receives the `Down`.
        watcher: AnyRef,
    },
    /// [`AnyRef::demonitor`].
    Demonitor {
        /// The actor watched.
        target: AnyRef,
        /// The monitor.
        id: u64,
    },
    /// [`AnyRef::notify`].
    Notify {
        /// The recipient.
        to: AnyRef,
        /// The urgent message.
        msg: Value,
    },
    /// Finds a running actor by name.
    Lookup(String),
    /// Spawns an actor.
    Spawn(SpawnRequest),
    /// Tells a message after a delay.
    SendAfter {
        /// The delay.
        delay: Duration,
        /// The recipient.
        to: AnyRef,
        /// The message.
        msg: Value,
    },
    /// Cancels a timer of `SendAfter`.
    CancelTimer(u64),
}

/// A handler's error (or an exception), described for another process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// The exception's (or error's) type name.
    pub type_name: String,
    /// Its message.
    pub message: String,
    /// Its formatted traceback, if any.
    pub traceback: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.type_name)
        } else {
            write!(f, "{}: {}", self.type_name, self.message)
        }
    }
}

impl Error for RemoteError {}

/// Why an ask got no reply, as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub enum AskFailure {
    /// [`AskError::Stopped`].
    Stopped(Value),
    /// [`AskError::MailboxFull`].
    MailboxFull(Value),
    /// [`AskError::SelfAsk`].
    SelfAsk(Value),
    /// [`AskError::Timeout`].
    Timeout,
    /// [`AskError::NoReply`].
    NoReply,
    /// [`AskError::Failed`].
    Failed(RemoteError),
    /// [`AskError::Fault`].
    Fault(Fault),
}

/// The answer to a [`Call`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    /// Done, nothing to say.
    Done,
    /// A yes or no ([`Call::Demonitor`], [`Call::CancelTimer`]).
    Bool(bool),
    /// A number ([`Call::Restarts`], [`Call::MailboxLen`], a monitor id).
    Count(u64),
    /// An actor's state.
    State(u8),
    /// An ask's reply.
    Reply(Value),
    /// An actor, or none ([`Call::Lookup`], [`Call::Spawn`]).
    Actor(Option<AnyRef>),
    /// A timer, or none after shutdown.
    Timer(Option<u64>),
    /// How an actor stopped, or none before the timeout.
    Stopped(Option<StopReason>),
    /// A tell was refused: `full` (else the actor had stopped), with the message.
    NotSent {
        /// Whether the mailbox was full (else the actor was not running).
        full: bool,
        /// The message.
        msg: Value,
    },
    /// An ask failed.
    AskFailed(AskFailure),
    /// A spawn failed, with the error's text.
    SpawnFailed(String),
    /// The call was malformed for this side (an argument of the wrong kind).
    Refused(String),
}

/// What a runtime that is a node of a cluster offers the rest of the runtime (an
/// extension of its actor system, [`NodesExt`]): finding actors on any node, spawning on
/// a named node.
pub trait Nodes: Send + Sync {
    /// This node's name.
    fn this_node(&self) -> &str;
    /// The actor named `name` on any node of the cluster.
    fn lookup(&self, name: &str) -> Option<AnyRef>;
    /// Spawns an actor on `node`; on failure, the error's text.
    fn spawn_on(&self, node: &str, request: SpawnRequest) -> Result<AnyRef, String>;
}

/// The system extension under which a cluster's [`Nodes`] is found.
#[derive(Clone)]
pub struct NodesExt(pub std::sync::Arc<dyn Nodes>);

impl fmt::Debug for NodesExt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NodesExt").field(&self.0.this_node()).finish()
    }
}

/// What serving calls needs besides the actors themselves: the runtime's registry,
/// spawning and timers, and how handler errors are described.
pub trait ActorEnv: Send + Sync {
    /// The running actor with this name.
    fn lookup(&self, name: &str) -> Option<AnyRef>;
    /// Spawns an actor; on failure, the error's text.
    fn spawn(&self, request: SpawnRequest) -> Result<AnyRef, String>;
    /// Tells `msg` to `to` after `delay`; `None` after shutdown.
    fn send_after(&self, delay: Duration, to: AnyRef, msg: Value) -> Option<u64>;
    /// Cancels a timer; `true` if it had not fired.
    fn cancel_timer(&self, id: u64) -> bool;
    /// Describes a handler's error for the other side.
    fn describe(&self, error: &BoxError) -> RemoteError;
    /// The error a described one stands for on this side.
    fn rebuild(&self, error: RemoteError) -> BoxError;
    /// A Python `logging` record of an actor, for the runtime's `tracing`: emitted here
    /// ([`LogRecord::emit`]) unless the side overrides it (a process actor's child sends
    /// it to its parent). Whether it reached a `tracing` subscriber (without one, the
    /// actor's handler falls back to Python's `logging.lastResort`).
    fn log(&self, record: LogRecord) -> bool {
        record.emit()
    }
}

/// A Python `logging` record of an actor (see [`ActorEnv::log`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The record's `levelno` (`logging.WARNING` is 30).
    pub level: i64,
    /// The logger's name.
    pub logger: String,
    /// The formatted message (with the exception's traceback, if any).
    pub message: String,
    /// The actor's id.
    pub actor_id: u64,
    /// The actor's name.
    pub actor_name: Option<String>,
}

impl LogRecord {
    /// Emits the record as a `tracing` event of target `subactor::python`, with fields
    /// `actor.id`, `actor.name` and `logger`. Levels map as `logging`'s: ERROR and up to
    /// ERROR, WARNING to WARN, INFO to INFO, DEBUG to DEBUG, below to TRACE. Returns
    /// whether a `tracing` subscriber is installed in this process.
    pub fn emit(&self) -> bool {
        let LogRecord { level, logger, message, actor_id, actor_name } = self;
        let name = actor_name.as_deref().unwrap_or("");
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(target: "subactor::python", $level, actor.id = actor_id, actor.name = name, logger = %logger, "{message}")
            };
        }
        match level {
            40.. => event!(tracing::Level::ERROR),
            30..=39 => event!(tracing::Level::WARN),
            20..=29 => event!(tracing::Level::INFO),
            10..=19 => event!(tracing::Level::DEBUG),
            _ => event!(tracing::Level::TRACE),
        }
        tracing::dispatcher::has_been_set()
    }
}

/// Serves `call` against this side's actors.
pub fn serve(call: Call, env: &dyn ActorEnv) -> Answer {
    match call {
        Call::TryTell { to, msg } => sent(to.try_tell(msg)),
        Call::Tell { to, msg, timeout: None } => sent(to.blocking_tell(msg)),
        Call::Tell { to, msg, timeout: Some(timeout) } => sent(to.blocking_tell_timeout(msg, timeout)),
        Call::Ask { to, msg, timeout } => match to.blocking_ask(msg, timeout) {
            Ok(reply) => Answer::Reply(reply),
            Err(error) => Answer::AskFailed(ask_failure(error, env)),
        },
        Call::Stop(actor) => {
            actor.stop();
            Answer::Done
        }
        Call::Kill(actor) => {
            actor.kill();
            Answer::Done
        }
        Call::State(actor) => Answer::State(actor.state() as u8),
        Call::Restarts(actor) => Answer::Count(actor.restarts()),
        Call::MailboxLen(actor) => Answer::Count(actor.mailbox_len() as u64),
        Call::Wait { of, timeout: Some(timeout) } => Answer::Stopped(of.blocking_wait_timeout(timeout)),
        Call::Wait { of, timeout: None } => Answer::Stopped(Some(of.blocking_wait())),
        Call::Monitor { target, watcher } => Answer::Count(target.monitor_by(&watcher).as_u64()),
        Call::Demonitor { target, id } => Answer::Bool(target.demonitor(MonitorId::from_u64(id))),
        Call::Notify { to, msg } => {
            to.notify(msg);
            Answer::Done
        }
        Call::Lookup(name) => Answer::Actor(env.lookup(&name)),
        Call::Spawn(request) => match env.spawn(request) {
            Ok(actor) => Answer::Actor(Some(actor)),
            Err(error) => Answer::SpawnFailed(error),
        },
        Call::SendAfter { delay, to, msg } => Answer::Timer(env.send_after(delay, to, msg)),
        Call::CancelTimer(id) => Answer::Bool(env.cancel_timer(id)),
    }
}

fn sent(result: Result<(), SendError<Value>>) -> Answer {
    match result {
        Ok(()) => Answer::Done,
        Err(SendError::Full(msg)) => Answer::NotSent { full: true, msg },
        Err(SendError::Stopped(msg)) => Answer::NotSent { full: false, msg },
    }
}

/// An ask's error as it travels.
pub fn ask_failure(error: AskError<Value, BoxError>, env: &dyn ActorEnv) -> AskFailure {
    match error {
        AskError::Stopped(msg) => AskFailure::Stopped(msg),
        AskError::MailboxFull(msg) => AskFailure::MailboxFull(msg),
        AskError::SelfAsk(msg) => AskFailure::SelfAsk(msg),
        AskError::Timeout => AskFailure::Timeout,
        AskError::NoReply => AskFailure::NoReply,
        AskError::Failed(error) => AskFailure::Failed(env.describe(&error)),
        AskError::Fault(fault) => AskFailure::Fault(fault),
    }
}

/// The ask error a travelled one stands for.
pub fn ask_error(failure: AskFailure, env: &dyn ActorEnv) -> AskError<Value, BoxError> {
    match failure {
        AskFailure::Stopped(msg) => AskError::Stopped(msg),
        AskFailure::MailboxFull(msg) => AskError::MailboxFull(msg),
        AskFailure::SelfAsk(msg) => AskError::SelfAsk(msg),
        AskFailure::Timeout => AskError::Timeout,
        AskFailure::NoReply => AskError::NoReply,
        AskFailure::Failed(error) => AskError::Failed(env.rebuild(error)),
        AskFailure::Fault(fault) => AskError::Fault(fault),
    }
}

/// An actor state from its number in [`Answer::State`].
pub fn state_of(n: u8) -> ActorState {
    match n {
        0 => ActorState::Starting,
        1 => ActorState::Running,
        2 => ActorState::Stopping,
        _ => ActorState::Stopped,
    }
}

/// A `Down` for `actor`, stopped for `reason`.
pub fn down(actor: &AnyRef, reason: StopReason) -> Down {
    Down { id: actor.id(), name: actor.name().map(Into::into), reason }
}

#[cfg(test)]
mod tests;
