//! Actors for long-running services: asyncio actors (a real TCP server on loopback),
//! state that survives restarts (fault injection), and hot code upgrades (a module
//! rewritten on disk while messages flow), in both placements.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use subactor::{
    AskError, ChildSpec, FailurePolicy, Fault, Placement, PyActor, PyRef, PythonActor, Snapshots, StateStore, Strategy,
    SupervisorSpec, Upgrade, Value,
};

use crate::common::{TIMEOUT, eventually, runtime};

const PLACEMENTS: [Placement; 2] = [Placement::Interpreter, Placement::Process];

fn ask(actor: &PyRef, msg: impl Into<Value>) -> Value {
    actor.blocking_ask(msg, TIMEOUT).expect("an answer")
}

fn msg(items: Vec<Value>) -> Value {
    Value::Tuple(items)
}

fn s(text: &str) -> Value {
    Value::from(text)
}

/// A line echo server on a loopback port, serving `connections` connections, then
/// ending.
fn echo_server(connections: usize) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let server = thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.expect("a connection");
            stream.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
            let mut line = String::new();
            BufReader::new(stream.try_clone().expect("a clone")).read_line(&mut line).expect("a line");
            stream.write_all(format!("echo:{line}").as_bytes()).expect("written");
        }
    });
    (port, server)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("subactor-services-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn an_asyncio_actor_serves_tcp_subprocesses_and_asks_in_both_placements() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let (port, server) = echo_server(3);
        let actor = rt
            .spawn(PythonActor::new("services", "EchoServer").args((i64::from(port),)).placement(placement))
            .expect("the asyncio actor starts");
        assert_eq!(actor.placement(), placement);
        assert_eq!(ask(&actor, msg(vec![s("events")])), Value::List(vec![s("started")]), "{placement:?}");
        for word in ["one", "two", "three"] {
            assert_eq!(ask(&actor, msg(vec![s("echo"), s(word)])), s(&format!("echo:{word}")));
        }
        server.join().expect("the test's server ends");
        // The actor's own server, started in `started`, serves between messages: its
        // event loop runs while the actor waits for mail.
        let own = u16::try_from(ask(&actor, msg(vec![s("own_port")])).as_i64().expect("a port")).expect("a port");
        thread::sleep(Duration::from_millis(50));
        let mut conn = TcpStream::connect(("127.0.0.1", own)).expect("the actor's server accepts");
        conn.set_read_timeout(Some(TIMEOUT)).expect("a timeout");
        conn.write_all(b"ping\n").expect("sent");
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line).expect("an answer from the actor's server");
        assert_eq!(line, "own:ping\n");
        assert_eq!(ask(&actor, msg(vec![s("subprocess"), s("from a subprocess")])), s("from a subprocess"));
        // await ref.ask_async / tell_async to another actor.
        let counter = rt.spawn(PythonActor::new("services", "Stateful")).expect("starts");
        let add = msg(vec![s("add"), Value::from(5)]);
        assert_eq!(ask(&actor, msg(vec![s("ask"), Value::Actor(counter.clone().into()), add.clone()])), Value::from(5));
        assert_eq!(ask(&actor, msg(vec![s("tell"), Value::Actor(counter.clone().into()), add])), s("told"));
        eventually("the told add", || ask(&counter, "total") == Value::from(10));
        // A raising coroutine is the handler's exception, as for any actor.
        match actor.blocking_ask(msg(vec![s("raise"), s("boom")]), TIMEOUT) {
            Err(AskError::Failed(error)) => assert!(error.to_string().contains("boom"), "{error}"),
            other => panic!("expected the exception, got {other:?}"),
        }
        actor.stop();
        actor.blocking_wait();
        counter.stop();
        counter.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn kill_and_time_limits_cancel_the_running_task_in_both_placements() {
    let rt = runtime();
    let dir = scratch("cancel");
    for placement in PLACEMENTS {
        // A kill: the coroutine sees CancelledError at its await; the asker the fault.
        let marker = dir.join(format!("killed-{placement:?}"));
        let actor =
            rt.spawn(PythonActor::new("services", "EchoServer").args((0,)).placement(placement)).expect("starts");
        let asking = {
            let actor = actor.clone();
            let m = msg(vec![s("sleep_report"), Value::from(30), s(&marker.to_string_lossy())]);
            thread::spawn(move || actor.blocking_ask(m, TIMEOUT))
        };
        thread::sleep(Duration::from_millis(300));
        let killed_at = Instant::now();
        actor.kill();
        match asking.join().expect("the asker ends") {
            Err(AskError::Fault(Fault::Killed)) => {}
            other => panic!("expected the kill, got {other:?} ({placement:?})"),
        }
        assert!(killed_at.elapsed() < Duration::from_secs(10), "the kill waited for the sleep");
        actor.blocking_wait();
        assert_eq!(std::fs::read_to_string(&marker).expect("the task saw its cancellation"), "cancelled");

        // A time limit: the same, with the time-limit fault.
        let marker = dir.join(format!("limit-{placement:?}"));
        let actor = rt
            .spawn(
                PythonActor::new("services", "EchoServer")
                    .args((0,))
                    .placement(placement)
                    .time_limit(Duration::from_millis(300)),
            )
            .expect("starts");
        let m = msg(vec![s("sleep_report"), Value::from(30), s(&marker.to_string_lossy())]);
        match actor.blocking_ask(m, TIMEOUT) {
            Err(AskError::Fault(Fault::TimeLimit(_))) => {}
            other => panic!("expected the time limit, got {other:?} ({placement:?})"),
        }
        assert_eq!(std::fs::read_to_string(&marker).expect("the task saw its cancellation"), "cancelled");
        // The actor goes on (the default policy resumes it).
        assert_eq!(ask(&actor, msg(vec![s("sleep"), Value::from(0)])), s("slept"));
        actor.stop();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

fn stateful(placement: Placement, policy: Snapshots) -> PythonActor {
    PythonActor::new("services", "Stateful").placement(placement).snapshots(policy).on_failure(FailurePolicy::Restart)
}

fn add(n: i64) -> Value {
    msg(vec![s("add"), Value::from(n)])
}

#[test]
fn a_restart_restores_the_latest_snapshot_in_a_fresh_interpreter_or_a_new_process() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let actor = rt.spawn(stateful(placement, Snapshots::EveryMessage)).expect("starts");
        for n in 1..=3 {
            ask(&actor, add(n));
        }
        let before = ask(&actor, "pid");
        assert!(matches!(actor.blocking_ask(msg(vec![s("crash")]), TIMEOUT), Err(AskError::Failed(_))));
        // The crash's own change died with its incarnation; the snapshot of 6 came back.
        assert_eq!(ask(&actor, "total"), Value::from(6), "{placement:?}");
        assert_eq!(ask(&actor, "restored"), Value::from(6));
        assert_eq!(actor.restarts(), 1);
        if placement == Placement::Process {
            assert_ne!(ask(&actor, "pid"), before, "a new process");
            // A process that dies is restored in the next one too.
            assert!(matches!(actor.blocking_ask(msg(vec![s("exit")]), TIMEOUT), Err(AskError::Fault(Fault::Died(_)))));
            assert_eq!(ask(&actor, "total"), Value::from(6));
        }
        actor.stop();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn every_n_and_checkpoints_lose_exactly_what_came_after_the_last_snapshot() {
    let rt = runtime();
    for placement in PLACEMENTS {
        // Every 2 messages: 1 and 2 are kept (3), 4 is not.
        let actor = rt.spawn(stateful(placement, Snapshots::Every(2))).expect("starts");
        for n in [1, 2, 4] {
            ask(&actor, add(n));
        }
        assert!(actor.blocking_ask(msg(vec![s("crash")]), TIMEOUT).is_err());
        assert_eq!(ask(&actor, "total"), Value::from(3), "{placement:?}");
        actor.kill();
        actor.blocking_wait();

        // On checkpoints only: what came before subactor.checkpoint() is kept.
        let actor = rt.spawn(stateful(placement, Snapshots::OnCheckpoint)).expect("starts");
        ask(&actor, add(5));
        assert_eq!(ask(&actor, msg(vec![s("checkpoint")])), Value::Bool(true));
        ask(&actor, add(1));
        assert!(actor.blocking_ask(msg(vec![s("crash")]), TIMEOUT).is_err());
        assert_eq!(ask(&actor, "total"), Value::from(5), "{placement:?}");
        actor.kill();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_directory_store_outlives_the_runtime_and_needs_a_name() {
    let dir = scratch("store");
    for placement in PLACEMENTS {
        let recipe = || {
            stateful(placement, Snapshots::EveryMessage)
                .state_store(StateStore::Directory(dir.clone()))
                .name(format!("counter-{placement:?}"))
        };
        let rt = runtime();
        let actor = rt.spawn(recipe()).expect("starts");
        ask(&actor, add(40));
        ask(&actor, add(2));
        rt.shutdown().expect("shutdown");
        assert!(dir.join(format!("counter-{placement:?}.state")).is_file());
        let rt = runtime();
        let actor = rt.spawn(recipe()).expect("starts again");
        assert_eq!(ask(&actor, "total"), Value::from(42), "{placement:?}");
        // Unnamed: refused with a clear error.
        let unnamed = stateful(placement, Snapshots::EveryMessage).state_store(StateStore::Directory(dir.clone()));
        let error = rt.spawn(unnamed).expect_err("a directory store needs a name");
        assert!(error.to_string().contains("needs a name"), "{error}");
        rt.shutdown().expect("shutdown");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Fault injection: adds interleaved with crashes (an exception after changing the
/// state, or the process exiting) under a supervisor. Every add that was answered was
/// snapshotted first, so the final total is exactly the sum of the answered adds:
/// nothing acknowledged is lost, nothing is counted twice.
#[test]
fn fault_injection_no_acknowledged_change_is_lost_across_restarts() {
    let rt = runtime();
    for (placement, count) in [(Placement::Interpreter, 2_000_u64), (Placement::Process, 400)] {
        let sup = rt
            .spawn(
                SupervisorSpec::new(Strategy::OneForOne)
                    .intensity(1_000_000, Duration::from_secs(1))
                    .child(ChildSpec::new(stateful(placement, Snapshots::EveryMessage))),
            )
            .expect("the supervisor starts");
        let actor: PyRef = sup.child::<PyActor>(0).expect("the child runs");
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let (mut acknowledged, mut crashes) = (0_i64, 0);
        for i in 0..count {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let m = match rng % 23 {
                0 => msg(vec![s("crash")]),
                1 if placement == Placement::Process => msg(vec![s("exit")]),
                _ => add(i64::try_from(i).expect("small")),
            };
            let is_add = matches!(&m, Value::Tuple(items) if items[0] == s("add"));
            match actor.blocking_ask(m, TIMEOUT) {
                Ok(_) if is_add => acknowledged += i64::try_from(i).expect("small"),
                Ok(other) => panic!("a crash answered {other:?}"),
                Err(AskError::Failed(_) | AskError::Fault(Fault::Died(_))) if !is_add => crashes += 1,
                Err(error) => panic!("message {i}: {error:?}"),
            }
        }
        assert!(crashes > 10, "the injection injected ({crashes})");
        assert_eq!(ask(&actor, "total"), Value::from(acknowledged), "{placement:?} after {crashes} crashes");
        assert_eq!(actor.restarts(), crashes);
        sup.stop();
        sup.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

const VERSION_1: &str = r#"
import os

class Versioned:
    def __init__(self):
        self.count = 0

    def receive(self, msg):
        if msg == "pid":
            return os.getpid()
        self.count += 1
        return ("v1", self.count)

    def snapshot(self):
        return self.count

    def restore(self, state):
        self.count = state
"#;

const VERSION_2: &str = r#"
import os

class Versioned:
    # Version 2: another shape of state, carried over by upgrade().
    def __init__(self):
        self.state = {"count": 0, "upgraded_from": None}

    def receive(self, msg):
        if msg == "pid":
            return os.getpid()
        self.state["count"] += 1
        return ("v2", self.state["count"], self.state["upgraded_from"])

    def snapshot(self):
        return self.state

    def restore(self, state):
        self.state = state

    def upgrade(self, old_state):
        self.state = {"count": old_state, "upgraded_from": old_state}
"#;

/// The module is rewritten on disk while a sender keeps telling and asking: the upgrade
/// loads the new code in a fresh interpreter (or process), carries the count over
/// through `upgrade(old_state)`, and loses no message: the counts run on without a gap.
#[test]
fn an_upgrade_loads_the_rewritten_module_and_loses_no_message() {
    let dir = scratch("upgrade");
    let rt = runtime();
    for placement in PLACEMENTS {
        let path = dir.join(format!("versioned_{}.py", format!("{placement:?}").to_lowercase()));
        std::fs::write(&path, VERSION_1).expect("version 1 written");
        let actor = rt
            .spawn(
                PythonActor::new(path.to_string_lossy(), "Versioned")
                    .placement(placement)
                    .name(format!("v-{placement:?}")),
            )
            .expect("version 1 starts");
        let pid_before = ask(&actor, "pid");
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (actor, stop) = (actor.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut replies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    actor.blocking_tell("tick").expect("the tell is queued");
                    replies.push(actor.blocking_ask("tick", TIMEOUT).expect("every ask is answered"));
                }
                replies
            })
        };
        thread::sleep(Duration::from_millis(200));
        std::fs::write(&path, VERSION_2).expect("version 2 written");
        rt.upgrade(&actor, Upgrade::reload()).expect("the upgrade is asked for");
        eventually("the upgrade", || actor.restarts() == 1);
        thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let replies = sender.join().expect("the sender ends");
        // Each ask follows a tell: counts 2, 4, 6, ... whatever the version.
        let mut upgraded_from = None;
        for (i, reply) in replies.iter().enumerate() {
            let Value::Tuple(items) = reply else { panic!("a tuple: {reply:?}") };
            let expected = i64::try_from(2 * (i + 1)).expect("small");
            assert_eq!(items[1], Value::from(expected), "reply {i} of {placement:?}: {reply:?}");
            if items[0] == s("v2") {
                upgraded_from.get_or_insert(items[2].clone());
            } else {
                assert!(upgraded_from.is_none(), "v1 answered after v2");
            }
        }
        let from = upgraded_from.expect("version 2 answered");
        assert!(from.as_i64().is_some_and(|n| n > 0), "upgrade(old_state) got the count: {from:?}");
        if placement == Placement::Process {
            assert_ne!(ask(&actor, "pid"), pid_before, "a new process");
        }
        actor.stop();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_supervisor_upgrades_its_children_to_another_class() {
    let rt = runtime();
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .child(ChildSpec::new(stateful(Placement::Interpreter, Snapshots::EveryMessage)))
                .child(ChildSpec::new(stateful(Placement::Process, Snapshots::EveryMessage))),
        )
        .expect("starts");
    let children: Vec<PyRef> = (0..2).map(|i| sup.child::<PyActor>(i).expect("runs")).collect();
    for child in &children {
        ask(child, add(7));
    }
    assert_eq!(rt.upgrade_children(&sup, &Upgrade::to("services", "AsyncStateful")).expect("asked"), 2);
    for child in &children {
        eventually("the upgrade", || child.restarts() == 1);
        // The new class (an asyncio actor) restored the state.
        assert_eq!(ask(child, add(1)), Value::from(8));
    }
    // Unknown actors are refused with a typed error.
    let stopped = children[0].clone();
    sup.stop();
    sup.blocking_wait();
    assert!(rt.upgrade(&stopped, Upgrade::reload()).is_err());
    rt.shutdown().expect("shutdown");
}

#[test]
fn max_concurrency_runs_that_many_messages_at_once_and_no_more_in_both_placements() {
    let rt = runtime();
    let dir = scratch("concurrent");
    for placement in PLACEMENTS {
        let actor = rt
            .spawn(PythonActor::new("services", "Concurrent").placement(placement).max_concurrency(10))
            .expect("starts");
        assert_eq!(actor.placement(), placement);
        let askers: Vec<_> = (0..40)
            .map(|_| {
                let actor = actor.clone();
                thread::spawn(move || actor.blocking_ask(msg(vec![s("sleep"), Value::Float(0.2)]), TIMEOUT))
            })
            .collect();
        for asker in askers {
            let peak = asker.join().expect("joins").expect("answered");
            assert!(peak.as_i64().is_some_and(|p| (1..=10).contains(&p)), "{peak:?} ({placement:?})");
        }
        // 40 askers at once reached the limit, never beyond.
        assert_eq!(ask(&actor, msg(vec![s("peak")])), Value::from(10), "{placement:?}");
        // Tells are handled the same way.
        for _ in 0..20 {
            actor.blocking_tell(msg(vec![s("sleep"), Value::Float(0.01)])).expect("told");
        }
        assert_eq!(ask(&actor, msg(vec![s("peak")])), Value::from(10));
        actor.stop();
        actor.blocking_wait();

        // A time limit applies to each message.
        let marks = dir.join(format!("marks-{placement:?}"));
        let actor = rt
            .spawn(
                PythonActor::new("services", "Concurrent")
                    .placement(placement)
                    .max_concurrency(8)
                    .time_limit(Duration::from_millis(500))
                    .on_failure(FailurePolicy::Resume),
            )
            .expect("starts");
        let slow = msg(vec![s("mark"), Value::from(30), s(&marks.to_string_lossy())]);
        let quick = msg(vec![s("sleep"), Value::Float(0.01)]);
        let slow_one = {
            let (actor, slow) = (actor.clone(), slow.clone());
            thread::spawn(move || actor.blocking_ask(slow, TIMEOUT))
        };
        thread::sleep(Duration::from_millis(50));
        assert!(ask(&actor, quick.clone()).as_i64().is_some(), "a quick one is answered while the slow one runs");
        let limited = slow_one.join().expect("joins");
        assert!(matches!(limited, Err(AskError::Fault(Fault::TimeLimit(_)))), "{limited:?} ({placement:?})");
        actor.stop();
        actor.blocking_wait();
        // Without a time limit (a loaded machine may take longer than one to start five), a
        // kill cancels every task in hand.
        let actor = rt
            .spawn(
                PythonActor::new("services", "Concurrent")
                    .placement(placement)
                    .max_concurrency(8)
                    .on_failure(FailurePolicy::Resume),
            )
            .expect("starts");
        let pid = ask(&actor, msg(vec![s("pid")]));
        let in_hand: Vec<_> = (0..5)
            .map(|_| {
                let (actor, slow) = (actor.clone(), slow.clone());
                thread::spawn(move || actor.blocking_ask(slow, TIMEOUT))
            })
            .collect();
        // The "peak" message runs as a task too: six at once is the five slow ones and itself.
        eventually("five in hand", || ask(&actor, msg(vec![s("peak")])).as_i64().is_some_and(|p| p >= 6));
        let killed_at = Instant::now();
        actor.kill();
        for asker in in_hand {
            let killed = asker.join().expect("joins");
            assert!(matches!(killed, Err(AskError::Fault(Fault::Killed))), "{killed:?} ({placement:?})");
        }
        actor.blocking_wait();
        assert!(killed_at.elapsed() < Duration::from_secs(10), "the kill waited for the sleeps");
        eventually("each task saw its cancellation", || {
            std::fs::read_to_string(&marks).unwrap_or_default().lines().count() == 6
        });
        if placement == Placement::Process {
            let pid = i32::try_from(pid.as_i64().expect("a pid")).expect("a pid");
            eventually("the child is gone", || !std::path::Path::new(&format!("/proc/{pid}")).exists());
        }
    }
    let _ = std::fs::remove_dir_all(dir);

    // A receive that is not async is refused clearly.
    for placement in PLACEMENTS {
        let error = rt.spawn(stateful(placement, Snapshots::EveryMessage).max_concurrency(4)).expect_err("sync");
        assert!(error.to_string().contains("needs an asyncio actor"), "{error} ({placement:?})");
    }
    rt.shutdown().expect("shutdown");
}

/// A task that waits for an actor which asks this one back: the second message runs
/// beside the first (in a process actor, the child's calls that wait are served beside
/// the ends of its messages).
#[test]
fn concurrent_tasks_wait_for_actors_that_ask_back_in_both_placements() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let actor = rt
            .spawn(PythonActor::new("services", "Concurrent").placement(placement).max_concurrency(4))
            .expect("starts");
        let relay = rt.spawn(PythonActor::new("talk", "Relay")).expect("starts");
        let back = Value::dict([
            ("op", s("ask")),
            ("to", Value::Actor(actor.clone().into())),
            ("payload", msg(vec![s("sleep"), Value::Float(0.01)])),
        ]);
        let askers: Vec<_> = (0..3)
            .map(|_| {
                let (actor, m) = (actor.clone(), msg(vec![s("ask"), Value::Actor(relay.clone().into()), back.clone()]));
                thread::spawn(move || actor.blocking_ask(m, TIMEOUT))
            })
            .collect();
        for asker in askers {
            let reply = asker.join().expect("joins").expect("answered through the relay");
            assert!(reply.as_i64().is_some_and(|p| p >= 2), "the asked-back message ran beside: {reply:?}");
        }
        actor.stop();
        actor.blocking_wait();
        relay.stop();
        relay.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

/// `await ref.ask_async(...)` from an asyncio actor: many at once, no thread made in
/// the actor's interpreter (the replies reach its event loop through a file descriptor),
/// and an ask abandoned (its task cancelled, its timeout passed) leaves nothing that
/// could answer a later ask.
#[test]
fn an_asyncio_actor_awaits_many_asks_without_threads_and_abandons_cancelled_ones_in_both_placements() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let actor = rt
            .spawn(PythonActor::new("services", "Concurrent").placement(placement).max_concurrency(2))
            .expect("starts");
        let target = rt.spawn(PythonActor::new("services", "Concurrent").max_concurrency(100)).expect("starts");
        let to = Value::Actor(target.clone().into());
        let fan_out = msg(vec![s("fan_out"), to.clone(), Value::from(50), msg(vec![s("sleep"), Value::Float(0.1)])]);
        let Value::List(got) = ask(&actor, fan_out) else { panic!("a list") };
        let Value::List(replies) = &got[0] else { panic!("the replies") };
        assert_eq!(replies.len(), 50, "{placement:?}");
        assert!(replies.iter().all(|r| r.as_i64().is_some_and(|peak| peak >= 1)), "{replies:?}");
        assert!(replies.iter().any(|r| r.as_i64().is_some_and(|peak| peak >= 25)), "they waited at once: {replies:?}");
        assert_eq!(got[2], got[1], "no thread started while 50 asks waited ({placement:?})");
        let pid = ask(&target, msg(vec![s("pid")]));
        let abandon =
            msg(vec![s("abandon"), to.clone(), msg(vec![s("sleep"), Value::Float(0.1)]), msg(vec![s("pid")])]);
        assert_eq!(
            ask(&actor, abandon),
            Value::List(vec![Value::Bool(true), Value::Bool(true), pid]),
            "cancelled, timed out, then its own reply ({placement:?})"
        );
        // A stopped actor's ask raises ActorStopped, in both placements (from a process
        // actor's child the ask crosses the link); the loop goes on.
        target.stop();
        target.blocking_wait();
        let expected = "ActorStopped";
        match actor.blocking_ask(msg(vec![s("ask"), to, msg(vec![s("pid")])]), TIMEOUT) {
            Err(AskError::Failed(error)) => assert!(error.to_string().contains(expected), "{placement:?}: {error}"),
            other => panic!("expected {expected}, got {other:?}"),
        }
        assert_eq!(ask(&actor, msg(vec![s("sleep"), Value::Float(0.0)])), Value::from(1));
        // Threads of the actor's own (asyncio.to_thread): on CPython 3.12.0-3.12.3 their
        // work queue's first `get(block=True)` in an actor's interpreter made the
        // process abort at exit (gh-119213) until the host made that call first.
        let numbers = Value::List(vec![Value::from(1), Value::from(2)]);
        assert_eq!(ask(&actor, msg(vec![s("to_thread"), numbers])), Value::from(3));
        actor.stop();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

/// Messages handled at once each take their snapshot when they end: a restart (in a
/// fresh interpreter, or a new process) restores every answered add.
#[test]
fn concurrent_messages_snapshot_as_they_end_and_a_restart_restores_them_in_both_placements() {
    let rt = runtime();
    for placement in PLACEMENTS {
        let actor = rt
            .spawn(
                PythonActor::new("services", "ConcurrentStateful")
                    .placement(placement)
                    .max_concurrency(16)
                    .snapshots(Snapshots::EveryMessage)
                    .on_failure(FailurePolicy::Restart),
            )
            .expect("starts");
        let askers: Vec<_> = (1..=20_i64)
            .map(|n| {
                let actor = actor.clone();
                let m = msg(vec![s("add"), Value::from(n), Value::Float(0.001 * (n % 5) as f64)]);
                thread::spawn(move || actor.blocking_ask(m, TIMEOUT))
            })
            .collect();
        for asker in askers {
            asker.join().expect("joins").expect("answered");
        }
        let pid = ask(&actor, "pid");
        assert!(matches!(actor.blocking_ask(msg(vec![s("crash")]), TIMEOUT), Err(AskError::Failed(_))));
        eventually("restarted", || actor.restarts() == 1);
        assert_eq!(ask(&actor, "total"), Value::from(210), "every answered add was kept ({placement:?})");
        if placement == Placement::Process {
            assert_ne!(ask(&actor, "pid"), pid, "a new process");
        }
        actor.stop();
        actor.blocking_wait();
    }
    rt.shutdown().expect("shutdown");
}

/// A process actor's tasks that ignore their cancellation (a coroutine blocking its
/// event loop) do not hold a kill up: the child is SIGKILLed after the grace period.
#[test]
fn a_kill_ends_a_process_actor_whose_tasks_ignore_their_cancellation() {
    let rt = runtime();
    let actor = rt
        .spawn(
            PythonActor::new("services", "Concurrent")
                .placement(Placement::Process)
                .max_concurrency(4)
                .kill_grace(Duration::from_millis(200)),
        )
        .expect("starts");
    let pid = i32::try_from(ask(&actor, msg(vec![s("pid")])).as_i64().expect("a pid")).expect("a pid");
    let blocked = {
        let actor = actor.clone();
        thread::spawn(move || actor.blocking_ask(msg(vec![s("block"), Value::from(60)]), TIMEOUT))
    };
    thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    actor.kill();
    let outcome = blocked.join().expect("joins");
    assert!(matches!(outcome, Err(AskError::Fault(Fault::Killed))), "{outcome:?}");
    actor.blocking_wait();
    // Waiting for the loop instead would take the core's 2 s for cancelled tasks, then
    // the 5 s a stopped child is given to exit.
    assert!(killed_at.elapsed() < Duration::from_secs(4), "the kill waited for the blocked loop");
    eventually("the child is gone", || !std::path::Path::new(&format!("/proc/{pid}")).exists());
    rt.shutdown().expect("shutdown");
}
