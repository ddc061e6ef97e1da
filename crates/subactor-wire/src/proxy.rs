//! References that reach actors through a link: [`ProxyRef`] (an actor that lives on
//! the other side) and [`DeadRef`] (an actor that was known once and is gone).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use subactor_core::codec::RefAddr;
use subactor_core::{
    ActorId, ActorState, AnyRef, AskError, BoxError, DeadLetterReason, DeadLetters, Down, MonitorId, Outcome,
    Placement, RemoteActor, SendError, StopReason, Value, ValueCallback,
};
use tracing::{debug, warn};

use crate::LinkError;
use crate::call::{ActorEnv, Answer, Call, ask_error, state_of};

/// A call that could not be made or answered.
#[derive(Debug)]
pub struct CallFailed {
    /// What went wrong on the link.
    pub error: LinkError,
    /// The call, when it was never sent (so its message can be handed back).
    pub call: Option<Box<Call>>,
}

/// Makes calls to the other side of a link: implemented by the link.
pub trait Caller: Send + Sync {
    /// Sends `call` and waits for its answer, up to `wait` (forever with `None`).
    fn call(&self, call: Call, wait: Option<Duration>) -> Result<Answer, CallFailed>;
    /// How errors described by the other side are rebuilt here.
    fn env(&self) -> &dyn ActorEnv;
}

/// How much longer than an ask's own timeout a caller waits for the other side's
/// answer (which reports the timeout itself) before it gives up on the link.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// A reference to an actor on the other side of a link.
pub struct ProxyRef {
    addr: RefAddr,
    caller: Arc<dyn Caller>,
}

impl ProxyRef {
    /// The reference `addr` names, reached through `caller`.
    pub fn new(addr: RefAddr, caller: Arc<dyn Caller>) -> ProxyRef {
        ProxyRef { addr, caller }
    }

    /// How the reference travels.
    pub fn addr(&self) -> &RefAddr {
        &self.addr
    }

    fn me(&self) -> AnyRef {
        AnyRef::remote(Arc::new(ProxyRef { addr: self.addr.clone(), caller: Arc::clone(&self.caller) }))
    }

    fn call(&self, call: Call, wait: Option<Duration>) -> Result<Answer, CallFailed> {
        self.caller.call(call, wait)
    }

    fn send(&self, call: Call) -> Result<(), SendError<Value>> {
        match self.call(call, None) {
            Ok(Answer::Done) => Ok(()),
            Ok(Answer::NotSent { full: true, msg }) => Err(SendError::Full(msg)),
            Ok(Answer::NotSent { full: false, msg }) => Err(SendError::Stopped(msg)),
            Ok(other) => Err(SendError::Stopped(unexpected(other))),
            Err(failed) => Err(SendError::Stopped(message_of(failed))),
        }
    }
}

/// The message of a call that failed on the link, if it is still there.
fn message_of(failed: CallFailed) -> Value {
    debug!(error = %failed.error, "a call across the link failed");
    match failed.call.map(|call| *call) {
        Some(Call::TryTell { msg, .. } | Call::Tell { msg, .. } | Call::Ask { msg, .. }) => msg,
        _ => Value::None,
    }
}

fn unexpected(answer: Answer) -> Value {
    warn!(?answer, "an answer that does not fit its call");
    Value::None
}

impl RemoteActor for ProxyRef {
    fn id(&self) -> ActorId {
        ActorId::from_u64(self.addr.id)
    }

    fn name(&self) -> Option<&str> {
        self.addr.name.as_deref()
    }

    fn node(&self) -> Option<&str> {
        self.addr.node.as_deref()
    }

    fn placement(&self) -> Placement {
        self.addr.placement
    }

    fn state(&self) -> ActorState {
        match self.call(Call::State(self.me()), None) {
            Ok(Answer::State(n)) => state_of(n),
            _ => ActorState::Stopped,
        }
    }

    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        self.send(Call::TryTell { to: self.me(), msg })
    }

    fn tell(&self, msg: Value, timeout: Option<Duration>) -> Result<(), SendError<Value>> {
        self.send(Call::Tell { to: self.me(), msg, timeout })
    }

    fn ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        match self.call(Call::Ask { to: self.me(), msg, timeout }, Some(timeout + ANSWER_GRACE)) {
            Ok(Answer::Reply(reply)) => Ok(reply),
            Ok(Answer::AskFailed(failure)) => Err(ask_error(failure, self.caller.env())),
            Ok(other) => {
                unexpected(other);
                Err(AskError::NoReply)
            }
            Err(CallFailed { error: LinkError::Timeout, .. }) => Err(AskError::Timeout),
            Err(failed @ CallFailed { call: Some(_), .. }) => Err(AskError::Stopped(message_of(failed))),
            Err(CallFailed { .. }) => Err(AskError::NoReply),
        }
    }

    fn ask_then(&self, msg: Value, timeout: Option<Duration>, then: ValueCallback) -> Result<(), SendError<Value>> {
        let me = ProxyRef { addr: self.addr.clone(), caller: Arc::clone(&self.caller) };
        // `timeout` bounds the wait for room (the other side's backpressure gives it, as
        // for a node's link); no reply timeout applies: the outcome comes when the
        // handler ends, or as "not handled" if the link goes. (It bounded the whole ask
        // before: a short room timeout failed asks that had room.)
        let _ = timeout;
        // The answer comes on a thread of its own, as a local actor's callback runs on
        // that actor's thread.
        let spawned = std::thread::Builder::new().name("subactor-ask".into()).spawn(move || {
            let timeout = Duration::from_secs(u64::from(u32::MAX));
            then(match me.ask(msg, timeout) {
                Ok(reply) => Outcome::Replied(reply),
                Err(AskError::Failed(error)) => Outcome::Failed(error),
                Err(AskError::Fault(fault)) => Outcome::Fault(fault),
                Err(_) => Outcome::NotHandled,
            });
        });
        spawned.map(drop).map_err(|error| {
            warn!(%error, "cannot start a thread for an ask across the link");
            SendError::Full(Value::None)
        })
    }

    fn mailbox_len(&self) -> usize {
        match self.call(Call::MailboxLen(self.me()), None) {
            Ok(Answer::Count(n)) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        }
    }

    fn stop(&self) {
        let _ = self.call(Call::Stop(self.me()), None);
    }

    fn kill(&self) {
        let _ = self.call(Call::Kill(self.me()), None);
    }

    fn wait(&self, timeout: Option<Duration>) -> Option<StopReason> {
        match self.call(Call::Wait { of: self.me(), timeout }, timeout.map(|t| t + ANSWER_GRACE)) {
            Ok(Answer::Stopped(reason)) => reason,
            Ok(other) => {
                unexpected(other);
                None
            }
            Err(CallFailed { error: LinkError::Timeout, .. }) => None,
            Err(failed) => Some(StopReason::Failed(format!("the link to the actor was lost: {}", failed.error).into())),
        }
    }

    fn restarts(&self) -> u64 {
        match self.call(Call::Restarts(self.me()), None) {
            Ok(Answer::Count(n)) => n,
            _ => 0,
        }
    }

    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        let me = ProxyRef { addr: self.addr.clone(), caller: Arc::clone(&self.caller) };
        let (id, cancelled) = LocalMonitors::add();
        let watch = move || {
            let reason = loop {
                if let Some(reason) = me.wait(Some(Duration::from_secs(1))) {
                    break reason;
                }
                if cancelled.load(Ordering::Acquire) {
                    return;
                }
            };
            if LocalMonitors::take(id) {
                f(&Down { id: me.id(), name: me.name().map(Into::into), reason });
            }
        };
        if let Err(error) = std::thread::Builder::new().name("subactor-monitor".into()).spawn(watch) {
            warn!(%error, "cannot start a thread to monitor an actor across the link");
        }
        id
    }

    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        match self.call(Call::Monitor { target: self.me(), watcher: watcher.clone() }, None) {
            Ok(Answer::Count(n)) => MonitorId::from_u64(n),
            _ => {
                // The link is gone, and with it the actor as far as we can tell.
                let reason = StopReason::Failed("the link to the actor was lost".into());
                watcher.notify(Value::Down(Box::new(Down {
                    id: self.id(),
                    name: self.name().map(Into::into),
                    reason,
                })));
                MonitorId::from_u64(0)
            }
        }
    }

    fn demonitor(&self, id: MonitorId) -> bool {
        if LocalMonitors::is_local(id) {
            return LocalMonitors::take(id);
        }
        matches!(self.call(Call::Demonitor { target: self.me(), id: id.as_u64() }, None), Ok(Answer::Bool(true)))
    }

    fn notify(&self, msg: Value) {
        let _ = self.call(Call::Notify { to: self.me(), msg }, None);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Monitors with a callback on references across a link: each waits on a thread of
/// its own; their ids have the top bit set, so they never clash with the other side's.
struct LocalMonitors;

const LOCAL_MONITOR: u64 = 1 << 63;

impl LocalMonitors {
    fn table() -> &'static Mutex<HashMap<u64, Arc<AtomicBool>>> {
        static TABLE: OnceLock<Mutex<HashMap<u64, Arc<AtomicBool>>>> = OnceLock::new();
        TABLE.get_or_init(Mutex::default)
    }

    fn add() -> (MonitorId, Arc<AtomicBool>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = LOCAL_MONITOR | NEXT.fetch_add(1, Ordering::Relaxed);
        let cancelled = Arc::new(AtomicBool::new(false));
        Self::table().lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, Arc::clone(&cancelled));
        (MonitorId::from_u64(id), cancelled)
    }

    fn is_local(id: MonitorId) -> bool {
        id.as_u64() & LOCAL_MONITOR != 0
    }

    /// Removes the monitor; `true` if it was still there (it had neither fired nor been
    /// removed).
    fn take(id: MonitorId) -> bool {
        let removed = Self::table().lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id.as_u64());
        if let Some(cancelled) = &removed {
            cancelled.store(true, Ordering::Release);
        }
        removed.is_some()
    }
}

/// A reference to an actor that this side no longer knows (it stopped, or was never
/// sent here): it behaves as a stopped actor, and what is sent to it is a dead letter.
pub struct DeadRef {
    addr: RefAddr,
    dead_letters: Option<Arc<DeadLetters>>,
}

impl DeadRef {
    /// A stopped actor named by `addr`; undelivered messages are recorded in
    /// `dead_letters`.
    pub fn new(addr: RefAddr, dead_letters: Option<Arc<DeadLetters>>) -> DeadRef {
        DeadRef { addr, dead_letters }
    }

    fn dead_letter(&self, msg: &Value) {
        match &self.dead_letters {
            Some(sink) => sink.record(self.id(), self.name(), DeadLetterReason::NotRunning, msg),
            None => warn!(target: "subactor::dead_letters", recipient = %self.id(), message = %msg, "undelivered"),
        }
    }

    fn reason() -> StopReason {
        StopReason::Failed("the actor is no longer running".into())
    }

    fn down(&self) -> Down {
        Down { id: self.id(), name: self.name().map(Into::into), reason: Self::reason() }
    }
}

impl RemoteActor for DeadRef {
    fn id(&self) -> ActorId {
        ActorId::from_u64(self.addr.id)
    }

    fn name(&self) -> Option<&str> {
        self.addr.name.as_deref()
    }

    fn node(&self) -> Option<&str> {
        self.addr.node.as_deref()
    }

    fn placement(&self) -> Placement {
        self.addr.placement
    }

    fn state(&self) -> ActorState {
        ActorState::Stopped
    }

    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        self.dead_letter(&msg);
        Err(SendError::Stopped(msg))
    }

    fn tell(&self, msg: Value, _timeout: Option<Duration>) -> Result<(), SendError<Value>> {
        self.try_tell(msg)
    }

    fn ask(&self, msg: Value, _timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        self.dead_letter(&msg);
        Err(AskError::Stopped(msg))
    }

    fn ask_then(&self, msg: Value, _timeout: Option<Duration>, _then: ValueCallback) -> Result<(), SendError<Value>> {
        self.try_tell(msg)
    }

    fn mailbox_len(&self) -> usize {
        0
    }

    fn stop(&self) {}

    fn kill(&self) {}

    fn wait(&self, _timeout: Option<Duration>) -> Option<StopReason> {
        Some(Self::reason())
    }

    fn restarts(&self) -> u64 {
        0
    }

    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        f(&self.down());
        MonitorId::from_u64(0)
    }

    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        watcher.notify(Value::Down(Box::new(self.down())));
        MonitorId::from_u64(0)
    }

    fn demonitor(&self, _id: MonitorId) -> bool {
        false
    }

    fn notify(&self, msg: Value) {
        self.dead_letter(&msg);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl std::fmt::Debug for ProxyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyRef").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadRef").finish_non_exhaustive()
    }
}
