//! The way in: batches of calls from other nodes, served against this node's actors.
//!
//! Batches from one node are served in order. The listening task serves a small batch
//! itself (what a caller waiting for its answer sends) as far as its calls cannot block (tells and asks to this runtime's actors, put in
//! their mailboxes when there is room), and acknowledges it at once (for a batch published
//! without a reply subject, the ack goes with the answers: see `proto`): a remote ask is not
//! handed to another thread before its actor's (each hand-off wakes a parked thread,
//! tens of microseconds on a loaded machine). What could wait (a full mailbox, a call
//! to a process actor, a spawn, a lookup...) goes, with the rest of its batch, to the
//! sending node's own thread (`subactor-in:<node>`), and so do that node's large
//! batches (a stream of tells), and its next ones until the thread is done with them: a sender's calls keep their order, and a slow
//! mailbox here holds up only that sender's link. There, a tell or an ask waits a moment
//! for room in its mailbox; if the mailbox stays full, the batch is acknowledged up to
//! that call, and the sender sends the rest again: backpressure reaches the sending node
//! without buffering here. A batch sent twice (its ack was lost) is answered with the
//! same ack.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use subactor_core::{AnyRef, BoxError, Outcome, SendError, Value};
use subactor_wire::{ActorEnv, Answer, AskFailure, Call, serve};
use tracing::{debug, warn};

use crate::handles::holds_pickle;
use crate::parts::{Piece, Reassembly};
use crate::proto::{Ack, Batch, Item, Wire};
use crate::{Inner, decode_plain, encode_plain, lock};

/// How long a tell or ask waits for room in its mailbox before the batch stops there.
const STALL: Duration = Duration::from_millis(20);
/// The largest batch served on the listening task. Small batches are what a caller that
/// waits for its answer sends (latency: no hand-off); the large ones of a stream of
/// tells are served on the sender's thread, which leaves the node's NATS tasks (the
/// answers that confirm those tells, acks) free meanwhile (throughput).
const INLINE_MAX: usize = 16;

/// A batch to serve from `progress` on, and where to send its ack.
struct Work {
    batch: Batch,
    reply: Option<async_nats::Subject>,
    progress: Progress,
}

/// How far serving a batch has gone: the ack so far.
#[derive(Default)]
struct Progress {
    /// The index of the next call to serve.
    next: usize,
    /// That call, already decoded (serving it had to wait for room).
    held: Option<Item>,
    /// Calls refused so far, with their answers.
    refused: Vec<(u32, Answer)>,
}

/// How a batch's calls are served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// On the listening task: only what cannot block (tells and asks to this node's
    /// actors with room in their mailboxes); serving stops before anything else.
    Inline,
    /// On the sender's worker thread: everything, waiting up to [`STALL`] for room.
    Blocking,
}

/// Where the batches of one sending node are served when they cannot be at once.
struct SenderState {
    worker: flume::Sender<Work>,
    /// Batches handed to the worker and not done yet: while there are some, the next
    /// batches of that node go there too (in order).
    queued: Arc<AtomicUsize>,
    /// The incarnation and number of the latest batch served, and its ack (for a batch
    /// sent again).
    last: Arc<Mutex<Option<(u64, u64, Ack)>>>,
}

/// Receives the batches sent to this node.
///
/// A small batch is served here, on the listening task, as far as its calls need no
/// wait (the common case: asks and tells to actors with room in their mailboxes), and
/// acknowledged at once, without handing it to another thread; the rest of it goes to
/// the sending node's worker thread, and so do that node's larger batches, and its next
/// ones until the worker is done with them (their order is kept).
pub(crate) async fn listen(cluster: Weak<Inner>, mut inbox: async_nats::Subscriber) {
    let mut senders: HashMap<String, SenderState> = HashMap::new();
    let mut reassembly = Reassembly::default();
    while let Some(message) = futures_util::StreamExt::next(&mut inbox).await {
        let Some(inner) = cluster.upgrade() else { return };
        let reply = message.reply.clone();
        let bytes = match decode_plain::<Wire>(&message.payload).and_then(|wire| reassembly.take(wire)) {
            Ok(Piece::Frame(bytes)) => bytes,
            Ok(Piece::Kept) => {
                // Not the last part: acknowledged so that the next one comes.
                send_ack(&inner, reply, Ok(Ack { seq: 0, accepted: 0, refused: Vec::new() })).await;
                continue;
            }
            Err(error) => {
                warn!(%error, "a malformed frame from another node");
                send_ack(&inner, reply, Err(format!("malformed frame: {error}"))).await;
                continue;
            }
        };
        let batch = match decode_plain::<Batch>(&bytes) {
            Ok(batch) => batch,
            Err(error) => {
                warn!(%error, "a malformed batch from another node");
                send_ack(&inner, reply, Err(format!("malformed batch: {error}"))).await;
                continue;
            }
        };
        // Answers of ours that node took (their ack rode on this batch).
        inner.replies_taken(&batch.from, &batch.taken);
        if batch.seq == 0 && batch.items.is_empty() {
            // Only those acks: nothing to serve, nothing to acknowledge.
            continue;
        }
        let from = batch.from.clone();
        let sender = senders.entry(from.clone()).or_insert_with(|| start_worker(&from, cluster.clone()));
        let mut progress = Progress::default();
        if batch.items.len() <= INLINE_MAX && sender.queued.load(Ordering::Acquire) == 0 {
            // The worker has nothing of this node's: what is served here comes after all
            // of it.
            if let Some(ack) = served_before(&sender.last, &batch) {
                send_batch_ack(&inner, &batch, reply, ack).await;
                continue;
            }
            if serve_batch(&inner, &batch, &mut progress, Mode::Inline) {
                let ack = Ack { seq: batch.seq, accepted: accepted(&batch, &progress), refused: progress.refused };
                *lock(&sender.last) = Some((batch.incarnation, batch.seq, resent_ack(&ack)));
                send_batch_ack(&inner, &batch, reply, ack).await;
                continue;
            }
        }
        sender.queued.fetch_add(1, Ordering::AcqRel);
        if sender.worker.send(Work { batch, reply, progress }).is_err() {
            senders.remove(&from);
        }
    }
}

/// How many calls of `batch` were taken, given how far serving it went.
fn accepted(batch: &Batch, progress: &Progress) -> u32 {
    u32::try_from(progress.next.min(batch.items.len())).unwrap_or(u32::MAX)
}

/// The ack for a batch sent again: what was taken (its refusals went with the first).
fn resent_ack(ack: &Ack) -> Ack {
    Ack { seq: ack.seq, accepted: ack.accepted, refused: Vec::new() }
}

/// Sends an ack from the listening task.
async fn send_ack(inner: &Inner, reply: Option<async_nats::Subject>, ack: Result<Ack, String>) {
    let Some(reply) = reply else { return };
    match encode_plain(&ack) {
        Ok(bytes) => {
            if let Err(error) = inner.client.publish(reply, bytes.into()).await {
                debug!(%error, "publishing an ack failed");
            }
        }
        Err(error) => warn!(%error, "an ack cannot be encoded"),
    }
}

/// Sends a batch's ack from the listening task: as the answer to its request, or, for
/// a batch published without a reply subject, with the next answers to its node (see
/// `proto`).
async fn send_batch_ack(inner: &Inner, batch: &Batch, reply: Option<async_nats::Subject>, ack: Ack) {
    match reply {
        Some(reply) => send_ack(inner, Some(reply), Ok(ack)).await,
        None => inner.queue_ack(&batch.from, batch.incarnation, ack),
    }
}

/// [`send_batch_ack`] from any thread.
fn answer_batch(inner: &Inner, batch: &Batch, reply: Option<async_nats::Subject>, ack: Ack) {
    match reply {
        Some(reply) => answer(inner, Some(reply), Ok(ack)),
        None => inner.queue_ack(&batch.from, batch.incarnation, ack),
    }
}

/// Sends an ack from any thread.
fn answer(inner: &Inner, reply: Option<async_nats::Subject>, ack: Result<Ack, String>) {
    let Some(reply) = reply else { return };
    match encode_plain(&ack) {
        Ok(bytes) => inner.publish(reply.to_string(), bytes),
        Err(error) => warn!(%error, "an ack cannot be encoded"),
    }
}

fn start_worker(from: &str, cluster: Weak<Inner>) -> SenderState {
    let (tx, rx) = flume::unbounded::<Work>();
    let queued = Arc::new(AtomicUsize::new(0));
    let last: Arc<Mutex<Option<(u64, u64, Ack)>>> = Arc::default();
    let state = SenderState { worker: tx, queued: Arc::clone(&queued), last: Arc::clone(&last) };
    let spawned = std::thread::Builder::new().name(format!("subactor-in:{from}")).spawn(move || {
        for Work { batch, reply, mut progress } in rx.iter() {
            let Some(inner) = cluster.upgrade() else { return };
            let sent_again = progress.next == 0 && progress.held.is_none();
            let again = if sent_again { served_before(&last, &batch) } else { None };
            if let Some(ack) = again {
                answer_batch(&inner, &batch, reply, ack);
            } else {
                serve_batch(&inner, &batch, &mut progress, Mode::Blocking);
                let ack = Ack { seq: batch.seq, accepted: accepted(&batch, &progress), refused: progress.refused };
                *lock(&last) = Some((batch.incarnation, batch.seq, resent_ack(&ack)));
                answer_batch(&inner, &batch, reply, ack);
            }
            queued.fetch_sub(1, Ordering::AcqRel);
        }
    });
    if let Err(error) = spawned {
        warn!(%error, "cannot start a thread for another node's calls");
    }
    state
}

/// The ack of `batch` if it was served already (it is sent again: its ack was lost).
fn served_before(last: &Mutex<Option<(u64, u64, Ack)>>, batch: &Batch) -> Option<Ack> {
    let last = lock(last);
    let (incarnation, seq, ack) = last.as_ref()?;
    (*incarnation == batch.incarnation && *seq == batch.seq).then(|| resent_ack(ack))
}

/// Serves a batch's calls in order, from where `progress` says; stops at a call whose
/// mailbox stays full (and, [`Mode::Inline`], at a call that would have to wait).
/// Whether the batch is done (every call taken, or one stayed full in
/// [`Mode::Blocking`]: the rest is sent again).
fn serve_batch(inner: &Arc<Inner>, batch: &Batch, progress: &mut Progress, mode: Mode) -> bool {
    while progress.next < batch.items.len() {
        let index = u32::try_from(progress.next).unwrap_or(u32::MAX);
        let item = match progress.held.take() {
            Some(item) => item,
            None => match inner.decode::<Item>(&batch.items[progress.next]) {
                Ok(item) => item,
                Err(error) => {
                    warn!(%error, from = %batch.from, "a malformed call from another node");
                    progress.refused.push((index, Answer::Refused(format!("malformed call: {error}"))));
                    progress.next += 1;
                    continue;
                }
            },
        };
        if !inner.trusted() && call_holds_pickle(&item.call) {
            let why = "pickled objects are not accepted from other nodes (unpickling runs code): send plain \
                       values, or configure the cluster as trusted";
            progress.refused.push((index, Answer::Refused(why.into())));
            progress.next += 1;
            continue;
        }
        if mode == Mode::Inline && !serves_inline(&item.call) {
            progress.held = Some(item);
            return false;
        }
        let wait = if mode == Mode::Inline { Duration::ZERO } else { STALL };
        match serve_item(inner, &batch.from, item, wait) {
            Served::Done => {}
            Served::Refused(answer) => progress.refused.push((index, answer)),
            Served::Full(item) if mode == Mode::Inline => {
                // The worker waits for room.
                progress.held = Some(*item);
                return false;
            }
            Served::Full(_) => return true,
        }
        progress.next += 1;
    }
    true
}

/// Whether a call can be served on the listening task: it cannot block there (a tell or
/// an ask to an actor of this runtime, sent without waiting for room).
fn serves_inline(call: &Call) -> bool {
    match call {
        Call::Tell { to, .. } | Call::TryTell { to, .. } | Call::Ask { to, .. } => to.as_remote().is_none(),
        _ => false,
    }
}

fn call_holds_pickle(call: &Call) -> bool {
    match call {
        Call::Tell { msg, .. } | Call::TryTell { msg, .. } | Call::Ask { msg, .. } | Call::Notify { msg, .. } => {
            holds_pickle(msg)
        }
        Call::SendAfter { msg, .. } => holds_pickle(msg),
        Call::Spawn(request) => request.args.iter().any(holds_pickle),
        _ => false,
    }
}

enum Served {
    Done,
    Refused(Answer),
    /// The mailbox stayed full: this call (given back) and the rest of the batch wait.
    Full(Box<Item>),
}

/// Serves one call, waiting up to `wait` for room in a mailbox.
fn serve_item(inner: &Arc<Inner>, from: &str, Item { corr, call, trace }: Item, wait: Duration) -> Served {
    // What the call sends carries the sender's trace context.
    subactor_core::trace::with_context(trace, || serve_call(inner, from, corr, call, wait)).map_full(|call| Item {
        corr,
        call,
        trace,
    })
}

/// What serving a call came to; a call given back when its mailbox stayed full.
enum ServedCall {
    Done,
    Refused(Answer),
    Full(Call),
}

impl ServedCall {
    fn map_full(self, item: impl FnOnce(Call) -> Item) -> Served {
        match self {
            ServedCall::Done => Served::Done,
            ServedCall::Refused(answer) => Served::Refused(answer),
            ServedCall::Full(call) => Served::Full(Box::new(item(call))),
        }
    }
}

fn serve_call(inner: &Arc<Inner>, from: &str, corr: u64, call: Call, wait: Duration) -> ServedCall {
    let Some(env) = inner.env() else { return ServedCall::Refused(Answer::Refused("this node is not ready".into())) };
    match call {
        // A tell is answered once its handler has run (the sender keeps it until then),
        // so it is delivered as an ask whose reply is that word.
        Call::Tell { to, msg, timeout } => {
            deliver(inner, from, corr, &env, &to, msg, wait, |msg| Call::Tell { to: to.clone(), msg, timeout })
        }
        Call::TryTell { to, msg } => {
            deliver(inner, from, corr, &env, &to, msg, wait, |msg| Call::TryTell { to: to.clone(), msg })
        }
        Call::Ask { to, msg, timeout } => {
            deliver(inner, from, corr, &env, &to, msg, wait, |msg| Call::Ask { to: to.clone(), msg, timeout })
        }
        Call::Notify { to, msg } => {
            if let Value::Down(down) = &msg {
                inner.unwatch(from, down.id.as_u64(), &to);
            }
            to.notify(msg);
            ServedCall::Done
        }
        slow @ (Call::Wait { .. } | Call::Spawn(_)) => {
            // May take long: served on a thread of its own, answered when done.
            let (cluster, node) = (Arc::downgrade(inner), from.to_owned());
            let spawned = std::thread::Builder::new().name("subactor-call".into()).spawn(move || {
                let answer = serve(slow, &*env);
                if let Some(inner) = cluster.upgrade() {
                    inner.reply(&node, corr, answer);
                }
            });
            if let Err(error) = spawned {
                return ServedCall::Refused(Answer::Refused(format!("cannot serve the call: {error}")));
            }
            ServedCall::Done
        }
        call => {
            let answer = serve(call, &*env);
            if corr != 0 {
                inner.reply(from, corr, answer);
            }
            ServedCall::Done
        }
    }
}

/// Puts a tell or an ask in `to`'s mailbox, waiting up to `wait` for room; its outcome
/// is answered to `from` (a tell's too: see [`serve_call`]). A mailbox still full gives
/// the call back, made again by `again` from its message.
#[allow(clippy::too_many_arguments)]
fn deliver(
    inner: &Arc<Inner>,
    from: &str,
    corr: u64,
    env: &Arc<dyn ActorEnv>,
    to: &AnyRef,
    msg: Value,
    wait: Duration,
    again: impl FnOnce(Value) -> Call,
) -> ServedCall {
    let (cluster, node) = (Arc::downgrade(inner), from.to_owned());
    let env = Arc::clone(env);
    let sent = to.blocking_ask_then_timeout(msg, wait, move |outcome: Outcome<Value, BoxError>| {
        let answer = match outcome {
            Outcome::Replied(reply) => Answer::Reply(reply),
            Outcome::Failed(error) => Answer::AskFailed(AskFailure::Failed(env.describe(&error))),
            Outcome::Fault(fault) => Answer::AskFailed(AskFailure::Fault(fault)),
            Outcome::NotHandled => Answer::AskFailed(AskFailure::NoReply),
        };
        if let Some(inner) = cluster.upgrade() {
            inner.reply(&node, corr, answer);
        }
    });
    match sent {
        Ok(()) => ServedCall::Done,
        Err(SendError::Full(msg)) => ServedCall::Full(again(msg)),
        Err(SendError::Stopped(msg)) => ServedCall::Refused(Answer::AskFailed(AskFailure::Stopped(msg))),
    }
}
