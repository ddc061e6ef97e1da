//! Tests of the actor core with Rust actors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{
    Actor, ActorContext, ActorState, ActorSystem, AskError, NeverFails, Props, SendError, SpawnError, StopReason,
};

/// What the probe actor is told to do.
enum Cmd {
    /// Remember (sender, sequence number).
    Record(u32, u64),
    /// Wait until the gate opens (the sender of the gate is dropped or sends).
    Block(flume::Receiver<()>),
    Sleep(Duration),
    Fail,
    Panic,
    /// Ask itself, and answer with what happened.
    AskMyself,
    Count,
    /// Run until interrupted (by a kill), for at most this long; answer the elapsed ms.
    UntilInterrupted(Duration),
}

#[derive(Debug, thiserror::Error)]
#[error("probe failed on purpose")]
struct ProbeError;

struct Probe {
    seen: Arc<Mutex<Vec<(u32, u64)>>>,
    handled: Arc<AtomicU64>,
}

impl Actor for Probe {
    type Msg = Cmd;
    type Reply = u64;
    type Error = ProbeError;

    fn handle(&mut self, ctx: &ActorContext<Self>, msg: Cmd) -> Result<u64, ProbeError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match msg {
            Cmd::Record(sender, seq) => {
                self.seen.lock().expect("lock").push((sender, seq));
                Ok(seq)
            }
            Cmd::Block(gate) => {
                let _ = gate.recv();
                Ok(0)
            }
            Cmd::Sleep(d) => {
                thread::sleep(d);
                Ok(0)
            }
            Cmd::Fail => Err(ProbeError),
            Cmd::Panic => panic!("probe panics on purpose"),
            Cmd::AskMyself => match ctx.myself().blocking_ask(Cmd::Count, Duration::from_secs(5)) {
                Err(AskError::SelfAsk(_)) => Ok(1),
                _ => Ok(0),
            },
            Cmd::Count => Ok(self.handled.load(Ordering::SeqCst)),
            Cmd::UntilInterrupted(max) => {
                let start = Instant::now();
                while !ctx.interrupt_requested() && start.elapsed() < max {
                    std::hint::spin_loop();
                }
                Ok(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
            }
        }
    }
}

struct Fixture {
    system: ActorSystem,
    seen: Arc<Mutex<Vec<(u32, u64)>>>,
    handled: Arc<AtomicU64>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { system: ActorSystem::builder().build(), seen: Arc::default(), handled: Arc::default() }
    }

    fn props(&self) -> Props<impl FnMut() -> Result<Probe, NeverFails> + Send + 'static> {
        let seen = Arc::clone(&self.seen);
        let handled = Arc::clone(&self.handled);
        Props::new(move || Ok(Probe { seen: Arc::clone(&seen), handled: Arc::clone(&handled) }))
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// Waits until `cond` holds, for at most 10 s.
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn tell_and_ask_reach_the_handler() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    assert_eq!(probe.state(), ActorState::Running);
    probe.blocking_tell(Cmd::Record(0, 7)).expect("tell");
    assert_eq!(probe.blocking_ask(Cmd::Record(0, 8), SECOND).expect("ask"), 8);
    assert_eq!(*f.seen.lock().expect("lock"), vec![(0, 7), (0, 8)]);
    f.system.shutdown();
}

#[test]
fn timeouts_too_large_for_an_instant_mean_no_limit_not_a_panic() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().time_limit(Duration::MAX)).expect("spawn");
    assert_eq!(probe.blocking_ask(Cmd::Record(0, 1), Duration::MAX).expect("ask"), 1);
    probe.blocking_tell_timeout(Cmd::Record(0, 2), Duration::MAX).expect("tell");
    let blocked_ask = probe.blocking_ask_then_timeout(Cmd::Record(0, 3), Duration::MAX, |_| {});
    assert!(blocked_ask.is_ok());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    assert_eq!(runtime.block_on(probe.ask(Cmd::Record(0, 4), Duration::MAX)).expect("async ask"), 4);
    struct Sink;
    impl Actor for Sink {
        type Msg = crate::Value;
        type Reply = crate::Value;
        type Error = NeverFails;
        fn handle(&mut self, _ctx: &ActorContext<Self>, msg: crate::Value) -> Result<crate::Value, NeverFails> {
            Ok(msg)
        }
    }
    let sink = f.system.spawn(Props::new(|| Ok::<_, NeverFails>(Sink))).expect("spawn");
    assert!(f.system.send_after(Duration::MAX, sink.into(), crate::Value::None).is_some());
    assert!(crate::deadline_after(Duration::ZERO) <= Instant::now());
    f.system.shutdown();
}

#[test]
fn messages_from_each_sender_arrive_in_order() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().mailbox_capacity(8)).expect("spawn");
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let probe = probe.clone();
            thread::spawn(move || {
                for seq in 0..2_000 {
                    probe.blocking_tell(Cmd::Record(sender, seq)).expect("tell");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    probe.blocking_ask(Cmd::Count, SECOND).expect("flush");
    let seen = f.seen.lock().expect("lock");
    assert_eq!(seen.len(), 8_000);
    for sender in 0..4 {
        let order: Vec<u64> = seen.iter().filter(|(s, _)| *s == sender).map(|(_, n)| *n).collect();
        assert_eq!(order, (0..2_000).collect::<Vec<_>>(), "sender {sender} out of order");
    }
    drop(seen);
    f.system.shutdown();
}

#[test]
fn a_full_mailbox_hands_the_message_back() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().mailbox_capacity(2)).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    eventually("the probe is blocked", || f.handled.load(Ordering::SeqCst) == 1);
    probe.try_tell(Cmd::Record(0, 1)).expect("room for 1");
    probe.try_tell(Cmd::Record(0, 2)).expect("room for 2");
    match probe.try_tell(Cmd::Record(0, 3)) {
        Err(SendError::Full(Cmd::Record(0, 3))) => {}
        other => panic!("expected Full with the message back, got {other:?}"),
    }
    drop(open);
    probe.blocking_ask(Cmd::Count, SECOND).expect("flush");
    assert_eq!(*f.seen.lock().expect("lock"), vec![(0, 1), (0, 2)]);
    f.system.shutdown();
}

#[test]
fn blocking_tell_waits_for_room() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().mailbox_capacity(2)).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    eventually("the probe is blocked", || f.handled.load(Ordering::SeqCst) == 1);
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (probe, sent) = (probe.clone(), Arc::clone(&sent));
        thread::spawn(move || {
            for seq in 0..10 {
                probe.blocking_tell(Cmd::Record(0, seq)).expect("tell");
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    eventually("the mailbox fills", || probe.mailbox_len() == 2);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(sent.load(Ordering::SeqCst), 2, "the producer must wait while the mailbox is full");
    drop(open);
    producer.join().expect("producer");
    probe.blocking_ask(Cmd::Count, SECOND).expect("flush");
    assert_eq!(f.seen.lock().expect("lock").len(), 10);
    f.system.shutdown();
}

#[test]
fn async_tell_waits_for_room_and_async_ask_gives_the_message_back_on_timeout() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().mailbox_capacity(1)).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    rt.block_on(async {
        probe.tell(Cmd::Block(gate)).await.expect("block");
        while f.handled.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        probe.tell(Cmd::Record(0, 1)).await.expect("fills the mailbox");
        match probe.ask(Cmd::Record(0, 2), Duration::from_millis(50)).await {
            Err(AskError::MailboxFull(Cmd::Record(0, 2))) => {}
            other => panic!("expected MailboxFull with the message, got {other:?}"),
        }
        let waiting = {
            let probe = probe.clone();
            tokio::spawn(async move { probe.tell(Cmd::Record(0, 3)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the tell must wait for room");
        drop(open);
        waiting.await.expect("join").expect("tell");
        assert_eq!(probe.ask(Cmd::Record(0, 4), SECOND).await.expect("ask"), 4);
    });
    assert_eq!(*f.seen.lock().expect("lock"), vec![(0, 1), (0, 3), (0, 4)]);
    f.system.shutdown();
}

#[test]
fn an_ask_times_out_and_the_actor_keeps_serving() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    let started = Instant::now();
    match probe.blocking_ask(Cmd::Sleep(Duration::from_millis(300)), Duration::from_millis(50)) {
        Err(AskError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(250), "the timeout must not wait for the handler");
    assert_eq!(probe.blocking_ask(Cmd::Record(0, 9), SECOND).expect("still serving"), 9);
    f.system.shutdown();
}

#[test]
fn a_handler_error_reaches_the_asker_and_the_actor_keeps_serving() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    match probe.blocking_ask(Cmd::Fail, SECOND) {
        Err(AskError::Failed(ProbeError)) => {}
        other => panic!("expected Failed, got {other:?}"),
    }
    probe.blocking_tell(Cmd::Fail).expect("a failing tell is only logged");
    assert_eq!(probe.blocking_ask(Cmd::Record(0, 1), SECOND).expect("serving"), 1);
    f.system.shutdown();
}

#[test]
fn stop_handles_what_is_queued_then_refuses_new_messages() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().name("stopper")).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    for seq in 0..10 {
        probe.blocking_tell(Cmd::Record(0, seq)).expect("queue");
    }
    probe.stop();
    assert_eq!(probe.state(), ActorState::Stopping);
    match probe.try_tell(Cmd::Record(1, 0)) {
        Err(SendError::Stopped(Cmd::Record(1, 0))) => {}
        other => panic!("expected Stopped with the message back, got {other:?}"),
    }
    drop(open);
    assert_eq!(probe.blocking_wait(), StopReason::Normal);
    assert_eq!(probe.state(), ActorState::Stopped);
    assert_eq!(f.seen.lock().expect("lock").len(), 10, "a graceful stop handles the queue");
    assert_eq!(f.system.dead_letters().count(), 1, "the refused tell is a dead letter");
    match probe.blocking_ask(Cmd::Count, SECOND) {
        Err(AskError::Stopped(Cmd::Count)) => {}
        other => panic!("an ask to a stopped actor fails at once, got {other:?}"),
    }
    // The name is free again.
    let again = f.system.spawn(f.props().name("stopper")).expect("the name is free after stop");
    assert_eq!(again.name(), Some("stopper"));
    f.system.shutdown();
}

#[test]
fn kill_dead_letters_the_queue_and_fails_waiting_askers() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    eventually("the probe is blocked", || f.handled.load(Ordering::SeqCst) == 1);
    for seq in 0..10 {
        probe.blocking_tell(Cmd::Record(0, seq)).expect("queue");
    }
    let asker = {
        let probe = probe.clone();
        thread::spawn(move || probe.blocking_ask(Cmd::Record(0, 99), Duration::from_secs(30)))
    };
    eventually("the ask is queued", || probe.mailbox_len() == 11);
    let killed_at = Instant::now();
    probe.kill();
    drop(open);
    assert_eq!(probe.blocking_wait(), StopReason::Killed);
    match asker.join().expect("asker") {
        Err(AskError::NoReply) => {}
        other => panic!("expected NoReply, got {other:?}"),
    }
    assert!(killed_at.elapsed() < Duration::from_secs(5), "the asker must not wait for its timeout");
    assert_eq!(f.handled.load(Ordering::SeqCst), 1, "nothing queued is handled after a kill");
    assert_eq!(f.system.dead_letters().count(), 11);
    f.system.shutdown();
}

/// A kill sent as the actor takes the message off its mailbox either stops the actor
/// before the handler or interrupts the handler: never does the handler run to its end
/// unasked (the race a runtime's close hit, a 60 s handler running on after the kill).
#[test]
fn a_kill_racing_the_start_of_a_handler_is_never_missed() {
    let f = Fixture::new();
    for round in 0..300 {
        let probe = f.system.spawn(f.props()).expect("spawn");
        probe.blocking_tell(Cmd::UntilInterrupted(Duration::from_secs(30))).expect("tell");
        // Vary the moment of the kill around the start of the handler.
        for _ in 0..(round % 30) * 20 {
            std::hint::spin_loop();
        }
        let killed_at = Instant::now();
        probe.kill();
        assert_eq!(probe.blocking_wait(), StopReason::Killed);
        assert!(killed_at.elapsed() < Duration::from_secs(10), "round {round}: the kill was missed");
    }
    f.system.shutdown();
}

#[test]
fn a_panicking_handler_stops_the_actor_without_losing_track_of_messages() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    probe.blocking_tell(Cmd::Panic).expect("queue the panic");
    probe.blocking_tell(Cmd::Record(0, 1)).expect("queue after the panic");
    drop(open);
    match probe.blocking_wait() {
        StopReason::Panicked(why) => assert!(why.contains("on purpose"), "{why}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    // The tell that panicked and the one queued behind it.
    assert_eq!(f.system.dead_letters().count(), 2);
    assert!(matches!(probe.blocking_ask(Cmd::Count, SECOND), Err(AskError::Stopped(_))));
    f.system.shutdown();
}

#[test]
fn an_actor_asking_itself_gets_an_error_not_a_deadlock() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    let started = Instant::now();
    assert_eq!(probe.blocking_ask(Cmd::AskMyself, Duration::from_secs(10)).expect("ask"), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    f.system.shutdown();
}

#[test]
fn spawn_errors_are_typed() {
    let f = Fixture::new();
    let _first = f.system.spawn(f.props().name("dup")).expect("spawn");
    assert!(matches!(f.system.spawn(f.props().name("dup")), Err(SpawnError::NameTaken(n)) if n == "dup"));
    assert!(matches!(f.system.spawn(f.props().mailbox_capacity(0)), Err(SpawnError::InvalidOptions(_))));
    assert!(matches!(f.system.spawn(f.props().pin_to_core(4096)), Err(SpawnError::InvalidOptions(_))));

    #[derive(Debug, thiserror::Error)]
    #[error("no luck")]
    struct NoLuck;
    let failing = Props::new(|| Err::<Probe, _>(NoLuck)).name("failing");
    match f.system.spawn(failing) {
        Err(SpawnError::Start(NoLuck)) => {}
        other => panic!("expected Start, got {other:?}"),
    }
    let panicking = Props::new(|| -> Result<Probe, NeverFails> { panic!("boom") });
    assert!(matches!(f.system.spawn(panicking), Err(SpawnError::Panicked(m)) if m == "boom"));
    // A failed start frees its name at once.
    let _retry = f.system.spawn(f.props().name("failing")).expect("the name is free after a failed start");

    f.system.shutdown();
    assert!(matches!(f.system.spawn(f.props()), Err(SpawnError::ShutDown)));
}

/// A probe whose start waits until `gate` gives a value (or closes).
fn gated_props(
    f: &Fixture,
    gate: flume::Receiver<()>,
) -> Props<impl FnMut() -> Result<Probe, NeverFails> + Send + 'static> {
    let (seen, handled) = (Arc::clone(&f.seen), Arc::clone(&f.handled));
    Props::new(move || {
        let _ = gate.recv();
        Ok(Probe { seen: Arc::clone(&seen), handled: Arc::clone(&handled) })
    })
}

#[test]
fn a_begun_spawn_gives_the_reference_once_the_actor_has_started() {
    let f = Fixture::new();
    let (open, gate) = flume::bounded(1);
    let pending = f.system.begin_spawn(gated_props(&f, gate).name("begun")).expect("begun");
    let pending = pending.wait_timeout(Duration::from_millis(20)).expect_err("the actor is still starting");
    assert_eq!(f.system.lookup::<Probe>("begun").map(|a| a.state()), Some(ActorState::Starting));
    open.send(()).expect("open the gate");
    let probe = pending.wait_timeout(10 * SECOND).expect("an outcome").expect("started");
    assert_eq!(probe.blocking_ask(Cmd::Record(1, 7), SECOND).expect("ask"), 7);
    // A failed start is its error, as from spawn.
    let failing = Props::new(|| -> Result<Probe, NeverFails> { panic!("no start") });
    let pending = f.system.begin_spawn(failing).expect("begun");
    assert!(matches!(pending.wait(), Err(SpawnError::Panicked(m)) if m == "no start"));
    f.system.shutdown();
}

#[test]
fn a_spawn_given_up_kills_its_actor_once_it_has_started() {
    let f = Fixture::new();
    // Given up while the actor starts: its thread finds nobody to take the reference.
    let (open, gate) = flume::bounded(1);
    let pending = f.system.begin_spawn(gated_props(&f, gate).name("early")).expect("begun");
    let early = f.system.lookup::<Probe>("early").expect("registered while starting");
    drop(pending);
    open.send(()).expect("open the gate");
    assert_eq!(early.blocking_wait_timeout(10 * SECOND), Some(StopReason::Killed));
    // Given up once it had started and reported it: the drop kills it.
    let pending = f.system.begin_spawn(f.props().name("late")).expect("begun");
    let late = f.system.lookup::<Probe>("late").expect("registered");
    eventually("the start is reported", || pending.reported());
    drop(pending);
    assert_eq!(late.blocking_wait_timeout(10 * SECOND), Some(StopReason::Killed));
    assert!(f.system.lookup::<Probe>("late").is_none(), "its name is free again");
    f.system.shutdown();
}

#[test]
fn lookup_finds_running_actors_by_name_and_type() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props().name("findme")).expect("spawn");
    let found = f.system.lookup::<Probe>("findme").expect("found");
    assert_eq!(found, probe);
    assert!(f.system.lookup::<Probe>("nobody").is_none());
    probe.stop();
    probe.blocking_wait();
    assert!(f.system.lookup::<Probe>("findme").is_none());
    f.system.shutdown();
}

#[test]
fn shutdown_with_queued_messages_does_not_hang_and_counts_dead_letters() {
    let f = Fixture::new();
    let probes: Vec<_> = (0..4).map(|_| f.system.spawn(f.props().mailbox_capacity(64)).expect("spawn")).collect();
    for probe in &probes {
        probe.blocking_tell(Cmd::Sleep(Duration::from_millis(100))).expect("slow message");
        for seq in 0..50 {
            probe.blocking_tell(Cmd::Record(0, seq)).expect("queue");
        }
    }
    let started = Instant::now();
    f.system.shutdown();
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    for probe in &probes {
        assert_eq!(probe.state(), ActorState::Stopped);
        assert_eq!(probe.stop_reason(), Some(StopReason::Killed));
    }
    let handled = f.handled.load(Ordering::SeqCst);
    assert_eq!(handled + f.system.dead_letters().count(), 4 * 51, "every message handled or dead-lettered");
    assert!(f.system.dead_letters().count() > 0);
    assert_eq!(f.system.actor_count(), 0);
}

/// Senders racing a kill: each message is handled, handed back, or dead-lettered, and
/// the three add up to what was sent.
#[test]
fn no_message_is_lost_when_senders_race_a_kill() {
    for round in 0..20 {
        let f = Fixture::new();
        let probe = f.system.spawn(f.props().mailbox_capacity(16)).expect("spawn");
        let refused = Arc::new(AtomicU64::new(0));
        let senders: Vec<_> = (0..3)
            .map(|sender| {
                let (probe, refused) = (probe.clone(), Arc::clone(&refused));
                thread::spawn(move || {
                    for seq in 0..500 {
                        let sent = if seq % 2 == 0 {
                            probe.try_tell(Cmd::Record(sender, seq)).map_err(|e| matches!(e, SendError::Full(_)))
                        } else {
                            probe.blocking_tell(Cmd::Record(sender, seq)).map_err(|_| false)
                        };
                        match sent {
                            Ok(()) => {}
                            Err(true) => {
                                // Full: hand it in again until it is taken or refused.
                                if probe.blocking_tell(Cmd::Record(sender, seq)).is_err() {
                                    refused.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            Err(false) => {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_micros(200 * (round % 5)));
        probe.kill();
        for s in senders {
            s.join().expect("sender");
        }
        probe.blocking_wait();
        let handled = f.seen.lock().expect("lock").len() as u64;
        let refused = refused.load(Ordering::SeqCst);
        // Refused sends are dead letters too (recorded when handed back).
        let dead = f.system.dead_letters().count();
        assert_eq!(handled + dead, 1_500, "round {round}: handled {handled} + dead {dead} (refused {refused})");
        assert!(dead >= refused);
        f.system.shutdown();
    }
}

#[test]
fn the_same_sender_sees_an_async_ask_answered() {
    let f = Fixture::new();
    let probe = f.system.spawn(f.props()).expect("spawn");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let total: u64 = rt.block_on(async {
        let mut total = 0;
        for seq in 0..100 {
            total += probe.ask(Cmd::Record(0, seq), SECOND).await.expect("ask");
        }
        total
    });
    assert_eq!(total, (0..100).sum());
    f.system.shutdown();
}

#[test]
fn actors_stopped_and_shut_down_leave_no_threads() {
    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
    }
    let f = Fixture::new();
    let before = threads();
    for _ in 0..100 {
        let probe = f.system.spawn(f.props()).expect("spawn");
        probe.blocking_tell(Cmd::Record(0, 0)).expect("tell");
        probe.stop();
        probe.blocking_wait();
    }
    f.system.shutdown();
    eventually("actor threads exit", || threads() <= before);
}

/// A Rust actor of `Value`s: keeps what it is told, answers asks with the list.
struct Keeper(Vec<crate::Value>);

impl Actor for Keeper {
    type Msg = crate::Value;
    type Reply = crate::Value;
    type Error = std::convert::Infallible;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: crate::Value) -> Result<crate::Value, Self::Error> {
        if msg == crate::Value::from("get") {
            return Ok(crate::Value::List(self.0.clone()));
        }
        self.0.push(msg);
        Ok(crate::Value::None)
    }
}

#[test]
fn any_refs_reach_value_actors_and_downcast_back() {
    let system = ActorSystem::builder().build();
    let keeper = system.spawn(Props::new(|| Ok::<_, NeverFails>(Keeper(Vec::new()))).name("keeper")).expect("spawn");
    let any: crate::AnyRef = keeper.clone().into();
    assert_eq!((any.id(), any.name()), (keeper.id(), Some("keeper")));
    any.blocking_tell(1).expect("tell");
    assert_eq!(any.blocking_ask("get", SECOND).expect("ask"), crate::Value::List(vec![1.into()]));
    assert_eq!(any.downcast::<Keeper>(), Some(keeper.clone()));
    assert!(any.downcast::<Probe>().is_none());
    // A reference is a value, but not one that can leave the process.
    let value = crate::Value::from(keeper);
    assert_eq!(value.kind(), "ActorRef");
    assert!(crate::codec::encode(&crate::Value::List(vec![value])).is_err());
    system.shutdown();
}

#[test]
fn send_after_delivers_in_deadline_order_and_cancels() {
    let system = ActorSystem::builder().build();
    let keeper = system.spawn(Props::new(|| Ok::<_, NeverFails>(Keeper(Vec::new())))).expect("spawn");
    let started = Instant::now();
    system.send_after(Duration::from_millis(120), keeper.clone().into(), "second".into()).expect("timer");
    system.send_after(Duration::from_millis(60), keeper.clone().into(), "first".into()).expect("timer");
    let cancelled = system.send_after(Duration::from_millis(90), keeper.clone().into(), "never".into()).expect("timer");
    assert!(system.cancel_timer(cancelled));
    assert!(!system.cancel_timer(cancelled), "a timer is cancelled once");
    let expected = crate::Value::List(vec!["first".into(), "second".into()]);
    eventually("both delayed messages arrive", || keeper.blocking_ask("get", SECOND).expect("get") == expected);
    assert!(started.elapsed() >= Duration::from_millis(120));
    system.send_after(Duration::from_secs(60), keeper.into(), "pending".into()).expect("timer");
    let before = system.dead_letters().count();
    system.shutdown();
    assert_eq!(system.dead_letters().count(), before + 1, "a timer pending at shutdown is a dead letter");
    let stale: crate::AnyRef =
        Fixture::new().system.spawn(Props::new(|| Ok::<_, NeverFails>(Keeper(Vec::new())))).expect("spawn").into();
    assert!(system.send_after(Duration::ZERO, stale, "late".into()).is_none(), "no timers after shutdown");
}

#[test]
fn timed_sends_give_the_message_back_when_the_mailbox_stays_full() {
    use crate::Outcome;

    let f = Fixture::new();
    let probe = f.system.spawn(f.props().mailbox_capacity(1)).expect("spawn");
    let (open, gate) = flume::bounded::<()>(0);
    probe.blocking_tell(Cmd::Block(gate)).expect("block");
    eventually("the probe is blocked", || f.handled.load(Ordering::SeqCst) == 1);
    probe.blocking_tell_timeout(Cmd::Record(0, 1), Duration::ZERO).expect("room for one");
    let started = Instant::now();
    match probe.blocking_tell_timeout(Cmd::Record(0, 2), Duration::from_millis(50)) {
        Err(SendError::Full(Cmd::Record(0, 2))) => {}
        other => panic!("expected Full with the message back, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(50), "it waited for room first");
    let (tx, rx) = flume::bounded(1);
    let refused = probe.blocking_ask_then_timeout(Cmd::Count, Duration::from_millis(20), move |outcome| {
        let _ = tx.send(matches!(outcome, Outcome::NotHandled));
    });
    assert!(matches!(refused, Err(SendError::Full(Cmd::Count))), "{refused:?}");
    assert!(rx.recv().is_err(), "the callback of a message handed back never runs");
    assert_eq!(probe.blocking_wait_timeout(Duration::from_millis(10)), None);
    drop(open);
    let (tx, rx) = flume::bounded(1);
    probe
        .blocking_ask_then_timeout(Cmd::Count, SECOND, move |outcome| {
            let _ = tx.send(matches!(outcome, Outcome::Replied(_)));
        })
        .expect("room again");
    assert!(rx.recv_timeout(SECOND).expect("the callback runs"));
    assert_eq!(*f.seen.lock().expect("lock"), vec![(0, 1)]);
    probe.stop();
    assert_eq!(probe.blocking_wait_timeout(SECOND), Some(StopReason::Normal));
    f.system.shutdown();
}

/// A value actor that answers each message once its gate lets it.
struct Gated(flume::Receiver<()>);

impl Actor for Gated {
    type Msg = crate::Value;
    type Reply = crate::Value;
    type Error = std::convert::Infallible;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: crate::Value) -> Result<crate::Value, Self::Error> {
        let _ = self.0.recv();
        Ok(msg)
    }
}

#[test]
fn any_refs_and_pipelines_send_with_timeouts() {
    let system = ActorSystem::builder().build();
    let (open, gate) = flume::unbounded::<()>();
    let worker =
        system.spawn(Props::new(move || Ok::<_, NeverFails>(Gated(gate.clone()))).mailbox_capacity(1)).expect("spawn");
    let any: crate::AnyRef = worker.into();
    let mut pipeline = crate::Pipeline::builder()
        .stage("gated", vec![any.clone()], crate::Routing::RoundRobin)
        .capacity(1)
        .build()
        .expect("pipeline");
    // In hand, in the mailbox, held by the router, in the stage's queue: then it is full.
    // A send also times out while the router has yet to move an item on (its thread not
    // scheduled for 50 ms on a loaded machine): the pipeline counts as full only once
    // the worker's mailbox is.
    let mut sent = 0;
    let started = Instant::now();
    let full = loop {
        match pipeline.send_timeout(sent, Duration::from_millis(50)) {
            Ok(_) => sent += 1,
            Err(error) if any.mailbox_len() == 1 => break error,
            Err(_) => assert!(started.elapsed() < 10 * SECOND, "the worker's mailbox never filled"),
        }
        assert!(sent < 10, "the pipeline never filled");
    };
    assert!(matches!(&full, crate::PipelineError::Full(v) if *v == crate::Value::from(sent)), "{full:?}");
    assert!(matches!(any.blocking_tell_timeout("x", Duration::from_millis(10)), Err(SendError::Full(_))));
    assert_eq!(any.blocking_wait_timeout(Duration::from_millis(10)), None);
    for _ in 0..sent {
        open.send(()).expect("open");
    }
    // Every item comes out, in order, once.
    let outputs: Vec<crate::Value> = pipeline
        .finish()
        .into_iter()
        .map(|out| match out {
            crate::Output::Item { value, .. } => value,
            crate::Output::Failed(failure) => panic!("item failed: {failure:?}"),
        })
        .collect();
    assert_eq!(outputs, (0..sent).map(crate::Value::from).collect::<Vec<_>>());
    // The worker holds nothing now: stopped, it ends at once, without another message
    // through the gate (one that still held an item would wait there, and so would the
    // stop). Sending through the gate here would race the worker's end, which drops
    // the gate's last receiver.
    any.stop();
    assert_eq!(any.blocking_wait_timeout(SECOND), Some(crate::StopReason::Normal));
    drop(open);
    system.shutdown();
}

#[test]
fn shutdown_ends_a_pipeline_whose_output_nobody_reads() {
    let system = ActorSystem::builder().build();
    let letters = system.dead_letters().subscribe();
    // A gate nobody holds is always open: the workers echo at once.
    let (_, gate) = flume::unbounded::<()>();
    let workers: Vec<crate::AnyRef> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            system.spawn(Props::new(move || Ok::<_, NeverFails>(Gated(gate.clone()))).mailbox_capacity(1))
        })
        .map(|worker| worker.expect("spawn").into())
        .collect();
    let mut pipeline = crate::Pipeline::builder()
        .stage("echo", workers, crate::Routing::RoundRobin)
        .capacity(1)
        .build()
        .expect("pipeline");
    // Fill it up: the output is full and a worker waits in its reply to forward it.
    let mut sent = 0_i64;
    while pipeline.send_timeout(sent, Duration::from_millis(200)).is_ok() {
        sent += 1;
        assert!(sent < 100, "the pipeline never filled");
    }
    let (done, ended) = flume::bounded(1);
    let shutting = system.clone();
    thread::spawn(move || {
        shutting.shutdown();
        let _ = done.send(());
    });
    assert!(ended.recv_timeout(Duration::from_secs(60)).is_ok(), "shutdown hung on the pipeline's full output");
    // Nothing is lost: every item sent comes out, or is a dead letter (the reply that
    // could not be forwarded, or a message still queued when its worker was killed).
    let mut seen: Vec<i64> = pipeline
        .finish()
        .into_iter()
        .filter_map(|out| match out {
            crate::Output::Item { value, .. } => i64::try_from(value).ok(),
            crate::Output::Failed(failure) => i64::try_from(failure.seq).ok(),
        })
        .collect();
    seen.extend(letters.drain().filter_map(|letter| letter.message.and_then(|m| i64::try_from(m).ok())));
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..sent).collect::<Vec<_>>());
}

#[test]
fn an_actor_is_pinned_to_a_core_its_spawner_may_not_use() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    assert!(cores.len() >= 2, "this test needs two cores (CI has two)");
    let (first, last) = (cores[0], cores[cores.len() - 1]);
    let f = Fixture::new();
    let props = f.props().name("pin-test").pin_to_core(last.id);
    let system = f.system.clone();
    // The spawner runs on the first core only; the actor must still get the last one.
    let probe = thread::spawn(move || {
        assert!(core_affinity::set_for_current(first), "pin the spawner");
        system.spawn(props)
    })
    .join()
    .expect("spawner")
    .expect("spawn");
    let allowed = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(Result::ok)
        .find(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "actor:pin-test"))
        .and_then(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .and_then(|status| {
            status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|v| v.trim().to_owned())
        })
        .expect("the actor's thread");
    assert_eq!(allowed, last.id.to_string());
    probe.stop();
    f.system.shutdown();
}

// ---- batches of tells ------------------------------------------------------------------

/// Takes tells in batches of up to 8: records (incarnation, message) and the size of
/// each batch; fails on negative numbers; waits at the gate on "block".
struct Batcher {
    incarnation: u64,
    log: Arc<Mutex<Vec<(u64, i64)>>>,
    batches: Arc<Mutex<Vec<usize>>>,
    gate: flume::Receiver<()>,
}

impl Actor for Batcher {
    type Msg = crate::Value;
    type Reply = crate::Value;
    type Error = ProbeError;

    fn handle(&mut self, _ctx: &ActorContext<Self>, msg: crate::Value) -> Result<crate::Value, ProbeError> {
        if msg.as_str() == Some("block") {
            let _ = self.gate.recv();
            return Ok(crate::Value::None);
        }
        let n = msg.as_i64().unwrap_or_default();
        if n < 0 {
            return Err(ProbeError);
        }
        self.log.lock().expect("lock").push((self.incarnation, n));
        Ok(msg)
    }

    fn tell_batch(&self) -> usize {
        8
    }

    fn handle_tells(
        &mut self,
        ctx: &ActorContext<Self>,
        msgs: Vec<crate::Value>,
        stop_at_failure: bool,
    ) -> crate::TellBatch<crate::Value, ProbeError> {
        self.batches.lock().expect("lock").push(msgs.len());
        let mut results = Vec::new();
        let mut msgs = msgs.into_iter();
        for msg in msgs.by_ref() {
            let result = self.handle(ctx, msg).map(drop);
            let failed = result.is_err();
            results.push(result);
            if failed && stop_at_failure {
                break;
            }
        }
        crate::TellBatch { results, unhandled: msgs.collect(), handler_times: Vec::new() }
    }
}

type Log = Arc<Mutex<Vec<(u64, i64)>>>;

struct Batching {
    system: ActorSystem,
    log: Arc<Mutex<Vec<(u64, i64)>>>,
    batches: Arc<Mutex<Vec<usize>>>,
    gate: flume::Sender<()>,
    actor: crate::ActorRef<Batcher>,
}

fn batching(policy: crate::FailurePolicy) -> Batching {
    let system = ActorSystem::builder().build();
    let (log, batches): (Log, Arc<Mutex<Vec<usize>>>) = Default::default();
    let (gate, gate_rx) = flume::unbounded();
    let incarnations = Arc::new(AtomicU64::new(0));
    let (l, b) = (Arc::clone(&log), Arc::clone(&batches));
    let props = Props::new(move || {
        let incarnation = incarnations.fetch_add(1, Ordering::SeqCst) + 1;
        Ok::<_, NeverFails>(Batcher {
            incarnation,
            log: Arc::clone(&l),
            batches: Arc::clone(&b),
            gate: gate_rx.clone(),
        })
    })
    .on_failure(policy);
    let actor = system.spawn(props).expect("spawn");
    Batching { system, log, batches, gate, actor }
}

impl Batching {
    /// Queues `msgs` behind a blocked handler, then lets them through, and waits until
    /// the actor has answered an ask sent after them.
    fn run(&self, msgs: impl IntoIterator<Item = i64>) {
        let (tx, done) = flume::bounded(1);
        self.actor.blocking_ask_then("block", move |_| tx.send(()).expect("the test waits")).expect("ask");
        for n in msgs {
            self.actor.blocking_tell(n).expect("tell");
        }
        self.gate.send(()).expect("open the gate");
        done.recv_timeout(10 * SECOND).expect("the gate opened");
        let marker = self.actor.blocking_ask(1000, 10 * SECOND);
        assert!(marker.is_ok(), "the actor answers after the batch: {marker:?}");
    }

    fn log(&self) -> Vec<(u64, i64)> {
        self.log.lock().expect("lock").clone()
    }
}

#[test]
fn queued_tells_are_handled_in_batches_in_order() {
    let b = batching(crate::FailurePolicy::Resume);
    b.run(1..=20);
    let expected: Vec<(u64, i64)> = (1..=20).chain([1000]).map(|n| (1, n)).collect();
    assert_eq!(b.log(), expected);
    let batches = b.batches.lock().expect("lock").clone();
    assert!(batches.iter().all(|n| (1..=8).contains(n)), "{batches:?}");
    assert!(batches.iter().any(|n| *n > 1), "queued tells are batched: {batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), 20, "every tell went through a batch once");
    b.system.shutdown();
}

#[test]
fn after_a_failed_tell_the_rest_of_its_batch_goes_to_the_next_incarnation() {
    let b = batching(crate::FailurePolicy::Restart);
    let letters = b.system.dead_letters().subscribe();
    b.run([1, 2, -3, 4, 5]);
    assert_eq!(b.log(), vec![(1, 1), (1, 2), (2, 4), (2, 5), (2, 1000)]);
    assert_eq!(b.actor.restarts(), 1);
    let letter = letters.try_recv().expect("the failed tell is a dead letter");
    assert_eq!(letter.reason, crate::DeadLetterReason::Failed);
    assert_eq!(letter.message, Some(crate::Value::from(-3)));
    assert!(letters.try_recv().is_err(), "nothing else is lost");
    b.system.shutdown();
}

#[test]
fn resuming_after_a_failed_tell_finishes_the_batch() {
    let b = batching(crate::FailurePolicy::Resume);
    let letters = b.system.dead_letters().subscribe();
    b.run([1, -2, 3]);
    assert_eq!(b.log(), vec![(1, 1), (1, 3), (1, 1000)]);
    assert_eq!(b.actor.restarts(), 0);
    assert!(letters.try_recv().is_err(), "a resumed failure is not a dead letter");
    b.system.shutdown();
}

#[test]
fn a_time_limit_turns_batching_off() {
    let system = ActorSystem::builder().build();
    let (log, batches): (Log, Arc<Mutex<Vec<usize>>>) = Default::default();
    let (gate, gate_rx) = flume::unbounded::<()>();
    let (l, bs) = (Arc::clone(&log), Arc::clone(&batches));
    let actor = system
        .spawn(
            Props::new(move || {
                Ok::<_, NeverFails>(Batcher {
                    incarnation: 1,
                    log: Arc::clone(&l),
                    batches: Arc::clone(&bs),
                    gate: gate_rx.clone(),
                })
            })
            .time_limit(10 * SECOND),
        )
        .expect("spawn");
    let (tx, done) = flume::bounded(1);
    actor.blocking_ask_then("block", move |_| tx.send(()).expect("the test waits")).expect("ask");
    for n in 0..10 {
        actor.blocking_tell(n).expect("tell");
    }
    gate.send(()).expect("open");
    done.recv_timeout(10 * SECOND).expect("opened");
    actor.blocking_ask(1000, 10 * SECOND).expect("marker");
    assert!(batches.lock().expect("lock").is_empty(), "one message at a time under a time limit");
    assert_eq!(log.lock().expect("lock").len(), 11);
    system.shutdown();
}

// ---- metrics ----------------------------------------------------------------------------

mod metrics {
    use super::*;
    use crate::metrics::{HANDLER_SAMPLE, TINY_HANDLER_SAMPLE, sample_mask};
    use crate::{
        ActorRef, ChildSpec, DeadLetterReason, FailurePolicy, Placement, Strategy, Supervisor, SupervisorSpec,
    };

    fn fixture(on: bool) -> Fixture {
        Fixture { system: ActorSystem::builder().metrics(on).build(), seen: Arc::default(), handled: Arc::default() }
    }

    #[test]
    fn off_the_snapshot_still_shows_actors_and_counts_nothing() {
        let f = fixture(false);
        let probe = f.system.spawn(f.props().name("p")).expect("spawn");
        probe.blocking_ask(Cmd::Record(0, 1), SECOND).expect("ask");
        let m = f.system.metrics();
        assert!(!m.enabled);
        let a = m.named("p").expect("listed");
        assert_eq!((a.id, a.state, a.placement, a.kind), (probe.id(), ActorState::Running, Placement::Thread, "Probe"));
        assert_eq!((a.handled, a.handler_time.count, a.mailbox_capacity), (0, 0, crate::DEFAULT_MAILBOX_CAPACITY));
        f.system.shutdown();
    }

    #[test]
    fn messages_failures_and_handler_times_are_counted() {
        let f = fixture(true);
        let probe = f.system.spawn(f.props().name("p")).expect("spawn");
        for seq in 0..100 {
            probe.blocking_tell(Cmd::Record(0, seq)).expect("tell");
        }
        for _ in 0..3 {
            assert!(matches!(probe.blocking_ask(Cmd::Fail, SECOND), Err(AskError::Failed(_))));
        }
        // Once a timed handler was slow, every handler is timed until one is fast again
        // (the first sleep is timed within TINY_HANDLER_SAMPLE messages, whatever the
        // tells' sampling).
        for _ in 0..TINY_HANDLER_SAMPLE {
            probe.blocking_ask(Cmd::Sleep(Duration::from_micros(300)), SECOND).expect("ask");
        }
        let m = f.system.metrics();
        assert!(m.enabled);
        let a = m.named("p").expect("listed");
        let handled = 103 + TINY_HANDLER_SAMPLE;
        assert_eq!((a.handled, a.failed, a.restarts, a.dead_letters, a.interrupts), (handled, 3, 0, 0, 0));
        let h = &a.handler_time;
        assert!(h.count >= handled / TINY_HANDLER_SAMPLE && h.count <= handled, "{h:?}");
        // The sleeps: one of them sampled, then every later one timed.
        let slow = h.count - h.buckets.iter().find(|(b, _)| *b >= 2.5e-4).expect("bucket").1;
        assert!(slow >= 1, "{h:?}");
        assert!(h.sum >= 0.0003 * slow as f64, "{h:?}");
        assert!(h.quantile(1.0).expect("observed") >= 2.5e-4);
        assert_eq!(m.totals.handled, handled);
        assert_eq!(m.spawned, 1);
        assert_eq!(m.spawn_time.len(), 1);
        assert_eq!(m.spawn_time[0].0, Placement::Thread);
        f.system.shutdown();
    }

    #[test]
    fn handlers_are_sampled_less_the_shorter_they_are() {
        let timed = |took: Duration| (0..1024_u64).filter(|tick| tick & sample_mask(took) == 0).count();
        assert_eq!(timed(Duration::from_nanos(300)), 1024 / TINY_HANDLER_SAMPLE as usize);
        assert_eq!(timed(Duration::from_micros(5)), 1024 / HANDLER_SAMPLE as usize);
        assert_eq!(timed(Duration::from_micros(20)), 1024);
        assert_eq!(timed(Duration::from_millis(3)), 1024);
    }

    #[test]
    fn counts_kept_on_the_run_loops_stack_are_all_published() {
        // The run loop counts on its own stack and publishes in bulk: when a handler is
        // timed, before an ask's reply, before it waits for mail, and when it ends.
        let f = fixture(true);
        let probe = f.system.spawn(f.props().name("p")).expect("spawn");
        for round in 1..=3_u64 {
            for seq in 0..1001 {
                probe.blocking_tell(Cmd::Record(0, seq)).expect("tell");
            }
            // No ask: the counts are published once the mailbox is empty.
            eventually("every tell counted", || f.system.metrics().named("p").expect("listed").handled == round * 1001);
        }
        // An asker sees every message before its own counted, whatever the sampling.
        for n in 1..=40_u64 {
            probe.blocking_tell(Cmd::Record(0, n)).expect("tell");
            probe.blocking_ask(Cmd::Record(0, n), SECOND).expect("ask");
            assert_eq!(f.system.metrics().named("p").expect("listed").handled, 3003 + 2 * n);
        }
        // A restart ends the loop: what it counted is kept.
        let restarting = f.system.spawn(f.props().name("r").on_failure(FailurePolicy::Restart)).expect("spawn");
        for seq in 0..7 {
            restarting.blocking_tell(Cmd::Record(0, seq)).expect("tell");
        }
        restarting.blocking_tell(Cmd::Panic).expect("tell");
        eventually("a restart", || restarting.restarts() == 1);
        let r = f.system.metrics();
        let r = r.named("r").expect("listed");
        assert_eq!((r.handled, r.failed), (8, 1));
        f.system.shutdown();
    }

    #[test]
    fn restarts_last_failure_and_dead_letters_per_actor() {
        let f = fixture(true);
        let probe = f.system.spawn(f.props().name("p").on_failure(FailurePolicy::Restart)).expect("spawn");
        probe.blocking_tell(Cmd::Panic).expect("tell");
        eventually("a restart", || probe.restarts() == 1);
        let m = f.system.metrics();
        let a = m.named("p").expect("listed");
        assert_eq!((a.handled, a.failed, a.restarts, a.dead_letters), (1, 1, 1, 1));
        let failure = a.last_failure.as_ref().expect("a failure");
        assert!(failure.message.contains("probe panics on purpose"), "{failure:?}");
        let recent = &m.recent_dead_letters;
        assert_eq!(recent.len(), 1);
        assert_eq!((recent[0].recipient, recent[0].reason), (probe.id(), DeadLetterReason::Panicked));
        // A kill with messages queued: each one a dead letter of this actor.
        let (gate_tx, gate) = flume::bounded(1);
        probe.blocking_tell(Cmd::Block(gate)).expect("tell");
        for seq in 0..5 {
            probe.blocking_tell(Cmd::Record(0, seq)).expect("tell");
        }
        // The probe counts a message as it begins handling it: the panic, then the block.
        eventually("the block in hand", || f.handled.load(Ordering::SeqCst) == 2);
        assert_eq!(f.system.metrics().named("p").expect("listed").mailbox_depth, 5);
        probe.kill();
        drop(gate_tx);
        probe.blocking_wait();
        let m = f.system.metrics();
        assert!(m.named("p").is_none(), "a stopped actor is not listed");
        assert_eq!(m.totals.dead_letters, 6, "kept for the totals once it stopped: {:?}", m.recent_dead_letters);
        assert_eq!(m.totals.restarts, 1);
        f.system.shutdown();
    }

    #[test]
    fn a_supervisors_children_name_it_as_their_parent() {
        let f = fixture(true);
        let kid = Props::new(|| Ok::<_, NeverFails>(Probe { seen: Arc::default(), handled: Arc::default() }));
        let sup = f
            .system
            .spawn(SupervisorSpec::new(Strategy::OneForOne).name("sup").child(ChildSpec::new(kid.name("kid"))))
            .expect("spawn");
        let m = f.system.metrics();
        let kid = m.named("kid").expect("listed");
        let parent = m.named("sup").expect("listed");
        assert_eq!((kid.parent, parent.parent, parent.kind), (Some(sup.id()), None, "Supervisor"));
        let _: &ActorRef<Supervisor> = &sup;
        f.system.shutdown();
    }
}
