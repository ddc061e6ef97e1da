//! Tests of asks run by their callers (`crate::direct`), with a Rust actor whose
//! handler, like a process actor's, can run wherever its state is shared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::tests::eventually;
use crate::{
    Actor, ActorContext, ActorRef, ActorState, ActorSystem, AskError, DirectAsk, FailurePolicy, Fault, Interrupt,
    InterruptCause, Outcome, Props, StopReason,
};

const TIMEOUT: Duration = Duration::from_secs(10);

enum Msg {
    /// Adds to the total.
    Add(u64),
    /// Answers the total.
    Total,
    /// Waits until the gate opens (a send or its sender dropped), or a kill; answers 1,
    /// or fails with `Killed` for a kill.
    Gate(flume::Receiver<()>),
    /// Fails.
    Fail,
    /// Asks the actor itself: answers 1 if that was refused as a self-ask.
    AskMyself,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum Error {
    #[error("failed on purpose")]
    Failed,
    #[error("interrupted by a kill")]
    Killed,
}

/// What the actor's thread and its askers share: the handler's state, as a process
/// actor's child is shared.
#[derive(Default)]
struct State {
    total: AtomicU64,
    /// The ask begun by a caller, not finished.
    begun: Mutex<Option<Msg>>,
    /// Threads that ran handlers for asks: (thread, whether it was the actor's).
    ran_on: Mutex<Vec<(ThreadId, bool)>>,
    killed: AtomicBool,
    myself: OnceLock<ActorRef<Sum>>,
    actor_thread: OnceLock<ThreadId>,
}

impl State {
    /// Runs `msg` until `deadline`: `None` (with `msg` kept as begun) if it has not
    /// ended by then.
    fn run(&self, msg: Msg, deadline: Option<Instant>) -> Option<Result<u64, Error>> {
        self.ran_on
            .lock()
            .expect("lock")
            .push((thread::current().id(), self.actor_thread.get() == Some(&thread::current().id())));
        Some(match msg {
            Msg::Add(n) => Ok(self.total.fetch_add(n, Ordering::SeqCst) + n),
            Msg::Total => Ok(self.total.load(Ordering::SeqCst)),
            Msg::Gate(gate) => loop {
                if self.killed.swap(false, Ordering::SeqCst) {
                    break Err(Error::Killed);
                }
                match gate.recv_timeout(Duration::from_millis(1)) {
                    Ok(()) | Err(flume::RecvTimeoutError::Disconnected) => break Ok(1),
                    Err(flume::RecvTimeoutError::Timeout) => {}
                }
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    *self.begun.lock().expect("lock") = Some(Msg::Gate(gate));
                    return None;
                }
            },
            Msg::Fail => Err(Error::Failed),
            Msg::AskMyself => {
                let myself = self.myself.get().expect("set at start");
                Ok(u64::from(matches!(myself.blocking_ask(Msg::Total, TIMEOUT), Err(AskError::SelfAsk(_)))))
            }
        })
    }
}

struct Sum(Arc<State>);

impl Actor for Sum {
    type Msg = Msg;
    type Reply = u64;
    type Error = Error;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: Msg) -> Result<u64, Error> {
        self.0.run(msg, None).expect("no deadline")
    }

    fn interrupter(&self) -> Option<Arc<dyn Interrupt>> {
        Some(Arc::new(Killer(Arc::clone(&self.0))))
    }

    fn direct(&self) -> Option<Arc<dyn DirectAsk<Self>>> {
        Some(Arc::new(Direct(Arc::clone(&self.0))))
    }
}

struct Killer(Arc<State>);

impl Interrupt for Killer {
    fn interrupt(&self, _cause: InterruptCause, confirm: &dyn Fn() -> bool) {
        if confirm() {
            self.0.killed.store(true, Ordering::SeqCst);
        }
    }
}

struct Direct(Arc<State>);

impl DirectAsk<Sum> for Direct {
    fn begin(&self, msg: Msg) -> Result<(), Error> {
        *self.0.begun.lock().expect("lock") = Some(msg);
        Ok(())
    }

    fn finish(&self, deadline: Option<Instant>) -> Option<Result<u64, Error>> {
        let msg = self.0.begun.lock().expect("lock").take().expect("an ask begun");
        self.0.run(msg, deadline)
    }

    fn health(&self) -> Result<(), Fault> {
        Ok(())
    }
}

fn spawn(system: &ActorSystem, policy: FailurePolicy) -> (ActorRef<Sum>, Arc<State>) {
    let state = Arc::new(State::default());
    let shared = Arc::clone(&state);
    let props = Props::new(move || {
        let _ = shared.actor_thread.set(thread::current().id());
        Ok::<_, std::convert::Infallible>(Sum(Arc::clone(&shared)))
    })
    .on_failure(policy);
    let actor = system.spawn(props).expect("spawn");
    let _ = state.myself.set(actor.clone());
    (actor, state)
}

/// Waits until the actor's thread has gone idle (it then lets askers in).
fn idle(actor: &ActorRef<Sum>) {
    eventually("the actor goes idle", || actor.may_ask_direct());
}

fn ran_directly(state: &State) -> usize {
    state.ran_on.lock().expect("lock").iter().filter(|(_, on_actor)| !on_actor).count()
}

#[test]
fn an_idle_actors_asks_run_on_the_askers_thread_after_everything_it_told() {
    let system = ActorSystem::builder().build();
    let (actor, state) = spawn(&system, FailurePolicy::Resume);
    idle(&actor);
    assert_eq!(actor.blocking_ask(Msg::Total, TIMEOUT).expect("ask"), 0);
    assert_eq!(ran_directly(&state), 1, "an ask to an idle actor runs on the asker's thread");
    assert!(state.ran_on.lock().expect("lock").iter().all(|(thread, _)| *thread == thread::current().id()));

    // Per-sender order, whoever runs the ask: each answer counts every tell before it,
    // from this thread and from another sender's at the same time.
    let other = {
        let actor = actor.clone();
        thread::spawn(move || {
            for _ in 0..2000 {
                actor.blocking_tell(Msg::Add(1_000_000)).expect("tell");
            }
        })
    };
    let mut mine = 0;
    for i in 1..=2000u64 {
        actor.blocking_tell(Msg::Add(1)).expect("tell");
        mine += 1;
        let total = actor.blocking_ask(Msg::Total, TIMEOUT).expect("ask");
        assert_eq!(total % 1_000_000, mine, "ask {i} overtook a tell of its sender");
    }
    other.join().expect("the other sender");
    assert_eq!(actor.blocking_ask(Msg::Total, TIMEOUT).expect("ask"), 2000 * 1_000_000 + 2000);
    assert!(ran_directly(&state) > 1);
    system.shutdown();
}

#[test]
fn an_ask_its_caller_stops_waiting_for_is_finished_by_the_actor_and_reported() {
    let system = ActorSystem::builder().build();
    let (actor, state) = spawn(&system, FailurePolicy::Resume);
    idle(&actor);

    // A blocking ask times out; the actor's thread finishes the handler the caller
    // began, and serves the next message after it.
    let (open, gate) = flume::bounded(1);
    let started = Instant::now();
    let timed_out = actor.blocking_ask(Msg::Gate(gate), Duration::from_millis(100));
    assert!(matches!(timed_out, Err(AskError::Timeout)), "{timed_out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ran_directly(&state), 1);
    actor.blocking_tell(Msg::Add(5)).expect("tell");
    open.send(()).expect("the handler waits");
    assert_eq!(actor.blocking_ask(Msg::Total, TIMEOUT).expect("ask"), 5);

    // With a callback: it runs once, with the outcome, wherever the ask ends.
    idle(&actor);
    let (open, gate) = flume::bounded(1);
    let (tx, rx) = flume::bounded(1);
    let mut waits = 0;
    let ran = actor.ask_direct_then(
        Msg::Gate(gate),
        move |outcome| tx.send(matches!(outcome, Outcome::Replied(1))).expect("the test waits"),
        || {
            waits += 1;
            (waits == 1).then(|| Instant::now() + Duration::from_millis(20))
        },
    );
    assert!(ran.is_ok(), "the actor was idle");
    assert!(rx.try_recv().is_err(), "not answered yet");
    drop(open);
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(true), "the callback gets the outcome from the actor's thread");
    assert_eq!(actor.state(), ActorState::Running);
    system.shutdown();
}

#[test]
fn a_kill_interrupts_an_ask_run_by_its_caller_and_stops_the_actor() {
    let system = ActorSystem::builder().build();
    let (actor, state) = spawn(&system, FailurePolicy::Resume);
    idle(&actor);
    let (_open, gate) = flume::bounded::<()>(1);
    let asker = {
        let actor = actor.clone();
        thread::spawn(move || actor.blocking_ask(Msg::Gate(gate), TIMEOUT))
    };
    eventually("the ask begins", || ran_directly(&state) > 0);
    let started = Instant::now();
    actor.kill();
    let outcome = asker.join().expect("the asker");
    assert!(matches!(outcome, Err(AskError::Fault(Fault::Killed))), "{outcome:?}");
    assert_eq!(actor.blocking_wait_timeout(TIMEOUT), Some(StopReason::Killed));
    assert!(started.elapsed() < Duration::from_secs(5));
    system.shutdown();
}

#[test]
fn a_failure_in_an_ask_run_by_its_caller_restarts_the_actor_under_its_policy() {
    let system = ActorSystem::builder().build();
    let (actor, state) = spawn(&system, FailurePolicy::Restart);
    idle(&actor);
    let failed = actor.blocking_ask(Msg::Fail, TIMEOUT);
    assert!(matches!(failed, Err(AskError::Failed(Error::Failed))), "{failed:?}");
    assert_eq!(ran_directly(&state), 1);
    eventually("the actor is restarted", || actor.restarts() > 0);
    assert_eq!(actor.blocking_ask(Msg::Add(2), TIMEOUT).expect("ask"), 2);
    // The next incarnation lets askers in too, its count of taken mail carried on.
    idle(&actor);
    assert_eq!(actor.blocking_ask(Msg::Total, TIMEOUT).expect("ask"), 2);
    assert!(ran_directly(&state) >= 2, "asks to the restarted actor run on the asker's thread");
    system.shutdown();
}

#[test]
fn a_handler_run_by_its_caller_asks_as_its_actor() {
    let system = ActorSystem::builder().build();
    let (actor, state) = spawn(&system, FailurePolicy::Resume);
    idle(&actor);
    // The asker's thread runs the handler; asking the actor from it is a self-ask,
    // refused at once, not a wait for a turn this very thread holds.
    assert_eq!(actor.blocking_ask(Msg::AskMyself, TIMEOUT).expect("ask"), 1);
    assert_eq!(ran_directly(&state), 1);
    system.shutdown();
}
