//! [`ChildProcess`]: the runtime's side of a process actor's child.
//!
//! The actor's thread owns the data socket: it sends each message and waits for the
//! handler's outcome, serving the calls the handler makes meanwhile. A watcher thread,
//! `subactor-child`, reads the control socket: it serves calls from the child's other
//! threads and notices the child's end (the socket closes), which it reports by
//! ringing the actor's [`HealthAlarm`]; the template reports how the child ended.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use std::borrow::Cow;
use subactor_core::codec::Handles;

use subactor_core::{
    ActorContext, AnyRef, Death, DirectAsk, Fault, Finished, HealthAlarm, Interrupt, InterruptCause, TellBatch, Value,
};
use subactor_wire::stream::{self, FrameReader, FrameWriter};
use subactor_wire::{Call, Channel, LinkError, LinkHandles, serve};
use tracing::{debug, warn};

use super::LocalEnv;
use super::proto::{self, Ended, FromChild, StartSpec, ToChild};
use super::template::{ChildExit, Template};
use crate::ffi::interp::Incarnation;
use crate::ffi::module::FinishSink;
use crate::{ConvertError, PyActor, PythonActor, PythonException, PythonHost, ReceiveError, StartError};

/// How long a stopped child may take to end by itself before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the template's report of how a child ended, once its
/// sockets have closed.
const DEATH_REPORT: Duration = Duration::from_secs(2);
/// At most this many threads serve a child's calls that wait (see [`Servers`]).
const MAX_SERVERS: usize = 256;

/// What the actor's thread, the watcher and the interrupter share.
struct Shared {
    pid: i32,
    exit: Arc<ChildExit>,
    /// The link has broken: the child has died (or is dying).
    broken: AtomicBool,
    /// The handler running in the child (its `seq`), or 0.
    running: AtomicU64,
    /// A kill came: no further message goes to this child.
    killing: AtomicBool,
    ctrl_w: FrameWriter,
    template: Arc<Template>,
    grace: Duration,
    /// The link's handles: references and lent buffers.
    link: Arc<LinkHandles>,
    handles: Arc<dyn Handles>,
    /// Where the ends of an asyncio actor's concurrent messages go (`max_concurrency`
    /// above 1).
    finished: Option<Arc<FinishSink>>,
    /// The concurrent messages begun in the child and not finished yet.
    in_flight: Mutex<HashSet<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// How the child ended (waiting briefly for the template's report).
    fn death(&self) -> Death {
        self.exit.wait(DEATH_REPORT).unwrap_or_else(|| Death::Lost("its connection closed".into()))
    }
}

/// What a round trip came back with.
enum Outcome {
    One(Result<Value, ReceiveError>),
    /// The tells' outcomes, and how long each one's handler ran (nanoseconds).
    Many(Vec<Result<(), ReceiveError>>, Vec<u64>),
}

/// The conversation on the child's data socket: held by whoever has the actor's turn
/// (its thread, or a caller running an ask directly: see `subactor_core::DirectAsk`).
struct Talk {
    data_w: FrameWriter,
    data_r: FrameReader,
    seq: u64,
    /// The snapshot the child sent with its last outcome, not taken yet.
    snapshot: Option<Value>,
    /// A direct ask sent to the child whose outcome has not been read yet.
    begun: Option<u64>,
}

/// A running child process of a process actor.
pub(crate) struct ChildProcess {
    talk: Arc<Mutex<Talk>>,
    shared: Arc<Shared>,
    env: Arc<LocalEnv>,
    watcher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProcess").field("pid", &self.shared.pid).finish_non_exhaustive()
    }
}

impl ChildProcess {
    /// Starts the actor of `spec` in a child process handed over by the host's
    /// template; serves the calls its constructor makes.
    pub(crate) fn start(
        host: &PythonHost,
        ctx: &ActorContext<PyActor>,
        spec: &PythonActor,
        incarnation: &Incarnation,
        finished: Option<Arc<FinishSink>>,
    ) -> Result<ChildProcess, StartError> {
        let template = host.template().map_err(StartError::Process)?;
        // Dropped when this returns: the template forks the next spare once the actor
        // has started (or failed to).
        let (spawned, exit, _replacement) = template.spawn().map_err(StartError::Process)?;
        let pid = spawned.pid;
        let spin = host.spin();
        let link = |e: LinkError| StartError::Process(format!("cannot use the child's sockets: {e}"));
        // The child offered its data link's rings (shared memory) as it started.
        let (data_w, data_r) = stream::join_shared(spawned.data, spin, None).map_err(link)?;
        let (ctrl_w, ctrl_r) = stream::split(spawned.control, Duration::ZERO).map_err(link)?;
        let exports = host.exports();
        exports.set_dead_letters(ctx.system().dead_letter_sink());
        let link = Arc::new(LinkHandles::owner(Arc::clone(&exports), host.arena().clone()));
        {
            // The runtime is done with a buffer the child lent: tell it.
            let ctrl_w = ctrl_w.clone();
            link.set_release(move |lend| {
                let _ = proto::send(&ctrl_w, Channel::Control, &ToChild::Release { lend }, &proto::no_handles(), &[]);
            });
        }
        let handles: Arc<dyn Handles> = link.clone();
        let shared = Arc::new(Shared {
            pid,
            exit,
            broken: AtomicBool::new(false),
            running: AtomicU64::new(0),
            killing: AtomicBool::new(false),
            ctrl_w,
            template,
            grace: spec.kill_grace_period(),
            link,
            handles,
            finished,
            in_flight: Mutex::default(),
        });
        let env = Arc::new(LocalEnv { system: ctx.system().clone() });
        let talk = Arc::new(Mutex::new(Talk { data_w, data_r, seq: 0, snapshot: None, begun: None }));
        let mut child = ChildProcess { talk, shared, env, watcher: None };
        let myself: AnyRef = ctx.myself().clone().into();
        let start = ToChild::Start(Box::new(StartSpec {
            module: spec.module().to_owned(),
            class: spec.class().to_owned(),
            args: spec.arguments().to_vec(),
            myself: exports.export(&myself),
            memory_limit: spec.memory_limit_bytes(),
            core: spec.options_core(),
            spin_us: u64::try_from(spin.as_micros()).unwrap_or(u64::MAX),
            snapshot_every: incarnation.snapshot_every,
            state: incarnation.state.clone(),
            upgrading: incarnation.upgrading,
            max_concurrency: incarnation.max_concurrency,
            time_limit: incarnation.time_limit,
        }));
        child.send(&start).map_err(|e| child.start_failed(&e))?;
        // The watcher starts while the child starts its actor (what the child sends on
        // the control socket meanwhile waits for it there).
        let watcher = {
            let (shared, env, alarm) = (Arc::clone(&child.shared), Arc::clone(&child.env), ctx.health_alarm());
            thread::Builder::new()
                .name(format!("subactor-child:{pid}"))
                .spawn(move || watch(&shared, &env, ctrl_r, &alarm))
                .map_err(|e| StartError::Process(format!("cannot start the child's watcher thread: {e}")))?
        };
        child.watcher = Some(watcher);
        loop {
            let mut frame = lock(&child.talk).data_r.recv(None).map_err(|e| child.start_failed(&e))?;
            match proto::decode::<FromChild>(&mut frame, &child.shared.handles) {
                Ok(FromChild::Started(Ok(()))) => break,
                Ok(FromChild::Started(Err(error))) => return Err(error),
                Ok(FromChild::Call { call, request }) => {
                    let answer = serve(request, &*child.env);
                    child.send(&ToChild::Answer { call, answer }).map_err(|e| child.start_failed(&e))?;
                }
                Ok(other) => return Err(child.start_failed(&LinkError::Malformed(format!("{other:?} at start")))),
                Err(error) => return Err(child.start_failed(&error)),
            }
        }
        debug!(pid, module = %spec.module(), class = %spec.class(), "process actor started");
        Ok(child)
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> i32 {
        self.shared.pid
    }

    fn send(&self, frame: &ToChild<'_>) -> Result<(), LinkError> {
        lock(&self.talk).send(&self.shared, frame)
    }

    fn start_failed(&self, error: &LinkError) -> StartError {
        match error {
            LinkError::Closed => {
                self.shared.broken.store(true, Ordering::Release);
                StartError::Process(format!("the child process died while the actor started: {}", self.shared.death()))
            }
            other => {
                self.kill_now();
                StartError::Process(format!("the link to the child process failed while the actor started: {other}"))
            }
        }
    }

    /// Marks the link broken and kills the child (a malformed frame: it cannot be
    /// trusted to go on).
    fn kill_now(&self) {
        self.shared.broken.store(true, Ordering::Release);
        self.shared.template.kill(self.shared.pid);
    }

    /// Why no message may go to the child now, if one may not.
    fn refusal(&self) -> Option<ReceiveError> {
        refusal(&self.shared)
    }

    /// Calls the actor's `receive(msg)` in the child; serves its calls meanwhile.
    pub(crate) fn receive(&mut self, msg: Value, reply: bool) -> Result<Value, ReceiveError> {
        if let Some(error) = self.refusal() {
            return Err(error);
        }
        let mut talk = lock(&self.talk);
        let seq = talk.begin(&self.shared);
        let result = talk.round_trip(&self.shared, &self.env, seq, &ToChild::Msg { seq, msg, reply });
        self.shared.running.store(0, Ordering::Release);
        match result {
            Ok(Outcome::One(result)) => result,
            Ok(Outcome::Many(..)) => {
                Err(lost(&self.shared, &LinkError::Malformed("tells answered for a message".into())))
            }
            Err(error) => Err(error),
        }
    }

    /// Calls `receive` in the child for each of `msgs`, in order, in one round trip.
    pub(crate) fn receive_tells(&mut self, msgs: Vec<Value>, stop_at_failure: bool) -> TellBatch<Value, ReceiveError> {
        if let Some(error) = self.refusal() {
            let mut msgs = msgs;
            let unhandled = msgs.split_off(msgs.len().min(1));
            return TellBatch { results: vec![Err(error)], unhandled, handler_times: Vec::new() };
        }
        let mut talk = lock(&self.talk);
        let seq = talk.begin(&self.shared);
        let frame = ToChild::Tells { seq, msgs: Cow::Borrowed(&msgs), stop_at_failure };
        let result = talk.round_trip(&self.shared, &self.env, seq, &frame);
        drop(talk);
        self.shared.running.store(0, Ordering::Release);
        let mut msgs = msgs;
        let (results, nanos) = match result {
            Ok(Outcome::Many(results, nanos)) if results.len() <= msgs.len() => (results, nanos),
            Ok(_) => (
                vec![Err(lost(&self.shared, &LinkError::Malformed("a message answered for tells".into())))],
                Vec::new(),
            ),
            // The child died in the batch: the message it was on is the one reported.
            Err(error) => (vec![Err(error)], Vec::new()),
        };
        let unhandled = msgs.split_off(results.len().min(msgs.len()));
        // The child's own times of its handlers (none if it sent a wrong count).
        let handler_times = if nanos.len() == results.len() {
            nanos.into_iter().map(Duration::from_nanos).collect()
        } else {
            Vec::new()
        };
        TellBatch { results, unhandled, handler_times }
    }

    /// The snapshot the child took after the last message, if one was due.
    pub(crate) fn take_snapshot(&mut self) -> Option<Value> {
        lock(&self.talk).snapshot.take()
    }

    /// A snapshot of the actor's state taken now (before an upgrade): `None` when its
    /// class has no `snapshot` method.
    pub(crate) fn snapshot_now(&mut self) -> Result<Option<Value>, ReceiveError> {
        if let Some(error) = self.refusal() {
            return Err(error);
        }
        let mut talk = lock(&self.talk);
        let seq = talk.begin(&self.shared);
        let result = talk.round_trip(&self.shared, &self.env, seq, &ToChild::Snapshot { seq });
        drop(talk);
        self.shared.running.store(0, Ordering::Release);
        match result? {
            Outcome::One(Ok(Value::Tuple(mut state))) if state.len() == 1 => Ok(state.pop()),
            Outcome::One(Ok(_)) => Ok(None),
            Outcome::One(Err(error)) => Err(error),
            Outcome::Many(..) => Err(lost(&self.shared, &LinkError::Malformed("tells answered for a snapshot".into()))),
        }
    }

    /// Begins `msg` in the child, as a task of its event loop (an asyncio actor whose
    /// `max_concurrency` is above 1); its end arrives through the actor's
    /// [`FinishSink`].
    pub(crate) fn begin_task(&mut self, token: u64, msg: Value, reply: bool) -> Result<(), ReceiveError> {
        if let Some(error) = self.refusal() {
            return Err(error);
        }
        lock(&self.shared.in_flight).insert(token);
        let sent = self.send(&ToChild::Begin { token, msg, reply });
        if sent.is_err() {
            lock(&self.shared.in_flight).remove(&token);
        }
        match sent {
            Ok(()) => Ok(()),
            Err(LinkError::Encode(error)) => {
                let exception =
                    PythonException { type_name: "ValueError".into(), message: error, traceback: String::new() };
                Err(ReceiveError::Message(ConvertError::Build(exception)))
            }
            Err(error) => Err(lost(&self.shared, &error)),
        }
    }

    /// Cancels every message begun in the child and not finished (`CancelledError` in
    /// each task). For a kill, the child is SIGKILLed if they have not all ended within
    /// the grace period (a coroutine that never awaits cannot be cancelled).
    pub(crate) fn cancel_tasks(&mut self, cause: InterruptCause) {
        let kill = cause == InterruptCause::Kill;
        if kill {
            self.shared.killing.store(true, Ordering::Release);
        }
        if let Err(error) = self.send(&ToChild::CancelAll { kill }) {
            debug!(%error, "cannot cancel a child's tasks");
            return;
        }
        if !kill {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new().name(format!("subactor-cancel:{}", shared.pid)).spawn(move || {
            let deadline = Instant::now() + shared.grace;
            while Instant::now() < deadline {
                if lock(&shared.in_flight).is_empty() || shared.broken.load(Ordering::Acquire) {
                    return;
                }
                thread::sleep(Duration::from_millis(2));
            }
            warn!(pid = shared.pid, grace = ?shared.grace, "the cancelled tasks did not end within the grace period: killing the child");
            shared.template.kill(shared.pid);
        });
        if let Err(error) = spawned {
            warn!(%error, "cannot start a thread to watch a kill: killing the child");
            self.kill_now();
        }
    }

    /// `Err` with the fault once the child has died.
    pub(crate) fn health(&self) -> Result<(), Fault> {
        health(&self.shared)
    }

    /// How the watchdog breaks into the child's handlers.
    pub(crate) fn interrupter(&self) -> Arc<dyn Interrupt> {
        Arc::new(ChildInterrupter(Arc::clone(&self.shared)))
    }

    /// How a caller runs an ask itself while the actor is idle.
    pub(crate) fn direct(&self) -> Arc<dyn DirectAsk<PyActor>> {
        Arc::new(ChildDirect {
            talk: Arc::clone(&self.talk),
            shared: Arc::clone(&self.shared),
            env: Arc::clone(&self.env),
        })
    }
}

impl Talk {
    fn send(&self, shared: &Shared, frame: &ToChild<'_>) -> Result<(), LinkError> {
        proto::send(&self.data_w, Channel::Data, frame, &shared.handles, &[])
    }

    fn begin(&mut self, shared: &Shared) -> u64 {
        self.seq += 1;
        shared.running.store(self.seq, Ordering::Release);
        self.seq
    }

    fn round_trip(
        &mut self,
        shared: &Shared,
        env: &LocalEnv,
        seq: u64,
        frame: &ToChild<'_>,
    ) -> Result<Outcome, ReceiveError> {
        self.send_trip(shared, frame)?;
        self.outcome(shared, env, seq, None).unwrap_or_else(|| unreachable!("a wait without a deadline ends"))
    }

    /// Sends the frame that begins a round trip.
    fn send_trip(&mut self, shared: &Shared, frame: &ToChild<'_>) -> Result<(), ReceiveError> {
        // The child works on a core meanwhile, counted busy as this actor's thread is
        // (the thread only waits for it): counting both made one round trip two busy
        // workers, so on two cores neither this thread nor the asker spun, and every
        // answer waited for two scheduler wake-ups (asks took 17-45 us, not 12).
        match self.send(shared, frame) {
            Ok(()) => Ok(()),
            Err(LinkError::Encode(error)) => {
                let exception =
                    PythonException { type_name: "ValueError".into(), message: error, traceback: String::new() };
                Err(ReceiveError::Message(ConvertError::Build(exception)))
            }
            Err(error) => Err(lost(shared, &error)),
        }
    }

    /// Reads until the outcome of round trip `seq`, serving the child's calls
    /// meanwhile; `None` if `deadline` passes first (the round trip is still on).
    fn outcome(
        &mut self,
        shared: &Shared,
        env: &LocalEnv,
        seq: u64,
        deadline: Option<Instant>,
    ) -> Option<Result<Outcome, ReceiveError>> {
        loop {
            let mut frame = match self.data_r.recv(deadline) {
                Ok(frame) => frame,
                Err(LinkError::Timeout) if deadline.is_some() => return None,
                Err(error) => return Some(Err(lost(shared, &error))),
            };
            match proto::decode::<FromChild>(&mut frame, &shared.handles) {
                Ok(FromChild::Done { seq: done, result, snapshot, released }) if done == seq => {
                    for lend in released {
                        shared.link.released(lend);
                    }
                    if snapshot.is_some() {
                        self.snapshot = snapshot;
                    }
                    return Some(Ok(Outcome::One(result)));
                }
                Ok(FromChild::Told { seq: done, results, snapshot, nanos }) if done == seq => {
                    if snapshot.is_some() {
                        self.snapshot = snapshot;
                    }
                    return Some(Ok(Outcome::Many(results, nanos)));
                }
                Ok(FromChild::Call { call, request }) => {
                    let answer = serve(request, env);
                    if let Err(error) = self.send(shared, &ToChild::Answer { call, answer }) {
                        return Some(Err(lost(shared, &error)));
                    }
                }
                Ok(other) => {
                    return Some(Err(lost(shared, &LinkError::Malformed(format!("unexpected frame {other:?}")))));
                }
                Err(error) => return Some(Err(lost(shared, &error))),
            }
        }
    }
}

/// The link failed while a handler ran: the child is dead, or is killed now (it sent
/// something malformed). The error is the death.
fn lost(shared: &Shared, error: &LinkError) -> ReceiveError {
    if !matches!(error, LinkError::Closed) {
        warn!(%error, pid = shared.pid, "the link to a process actor's child failed: killing it");
        shared.template.kill(shared.pid);
    }
    shared.broken.store(true, Ordering::Release);
    ReceiveError::ProcessDied(shared.death())
}

/// Why no message may go to the child now, if one may not.
fn refusal(shared: &Shared) -> Option<ReceiveError> {
    if shared.broken.load(Ordering::Acquire) {
        return Some(ReceiveError::ProcessDied(shared.death()));
    }
    // The actor is being killed: the message is reported, not handled.
    shared
        .killing
        .load(Ordering::Acquire)
        .then(|| ReceiveError::ProcessDied(Death::Lost("the actor is being killed".into())))
}

/// `Err` with the fault once the child has died.
fn health(shared: &Shared) -> Result<(), Fault> {
    if shared.broken.load(Ordering::Acquire) || shared.exit.get().is_some() {
        shared.broken.store(true, Ordering::Release);
        return Err(Fault::Died(shared.death()));
    }
    Ok(())
}

/// A process actor's asks run by callers while the actor is idle.
struct ChildDirect {
    talk: Arc<Mutex<Talk>>,
    shared: Arc<Shared>,
    env: Arc<LocalEnv>,
}

impl DirectAsk<PyActor> for ChildDirect {
    fn begin(&self, msg: Value) -> Result<(), ReceiveError> {
        if let Some(error) = refusal(&self.shared) {
            return Err(error);
        }
        let mut talk = lock(&self.talk);
        let seq = talk.begin(&self.shared);
        let sent = talk.send_trip(&self.shared, &ToChild::Msg { seq, msg, reply: true });
        match sent {
            Ok(()) => talk.begun = Some(seq),
            Err(_) => self.shared.running.store(0, Ordering::Release),
        }
        sent
    }

    fn finish(&self, deadline: Option<Instant>) -> Option<Result<Value, ReceiveError>> {
        let mut talk = lock(&self.talk);
        let Some(seq) = talk.begun else {
            return Some(Err(lost(&self.shared, &LinkError::Malformed("no ask begun to finish".into()))));
        };
        let outcome = talk.outcome(&self.shared, &self.env, seq, deadline)?;
        talk.begun = None;
        self.shared.running.store(0, Ordering::Release);
        Some(match outcome {
            Ok(Outcome::One(result)) => result,
            Ok(Outcome::Many(..)) => {
                Err(lost(&self.shared, &LinkError::Malformed("tells answered for a message".into())))
            }
            Err(error) => Err(error),
        })
    }

    fn health(&self) -> Result<(), Fault> {
        health(&self.shared)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let shared = &self.shared;
        // The child's reads end: it finalises its interpreter and exits.
        lock(&self.talk).data_w.shutdown();
        shared.ctrl_w.shutdown();
        if shared.exit.wait(STOP_GRACE).is_none() {
            warn!(pid = shared.pid, "a stopped child did not exit: killing it");
            shared.template.kill(shared.pid);
            if shared.exit.wait(DEATH_REPORT).is_none() && shared.template.is_alive() {
                warn!(pid = shared.pid, "no report of a killed child's end");
            }
        }
        shared.template.forget(shared.pid);
        if let Some(watcher) = self.watcher.take() {
            if watcher.join().is_err() {
                warn!("a child's watcher thread panicked");
            }
        }
        // What the child still borrowed goes back to the arena.
        shared.link.close();
    }
}

/// The watcher: serves the child's calls from its control socket until it closes,
/// then wakes the actor to look at its health.
fn watch(shared: &Arc<Shared>, env: &Arc<LocalEnv>, mut reader: FrameReader, alarm: &HealthAlarm) {
    let servers = Servers::new();
    loop {
        let mut frame = match reader.recv(None) {
            Ok(frame) => frame,
            Err(LinkError::Closed) => break,
            Err(error) => {
                warn!(%error, pid = shared.pid, "the control link to a child failed");
                break;
            }
        };
        match proto::decode::<FromChild>(&mut frame, &shared.handles) {
            Ok(FromChild::Release { lend }) => shared.link.released(lend),
            Ok(FromChild::Finished { token, ended, snapshot }) => {
                if !lock(&shared.in_flight).remove(&token) {
                    debug!(token, "the end of a message not in hand");
                    continue;
                }
                if let Some(sink) = &shared.finished {
                    let outcome = match ended {
                        Ended::Replied(value) => Finished::Replied(value),
                        Ended::Failed(error) => Finished::Failed(error),
                        Ended::Interrupted { kill: true } => Finished::Interrupted(InterruptCause::Kill),
                        Ended::Interrupted { kill: false } => Finished::Interrupted(InterruptCause::TimeLimit),
                    };
                    sink.push(token, outcome, snapshot);
                }
            }
            Ok(FromChild::Call { call, request }) if Servers::may_wait(&request) => {
                servers.submit(shared, env, call, request);
            }
            Ok(FromChild::Log(record)) => {
                // Without a tracing subscriber here, as Python's `logging.lastResort`
                // would in the child: the message to stderr, WARNING and up.
                if !record.emit() && record.level >= 30 {
                    eprintln!("{}", record.message);
                }
            }
            Ok(FromChild::Call { call, request }) => {
                let answer = serve(request, &**env);
                if let Err(error) = proto::send(
                    &shared.ctrl_w,
                    Channel::Control,
                    &ToChild::Answer { call, answer },
                    &shared.handles,
                    &[],
                ) {
                    debug!(%error, "cannot answer a child's call");
                    break;
                }
            }
            Ok(other) => {
                warn!(?other, pid = shared.pid, "unexpected frame on a child's control link: killing it");
                shared.template.kill(shared.pid);
                break;
            }
            Err(error) => {
                warn!(%error, pid = shared.pid, "malformed frame on a child's control link: killing it");
                shared.template.kill(shared.pid);
                break;
            }
        }
    }
    shared.broken.store(true, Ordering::Release);
    if shared.killing.load(Ordering::Acquire) {
        // Killed with messages in hand: they end killed (the child is gone).
        let lost: Vec<u64> = lock(&shared.in_flight).drain().collect();
        if let Some(sink) = &shared.finished {
            for token in lost {
                sink.push(token, Finished::Interrupted(InterruptCause::Kill), None);
            }
        }
    }
    alarm.ring();
}

/// Threads that serve the child's calls that may wait (asks, tells into a full mailbox,
/// waits, spawns, lookups), so that the watcher goes on reading the control socket:
/// the ends of an asyncio actor's concurrent messages come that way, and a call that
/// waits for one of them (an ask that comes back to this actor) would otherwise wait
/// for ever. A call is handed to an idle thread (one is reserved for it), or to a new
/// one, up to [`MAX_SERVERS`]; they end with the watcher.
struct Servers {
    tx: flume::Sender<(u64, Call)>,
    rx: flume::Receiver<(u64, Call)>,
    idle: Arc<AtomicUsize>,
    threads: AtomicUsize,
}

impl Servers {
    fn new() -> Servers {
        let (tx, rx) = flume::unbounded();
        Servers { tx, rx, idle: Arc::new(AtomicUsize::new(0)), threads: AtomicUsize::new(0) }
    }

    /// Whether serving `call` may wait for other actors.
    fn may_wait(call: &Call) -> bool {
        matches!(call, Call::Ask { .. } | Call::Tell { .. } | Call::Wait { .. } | Call::Spawn(_) | Call::Lookup(_))
    }

    fn submit(&self, shared: &Arc<Shared>, env: &Arc<LocalEnv>, call: u64, request: Call) {
        let _ = self.tx.send((call, request));
        // An idle thread is reserved for it; else a new thread takes it (or the one
        // reserved for another call, which the new one then takes).
        let reserved = self.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| idle.checked_sub(1)).is_ok();
        if reserved || self.threads.load(Ordering::Acquire) >= MAX_SERVERS {
            return;
        }
        self.threads.fetch_add(1, Ordering::AcqRel);
        let (serving, serving_env, rx, idle) =
            (Arc::clone(shared), Arc::clone(env), self.rx.clone(), Arc::clone(&self.idle));
        let spawned = thread::Builder::new().name(format!("subactor-calls:{}", shared.pid)).spawn(move || {
            while let Ok((call, request)) = rx.recv() {
                answer_call(&serving, &serving_env, call, request);
                idle.fetch_add(1, Ordering::AcqRel);
            }
        });
        if let Err(error) = spawned {
            warn!(%error, "cannot start a thread to serve a child's call: serving it on the watcher");
            self.threads.fetch_sub(1, Ordering::AcqRel);
            if let Ok((call, request)) = self.rx.try_recv() {
                answer_call(shared, env, call, request);
            }
        }
    }
}

/// Serves a call of the child and sends the answer on the control socket.
fn answer_call(shared: &Shared, env: &LocalEnv, call: u64, request: Call) {
    let answer = serve(request, env);
    let frame = ToChild::Answer { call, answer };
    if let Err(error) = proto::send(&shared.ctrl_w, Channel::Control, &frame, &shared.handles, &[]) {
        debug!(%error, "cannot answer a child's call");
    }
}

/// Kills and time limits for a process actor: the interrupt is raised in the child's
/// handler; if the handler has not ended within the grace period, the child is killed
/// with SIGKILL.
struct ChildInterrupter(Arc<Shared>);

impl Interrupt for ChildInterrupter {
    fn interrupt(&self, cause: InterruptCause, confirm: &dyn Fn() -> bool) {
        let shared = &self.0;
        if !confirm() {
            return;
        }
        let kill = cause == InterruptCause::Kill;
        if kill {
            shared.killing.store(true, Ordering::Release);
        }
        let seq = shared.running.load(Ordering::Acquire);
        if seq == 0 {
            // Between two round trips: a kill keeps the next message from being sent.
            return;
        }
        let frame = ToChild::Interrupt { seq, kill };
        if let Err(error) = proto::send(&shared.ctrl_w, Channel::Control, &frame, &shared.handles, &[]) {
            debug!(%error, "cannot send an interrupt to a child");
        }
        let deadline = subactor_core::deadline_after(shared.grace);
        while Instant::now() < deadline {
            if shared.running.load(Ordering::Acquire) != seq || shared.broken.load(Ordering::Acquire) {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        warn!(pid = shared.pid, ?cause, grace = ?shared.grace, "the handler did not end within its grace period: killing the child");
        shared.template.kill(shared.pid);
    }
}
