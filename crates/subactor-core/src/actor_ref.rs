//! [`ActorRef`]: how everyone else talks to an actor.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flume::RecvTimeoutError;

use crate::cell::{Callback, Cell, Envelope, Outcome, Refusal, ReplyTo, Signal, spin_recv};
use crate::dead_letters::DeadLetterReason;
use crate::{Actor, ActorId, ActorState, AskError, Down, MonitorId, SendError, StopReason};

/// A cheap, cloneable, thread-safe reference to a running (or stopped) actor.
///
/// Messages from one sender arrive in the order they were sent. Tells come in three
/// forms: [`tell`](Self::tell) (async) and [`blocking_tell`](Self::blocking_tell) wait
/// for room when the mailbox is full (backpressure); [`try_tell`](Self::try_tell) never
/// waits and hands the message back. Asks ([`ask`](Self::ask),
/// [`blocking_ask`](Self::blocking_ask)) wait for the handler's reply, up to a timeout
/// that covers both waiting for room and waiting for the reply.
///
/// Async methods need a Tokio runtime with its timer enabled when they wait with a
/// deadline.
pub struct ActorRef<A: Actor> {
    pub(crate) cell: Arc<Cell<A>>,
}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn new(cell: Arc<Cell<A>>) -> ActorRef<A> {
        ActorRef { cell }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.cell.id
    }

    /// The actor's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.cell.name.as_deref()
    }

    /// Where the actor is in its life.
    pub fn state(&self) -> ActorState {
        self.cell.state()
    }

    /// Why the actor stopped, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.cell.stop_reason()
    }

    /// How many messages wait in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.rx.len()
    }

    /// The mailbox capacity.
    pub fn mailbox_capacity(&self) -> usize {
        self.cell.tx.capacity().unwrap_or(usize::MAX)
    }

    // ---- tell -------------------------------------------------------------------------

    /// Sends a message without waiting: a full mailbox hands it back in
    /// [`SendError::Full`].
    pub fn try_tell(&self, msg: impl Into<A::Msg>) -> Result<(), SendError<A::Msg>> {
        self.cell.try_send(Envelope::tell(msg.into())).map_err(|(envelope, refusal)| self.send_error(envelope, refusal))
    }

    /// Sends a message, waiting for room while the mailbox is full.
    ///
    /// Called by the actor on itself, it does not wait (that would never end) and
    /// returns [`SendError::Full`] instead.
    pub fn blocking_tell(&self, msg: impl Into<A::Msg>) -> Result<(), SendError<A::Msg>> {
        self.cell
            .send_blocking(Envelope::tell(msg.into()), None)
            .map_err(|(envelope, refusal)| self.send_error(envelope, refusal))
    }

    /// Sends a message, waiting up to `timeout` for room while the mailbox is full; a
    /// mailbox still full then hands the message back in [`SendError::Full`]. With a zero
    /// timeout it is [`try_tell`](Self::try_tell). Lets a caller wait in slices (and look
    /// at other things, such as signals, in between).
    pub fn blocking_tell_timeout(&self, msg: impl Into<A::Msg>, timeout: Duration) -> Result<(), SendError<A::Msg>> {
        let envelope = Envelope::tell(msg.into());
        let sent = if timeout.is_zero() {
            self.cell.try_send(envelope)
        } else {
            self.cell.send_blocking(envelope, Some(crate::deadline_after(timeout)))
        };
        sent.map_err(|(envelope, refusal)| self.send_error(envelope, refusal))
    }

    /// Sends a message, waiting (asynchronously) for room while the mailbox is full.
    ///
    /// If this future is dropped while it waits, the message is dropped with it.
    pub async fn tell(&self, msg: impl Into<A::Msg>) -> Result<(), SendError<A::Msg>> {
        self.cell
            .send_async(Envelope::tell(msg.into()), None)
            .await
            .map_err(|(envelope, refusal)| self.send_error(envelope, refusal))
    }

    fn send_error(&self, envelope: Envelope<A>, refusal: Refusal) -> SendError<A::Msg> {
        let msg = envelope.into_msg().unwrap_or_else(|| unreachable!("a tell carries a message"));
        match refusal {
            Refusal::Full | Refusal::Timeout => SendError::Full(msg),
            Refusal::NotRunning => {
                self.cell.record_dead(DeadLetterReason::NotRunning, &msg);
                SendError::Stopped(msg)
            }
        }
    }

    // ---- ask --------------------------------------------------------------------------

    /// Sends a message and waits for the handler's reply, up to `timeout`.
    pub async fn ask(&self, msg: impl Into<A::Msg>, timeout: Duration) -> Result<A::Reply, AskError<A::Msg, A::Error>> {
        let msg = msg.into();
        if self.cell.is_own_thread() {
            return Err(AskError::SelfAsk(msg));
        }
        let deadline = crate::deadline_after(timeout);
        let (reply_tx, reply_rx) = flume::bounded(1);
        self.cell
            .send_async(Envelope::ask(msg, ReplyTo::Channel(reply_tx)), Some(deadline))
            .await
            .map_err(|(envelope, refusal)| self.ask_error(envelope, refusal))?;
        match tokio::time::timeout_at(deadline.into(), reply_rx.recv_async()).await {
            Err(_) => Err(AskError::Timeout),
            Ok(Err(_)) => Err(AskError::NoReply),
            Ok(Ok(reply)) => reply.map_err(AskError::from),
        }
    }

    /// Sends a message and blocks until the handler's reply, up to `timeout`.
    ///
    /// The caller spins briefly before parking, so that a quick reply is picked up
    /// without a futex round trip. An idle actor that offers it (a process actor) has
    /// the ask run on this thread (see [`ask_direct_then`](Self::ask_direct_then)); at
    /// the timeout the actor's thread finishes it.
    pub fn blocking_ask(
        &self,
        msg: impl Into<A::Msg>,
        timeout: Duration,
    ) -> Result<A::Reply, AskError<A::Msg, A::Error>> {
        let msg = msg.into();
        if self.cell.is_own_thread() {
            return Err(AskError::SelfAsk(msg));
        }
        let deadline = crate::deadline_after(timeout);
        let (reply_tx, reply_rx) = flume::bounded(1);
        // An idle actor that offers it: the ask runs on this thread (see `crate::direct`).
        let mut waited = false;
        let direct = crate::run::ask_direct(&self.cell, msg, ReplyTo::Channel(reply_tx), || {
            (!std::mem::replace(&mut waited, true)).then_some(deadline)
        });
        if let Err((msg, reply)) = direct {
            self.cell
                .send_blocking(Envelope::ask(msg, reply), Some(deadline))
                .map_err(|(envelope, refusal)| self.ask_error(envelope, refusal))?;
        }
        let spin = self.cell.spin.min(deadline.saturating_duration_since(Instant::now()));
        let reply = spin_recv(&reply_rx, spin, Some(deadline));
        match reply {
            Ok(reply) => reply.map_err(AskError::from),
            Err(RecvTimeoutError::Timeout) => Err(AskError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(AskError::NoReply),
        }
    }

    /// Sends a message whose outcome goes to `then`, which runs exactly once, on the
    /// actor's thread right after the handler (or wherever the message is dropped
    /// unhandled, with [`Outcome::NotHandled`]). Waits for room like
    /// [`blocking_tell`](Self::blocking_tell). The pipeline is built on this.
    pub fn blocking_ask_then(
        &self,
        msg: impl Into<A::Msg>,
        then: impl FnOnce(Outcome<A::Reply, A::Error>) + Send + 'static,
    ) -> Result<(), SendError<A::Msg>> {
        let envelope = Envelope::ask(msg.into(), ReplyTo::Callback(Callback::new(Box::new(then))));
        self.cell.send_blocking(envelope, None).map_err(|(envelope, refusal)| self.refused_callback(envelope, refusal))
    }

    /// As [`blocking_ask_then`](Self::blocking_ask_then), but waits for room for at most
    /// `timeout` (zero: not at all); a mailbox still full then hands the message back in
    /// [`SendError::Full`], and `then` is dropped without running.
    pub fn blocking_ask_then_timeout(
        &self,
        msg: impl Into<A::Msg>,
        timeout: Duration,
        then: impl FnOnce(Outcome<A::Reply, A::Error>) + Send + 'static,
    ) -> Result<(), SendError<A::Msg>> {
        let envelope = Envelope::ask(msg.into(), ReplyTo::Callback(Callback::new(Box::new(then))));
        let sent = if timeout.is_zero() {
            self.cell.try_send(envelope)
        } else {
            self.cell.send_blocking(envelope, Some(crate::deadline_after(timeout)))
        };
        sent.map_err(|(envelope, refusal)| self.refused_callback(envelope, refusal))
    }

    /// Runs an ask on this thread, when the actor is idle and offers it (a process
    /// actor: this thread then talks to its child itself, without the actor's thread
    /// between them), with the same semantics as one sent through the mailbox:
    /// per-sender order, kills and supervision. `then` gets the outcome, here;
    /// `wait` says until when to wait for it next (called before each wait: the
    /// caller can do its own work between slices), or `None` to stop waiting: the
    /// actor's thread then finishes the ask and runs `then`.
    ///
    /// `Err` gives the message back, `then` dropped without running, when the ask
    /// cannot run here (the actor is busy, has mail queued, or has no direct path):
    /// send it through the mailbox.
    pub fn ask_direct_then(
        &self,
        msg: impl Into<A::Msg>,
        then: impl FnOnce(Outcome<A::Reply, A::Error>) + Send + 'static,
        wait: impl FnMut() -> Option<Instant>,
    ) -> Result<(), A::Msg> {
        let msg = msg.into();
        if self.cell.is_own_thread() {
            return Err(msg);
        }
        let reply = ReplyTo::Callback(Callback::new(Box::new(then)));
        crate::run::ask_direct(&self.cell, msg, reply, wait).map_err(|(msg, reply)| {
            if let ReplyTo::Callback(mut callback) = reply {
                callback.defuse();
            }
            msg
        })
    }

    /// Whether [`ask_direct_then`](Self::ask_direct_then) may run an ask on this
    /// thread now: a hint for a caller that has work to do before it (a Python caller
    /// releasing its GIL); only the attempt decides.
    pub fn may_ask_direct(&self) -> bool {
        self.cell.turn.idle()
    }

    /// The error for an ask-then whose message was refused: the message comes back to
    /// the caller, so its callback must not report it.
    fn refused_callback(&self, envelope: Envelope<A>, refusal: Refusal) -> SendError<A::Msg> {
        let msg = match envelope {
            Envelope::Ask(msg, ReplyTo::Callback(mut callback), _) => {
                callback.defuse();
                msg
            }
            other => other.into_msg().unwrap_or_else(|| unreachable!("an ask carries a message")),
        };
        self.send_error(Envelope::untraced(msg), refusal)
    }

    fn ask_error(&self, envelope: Envelope<A>, refusal: Refusal) -> AskError<A::Msg, A::Error> {
        match self.send_error(envelope, refusal) {
            SendError::Stopped(msg) => AskError::Stopped(msg),
            SendError::Full(msg) => AskError::MailboxFull(msg),
        }
    }

    // ---- lifecycle --------------------------------------------------------------------

    /// Asks the actor to stop gracefully: it takes no new messages, handles everything
    /// already queued, then stops. Returns at once; see [`wait`](Self::wait).
    pub fn stop(&self) {
        tracing::debug!(actor = %self.cell.id, "stop requested");
        self.cell.request(Signal::Stop);
    }

    /// Stops the actor before its next message: the message being handled finishes, what
    /// is queued goes to the dead letters, and askers waiting on it get
    /// [`AskError::NoReply`] at once. Returns at once; see [`wait`](Self::wait).
    pub fn kill(&self) {
        tracing::debug!(actor = %self.cell.id, "kill requested");
        self.cell.request(Signal::Kill);
    }

    /// Asks the actor to start again in place once the message in hand (if any) is
    /// handled: the same reference and mailbox (queued messages wait for the next
    /// incarnation), counted by [`restarts`](Self::restarts). Not a failure: no
    /// supervisor is asked. What starts is the recipe's business (a Python actor's
    /// upgrade loads new code). Returns at once.
    pub fn restart(&self) {
        tracing::debug!(actor = %self.cell.id, "restart requested");
        self.cell.request(Signal::Restart);
    }

    /// Runs `f` when the actor stops for good (restarts do not count), on the actor's
    /// thread as it ends, or at once if it already has. `f` must not block for long.
    pub fn monitor(&self, f: impl FnOnce(&Down) + Send + 'static) -> MonitorId {
        self.cell.on_stop(Box::new(f))
    }

    /// Makes `watcher` receive `f(down)` when this actor stops for good. The message
    /// goes ahead of the watcher's queued mail and is never refused for a full mailbox;
    /// if the watcher has stopped by then, it is a dead letter. The monitor does not
    /// keep the watcher alive.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use subactor_core::{Actor, ActorContext, ActorSystem, Down, Props};
    ///
    /// struct Worker;
    /// impl Actor for Worker {
    ///     type Msg = ();
    ///     type Reply = ();
    ///     type Error = Infallible;
    ///     fn handle(&mut self, _: &ActorContext<Self>, _: ()) -> Result<(), Infallible> { Ok(()) }
    /// }
    ///
    /// struct Watcher(Vec<Down>);
    /// impl Actor for Watcher {
    ///     type Msg = Option<Down>; // Some: a monitored actor ended; None: report
    ///     type Reply = usize;
    ///     type Error = Infallible;
    ///     fn handle(&mut self, _: &ActorContext<Self>, msg: Option<Down>) -> Result<usize, Infallible> {
    ///         self.0.extend(msg);
    ///         Ok(self.0.len())
    ///     }
    /// }
    ///
    /// let system = ActorSystem::builder().build();
    /// let worker = system.spawn(Props::new(|| Ok::<_, Infallible>(Worker)))?;
    /// let watcher = system.spawn(Props::new(|| Ok::<_, Infallible>(Watcher(Vec::new()))))?;
    /// worker.monitor_by(&watcher, Some);
    /// worker.stop();
    /// worker.blocking_wait();
    /// assert_eq!(watcher.blocking_ask(None, Duration::from_secs(5))?, 1);
    /// system.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn monitor_by<W: Actor>(
        &self,
        watcher: &ActorRef<W>,
        f: impl FnOnce(Down) -> W::Msg + Send + 'static,
    ) -> MonitorId {
        let watcher = Arc::downgrade(&watcher.cell);
        self.cell.on_stop(Box::new(move |down| {
            if let Some(watcher) = watcher.upgrade() {
                watcher.notify(f(down.clone()));
            }
        }))
    }

    /// Removes a monitor that has not fired yet; `true` if it was there.
    pub fn demonitor(&self, id: MonitorId) -> bool {
        self.cell.remove_monitor(id)
    }

    /// Where the actor's handlers run (known once it has started).
    pub fn placement(&self) -> crate::Placement {
        *crate::sync::lock(&self.cell.placement)
    }

    /// How many times the actor has been restarted (by its supervisor or its policy).
    pub fn restarts(&self) -> u64 {
        self.cell.restarts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until the actor has stopped and its thread is done with it.
    pub async fn wait(&self) -> StopReason {
        let _ = self.cell.done().recv_async().await;
        self.finished_reason()
    }

    /// Blocks until the actor has stopped and its thread is done with it.
    pub fn blocking_wait(&self) -> StopReason {
        let _ = self.cell.done().recv();
        self.finished_reason()
    }

    /// Blocks until the actor has stopped, or `timeout` has passed (then `None`).
    pub fn blocking_wait_timeout(&self, timeout: Duration) -> Option<StopReason> {
        match self.cell.done().recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => None,
            _ => Some(self.finished_reason()),
        }
    }

    fn finished_reason(&self) -> StopReason {
        self.cell.stop_reason().unwrap_or(StopReason::Killed)
    }
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> ActorRef<A> {
        ActorRef { cell: Arc::clone(&self.cell) }
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &ActorRef<A>) -> bool {
        self.cell.id == other.cell.id
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("id", &self.cell.id)
            .field("name", &self.cell.name)
            .field("state", &self.cell.state())
            .finish()
    }
}
