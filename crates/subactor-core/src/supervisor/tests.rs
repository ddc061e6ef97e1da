//! Supervision, monitors, failure policies, time limits and dead letters, with Rust
//! actors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{
    Actor, ActorContext, ActorRef, ActorSystem, AskError, ChildSpec, DeadLetterReason, Down, FailurePolicy, Fault,
    Outcome, Props, RestartType, StopReason, Strategy, Supervisor, SupervisorSpec, Value,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// What a worker is told to do.
enum Cmd {
    /// Answer with this incarnation's number.
    Ping,
    /// Return an error.
    Fail,
    Panic,
    Sleep(Duration),
    /// Work until interrupted (at most the given time); answers how long it ran, in ms.
    Cooperative(Duration),
    /// A monitored actor ended.
    Down(Down),
}

#[derive(Debug, thiserror::Error)]
#[error("boom")]
struct Boom;

/// A test actor that knows which incarnation it is and logs its end.
struct Worker {
    incarnation: u64,
    label: &'static str,
    log: Log,
    downs: Vec<Down>,
    /// Makes `before_wait` panic once a message was handled: the thread dies outside
    /// any handler, after its first message (not before it: the first wait may come
    /// before any message has arrived).
    die_between_messages: bool,
    handled_one: bool,
}

type Log = Arc<Mutex<Vec<String>>>;

impl Actor for Worker {
    type Msg = Cmd;
    type Reply = u64;
    type Error = Boom;

    fn handle(&mut self, ctx: &ActorContext<Self>, msg: Cmd) -> Result<u64, Boom> {
        self.handled_one = true;
        match msg {
            Cmd::Ping => Ok(self.incarnation),
            Cmd::Fail => Err(Boom),
            Cmd::Panic => panic!("worker {} panics on purpose", self.label),
            Cmd::Sleep(d) => {
                thread::sleep(d);
                Ok(self.incarnation)
            }
            Cmd::Cooperative(max) => {
                let start = Instant::now();
                while !ctx.interrupt_requested() && start.elapsed() < max {
                    thread::sleep(Duration::from_millis(1));
                }
                Ok(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
            }
            Cmd::Down(down) => {
                self.downs.push(down);
                Ok(self.downs.len() as u64)
            }
        }
    }

    fn before_wait(&mut self) {
        assert!(!(self.die_between_messages && self.handled_one), "the worker's thread dies on purpose");
    }

    fn stopped(&mut self, _ctx: &ActorContext<Self>, _reason: &StopReason) {
        self.log.lock().expect("log").push(format!("{} stopped", self.label));
    }
}

/// Builds workers: counts how many were started.
#[derive(Clone)]
struct Factory {
    label: &'static str,
    starts: Arc<AtomicU64>,
    log: Log,
    /// Refuse to start once this many have been started.
    start_limit: Option<u64>,
    die_between_messages: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("refused to start")]
struct Refused;

impl Factory {
    fn new(label: &'static str, log: &Log) -> Factory {
        Factory {
            label,
            starts: Arc::default(),
            log: Arc::clone(log),
            start_limit: None,
            die_between_messages: Arc::default(),
        }
    }

    fn props(&self) -> Props<impl FnMut() -> Result<Worker, Refused> + Clone + Send + 'static> {
        let f = self.clone();
        Props::new(move || {
            let incarnation = f.starts.fetch_add(1, Ordering::SeqCst) + 1;
            if f.start_limit.is_some_and(|limit| incarnation > limit) {
                return Err(Refused);
            }
            Ok(Worker {
                incarnation,
                label: f.label,
                log: Arc::clone(&f.log),
                downs: Vec::new(),
                die_between_messages: f.die_between_messages.load(Ordering::SeqCst),
                handled_one: false,
            })
        })
        .name(self.label)
    }

    fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn child(sup: &ActorRef<Supervisor>, index: usize) -> ActorRef<Worker> {
    sup.child::<Worker>(index).expect("the child runs")
}

fn ping(worker: &ActorRef<Worker>) -> u64 {
    worker.blocking_ask(Cmd::Ping, TIMEOUT).expect("ping")
}

fn log() -> Log {
    Arc::default()
}

#[test]
fn one_for_one_restarts_the_failed_child_in_place_and_its_queue_survives() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (a, b) = (Factory::new("a", &log), Factory::new("b", &log));
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new(a.props())).child(ChildSpec::new(b.props())),
        )
        .expect("supervisor");
    let (worker_a, worker_b) = (child(&sup, 0), child(&sup, 1));
    assert_eq!(ping(&worker_a), 1);

    // The failure happens while more mail waits behind it.
    worker_a.blocking_tell(Cmd::Sleep(Duration::from_millis(50))).expect("tell");
    let failed = worker_a.blocking_ask(Cmd::Fail, TIMEOUT);
    assert!(matches!(failed, Err(AskError::Failed(Boom))), "the asker gets the error: {failed:?}");
    assert_eq!(ping(&worker_a), 2, "the next message is served by a new instance");
    assert_eq!(worker_a.restarts(), 1);
    assert_eq!(child(&sup, 0), worker_a, "restarted in place: the same reference");

    assert_eq!(ping(&worker_b), 1, "one-for-one leaves the sibling alone");
    assert_eq!(worker_b.restarts(), 0);
    system.shutdown();
}

#[test]
fn queued_messages_survive_a_restart() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let sup = system.spawn(SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new(a.props()))).expect("sup");
    let worker = child(&sup, 0);
    // Hold the worker while the failing message and 20 asks queue up behind it.
    worker.blocking_tell(Cmd::Sleep(Duration::from_millis(100))).expect("hold");
    worker.blocking_tell(Cmd::Fail).expect("fail");
    let (tx, rx) = flume::unbounded();
    for _ in 0..20 {
        let tx = tx.clone();
        worker.blocking_ask_then(Cmd::Ping, move |outcome| tx.send(outcome).expect("send")).expect("queue");
    }
    for _ in 0..20 {
        match rx.recv_timeout(TIMEOUT).expect("outcome") {
            Outcome::Replied(incarnation) => assert_eq!(incarnation, 2, "served after the restart"),
            other => panic!("a queued message was not served: {other:?}"),
        }
    }
    assert_eq!(worker.restarts(), 1);
    system.shutdown();
}

#[test]
fn one_for_all_restarts_every_sibling() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (a, b) = (Factory::new("a", &log), Factory::new("b", &log));
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForAll).child(ChildSpec::new(a.props())).child(ChildSpec::new(b.props())),
        )
        .expect("supervisor");
    let (worker_a, worker_b) = (child(&sup, 0), child(&sup, 1));
    assert!(worker_a.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    eventually("the sibling restarts too", || worker_b.restarts() == 1);
    assert_eq!(ping(&worker_b), 2);
    assert_eq!(ping(&worker_a), 2);
    system.shutdown();
}

#[test]
fn rest_for_one_restarts_the_children_started_after_the_failed_one() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (a, b, c) = (Factory::new("a", &log), Factory::new("b", &log), Factory::new("c", &log));
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::RestForOne)
                .child(ChildSpec::new(a.props()))
                .child(ChildSpec::new(b.props()))
                .child(ChildSpec::new(c.props())),
        )
        .expect("supervisor");
    let (worker_a, worker_b, worker_c) = (child(&sup, 0), child(&sup, 1), child(&sup, 2));
    assert!(worker_b.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    eventually("the later sibling restarts", || worker_c.restarts() == 1);
    assert_eq!(ping(&worker_b), 2);
    assert_eq!(ping(&worker_c), 2);
    assert_eq!(ping(&worker_a), 1, "the earlier sibling is left alone");
    assert_eq!(worker_a.restarts(), 0);
    system.shutdown();
}

#[test]
fn restart_types_decide_what_happens_after_a_child_exits() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (permanent, transient, temporary) =
        (Factory::new("permanent", &log), Factory::new("transient", &log), Factory::new("temporary", &log));
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(10, Duration::from_secs(10))
                .child(ChildSpec::new(permanent.props()))
                .child(ChildSpec::new(transient.props()).restart(RestartType::Transient))
                .child(ChildSpec::new(temporary.props()).restart(RestartType::Temporary)),
        )
        .expect("supervisor");
    let ids = |sup: &ActorRef<Supervisor>| -> Vec<(usize, crate::ActorId)> {
        sup.children().iter().map(|c| (c.index, c.id)).collect()
    };
    let before = ids(&sup);

    // A permanent child that stops normally is started again, under a new id.
    let first = child(&sup, 0);
    first.stop();
    first.blocking_wait();
    eventually("the permanent child is back", || permanent.starts() == 2 && sup.child::<Worker>(0).is_some());
    assert_ne!(child(&sup, 0).id(), first.id());

    // A transient child that stops normally is not...
    let t = child(&sup, 1);
    t.stop();
    t.blocking_wait();
    thread::sleep(Duration::from_millis(50));
    assert!(sup.child::<Worker>(1).is_none(), "a transient child is not restarted after a normal stop");
    assert_eq!(transient.starts(), 1);

    // ...and a temporary child is never started again, even when killed or failing.
    let tmp = child(&sup, 2);
    assert!(tmp.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    assert!(matches!(tmp.blocking_wait(), StopReason::Failed(_)), "a failing temporary child stops");
    thread::sleep(Duration::from_millis(50));
    assert!(sup.child::<Worker>(2).is_none());
    assert_eq!(temporary.starts(), 1);
    assert_eq!(before.len(), 3);
    system.shutdown();
}

#[test]
fn a_transient_child_that_is_killed_is_started_again() {
    let system = ActorSystem::builder().build();
    let log = log();
    let transient = Factory::new("transient", &log);
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .child(ChildSpec::new(transient.props()).restart(RestartType::Transient)),
        )
        .expect("supervisor");
    let first = child(&sup, 0);
    first.kill();
    assert_eq!(first.blocking_wait(), StopReason::Killed);
    eventually("the transient child is back", || sup.child::<Worker>(0).is_some_and(|c| c.id() != first.id()));
    assert_eq!(transient.starts(), 2);
    system.shutdown();
}

#[test]
fn too_many_restarts_fail_the_supervisor_which_its_own_supervisor_restarts() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let inner =
        SupervisorSpec::new(Strategy::OneForOne).intensity(2, Duration::from_secs(30)).child(ChildSpec::new(a.props()));
    let outer = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne).intensity(5, Duration::from_secs(30)).child(ChildSpec::new(inner)),
        )
        .expect("outer");
    let inner = outer.child::<Supervisor>(0).expect("inner");
    let worker = child(&inner, 0);
    for round in 1..=2 {
        assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
        assert_eq!(ping(&worker), round + 1, "restart {round} is within the intensity");
    }
    // The third failure within the window is one too many: the inner supervisor stops
    // its child and fails; the outer one restarts it in place, with fresh children.
    assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    assert!(matches!(worker.blocking_wait(), StopReason::Normal | StopReason::Killed | StopReason::Failed(_)));
    eventually("the inner supervisor was restarted", || inner.restarts() == 1);
    let fresh = child(&inner, 0);
    assert_ne!(fresh.id(), worker.id(), "the restarted supervisor started a new child");
    assert_eq!(ping(&fresh), 4);
    assert_eq!(outer.child::<Supervisor>(0).expect("inner"), inner, "restarted in place");
    system.shutdown();
}

#[test]
fn an_unsupervised_supervisor_that_gives_up_stops_with_the_reason() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(1, Duration::from_secs(30))
                .child(ChildSpec::new(a.props())),
        )
        .expect("sup");
    let worker = child(&sup, 0);
    assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    match sup.blocking_wait() {
        StopReason::Failed(why) => assert!(why.contains("more than 1 restarts"), "{why}"),
        other => panic!("expected the supervisor to fail, got {other:?}"),
    }
    worker.blocking_wait();
    assert!(log.lock().expect("log").contains(&"a stopped".to_owned()));
    system.shutdown();
}

#[test]
fn failed_restarts_count_against_the_intensity() {
    let system = ActorSystem::builder().build();
    let log = log();
    let mut a = Factory::new("a", &log);
    a.start_limit = Some(1);
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(3, Duration::from_secs(30))
                .child(ChildSpec::new(a.props())),
        )
        .expect("sup");
    let worker = child(&sup, 0);
    assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    // Every restart fails to start: the supervisor retries until the intensity is spent.
    assert!(matches!(sup.blocking_wait(), StopReason::Failed(_)));
    assert!(matches!(worker.blocking_wait(), StopReason::StartFailed(_)));
    assert_eq!(a.starts(), 4, "the first start, then three restarts that failed");
    system.shutdown();
}

#[test]
fn backoff_spaces_out_repeated_restarts() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let initial = Duration::from_millis(60);
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(10, Duration::from_secs(30))
                .backoff(initial, Duration::from_secs(1))
                .child(ChildSpec::new(a.props())),
        )
        .expect("sup");
    let worker = child(&sup, 0);
    let mut pauses = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
        ping(&worker);
        pauses.push(start.elapsed());
    }
    assert!(pauses[0] >= initial, "{pauses:?}");
    assert!(pauses[1] >= initial * 2, "doubling: {pauses:?}");
    assert!(pauses[2] >= initial * 4, "doubling again: {pauses:?}");
    system.shutdown();
}

#[test]
fn a_supervisor_stops_its_children_in_reverse_order_and_kills_those_that_take_too_long() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (a, b, c) = (Factory::new("a", &log), Factory::new("b", &log), Factory::new("c", &log));
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .child(ChildSpec::new(a.props()))
                .child(ChildSpec::new(b.props()).shutdown(Duration::from_millis(100)))
                .child(ChildSpec::new(c.props())),
        )
        .expect("sup");
    let stuck = child(&sup, 1);
    let busy = {
        let stuck = stuck.clone();
        thread::spawn(move || stuck.blocking_ask(Cmd::Cooperative(TIMEOUT), TIMEOUT))
    };
    eventually("b is busy", || stuck.cell.in_handler());
    let start = Instant::now();
    sup.stop();
    assert_eq!(sup.blocking_wait(), StopReason::Normal);
    assert!(start.elapsed() < Duration::from_secs(5), "b was killed after its shutdown timeout");
    assert_eq!(*log.lock().expect("log"), vec!["c stopped", "b stopped", "a stopped"]);
    assert_eq!(stuck.stop_reason(), Some(StopReason::Killed));
    let ran = busy.join().expect("asker").expect("a kill lets the handler finish with its answer");
    assert!(ran >= 100, "b ran until the kill, {ran} ms");
    system.shutdown();
}

#[test]
fn a_monitor_delivers_down_ahead_of_a_full_mailbox_and_can_be_removed() {
    let system = ActorSystem::builder().build();
    let log = log();
    let (w, t, u) = (Factory::new("watcher", &log), Factory::new("target", &log), Factory::new("other", &log));
    let watcher = system.spawn(w.props().mailbox_capacity(1)).expect("watcher");
    let target = system.spawn(t.props()).expect("target");
    let other = system.spawn(u.props()).expect("other");
    target.monitor_by(&watcher, Cmd::Down);
    let removed = other.monitor_by(&watcher, Cmd::Down);
    assert!(other.demonitor(removed));
    assert!(!other.demonitor(removed), "only once");

    // Fill the watcher: one message in hand, one queued.
    let busy = {
        let watcher = watcher.clone();
        thread::spawn(move || watcher.blocking_ask(Cmd::Cooperative(Duration::from_millis(300)), TIMEOUT))
    };
    eventually("the watcher is busy", || watcher.cell.in_handler());
    watcher.blocking_tell(Cmd::Ping).expect("fill");
    assert!(matches!(watcher.try_tell(Cmd::Ping), Err(crate::SendError::Full(_))));

    target.kill();
    other.kill();
    target.blocking_wait();
    other.blocking_wait();
    busy.join().expect("busy").expect("answered");
    // The Down arrived although the mailbox was full; the next ask counts the Downs.
    assert_eq!(watcher.blocking_ask(Cmd::Down(down_of(&target, StopReason::Killed)), TIMEOUT).expect("count"), 2);

    // Monitoring an actor that has already stopped tells at once.
    let (tx, rx) = flume::bounded(1);
    target.monitor(move |down| tx.send(down.clone()).expect("send"));
    assert_eq!(rx.recv_timeout(TIMEOUT).expect("down").reason, StopReason::Killed);
    system.shutdown();
}

fn down_of(actor: &ActorRef<Worker>, reason: StopReason) -> Down {
    Down { id: actor.id(), name: actor.name().map(Into::into), reason }
}

#[test]
fn a_down_carries_the_reason() {
    let system = ActorSystem::builder().build();
    let log = log();
    let t = Factory::new("target", &log);
    let target = system.spawn(t.props().on_failure(FailurePolicy::Stop)).expect("target");
    let (tx, rx) = flume::bounded(1);
    target.monitor(move |down| tx.send(down.clone()).expect("send"));
    assert!(target.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    let down = rx.recv_timeout(TIMEOUT).expect("down");
    assert_eq!(down, down_of(&target, StopReason::Failed("boom".into())));
    assert!(down.reason.is_abnormal());
    system.shutdown();
}

/// An actor of values that fails on the string "bad".
struct Picky;

#[derive(Debug, thiserror::Error)]
#[error("bad input")]
struct Bad;

impl Actor for Picky {
    type Msg = Value;
    type Reply = Value;
    type Error = Bad;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: Value) -> Result<Value, Bad> {
        if msg == Value::from("bad") { Err(Bad) } else { Ok(msg) }
    }
}

#[test]
fn dead_letter_subscribers_see_failed_tells_and_refused_mail_with_the_message() {
    let system = ActorSystem::builder().build();
    let letters = system.dead_letters().subscribe();
    let picky = system.spawn(Props::new(|| Ok::<_, Bad>(Picky)).on_failure(FailurePolicy::Restart)).expect("spawn");
    picky.blocking_tell("fine").expect("tell");
    picky.blocking_tell("bad").expect("tell");
    let letter = letters.recv_timeout(TIMEOUT).expect("a dead letter");
    assert_eq!(letter.reason, DeadLetterReason::Failed);
    assert_eq!(letter.recipient, picky.id());
    assert_eq!(letter.message, Some(Value::from("bad")));
    assert_eq!(picky.blocking_ask("again", TIMEOUT).expect("restarted and serving"), Value::from("again"));
    assert_eq!(picky.restarts(), 1);

    picky.stop();
    picky.blocking_wait();
    let start = Instant::now();
    assert!(matches!(picky.blocking_ask("late", TIMEOUT), Err(AskError::Stopped(_))), "an ask to a dead actor");
    assert!(start.elapsed() < Duration::from_secs(1), "fails at once");
    assert!(picky.try_tell("late").is_err());
    for _ in 0..2 {
        let letter = letters.recv_timeout(TIMEOUT).expect("a dead letter");
        assert_eq!(letter.reason, DeadLetterReason::NotRunning);
        assert_eq!(letter.message, Some(Value::from("late")));
    }
    assert_eq!(system.dead_letters().count(), 3);
    system.shutdown();
}

#[test]
fn a_time_limit_turns_a_slow_handler_into_a_failure() {
    let system = ActorSystem::builder().build();
    let log = log();
    let limit = Duration::from_millis(50);

    // Without a supervisor (resume): the asker gets the fault, the instance stays.
    let a = Factory::new("a", &log);
    let worker = system.spawn(a.props().time_limit(limit)).expect("spawn");
    let slow = worker.blocking_ask(Cmd::Sleep(Duration::from_millis(200)), TIMEOUT);
    assert!(matches!(slow, Err(AskError::Fault(Fault::TimeLimit(l))) if l == limit), "{slow:?}");
    // A cooperative handler notices and ends early.
    let start = Instant::now();
    let coop = worker.blocking_ask(Cmd::Cooperative(TIMEOUT), TIMEOUT);
    assert!(matches!(coop, Err(AskError::Fault(Fault::TimeLimit(_)))), "{coop:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "interrupted near its limit: {:?}", start.elapsed());
    assert_eq!(ping(&worker), 1, "resumed: the same instance");

    // Under a supervisor (restart): the actor restarts.
    let b = Factory::new("b", &log);
    let sup = system
        .spawn(SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new(b.props().time_limit(limit))))
        .expect("sup");
    let supervised = child(&sup, 0);
    assert!(supervised.blocking_ask(Cmd::Cooperative(TIMEOUT), TIMEOUT).is_err());
    assert_eq!(ping(&supervised), 2);
    assert!(matches!(system.spawn(a.props().time_limit(Duration::ZERO)), Err(crate::SpawnError::InvalidOptions(_))));
    system.shutdown();
}

#[test]
fn a_panic_reaches_the_asker_and_the_supervisor_restarts_the_child() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let sup = system.spawn(SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new(a.props()))).expect("sup");
    let worker = child(&sup, 0);
    match worker.blocking_ask(Cmd::Panic, TIMEOUT) {
        Err(AskError::Fault(Fault::Panicked(why))) => assert!(why.contains("on purpose"), "{why}"),
        other => panic!("expected a panic fault, got {other:?}"),
    }
    assert_eq!(ping(&worker), 2);
    system.shutdown();
}

#[test]
fn without_a_supervisor_the_restart_policy_restarts_in_place() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    let worker = system.spawn(a.props().on_failure(FailurePolicy::Restart)).expect("spawn");
    assert!(worker.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    assert_eq!(ping(&worker), 2);
    assert!(worker.blocking_ask(Cmd::Panic, TIMEOUT).is_err());
    assert_eq!(ping(&worker), 3);
    assert_eq!(worker.restarts(), 2);

    let b = Factory::new("b", &log);
    let stopper = system.spawn(b.props().on_failure(FailurePolicy::Stop)).expect("spawn");
    assert!(stopper.blocking_ask(Cmd::Fail, TIMEOUT).is_err());
    assert!(matches!(stopper.blocking_wait(), StopReason::Failed(_)));
    system.shutdown();
}

#[test]
fn a_thread_that_dies_outside_its_handlers_is_reported() {
    let system = ActorSystem::builder().build();
    let log = log();
    let a = Factory::new("a", &log);
    a.die_between_messages.store(true, Ordering::SeqCst);
    let worker = system.spawn(a.props().mailbox_capacity(8)).expect("spawn");
    let (tx, rx) = flume::bounded(1);
    worker.monitor(move |down| tx.send(down.clone()).expect("send"));
    // The first message is handled; the thread dies when it next waits.
    let reply = worker.blocking_ask(Cmd::Ping, TIMEOUT);
    let down = rx.recv_timeout(TIMEOUT).expect("the monitor is told");
    match &down.reason {
        StopReason::Panicked(why) => assert!(why.contains("thread died"), "{why}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(matches!(reply, Ok(1) | Err(AskError::NoReply)), "{reply:?}");
    assert!(matches!(worker.blocking_ask(Cmd::Ping, TIMEOUT), Err(AskError::Stopped(_))));
    assert_eq!(system.actor_count(), 0);
    system.shutdown();
}
