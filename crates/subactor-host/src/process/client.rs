//! The child's side of its link to the parent: every call on the parent's actors
//! (the references a process actor holds are all [`ProxyRef`](subactor_wire::ProxyRef)s)
//! goes through a [`Client`].
//!
//! Calls made by the actor's own thread while it runs the constructor or a handler go
//! on the data socket, where the parent's actor thread is waiting for that handler and
//! serves them itself, on the thread an interpreter actor's call would run on (so a
//! tell to itself with a full mailbox is refused, not deadlocked). Calls from other
//! threads, or outside a handler, go on the control socket, served by the parent's
//! watcher thread; a reader thread here routes their answers and the parent's
//! interrupts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use subactor_core::codec::Handles;
use subactor_core::{AnyRef, BoxError, Interrupt, InterruptCause, Value};
use subactor_wire::{
    ActorEnv, Answer, Call, CallFailed, Caller, Channel, Frame, FrameReader, FrameWriter, LinkError, LinkHandles,
};
use subactor_wire::{RemoteError, SpawnRequest};
use tracing::{debug, warn};

use super::proto::{self, FromChild, ToChild};

/// A child's link to its parent.
pub(crate) struct Client {
    data_w: FrameWriter,
    data_r: Mutex<FrameReader>,
    ctrl_w: FrameWriter,
    handles: OnceLock<Arc<dyn Handles>>,
    link: OnceLock<Arc<LinkHandles>>,
    pending: Mutex<HashMap<u64, flume::Sender<Answer>>>,
    next_call: AtomicU64,
    main_thread: ThreadId,
    /// The handler running on the actor's thread (its `seq`), or 0.
    running: AtomicU64,
    /// The actor's thread is in the constructor or a handler: the parent listens on the
    /// data socket.
    serving: AtomicBool,
    /// The control socket has closed.
    closed: AtomicBool,
    /// A kill came for the handler running now: a batch of tells stops after it.
    kill_requested: AtomicBool,
    /// How long to spin for a call's answer, in microseconds.
    spin_us: AtomicU64,
    interrupter: OnceLock<Arc<dyn Interrupt>>,
    /// The actor's thread is handling a message: the buffers it is done with meanwhile
    /// go back with the outcome ([`Client::deferred`]).
    deferring: AtomicBool,
    deferred: Mutex<Vec<u64>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client over the data socket's halves and the control socket's writer, made on
    /// the actor's own thread.
    pub(crate) fn new(data_w: FrameWriter, data_r: FrameReader, ctrl_w: FrameWriter) -> Client {
        Client {
            data_w,
            data_r: Mutex::new(data_r),
            ctrl_w,
            handles: OnceLock::new(),
            link: OnceLock::new(),
            pending: Mutex::default(),
            next_call: AtomicU64::new(1),
            main_thread: thread::current().id(),
            running: AtomicU64::new(0),
            serving: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            kill_requested: AtomicBool::new(false),
            spin_us: AtomicU64::new(0),
            interrupter: OnceLock::new(),
            deferring: AtomicBool::new(false),
            deferred: Mutex::default(),
        }
    }

    /// Sets the handles that encode and decode this link's frames; the child tells the
    /// runtime through the control socket when it is done with a buffer it was lent.
    pub(crate) fn set_link(self: &Arc<Client>, link: Arc<LinkHandles>) {
        let client = Arc::downgrade(self);
        link.set_release(move |lend| {
            if let Some(client) = client.upgrade() {
                client.give_back(lend);
            }
        });
        let _ = self.handles.set(Arc::clone(&link) as Arc<dyn Handles>);
        let _ = self.link.set(link);
    }

    /// The link's handles.
    pub(crate) fn handles(&self) -> Arc<dyn Handles> {
        Arc::clone(self.handles.get().unwrap_or_else(|| unreachable!("set before the link is used")))
    }

    /// Sets how the parent's interrupts break into the actor's handlers.
    pub(crate) fn set_interrupter(&self, interrupter: Arc<dyn Interrupt>) {
        let _ = self.interrupter.set(interrupter);
    }

    /// Sets how long the actor's thread spins for the answer to a call, or for the
    /// next message after an ask, before it sleeps.
    pub(crate) fn set_spin(&self, spin: Duration) {
        self.spin_us.store(u64::try_from(spin.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Marks the constructor or handler `seq` (0 for the constructor) as running on the
    /// actor's thread, or (with `None`) as ended.
    pub(crate) fn serving(&self, seq: Option<u64>) {
        self.kill_requested.store(false, Ordering::Release);
        self.running.store(seq.unwrap_or(0), Ordering::Release);
        self.serving.store(seq.is_some(), Ordering::Release);
    }

    /// From now until [`Client::deferred`], the buffers the actor's thread is done with
    /// go back with the message's outcome.
    pub(crate) fn defer_releases(&self) {
        self.deferring.store(true, Ordering::Release);
    }

    /// Tells the runtime the child is done with the buffer it lent as `lend`: with the
    /// outcome of the message the actor's thread handles now, else at once on the
    /// control socket.
    fn give_back(&self, lend: u64) {
        if self.deferring.load(Ordering::Acquire) && thread::current().id() == self.main_thread {
            lock(&self.deferred).push(lend);
            return;
        }
        let _ = proto::send(&self.ctrl_w, Channel::Control, &FromChild::Release { lend }, &proto::no_handles(), &[]);
    }

    /// The buffers given back since [`Client::defer_releases`]; releases go on the
    /// control socket again.
    pub(crate) fn deferred(&self) -> Vec<u64> {
        self.deferring.store(false, Ordering::Release);
        std::mem::take(&mut *lock(&self.deferred))
    }

    /// Whether a kill came for the handler running now.
    pub(crate) fn kill_requested(&self) -> bool {
        self.kill_requested.load(Ordering::Acquire)
    }

    /// The next frame on the data socket (the actor's thread only), spinning for it
    /// first (as for a call's answer) if `spin`.
    pub(crate) fn recv_data(&self, deadline: Option<Instant>, spin: bool) -> Result<Frame, LinkError> {
        let spin = if spin { Duration::from_micros(self.spin_us.load(Ordering::Relaxed)) } else { Duration::ZERO };
        lock(&self.data_r).recv_spinning(deadline, spin)
    }

    /// Sends a frame on the data socket.
    pub(crate) fn send_data(&self, frame: &FromChild) -> Result<(), LinkError> {
        proto::send(&self.data_w, Channel::Data, frame, &self.handles(), &[])
    }

    /// Sends a frame on the control socket (from any thread).
    pub(crate) fn send_control(&self, frame: &FromChild) -> Result<(), LinkError> {
        proto::send(&self.ctrl_w, Channel::Control, frame, &self.handles(), &[])
    }

    /// Reads the control socket until it closes: routes answers and interrupts. Runs
    /// on a thread of its own.
    pub(crate) fn read_control(self: &Arc<Client>, mut reader: FrameReader) {
        let handles = self.handles();
        loop {
            let mut frame = match reader.recv(None) {
                Ok(frame) => frame,
                Err(LinkError::Closed) => break,
                Err(error) => {
                    warn!(%error, "the control link to the parent failed");
                    break;
                }
            };
            match proto::decode::<ToChild<'static>>(&mut frame, &handles) {
                Ok(ToChild::Answer { call, answer }) => {
                    if let Some(tx) = lock(&self.pending).remove(&call) {
                        let _ = tx.send(answer);
                    }
                }
                Ok(ToChild::Interrupt { seq, kill }) => self.interrupt(seq, kill),
                Ok(ToChild::Release { lend }) => {
                    if let Some(link) = self.link.get() {
                        link.released(lend);
                    }
                }
                Ok(other) => warn!(?other, "unexpected frame on the control link"),
                Err(error) => {
                    warn!(%error, "malformed frame on the control link");
                    break;
                }
            }
        }
        self.closed.store(true, Ordering::Release);
        // Callers waiting for answers see their channel close.
        lock(&self.pending).clear();
    }

    /// Interrupts handler `seq` if it still runs, on a thread of its own (taking the
    /// interpreter waits for the handler's next switch interval).
    fn interrupt(self: &Arc<Client>, seq: u64, kill: bool) {
        if kill && self.running.load(Ordering::Acquire) == seq {
            self.kill_requested.store(true, Ordering::Release);
        }
        let Some(interrupter) = self.interrupter.get().cloned() else { return };
        let client = Arc::clone(self);
        let cause = if kill { InterruptCause::Kill } else { InterruptCause::TimeLimit };
        let spawned = thread::Builder::new().name("subactor-interrupt".into()).spawn(move || {
            interrupter.interrupt(cause, &|| client.running.load(Ordering::Acquire) == seq);
        });
        if let Err(error) = spawned {
            warn!(%error, "cannot start an interrupt thread");
        }
    }

    fn call_on_data(&self, id: u64, request: Call, deadline: Option<Instant>) -> Result<Answer, CallFailed> {
        let frame = FromChild::Call { call: id, request };
        if let Err(error) = self.send_data(&frame) {
            let FromChild::Call { request, .. } = frame else { unreachable!("built above") };
            return Err(CallFailed { error, call: Some(Box::new(request)) });
        }
        let handles = self.handles();
        let spin = Duration::from_micros(self.spin_us.load(Ordering::Relaxed));
        loop {
            let mut frame =
                lock(&self.data_r).recv_spinning(deadline, spin).map_err(|error| CallFailed { error, call: None })?;
            match proto::decode::<ToChild<'static>>(&mut frame, &handles) {
                Ok(ToChild::Answer { call, answer }) if call == id => return Ok(answer),
                // The answer to a call that timed out earlier.
                Ok(ToChild::Answer { call, .. }) => debug!(call, "a late answer"),
                Ok(other) => {
                    let error = LinkError::Malformed(format!("expected the answer to a call, got {other:?}"));
                    return Err(CallFailed { error, call: None });
                }
                Err(error) => return Err(CallFailed { error, call: None }),
            }
        }
    }

    fn call_on_control(&self, id: u64, request: Call, wait: Option<Duration>) -> Result<Answer, CallFailed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(CallFailed { error: LinkError::Closed, call: Some(Box::new(request)) });
        }
        let (tx, rx) = flume::bounded(1);
        lock(&self.pending).insert(id, tx);
        let frame = FromChild::Call { call: id, request };
        if let Err(error) = proto::send(&self.ctrl_w, Channel::Control, &frame, &self.handles(), &[]) {
            lock(&self.pending).remove(&id);
            let FromChild::Call { request, .. } = frame else { unreachable!("built above") };
            return Err(CallFailed { error, call: Some(Box::new(request)) });
        }
        let answer = match wait {
            Some(wait) => rx.recv_timeout(wait).map_err(|e| match e {
                flume::RecvTimeoutError::Timeout => LinkError::Timeout,
                flume::RecvTimeoutError::Disconnected => LinkError::Closed,
            }),
            None => rx.recv().map_err(|_| LinkError::Closed),
        };
        if answer.is_err() {
            lock(&self.pending).remove(&id);
        }
        answer.map_err(|error| CallFailed { error, call: None })
    }
}

impl Caller for Client {
    fn call(&self, call: Call, wait: Option<Duration>) -> Result<Answer, CallFailed> {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        if thread::current().id() == self.main_thread && self.serving.load(Ordering::Acquire) {
            self.call_on_data(id, call, wait.map(subactor_core::deadline_after))
        } else {
            self.call_on_control(id, call, wait)
        }
    }

    fn env(&self) -> &dyn ActorEnv {
        self
    }
}

impl ActorEnv for Client {
    fn log(&self, record: subactor_wire::LogRecord) -> bool {
        // To the parent, whose tracing it is (the child has no subscriber); a closed
        // link drops it, as the actor is ending.
        let _ = proto::send(&self.ctrl_w, Channel::Control, &FromChild::Log(record), &proto::no_handles(), &[]);
        true
    }

    fn lookup(&self, name: &str) -> Option<AnyRef> {
        match self.call(Call::Lookup(name.to_owned()), None) {
            Ok(Answer::Actor(actor)) => actor,
            _ => None,
        }
    }

    fn spawn(&self, request: SpawnRequest) -> Result<AnyRef, String> {
        match self.call(Call::Spawn(request), None) {
            Ok(Answer::Actor(Some(actor))) => Ok(actor),
            Ok(Answer::SpawnFailed(error)) => Err(error),
            Ok(other) => Err(format!("unexpected answer to a spawn: {other:?}")),
            Err(failed) => Err(format!("cannot reach the runtime: {}", failed.error)),
        }
    }

    fn send_after(&self, delay: Duration, to: AnyRef, msg: Value) -> Option<u64> {
        match self.call(Call::SendAfter { delay, to, msg }, None) {
            Ok(Answer::Timer(id)) => id,
            _ => None,
        }
    }

    fn cancel_timer(&self, id: u64) -> bool {
        matches!(self.call(Call::CancelTimer(id), None), Ok(Answer::Bool(true)))
    }

    fn describe(&self, error: &BoxError) -> RemoteError {
        super::describe(error)
    }

    fn rebuild(&self, error: RemoteError) -> BoxError {
        super::rebuild(error)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use subactor_wire::stream;

    /// A client over socket pairs, the parent's end of its control socket, and the
    /// parent's end of its data socket (kept open).
    fn client() -> (Arc<Client>, FrameReader, (FrameWriter, FrameReader)) {
        let ((data_w, data_r), parent_data) = stream::pair(Duration::ZERO).expect("data pair");
        let ((ctrl_w, _), (_, parent_ctrl)) = stream::pair(Duration::ZERO).expect("control pair");
        (Arc::new(Client::new(data_w, data_r, ctrl_w)), parent_ctrl, parent_data)
    }

    /// The lends of the Release frames waiting on the parent's control socket.
    fn releases(ctrl: &mut FrameReader) -> Vec<u64> {
        let mut lends = Vec::new();
        while let Some(mut frame) = ctrl.try_recv().expect("a readable socket") {
            match proto::decode::<FromChild>(&mut frame, &proto::no_handles()) {
                Ok(FromChild::Release { lend }) => lends.push(lend),
                other => panic!("not a release: {other:?}"),
            }
        }
        lends
    }

    #[test]
    fn buffers_given_back_while_a_message_is_handled_go_with_its_outcome() {
        let (client, mut ctrl, _data) = client();
        // Outside a message: at once, on the control socket.
        client.give_back(1);
        assert_eq!(releases(&mut ctrl), [1]);
        client.defer_releases();
        client.give_back(2);
        client.give_back(3);
        // Another thread's (the event loop's, a finalizer's): at once still.
        let other = Arc::clone(&client);
        thread::spawn(move || other.give_back(4)).join().expect("the other thread");
        assert_eq!(releases(&mut ctrl), [4], "only the other thread's went on the control socket");
        assert_eq!(client.deferred(), [2, 3], "the actor thread's go with the outcome");
        // The message is done: at once again.
        client.give_back(5);
        assert_eq!(releases(&mut ctrl), [5]);
        assert!(client.deferred().is_empty());
    }
}
