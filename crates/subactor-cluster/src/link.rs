//! The way out to one node: a [`Link`] (an ordered outbox of calls, sent in batches,
//! acknowledged, sent again when a mailbox there stayed full) and [`NodeRef`], a
//! reference to an actor of that node.
//!
//! Every call from this node to another goes through that node's outbox, in the order
//! made: per-sender FIFO holds across the network, and a bounded outbox is the
//! backpressure (a sender waits when it is full). A tell returns once it is in the
//! outbox, and is kept here until the other node says its handler has run: if that node
//! refuses it (the actor is gone), the handler fails, or the node goes down first, the
//! tell becomes a dead letter here, with its message. At most [`WINDOW`] tells wait for
//! that word at a time; past it, sending pauses (and the outbox fills). Asks and other
//! calls get their answer as a reply; when the node goes down, they fail at once.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use subactor_core::codec::RefAddr;
use subactor_core::{
    ActorId, ActorState, AnyRef, AskError, BoxError, DeadLetterReason, Down, MonitorId, Outcome, Placement,
    RemoteActor, SendError, StopReason, Value, ValueCallback,
};
use subactor_wire::call::{ask_error, state_of};
use subactor_wire::{Answer, Call};
use tracing::{debug, warn};

use crate::proto::{Ack, Batch, Item};
use crate::{Inner, SendFailure, lock};

/// At most this many calls in one batch.
const MAX_ITEMS: usize = 512;
/// And about this many encoded bytes (NATS messages are limited; larger batches travel
/// in parts).
const MAX_BATCH_BYTES: usize = 256 << 10;
/// How much longer than an ask's own timeout to wait for its answer from the network.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// At most this many tells of one link may wait for their handler to have run.
pub(crate) const WINDOW: usize = 8192;

/// A call waiting in the outbox.
pub(crate) struct Outgoing {
    pub(crate) corr: u64,
    pub(crate) call: Call,
    /// The sender's trace context (`subactor_core::trace`).
    pub(crate) trace: Option<subactor_core::trace::TraceContext>,
}

/// Who waits for an answer.
enum Waiting {
    /// A thread, on a channel.
    Caller(flume::Sender<Answer>),
    /// A callback (`ask_then`).
    Callback(ValueCallback),
}

/// The outgoing side of this node's link to one other node.
pub(crate) struct Link {
    pub(crate) node: String,
    outbox: flume::Sender<Outgoing>,
    pending: Mutex<HashMap<u64, Waiting>>,
    /// Callbacks of asks made with `ask_then`, run in order on the link's callback
    /// thread (they may block, as a pipeline's do while the next stage is full).
    callbacks: std::sync::OnceLock<flume::Sender<(ValueCallback, Answer)>>,
    /// Tells sent and not yet handled there (see [`Told`]).
    told: Mutex<Told>,
    /// Rung when tells are confirmed (the window has room again).
    confirmed: tokio::sync::Notify,
    /// The batch that is out without a reply subject (its `seq`), and where its ack goes
    /// when it comes with the answers.
    expect: Mutex<Option<(u64, tokio::sync::oneshot::Sender<Ack>)>>,
    next_corr: AtomicU64,
    down: AtomicBool,
    cluster: Weak<Inner>,
}

impl Link {
    /// A link to `node` and the receiving end of its outbox (for [`run`]).
    pub(crate) fn new(node: &str, capacity: usize, cluster: Weak<Inner>) -> (Arc<Link>, flume::Receiver<Outgoing>) {
        let (tx, rx) = flume::bounded(capacity);
        let link = Arc::new(Link {
            node: node.to_owned(),
            outbox: tx,
            pending: Mutex::default(),
            callbacks: std::sync::OnceLock::new(),
            told: Mutex::default(),
            confirmed: tokio::sync::Notify::new(),
            expect: Mutex::default(),
            next_corr: AtomicU64::new(1),
            down: AtomicBool::new(false),
            cluster,
        });
        (link, rx)
    }

    /// Whether the node is down.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The node came back (a new heartbeat): calls may go again.
    pub(crate) fn up(&self) {
        self.down.store(false, Ordering::Release);
    }

    /// Waits for the ack of batch `seq` (sent without a reply subject).
    pub(crate) fn expect_ack(&self, seq: u64) -> tokio::sync::oneshot::Receiver<Ack> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *lock(&self.expect) = Some((seq, tx));
        rx
    }

    /// No longer waits for an ack that came with the answers.
    pub(crate) fn unexpect_ack(&self) {
        lock(&self.expect).take();
    }

    /// An ack came with the answers: for the batch that is out, if it is its own (an ack
    /// of a batch sent twice may come twice).
    pub(crate) fn acked(&self, ack: Ack) {
        let mut expect = lock(&self.expect);
        if expect.as_ref().is_some_and(|(seq, _)| *seq == ack.seq) {
            if let Some((_, tx)) = expect.take() {
                let _ = tx.send(ack);
            }
        }
    }

    /// Delivers the answer to call `corr`: to the caller waiting for it, or, for a tell,
    /// the word that its handler ran (a failure makes it a dead letter here).
    pub(crate) fn answer(&self, corr: u64, answer: Answer) {
        let waiting = lock(&self.pending).remove(&corr);
        match waiting {
            Some(Waiting::Caller(tx)) => {
                let _ = tx.send(answer);
                return;
            }
            Some(Waiting::Callback(then)) => {
                self.run_callback(then, answer);
                return;
            }
            None => {}
        }
        let confirmed = {
            let mut told = lock(&self.told);
            match told.unconfirmed.remove(&corr) {
                Some(call) => Some((call, answer)),
                None => {
                    // The word that its handler ran came before the batch's ack (they
                    // travel apart): kept until the ack arrives.
                    if told.in_flight.contains(&corr) {
                        told.early.insert(corr, answer);
                    }
                    None
                }
            }
        };
        if let Some((call, answer)) = confirmed {
            self.confirm(&call, answer);
        }
    }

    /// A tell's handler ran there (or failed, or never ran: a dead letter here).
    fn confirm(&self, call: &Call, answer: Answer) {
        self.confirmed.notify_one();
        match answer {
            Answer::Done | Answer::Reply(_) => {}
            Answer::AskFailed(subactor_wire::AskFailure::Failed(error)) => {
                warn!(node = %self.node, %error, "a tell failed on another node");
                self.dead_letter(call, DeadLetterReason::Failed);
            }
            other => {
                debug!(node = %self.node, ?other, "a tell was not handled on another node");
                self.dead_letter(call, DeadLetterReason::NotRunning);
            }
        }
    }

    /// The node is down: every call waiting for an answer fails at once, and tells it did
    /// not confirm, or that wait in the outbox, are reported as dead letters.
    pub(crate) fn fail_all(&self) {
        self.down.store(true, Ordering::Release);
        // A batch out waits no longer for its ack.
        self.unexpect_ack();
        let pending = std::mem::take(&mut *lock(&self.pending));
        for waiting in pending.into_values() {
            if let Waiting::Callback(then) = waiting {
                self.run_callback(then, Answer::AskFailed(subactor_wire::AskFailure::NoReply));
            }
        }
        let unconfirmed = {
            let mut told = lock(&self.told);
            told.early.clear();
            std::mem::take(&mut told.unconfirmed)
        };
        for call in unconfirmed.values() {
            self.dead_letter(call, DeadLetterReason::NotRunning);
        }
        self.confirmed.notify_one();
        // The sender task drains the outbox itself while the link is down.
    }

    /// How many tells wait for their handler to run there.
    pub(crate) fn unconfirmed(&self) -> usize {
        lock(&self.told).unconfirmed.len()
    }

    /// Runs an `ask_then` callback with its answer, on the link's callback thread.
    fn run_callback(&self, then: ValueCallback, answer: Answer) {
        let tx = self.callbacks.get_or_init(|| {
            let (tx, rx) = flume::unbounded::<(ValueCallback, Answer)>();
            let cluster = self.cluster.clone();
            let spawned =
                std::thread::Builder::new().name(format!("subactor-callbacks:{}", self.node)).spawn(move || {
                    for (then, answer) in rx.iter() {
                        then(outcome_of(answer, &cluster));
                    }
                });
            if let Err(error) = spawned {
                warn!(%error, "cannot start a link's callback thread");
            }
            tx
        });
        if let Err(flume::SendError((then, answer))) = tx.send((then, answer)) {
            then(outcome_of(answer, &self.cluster));
        }
    }

    /// Sends an ask whose outcome goes to `then`.
    fn ask_then(&self, call: Call, then: ValueCallback) -> Result<(), Box<Call>> {
        if self.is_down() {
            return Err(Box::new(call));
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(corr, Waiting::Callback(then));
        if let Err(flume::SendError(out)) =
            self.outbox.send(Outgoing { corr, call, trace: subactor_core::trace::current() })
        {
            let then = lock(&self.pending).remove(&corr);
            drop(then);
            return Err(Box::new(out.call));
        }
        Ok(())
    }

    /// Makes a call and waits for its answer; `None` if the node is down or the answer
    /// did not come within `wait`.
    fn call(&self, call: Call, wait: Option<Duration>) -> Result<Answer, Box<Call>> {
        if self.is_down() {
            return Err(Box::new(call));
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = flume::bounded(1);
        lock(&self.pending).insert(corr, Waiting::Caller(tx));
        if let Err(flume::SendError(out)) =
            self.outbox.send(Outgoing { corr, call, trace: subactor_core::trace::current() })
        {
            lock(&self.pending).remove(&corr);
            return Err(Box::new(out.call));
        }
        let answer = match wait {
            Some(wait) => rx.recv_timeout(wait).ok(),
            None => rx.recv().ok(),
        };
        if answer.is_none() {
            lock(&self.pending).remove(&corr);
        }
        answer.ok_or_else(|| Box::new(Call::CancelTimer(0)))
    }

    /// Queues a tell; waits for room up to `timeout` (forever with `None`).
    fn tell(&self, call: Call, timeout: Option<Duration>) -> Result<(), (Box<Call>, bool)> {
        if self.is_down() {
            return Err((Box::new(call), false));
        }
        // Every tell is answered once handled there (see the module docs).
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        let out = Outgoing { corr, call, trace: subactor_core::trace::current() };
        match timeout {
            None => self.outbox.send(out).map_err(|flume::SendError(out)| (Box::new(out.call), false)),
            Some(timeout) if timeout.is_zero() => self.outbox.try_send(out).map_err(|e| match e {
                flume::TrySendError::Full(out) => (Box::new(out.call), true),
                flume::TrySendError::Disconnected(out) => (Box::new(out.call), false),
            }),
            Some(timeout) => self.outbox.send_timeout(out, timeout).map_err(|e| match e {
                flume::SendTimeoutError::Timeout(out) => (Box::new(out.call), true),
                flume::SendTimeoutError::Disconnected(out) => (Box::new(out.call), false),
            }),
        }
    }

    /// Records an undelivered call as dead letters here (its message, if it had one).
    fn dead_letter(&self, call: &Call, reason: DeadLetterReason) {
        let Some(cluster) = self.cluster.upgrade() else { return };
        let (to, msg) = match call {
            Call::Tell { to, msg, .. } | Call::TryTell { to, msg } | Call::Ask { to, msg, .. } => (to, msg),
            Call::Notify { to, msg } => (to, msg),
            _ => return,
        };
        match cluster.dead_letters() {
            Some(sink) => sink.record(to.id(), to.name(), reason, msg),
            None => warn!(target: "subactor::dead_letters", to = ?to, "a message for another node was not delivered"),
        }
    }
}

/// Sends the link's outbox to its node, batch after batch, until the cluster is left.
pub(crate) async fn run(link: Arc<Link>, outbox: flume::Receiver<Outgoing>, cluster: Weak<Inner>) {
    let mut batch: VecDeque<Outgoing> = VecDeque::new();
    let mut seq = 0u64;
    loop {
        if batch.is_empty() {
            match outbox.recv_async().await {
                Ok(first) => batch.push_back(first),
                Err(_) => return,
            }
        }
        if link.is_down() {
            for out in batch.drain(..).chain(outbox.drain()) {
                link.dead_letter(&out.call, DeadLetterReason::NotRunning);
            }
            continue;
        }
        // No more tells in flight than the window: wait for confirmations.
        while !link.is_down() && link.unconfirmed() >= WINDOW {
            let _ = tokio::time::timeout(Duration::from_millis(50), link.confirmed.notified()).await;
        }
        let Some(inner) = cluster.upgrade() else { return };
        // Encode what is there, within the limits; a call that cannot be encoded fails
        // alone.
        let mut items = Vec::new();
        let mut bytes = 0;
        let mut taken = 0;
        while taken < MAX_ITEMS && bytes < MAX_BATCH_BYTES {
            if taken == batch.len() {
                match outbox.try_recv() {
                    Ok(next) => batch.push_back(next),
                    Err(_) => break,
                }
            }
            let out = &batch[taken];
            match inner.encode(&Item { corr: out.corr, call: clone_call(&out.call), trace: out.trace }) {
                Ok(encoded) => {
                    bytes += encoded.len();
                    items.push(serde_bytes::ByteBuf::from(encoded));
                    taken += 1;
                }
                Err(error) => {
                    warn!(%error, node = %link.node, "a call cannot be sent to another node");
                    if let Some(out) = batch.remove(taken) {
                        if out.corr != 0 {
                            link.answer(out.corr, Answer::Refused(error));
                        } else {
                            link.dead_letter(&out.call, DeadLetterReason::Failed);
                        }
                    }
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        // Their word may come back before the batch's ack: see `answer`.
        lock(&link.told)
            .in_flight
            .extend(batch.iter().take(taken).filter(|out| is_tell(&out.call)).map(|out| out.corr));
        seq += 1;
        // The acks of answers from that node ride along (see `proto`).
        let owed = inner.take_owed(&link.node);
        let frame = Batch { from: inner.node.clone(), incarnation: inner.incarnation, seq, items, taken: owed };
        drop(inner);
        let mut first = true;
        let ack = loop {
            let Some(inner) = cluster.upgrade() else { return };
            if link.is_down() {
                break None;
            }
            // Published first (its ack comes with the answers); sent again as a request.
            let publish = std::mem::take(&mut first);
            match inner.send_batch(&link, &frame, publish).await {
                Ok(ack) => break Some(Ok(ack)),
                Err(SendFailure::Transport(error)) => {
                    debug!(%error, node = %link.node, "sending a batch failed: trying again");
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(SendFailure::Refused(error)) => break Some(Err(error)),
            }
        };
        let Ack { accepted, refused, .. } = match ack {
            None => {
                // Down: the batch becomes dead letters (above, on the next turn).
                lock(&link.told).out_of_flight(batch.iter().take(taken));
                continue;
            }
            Some(Ok(ack)) => ack,
            Some(Err(error)) => {
                // Sending it again would not help: its calls fail (their askers get the
                // reason, its tells are dead letters here).
                warn!(%error, node = %link.node, "a batch cannot reach another node: its calls fail");
                lock(&link.told).out_of_flight(batch.iter().take(taken));
                for out in batch.drain(..taken) {
                    if out.corr != 0 && !is_tell(&out.call) {
                        link.answer(out.corr, Answer::Refused(error.clone()));
                    } else {
                        link.dead_letter(&out.call, DeadLetterReason::Failed);
                    }
                }
                continue;
            }
        };
        let accepted = (accepted as usize).min(taken);
        let mut refused: HashMap<u32, Answer> = refused.into_iter().collect();
        let (mut confirmed, mut undelivered, mut answered) = (Vec::new(), Vec::new(), Vec::new());
        {
            let mut told = lock(&link.told);
            for (i, out) in batch.drain(..accepted).enumerate() {
                let refusal = refused.remove(&u32::try_from(i).unwrap_or(u32::MAX));
                let tell = is_tell(&out.call);
                told.in_flight.remove(&out.corr);
                let early = told.early.remove(&out.corr);
                match (refusal, early) {
                    // A tell the other node could not deliver: a dead letter here.
                    (Some(_), _) if tell => undelivered.push(out.call),
                    (Some(answer), _) => answered.push((out.corr, answer)),
                    // Its handler has run already: the word came before this ack.
                    (None, Some(answer)) if tell => confirmed.push((out.call, answer)),
                    // Kept until its handler has run there (its answer comes as a reply).
                    (None, _) if tell => {
                        told.unconfirmed.insert(out.corr, out.call);
                    }
                    (None, _) => {}
                }
            }
            // Not accepted (a mailbox stayed full there): sent again, not handled yet.
            told.out_of_flight(batch.iter().take(taken - accepted));
        }
        for (call, answer) in confirmed {
            link.confirm(&call, answer);
        }
        for call in undelivered {
            link.dead_letter(&call, DeadLetterReason::NotRunning);
        }
        for (corr, answer) in answered {
            link.answer(corr, answer);
        }
        if link.is_down() {
            // It went down while this batch was out: what was just taken is unconfirmed.
            link.fail_all();
        }
        if accepted < taken {
            // A mailbox there stayed full: the rest goes again, after a pause.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The tells of a link that wait for word that their handler ran there.
#[derive(Default)]
struct Told {
    /// Accepted there (their batch was acknowledged), not yet handled: by correlation id,
    /// kept for their messages.
    unconfirmed: HashMap<u64, Call>,
    /// In a batch that is out, not yet acknowledged.
    in_flight: HashSet<u64>,
    /// Answers to tells of `in_flight` that came before their batch's ack.
    early: HashMap<u64, Answer>,
}

impl Told {
    /// These calls are no longer in a batch that is out.
    fn out_of_flight<'a>(&mut self, calls: impl Iterator<Item = &'a Outgoing>) {
        for out in calls {
            self.in_flight.remove(&out.corr);
            self.early.remove(&out.corr);
        }
    }
}

fn is_tell(call: &Call) -> bool {
    matches!(call, Call::Tell { .. } | Call::TryTell { .. })
}

/// A copy of a call for encoding (the original stays until the batch is acknowledged).
fn clone_call(call: &Call) -> Call {
    match call {
        Call::TryTell { to, msg } => Call::TryTell { to: to.clone(), msg: msg.clone() },
        Call::Tell { to, msg, timeout } => Call::Tell { to: to.clone(), msg: msg.clone(), timeout: *timeout },
        Call::Ask { to, msg, timeout } => Call::Ask { to: to.clone(), msg: msg.clone(), timeout: *timeout },
        Call::Stop(a) => Call::Stop(a.clone()),
        Call::Kill(a) => Call::Kill(a.clone()),
        Call::State(a) => Call::State(a.clone()),
        Call::Restarts(a) => Call::Restarts(a.clone()),
        Call::MailboxLen(a) => Call::MailboxLen(a.clone()),
        Call::Wait { of, timeout } => Call::Wait { of: of.clone(), timeout: *timeout },
        Call::Monitor { target, watcher } => Call::Monitor { target: target.clone(), watcher: watcher.clone() },
        Call::Demonitor { target, id } => Call::Demonitor { target: target.clone(), id: *id },
        Call::Notify { to, msg } => Call::Notify { to: to.clone(), msg: msg.clone() },
        Call::Lookup(name) => Call::Lookup(name.clone()),
        Call::Spawn(request) => Call::Spawn(request.clone()),
        Call::SendAfter { delay, to, msg } => Call::SendAfter { delay: *delay, to: to.clone(), msg: msg.clone() },
        Call::CancelTimer(id) => Call::CancelTimer(*id),
    }
}

/// A reference to an actor of another node.
pub(crate) struct NodeRef {
    pub(crate) addr: RefAddr,
    pub(crate) link: Arc<Link>,
}

impl NodeRef {
    fn me(&self) -> AnyRef {
        AnyRef::remote(Arc::new(NodeRef { addr: self.addr.clone(), link: Arc::clone(&self.link) }))
    }

    /// Makes a call on this node and waits for the answer; `None` when the node is down
    /// (or the answer did not come within `wait`).
    pub(crate) fn call(&self, call: Call, wait: Option<Duration>) -> Option<Answer> {
        self.link.call(call, wait).ok()
    }

    fn down(&self) -> Down {
        Down {
            id: ActorId::from_u64(self.addr.id),
            name: self.addr.name.as_deref().map(Into::into),
            reason: StopReason::Failed(format!("node {} is down", self.link.node).into()),
        }
    }

    fn rebuild(&self, error: subactor_wire::RemoteError) -> BoxError {
        match self.link.cluster.upgrade().and_then(|c| c.env()) {
            Some(env) => env.rebuild(error),
            None => Box::new(error),
        }
    }
}

fn message_of(call: Call) -> Value {
    match call {
        Call::Tell { msg, .. } | Call::TryTell { msg, .. } | Call::Ask { msg, .. } => msg,
        _ => Value::None,
    }
}

impl RemoteActor for NodeRef {
    fn id(&self) -> ActorId {
        ActorId::from_u64(self.addr.id)
    }

    fn name(&self) -> Option<&str> {
        self.addr.name.as_deref()
    }

    fn node(&self) -> Option<&str> {
        Some(&self.link.node)
    }

    fn placement(&self) -> Placement {
        self.addr.placement
    }

    fn state(&self) -> ActorState {
        match self.call(Call::State(self.me()), None) {
            Some(Answer::State(n)) => state_of(n),
            _ => ActorState::Stopped,
        }
    }

    fn try_tell(&self, msg: Value) -> Result<(), SendError<Value>> {
        self.tell(msg, Some(Duration::ZERO))
    }

    fn tell(&self, msg: Value, timeout: Option<Duration>) -> Result<(), SendError<Value>> {
        match self.link.tell(Call::Tell { to: self.me(), msg, timeout: None }, timeout) {
            Ok(()) => Ok(()),
            Err((call, true)) => Err(SendError::Full(message_of(*call))),
            Err((call, false)) => {
                self.link.dead_letter(&call, DeadLetterReason::NotRunning);
                Err(SendError::Stopped(message_of(*call)))
            }
        }
    }

    fn ask(&self, msg: Value, timeout: Duration) -> Result<Value, AskError<Value, BoxError>> {
        match self.link.call(Call::Ask { to: self.me(), msg, timeout }, Some(timeout + ANSWER_GRACE)) {
            Ok(Answer::Reply(reply)) => Ok(reply),
            Ok(Answer::AskFailed(failure)) => Err(match failure {
                subactor_wire::AskFailure::Failed(error) => AskError::Failed(self.rebuild(error)),
                other => ask_error(other, &NoEnv),
            }),
            Ok(Answer::Refused(why)) => Err(AskError::Failed(Box::new(subactor_wire::RemoteError {
                type_name: "subactor.Refused".into(),
                message: why,
                traceback: String::new(),
            }))),
            Ok(_) => Err(AskError::NoReply),
            Err(call) => match *call {
                Call::Ask { msg, .. } => Err(AskError::Stopped(msg)),
                _ if self.link.is_down() => Err(AskError::NoReply),
                _ => Err(AskError::Timeout),
            },
        }
    }

    fn ask_then(&self, msg: Value, timeout: Option<Duration>, then: ValueCallback) -> Result<(), SendError<Value>> {
        // `timeout` bounds the wait for room, which the other node's backpressure gives
        // (a full mailbox there holds the link's batches back). No reply timeout applies:
        // the outcome comes when the handler ends, or as "not handled" if the node goes.
        let _ = timeout;
        let timeout = Duration::from_secs(u64::from(u32::MAX));
        self.link.ask_then(Call::Ask { to: self.me(), msg, timeout }, then).map_err(|call| {
            self.link.dead_letter(&call, DeadLetterReason::NotRunning);
            SendError::Stopped(message_of(*call))
        })
    }

    fn mailbox_len(&self) -> usize {
        match self.call(Call::MailboxLen(self.me()), None) {
            Some(Answer::Count(n)) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        }
    }

    fn stop(&self) {
        let _ = self.link.tell(Call::Stop(self.me()), None);
    }

    fn kill(&self) {
        let _ = self.link.tell(Call::Kill(self.me()), None);
    }

    fn wait(&self, timeout: Option<Duration>) -> Option<StopReason> {
        match self.call(Call::Wait { of: self.me(), timeout }, timeout.map(|t| t + ANSWER_GRACE)) {
            Some(Answer::Stopped(reason)) => reason,
            Some(_) => None,
            None if self.link.is_down() => Some(self.down().reason),
            None => None,
        }
    }

    fn restarts(&self) -> u64 {
        match self.call(Call::Restarts(self.me()), None) {
            Some(Answer::Count(n)) => n,
            _ => 0,
        }
    }

    fn monitor(&self, f: Box<dyn FnOnce(&Down) + Send>) -> MonitorId {
        let me = NodeRef { addr: self.addr.clone(), link: Arc::clone(&self.link) };
        let id = ActorId::from_u64(self.addr.id);
        let name = self.addr.name.clone();
        let spawned = std::thread::Builder::new().name("subactor-monitor".into()).spawn(move || {
            let reason = loop {
                if let Some(reason) = me.wait(Some(Duration::from_secs(1))) {
                    break reason;
                }
            };
            f(&Down { id, name: name.as_deref().map(Into::into), reason });
        });
        if let Err(error) = spawned {
            warn!(%error, "cannot start a thread to monitor an actor of another node");
        }
        MonitorId::from_u64(0)
    }

    fn monitor_by(&self, watcher: &AnyRef) -> MonitorId {
        match self.call(Call::Monitor { target: self.me(), watcher: watcher.clone() }, None) {
            Some(Answer::Count(n)) => {
                if let Some(cluster) = self.link.cluster.upgrade() {
                    cluster.watch_remote(&self.link.node, self.addr.clone(), watcher.clone());
                }
                MonitorId::from_u64(n)
            }
            _ => {
                watcher.notify(Value::Down(Box::new(self.down())));
                MonitorId::from_u64(0)
            }
        }
    }

    fn demonitor(&self, id: MonitorId) -> bool {
        matches!(self.call(Call::Demonitor { target: self.me(), id: id.as_u64() }, None), Some(Answer::Bool(true)))
    }

    fn notify(&self, msg: Value) {
        let _ = self.link.tell(Call::Notify { to: self.me(), msg }, None);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Errors rebuilt without a local environment (only faults and plain failures).
struct NoEnv;

impl subactor_wire::ActorEnv for NoEnv {
    fn lookup(&self, _name: &str) -> Option<AnyRef> {
        None
    }
    fn spawn(&self, _request: subactor_wire::SpawnRequest) -> Result<AnyRef, String> {
        Err("no spawning here".into())
    }
    fn send_after(&self, _delay: Duration, _to: AnyRef, _msg: Value) -> Option<u64> {
        None
    }
    fn cancel_timer(&self, _id: u64) -> bool {
        false
    }
    fn describe(&self, error: &BoxError) -> subactor_wire::RemoteError {
        subactor_wire::RemoteError { type_name: "Error".into(), message: error.to_string(), traceback: String::new() }
    }
    fn rebuild(&self, error: subactor_wire::RemoteError) -> BoxError {
        Box::new(error)
    }
}

/// An answer as the outcome an `ask_then` callback receives.
fn outcome_of(answer: Answer, cluster: &Weak<Inner>) -> Outcome<Value, BoxError> {
    match answer {
        Answer::Reply(reply) => Outcome::Replied(reply),
        Answer::AskFailed(subactor_wire::AskFailure::Failed(error)) => {
            Outcome::Failed(match cluster.upgrade().and_then(|c| c.env()) {
                Some(env) => env.rebuild(error),
                None => Box::new(error),
            })
        }
        Answer::AskFailed(subactor_wire::AskFailure::Fault(fault)) => Outcome::Fault(fault),
        _ => Outcome::NotHandled,
    }
}
