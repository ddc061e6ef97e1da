//! Pipelines: items flow through stages of actors, each stage served by one or more
//! workers.
//!
//! Each stage has a bounded input queue and a router thread that hands every item to
//! one of the stage's workers (round-robin, or the least loaded). A worker's answer is
//! the item for the next stage: the reply callback runs on the worker's thread and puts
//! it into the next stage's queue, waiting while that queue is full. Queues, mailboxes
//! and the output are all bounded, so a slow stage slows everything upstream down to
//! [`Pipeline::send`]: memory stays bounded however fast the source is. A worker that
//! is killed (as at shutdown) while it waits for room stops waiting: the answer it held
//! becomes a dead letter, so a pipeline whose output nobody reads never keeps its
//! workers, or the system's shutdown, from ending.
//!
//! A worker whose handler fails (or that stops before handling an item) does not stop
//! the pipeline: the item leaves it as a [`Failure`] naming the stage and the item's
//! sequence number, delivered with the outputs. When the input is closed and every item
//! has left the last stage, [`Pipeline::recv`] returns `None`: that is the completion
//! signal (and [`Pipeline::finish`] waits for it).
//!
//! ```
//! use std::convert::Infallible;
//! use subactor_core::{Actor, ActorContext, ActorSystem, AnyRef, Output, Pipeline, Props, Routing, Value};
//!
//! struct Double;
//! impl Actor for Double {
//!     type Msg = Value;
//!     type Reply = Value;
//!     type Error = Infallible;
//!     fn handle(&mut self, _: &ActorContext<Self>, v: Value) -> Result<Value, Infallible> {
//!         Ok(Value::from(v.as_i64().unwrap_or(0) * 2))
//!     }
//! }
//!
//! let system = ActorSystem::builder().build();
//! let workers: Vec<AnyRef> =
//!     (0..2).map(|_| system.spawn(Props::new(|| Ok::<_, Infallible>(Double))).map(Into::into)).collect::<Result<_, _>>()?;
//! let mut pipeline = Pipeline::builder().stage("double", workers, Routing::RoundRobin).ordered(true).build()?;
//! for i in 0..5 {
//!     pipeline.send(i)?;
//! }
//! pipeline.close();
//! let outputs: Vec<Value> = std::iter::from_fn(|| pipeline.recv())
//!     .map(|out| match out { Output::Item { value, .. } => value, Output::Failed(f) => panic!("{f}") })
//!     .collect();
//! assert_eq!(outputs, (0..5).map(|i| Value::from(i * 2)).collect::<Vec<_>>());
//! system.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use flume::{Receiver, SendTimeoutError, Sender};
use tracing::warn;

use crate::dead_letters::DeadLetterReason;
use crate::{AnyRef, BoxError, Outcome, Value};

/// How a stage picks the worker for an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Routing {
    /// Each worker in turn.
    #[default]
    RoundRobin,
    /// The first worker with a free slot: each worker holds at most
    /// [`LEAST_LOADED_SLOTS`] items (one in hand, one queued), so items go to whoever
    /// finishes first, however uneven their cost.
    LeastLoaded,
}

/// How many items a worker of a [`Routing::LeastLoaded`] stage holds at most.
pub const LEAST_LOADED_SLOTS: usize = 2;

/// The default capacity of each stage's input queue and of the output.
pub const DEFAULT_STAGE_CAPACITY: usize = 64;

/// A pipeline could not be built or fed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The builder has no stages, or a stage no workers.
    #[error("invalid pipeline: {0}")]
    Invalid(String),
    /// The operating system refused a router thread.
    #[error("cannot start the router of stage {stage:?}: {source}")]
    Thread {
        /// The stage.
        stage: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The input was closed (or the pipeline has failed entirely): the item comes back.
    #[error("the pipeline's input is closed")]
    Closed(Value),
    /// The first stage's queue stayed full until the timeout
    /// ([`Pipeline::send_timeout`]): the item comes back.
    #[error("the pipeline's input stayed full until the timeout")]
    Full(Value),
}

/// An item that did not make it through.
#[derive(Debug)]
pub struct Failure {
    /// The stage where it failed.
    pub stage: Arc<str>,
    /// The item's sequence number (the order in which it was sent, from 0).
    pub seq: u64,
    /// What went wrong: the handler's error (downcast it to the worker's error type, e.g.
    /// `subactor_host::ReceiveError`), or why the item was not handled.
    pub error: BoxError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {} failed in stage {:?}: {}", self.seq, self.stage, self.error)
    }
}

/// Why an item was not handled at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotHandled(String);

/// What comes out of a pipeline.
#[derive(Debug)]
pub enum Output {
    /// An item that left the last stage: the last worker's answer.
    Item {
        /// Its sequence number.
        seq: u64,
        /// The value.
        value: Value,
    },
    /// An item that failed on the way.
    Failed(Failure),
}

impl Output {
    /// The item's value, or the failure.
    fn into_value(self) -> Result<Value, Failure> {
        match self {
            Output::Item { value, .. } => Ok(value),
            Output::Failed(failure) => Err(failure),
        }
    }

    /// The item's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Output::Item { seq, .. } => *seq,
            Output::Failed(failure) => failure.seq,
        }
    }
}

/// Configures a [`Pipeline`].
#[derive(Debug, Default)]
pub struct PipelineBuilder {
    stages: Vec<(Arc<str>, Vec<AnyRef>, Routing)>,
    ordered: bool,
    capacity: Option<usize>,
}

impl PipelineBuilder {
    /// Adds a stage served by `workers` (actors that take and answer [`Value`]s).
    #[must_use]
    pub fn stage(mut self, name: impl Into<Arc<str>>, workers: Vec<AnyRef>, routing: Routing) -> Self {
        self.stages.push((name.into(), workers, routing));
        self
    }

    /// Whether outputs come out in the order the items were sent (`false`: as they are
    /// ready, the default).
    #[must_use]
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// The capacity of each stage's input queue and of the output
    /// ([`DEFAULT_STAGE_CAPACITY`] unless set).
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Starts the routers.
    pub fn build(self) -> Result<Pipeline, PipelineError> {
        if self.stages.is_empty() {
            return Err(PipelineError::Invalid("a pipeline needs at least one stage".into()));
        }
        if let Some((name, _, _)) = self.stages.iter().find(|(_, workers, _)| workers.is_empty()) {
            return Err(PipelineError::Invalid(format!("stage {name:?} has no workers")));
        }
        let capacity = self.capacity.unwrap_or(DEFAULT_STAGE_CAPACITY);
        if capacity == 0 {
            return Err(PipelineError::Invalid("the capacity must be at least 1".into()));
        }
        let (output_tx, output_rx) = flume::bounded(capacity);
        // Built from the last stage backwards: each stage sends into the next one's queue.
        let mut downstream = Downstream::Output(output_tx.clone());
        let mut routers = Vec::with_capacity(self.stages.len());
        for (name, workers, routing) in self.stages.into_iter().rev() {
            let (tx, rx) = flume::bounded::<(u64, Value)>(capacity);
            let slots = flume::unbounded();
            for _ in 0..LEAST_LOADED_SLOTS {
                for i in 0..workers.len() {
                    let _ = slots.0.send(i);
                }
            }
            let stage = Stage {
                name: Arc::clone(&name),
                live: AtomicUsize::new(workers.len()),
                workers: workers.into_iter().map(|actor| Worker { actor, stopped: AtomicBool::new(false) }).collect(),
                routing,
                slots,
                downstream,
                failures: output_tx.clone(),
            };
            let router = thread::Builder::new()
                .name(format!("pipeline:{name}"))
                .spawn(move || stage.route(&rx))
                .map_err(|source| PipelineError::Thread { stage: name.to_string(), source })?;
            routers.push(router);
            downstream = Downstream::Stage(tx);
        }
        // From here on, only the stages hold output senders: when they are all gone, the
        // output disconnects, which is the completion signal.
        drop(output_tx);
        let Downstream::Stage(input) = downstream else { unreachable!("there is at least one stage") };
        Ok(Pipeline {
            input: Some(input),
            next_seq: 0,
            outputs: output_rx,
            routers,
            ordered: self.ordered,
            reorder: BTreeMap::new(),
            next_out: 0,
        })
    }
}

/// Where a stage's answers go.
#[derive(Clone)]
enum Downstream {
    Stage(Sender<(u64, Value)>),
    Output(Sender<Output>),
}

struct Worker {
    actor: AnyRef,
    /// The worker refused an item: it has stopped.
    stopped: AtomicBool,
}

struct Stage {
    name: Arc<str>,
    workers: Vec<Worker>,
    routing: Routing,
    /// Least-loaded routing: one token per free slot, holding the worker's index.
    slots: (Sender<usize>, Receiver<usize>),
    /// Workers that have not refused an item (a refusal means the worker stopped).
    live: AtomicUsize,
    downstream: Downstream,
    /// Failures skip the remaining stages: they go straight to the output.
    failures: Sender<Output>,
}

impl Stage {
    /// The router: hands each item of the stage's queue to a worker, until the queue is
    /// closed and empty.
    fn route(self, input: &Receiver<(u64, Value)>) {
        let turn = AtomicU64::new(0);
        for (seq, item) in input.iter() {
            self.dispatch(seq, item, &turn);
        }
    }

    /// The worker for the next item; `None` once every worker has stopped.
    fn pick(&self, turn: &AtomicU64) -> Option<usize> {
        if self.live.load(Ordering::Relaxed) == 0 {
            return None;
        }
        match self.routing {
            Routing::RoundRobin => {
                let n = self.workers.len() as u64;
                Some((turn.fetch_add(1, Ordering::Relaxed) % n) as usize)
            }
            // Waits for a free slot; the router holds a sender, so this cannot disconnect.
            Routing::LeastLoaded => self.slots.1.recv().ok(),
        }
    }

    fn dispatch(&self, seq: u64, mut item: Value, turn: &AtomicU64) {
        // A worker that has stopped refuses the item; it is then left out, and the item
        // goes to another.
        while let Some(index) = self.pick(turn) {
            let worker = &self.workers[index];
            if worker.stopped.load(Ordering::Relaxed) {
                continue;
            }
            let downstream = self.downstream.clone();
            let failures = self.failures.clone();
            let stage = Arc::clone(&self.name);
            let slot = (self.routing == Routing::LeastLoaded).then(|| self.slots.0.clone());
            let me = worker.actor.clone();
            let sent = worker.actor.blocking_ask_then(item, move |outcome| {
                if let Some(slot) = slot {
                    let _ = slot.send(index);
                }
                let failed = |error: BoxError| Output::Failed(Failure { stage: Arc::clone(&stage), seq, error });
                let refused = match outcome {
                    Outcome::Replied(value) => match downstream {
                        Downstream::Stage(next) => forward(&next, (seq, value), &me).err().map(|(_, value)| Ok(value)),
                        Downstream::Output(out) => forward(&out, Output::Item { seq, value }, &me).err().map(Output::into_value),
                    },
                    Outcome::Failed(error) => forward(&failures, failed(error), &me).err().map(Output::into_value),
                    Outcome::Fault(fault) => forward(&failures, failed(Box::new(fault)), &me).err().map(Output::into_value),
                    Outcome::NotHandled => {
                        let why = NotHandled("the worker stopped before handling the item".into());
                        forward(&failures, failed(Box::new(why)), &me).err().map(Output::into_value)
                    }
                };
                match refused {
                    None => {}
                    Some(Ok(value)) => {
                        warn!(%stage, seq, "pipeline: a worker killed while the next queue was full; its answer goes to dead letters");
                        me.dead_letter(value, DeadLetterReason::Killed);
                    }
                    Some(Err(failure)) => {
                        warn!(%stage, seq, %failure, "pipeline: a worker killed while the output was full; the failure is dropped");
                    }
                }
            });
            match sent {
                Ok(()) => return,
                Err(refused) => {
                    if !worker.stopped.swap(true, Ordering::Relaxed) {
                        self.live.fetch_sub(1, Ordering::Relaxed);
                    }
                    item = refused.into_message();
                }
            }
        }
        let error = Box::new(NotHandled(format!("every worker of stage {:?} has stopped", self.name)));
        let _ = self.failures.send(Output::Failed(Failure { stage: Arc::clone(&self.name), seq, error }));
    }
}

/// How often a worker waiting for room in a full queue checks whether it is killed.
const FORWARD_POLL: Duration = Duration::from_millis(20);

/// Puts a worker's answer into the next queue, waiting while it is full (backpressure);
/// gives it back if the worker is killed meanwhile. A queue whose receiver is gone
/// (the pipeline was dropped) takes nothing, and nobody wants the answer.
fn forward<T>(queue: &Sender<T>, mut item: T, worker: &AnyRef) -> Result<(), T> {
    loop {
        match queue.send_timeout(item, FORWARD_POLL) {
            Ok(()) | Err(SendTimeoutError::Disconnected(_)) => return Ok(()),
            Err(SendTimeoutError::Timeout(back)) if worker.killed() => return Err(back),
            Err(SendTimeoutError::Timeout(back)) => item = back,
        }
    }
}

/// A running pipeline. See the [module docs](self).
pub struct Pipeline {
    input: Option<Sender<(u64, Value)>>,
    next_seq: u64,
    outputs: Receiver<Output>,
    routers: Vec<JoinHandle<()>>,
    ordered: bool,
    reorder: BTreeMap<u64, Output>,
    next_out: u64,
}

impl Pipeline {
    /// Starts configuring a pipeline.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Feeds an item, waiting while the first stage's queue is full; returns its
    /// sequence number.
    ///
    /// Outputs must be consumed meanwhile (from another thread, or between sends):
    /// a full output stops the whole pipeline, by design.
    pub fn send(&mut self, item: impl Into<Value>) -> Result<u64, PipelineError> {
        let item = item.into();
        let Some(input) = &self.input else { return Err(PipelineError::Closed(item)) };
        let seq = self.next_seq;
        input.send((seq, item)).map_err(|e| PipelineError::Closed(e.into_inner().1))?;
        self.next_seq += 1;
        Ok(seq)
    }

    /// As [`send`](Self::send), but waits for room for at most `timeout`; a queue still
    /// full then hands the item back in [`PipelineError::Full`]. Lets a caller wait in
    /// slices (and look at other things, such as signals, in between).
    pub fn send_timeout(&mut self, item: impl Into<Value>, timeout: Duration) -> Result<u64, PipelineError> {
        let item = item.into();
        let Some(input) = &self.input else { return Err(PipelineError::Closed(item)) };
        let seq = self.next_seq;
        input.send_timeout((seq, item), timeout).map_err(|e| match e {
            flume::SendTimeoutError::Timeout((_, item)) => PipelineError::Full(item),
            flume::SendTimeoutError::Disconnected((_, item)) => PipelineError::Closed(item),
        })?;
        self.next_seq += 1;
        Ok(seq)
    }

    /// How many items have been sent.
    pub fn sent(&self) -> u64 {
        self.next_seq
    }

    /// Takes no more items; once those sent have left the pipeline, [`recv`](Self::recv)
    /// returns `None`.
    pub fn close(&mut self) {
        self.input = None;
    }

    /// The next output, waiting for it; `None` once the input is closed and every item
    /// has come out (the completion signal).
    pub fn recv(&mut self) -> Option<Output> {
        if !self.ordered {
            return self.outputs.recv().ok();
        }
        loop {
            if let Some(out) = self.reorder.remove(&self.next_out) {
                self.next_out += 1;
                return Some(out);
            }
            match self.outputs.recv() {
                Ok(out) => {
                    self.reorder.insert(out.seq(), out);
                }
                // Completed: whatever is buffered comes out in order.
                Err(_) => {
                    let (&seq, _) = self.reorder.iter().next()?;
                    self.next_out = seq + 1;
                    return self.reorder.remove(&seq);
                }
            }
        }
    }

    /// A receiver of the raw (unordered) outputs, for consuming them on another thread
    /// while this one sends; it ends (disconnects) when the pipeline completes. Use either
    /// it or [`recv`](Self::recv)/[`finish`](Self::finish), not both: each output is
    /// delivered once.
    pub fn outputs(&self) -> Receiver<Output> {
        self.outputs.clone()
    }

    /// Closes the input and waits until every item has left, collecting the outputs
    /// still to come (in order if the pipeline is ordered).
    pub fn finish(mut self) -> Vec<Output> {
        self.close();
        let outputs = std::iter::from_fn(|| self.recv()).collect();
        for router in self.routers.drain(..) {
            let _ = router.join();
        }
        outputs
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("sent", &self.next_seq)
            .field("open", &self.input.is_some())
            .field("ordered", &self.ordered)
            .finish_non_exhaustive()
    }
}
