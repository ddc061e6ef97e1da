//! The way in: batches of calls from other nodes, served against this node's actors.
//!
//! Batches from one node are served in order, on a thread of their own (`subactor-in:
//! <node>`), so that a sender's calls keep their order and a slow mailbox here holds up
//! only that sender's link. A tell or an ask waits a moment for room in its mailbox;
//! if the mailbox stays full, the batch is acknowledged up to that call, and the sender
//! sends the rest again: backpressure reaches the sending node without buffering here.
//! A batch sent twice (its ack was lost) is answered with the same ack.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use subactor_core::{BoxError, Outcome, SendError, Value};
use subactor_wire::{Answer, AskFailure, Call, serve};
use tracing::warn;

use crate::handles::holds_pickle;
use crate::parts::{Piece, Reassembly};
use crate::proto::{Ack, Batch, Item, Wire};
use crate::{Inner, decode_plain, encode_plain};

/// How long a tell or ask waits for room in its mailbox before the batch stops there.
const STALL: Duration = Duration::from_millis(20);

/// A batch to serve, and where to send its ack.
struct Work {
    batch: Batch,
    reply: Option<async_nats::Subject>,
}

/// Receives the batches sent to this node.
pub(crate) async fn listen(cluster: Weak<Inner>, mut inbox: async_nats::Subscriber) {
    let mut workers: HashMap<String, flume::Sender<Work>> = HashMap::new();
    let mut reassembly = Reassembly::default();
    while let Some(message) = futures_util::StreamExt::next(&mut inbox).await {
        let Some(inner) = cluster.upgrade() else { return };
        let reply = message.reply.clone();
        let bytes = match decode_plain::<Wire>(&message.payload).and_then(|wire| reassembly.take(wire)) {
            Ok(Piece::Frame(bytes)) => bytes,
            Ok(Piece::Kept) => {
                // Not the last part: acknowledged so that the next one comes.
                answer(&inner, reply, Ok(Ack { seq: 0, accepted: 0, refused: Vec::new() }));
                continue;
            }
            Err(error) => {
                warn!(%error, "a malformed frame from another node");
                answer(&inner, reply, Err(format!("malformed frame: {error}")));
                continue;
            }
        };
        let batch = match decode_plain::<Batch>(&bytes) {
            Ok(batch) => batch,
            Err(error) => {
                warn!(%error, "a malformed batch from another node");
                answer(&inner, reply, Err(format!("malformed batch: {error}")));
                continue;
            }
        };
        let from = batch.from.clone();
        let worker = workers.entry(from.clone()).or_insert_with(|| start_worker(&from, cluster.clone()));
        if worker.send(Work { batch, reply }).is_err() {
            workers.remove(&from);
        }
    }
}

fn answer(inner: &Inner, reply: Option<async_nats::Subject>, ack: Result<Ack, String>) {
    let Some(reply) = reply else { return };
    match encode_plain(&ack) {
        Ok(bytes) => inner.publish(reply.to_string(), bytes),
        Err(error) => warn!(%error, "an ack cannot be encoded"),
    }
}

fn start_worker(from: &str, cluster: Weak<Inner>) -> flume::Sender<Work> {
    let (tx, rx) = flume::unbounded::<Work>();
    let spawned = std::thread::Builder::new().name(format!("subactor-in:{from}")).spawn(move || {
        let mut last: Option<(u64, u64, Ack)> = None;
        for Work { batch, reply } in rx.iter() {
            let Some(inner) = cluster.upgrade() else { return };
            if let Some((incarnation, seq, ack)) = &last {
                if *incarnation == batch.incarnation && *seq == batch.seq {
                    // Sent again: its ack was lost.
                    answer(&inner, reply, Ok(Ack { seq: ack.seq, accepted: ack.accepted, refused: Vec::new() }));
                    continue;
                }
            }
            let ack = serve_batch(&inner, &batch);
            let resend = Ack { seq: ack.seq, accepted: ack.accepted, refused: Vec::new() };
            answer(&inner, reply, Ok(ack));
            last = Some((batch.incarnation, batch.seq, resend));
        }
    });
    if let Err(error) = spawned {
        warn!(%error, "cannot start a thread for another node's calls");
    }
    tx
}

/// Serves a batch's calls in order; stops at a call whose mailbox stays full.
fn serve_batch(inner: &Arc<Inner>, batch: &Batch) -> Ack {
    let mut refused = Vec::new();
    let mut accepted = 0u32;
    for (index, bytes) in batch.items.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let item = match inner.decode::<Item>(bytes) {
            Ok(item) => item,
            Err(error) => {
                warn!(%error, from = %batch.from, "a malformed call from another node");
                refused.push((index, Answer::Refused(format!("malformed call: {error}"))));
                accepted += 1;
                continue;
            }
        };
        if !inner.trusted() && call_holds_pickle(&item.call) {
            let why = "pickled objects are not accepted from other nodes (unpickling runs code): send plain \
                       values, or configure the cluster as trusted";
            refused.push((index, Answer::Refused(why.into())));
            accepted += 1;
            continue;
        }
        match serve_item(inner, &batch.from, item) {
            Served::Done => {}
            Served::Refused(answer) => refused.push((index, answer)),
            Served::Full => break,
        }
        accepted += 1;
    }
    Ack { seq: batch.seq, accepted, refused }
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
    /// The mailbox stayed full: this call and the rest of the batch come again.
    Full,
}

fn serve_item(inner: &Arc<Inner>, from: &str, Item { corr, call, trace }: Item) -> Served {
    // What the call sends carries the sender's trace context.
    subactor_core::trace::with_context(trace, || serve_call(inner, from, corr, call))
}

fn serve_call(inner: &Arc<Inner>, from: &str, corr: u64, call: Call) -> Served {
    let Some(env) = inner.env() else { return Served::Refused(Answer::Refused("this node is not ready".into())) };
    match call {
        // A tell is answered once its handler has run (the sender keeps it until then),
        // so it is delivered as an ask whose reply is that word.
        Call::Tell { to, msg, .. } | Call::TryTell { to, msg } | Call::Ask { to, msg, .. } => {
            let (cluster, node) = (Arc::downgrade(inner), from.to_owned());
            let env = Arc::clone(&env);
            let sent = to.blocking_ask_then_timeout(msg, STALL, move |outcome: Outcome<Value, BoxError>| {
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
                Ok(()) => Served::Done,
                Err(SendError::Full(_)) => Served::Full,
                Err(SendError::Stopped(msg)) => Served::Refused(Answer::AskFailed(AskFailure::Stopped(msg))),
            }
        }
        Call::Notify { to, msg } => {
            if let Value::Down(down) = &msg {
                inner.unwatch(from, down.id.as_u64(), &to);
            }
            to.notify(msg);
            Served::Done
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
                return Served::Refused(Answer::Refused(format!("cannot serve the call: {error}")));
            }
            Served::Done
        }
        call => {
            let answer = serve(call, &*env);
            if corr != 0 {
                inner.reply(from, corr, answer);
            }
            Served::Done
        }
    }
}
