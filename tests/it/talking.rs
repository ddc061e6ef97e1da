//! Actors talking to each other from Python, through the in-actor module `subactor`.
//!
//! Every test runs twice: with the talking actors in interpreters, and in child
//! processes (process actors), whose in-actor module reaches the runtime's actors
//! through their link. The actors they talk to are interpreter actors either way.

use std::time::{Duration, Instant};

use subactor::{Placement, PyActor, PythonActor, Value};

use crate::common::{TIMEOUT, eventually, runtime, spawn};

fn talk(rt: &subactor::Runtime, class: &str, placement: Placement) -> subactor::PyRef {
    let actor = rt.spawn(PythonActor::new("talk", class).placement(placement)).expect("spawn");
    assert_eq!(actor.placement(), placement);
    actor
}

/// One test per placement for each function `name(placement)`.
macro_rules! in_both_placements {
    ($($name:ident),* $(,)?) => {
        mod interpreter {
            $(#[test] fn $name() { super::$name(subactor::Placement::Interpreter) })*
        }
        mod process {
            $(#[test] fn $name() { super::$name(subactor::Placement::Process) })*
        }
    };
}

in_both_placements!(
    references_are_values_that_arrive_usable,
    an_actor_asking_itself_fails_at_once,
    python_sees_remote_exceptions_timeouts_and_stopped_actors,
    an_ask_cycle_ends_at_its_timeout,
    blocking_asks_release_the_gil,
    the_registry_works_from_python_and_rust,
    children_spawned_from_python_are_shut_down_with_the_runtime,
    send_after_delivers_later_and_can_be_cancelled,
    the_type_stub_matches_the_in_actor_module,
);

fn request(pairs: &[(&str, Value)]) -> Value {
    Value::Dict(pairs.iter().map(|(k, v)| (Value::from(*k), v.clone())).collect())
}

fn references_are_values_that_arrive_usable(placement: Placement) {
    let rt = runtime();
    let me = rt.spawn(PythonActor::new("talk", "Me").name("me").placement(placement)).expect("spawn");
    let relay = talk(&rt, "Relay", placement);
    let counter = spawn(&rt, "Counter");

    // Python -> Rust: self_ref() arrives as a live reference to the same actor.
    let Value::Actor(me_again) = me.blocking_ask("ref", TIMEOUT).expect("ref") else { panic!("expected a reference") };
    assert_eq!(me_again.id(), me.id());
    assert_eq!(me_again.name(), Some("me"));
    assert_eq!(me_again.blocking_ask("name", TIMEOUT).expect("usable from Rust"), Value::from("me"));
    assert_eq!(me_again.downcast::<PyActor>().expect("a Python actor"), me);

    // Rust -> Python: a reference nested in a message is usable by the receiver.
    let told = request(&[("op", "tell".into()), ("to", counter.clone().into()), ("payload", 5.into())]);
    assert_eq!(relay.blocking_ask(told, TIMEOUT).expect("tell"), Value::Bool(true));
    let asked = request(&[("op", "ask".into()), ("to", counter.clone().into()), ("payload", 1.into())]);
    assert_eq!(relay.blocking_ask(asked, TIMEOUT).expect("ask"), Value::from(6));

    // Identity: equal and equally hashed when they name the same actor.
    let describe = request(&[("op", "describe".into()), ("to", me.clone().into()), ("same", me_again.into())]);
    let expected = Value::from(("ActorRef", Value::from(me.id().as_u64()), "me", true, true));
    assert_eq!(relay.blocking_ask(describe, TIMEOUT).expect("describe"), expected);
    rt.shutdown().expect("shutdown");
}

fn an_actor_asking_itself_fails_at_once(placement: Placement) {
    let rt = runtime();
    let me = talk(&rt, "Me", placement);
    let answer = me.blocking_ask("ask_self", TIMEOUT).expect("ask");
    let Value::Tuple(parts) = answer else { panic!("expected a tuple, got {answer:?}") };
    assert_eq!(parts[0], Value::from("refused"));
    assert_eq!(parts[1], Value::Bool(true), "SelfAskError is an ActorError");
    let waited = f64::try_from(parts[2].clone()).expect("seconds");
    assert!(waited < 1.0, "the self-ask must fail at once, not at its 10 s timeout (took {waited} s)");
    // Telling itself is fine: the message is handled after the current one.
    assert_eq!(me.blocking_ask("tell_self", TIMEOUT).expect("tell_self"), Value::Bool(true));
    rt.shutdown().expect("shutdown");
}

fn python_sees_remote_exceptions_timeouts_and_stopped_actors(placement: Placement) {
    let rt = runtime();
    let relay = talk(&rt, "Relay", placement);
    let raiser = spawn(&rt, "Raiser");
    let sleeper = spawn(&rt, "Sleeper");

    let remote = request(&[("op", "remote_error".into()), ("to", raiser.clone().into()), ("payload", "value".into())]);
    assert_eq!(
        relay.blocking_ask(remote, TIMEOUT).expect("remote"),
        Value::from(("ValueError", "bad value: 42", true))
    );

    let slow = request(&[
        ("op", "ask_timeout".into()),
        ("to", sleeper.clone().into()),
        ("payload", 2.0.into()),
        ("timeout", 0.05.into()),
    ]);
    let started = Instant::now();
    assert_eq!(relay.blocking_ask(slow, TIMEOUT).expect("timeout"), Value::from(("timeout", true)));
    assert!(started.elapsed() < Duration::from_secs(1), "the ask ends at its timeout");

    raiser.stop();
    raiser.blocking_wait();
    let stopped = request(&[("op", "stopped".into()), ("to", raiser.into()), ("payload", 1.into())]);
    assert_eq!(relay.blocking_ask(stopped, TIMEOUT).expect("stopped"), Value::from("stopped"));
    rt.shutdown().expect("shutdown");
}

fn an_ask_cycle_ends_at_its_timeout(placement: Placement) {
    // A asks B; B asks A back while A is still waiting for B: B's ask can never be
    // answered, so it ends at its timeout, B answers A, and both keep serving.
    let rt = runtime();
    let a = talk(&rt, "Relay", placement);
    let b = talk(&rt, "Relay", placement);
    let inner = request(&[
        ("op", "ask_timeout".into()),
        ("to", a.clone().into()),
        ("payload", 0.into()),
        ("timeout", 0.2.into()),
    ]);
    let outer = request(&[("op", "ask".into()), ("to", b.clone().into()), ("payload", inner)]);
    let started = Instant::now();
    assert_eq!(a.blocking_ask(outer, TIMEOUT).expect("outer"), Value::from(("timeout", true)));
    assert!(started.elapsed() < Duration::from_secs(5));
    rt.shutdown().expect("shutdown");
}

fn blocking_asks_release_the_gil(placement: Placement) {
    let rt = runtime();
    let asker = talk(&rt, "AskWhileThreadsRun", placement);
    let sleeper = spawn(&rt, "Sleeper");
    let counted = asker.blocking_ask((sleeper, 0.5), TIMEOUT).expect("ask");
    let counted = i64::try_from(counted).expect("int");
    assert!(counted > 1000, "a thread of the asking interpreter must run during the ask, counted {counted}");
    rt.shutdown().expect("shutdown");
}

fn the_registry_works_from_python_and_rust(placement: Placement) {
    let rt = runtime();
    let finder = talk(&rt, "Finder", placement);
    let parent = talk(&rt, "Parent", placement);
    assert_eq!(finder.blocking_ask("nobody", TIMEOUT).expect("absent"), Value::None);

    let spawn_named = Value::from(("spawn", "actors", "Counter", (10,), "kid"));
    let Value::Actor(kid) = parent.blocking_ask(spawn_named.clone(), TIMEOUT).expect("spawn") else {
        panic!("spawn returns a reference")
    };
    assert_eq!(kid.name(), Some("kid"));
    assert_eq!(kid.blocking_ask(1, TIMEOUT).expect("the child runs"), Value::from(11));
    assert_eq!(finder.blocking_ask("kid", TIMEOUT).expect("found"), Value::Actor(kid.clone()));
    assert_eq!(rt.lookup::<PyActor>("kid").map(|r| r.id()), Some(kid.id()), "Rust sees the same registry");

    // A duplicate name is a spawn error in Python.
    let duplicate = parent.blocking_ask(spawn_named.clone(), TIMEOUT).expect_err("duplicate");
    let exception = duplicate.handler_error().and_then(subactor::ReceiveError::exception).expect("an exception");
    assert_eq!(exception.type_name, "subactor.SpawnError");
    assert!(exception.message.contains("\"kid\" is already running"), "{}", exception.message);
    // A class whose constructor raises is a SpawnError too, with the child's traceback.
    let bad = parent.blocking_ask(("spawn_error", "actors", "RaisingInit"), TIMEOUT).expect("bad class");
    let bad = bad.as_str().expect("message").to_owned();
    assert!(bad.contains("RaisingInit(...) raised RuntimeError") && bad.contains("in __init__"), "{bad}");

    // The name is free again once its actor has stopped.
    kid.stop();
    kid.blocking_wait();
    assert_eq!(finder.blocking_ask("kid", TIMEOUT).expect("gone"), Value::None);
    assert!(matches!(parent.blocking_ask(spawn_named, TIMEOUT).expect("respawn"), Value::Actor(_)));
    rt.shutdown().expect("shutdown");
}

fn children_spawned_from_python_are_shut_down_with_the_runtime(placement: Placement) {
    let rt = runtime();
    let parent = talk(&rt, "Parent", placement);
    for i in 0..3 {
        parent.blocking_ask(("spawn", "actors", "Counter", (i * 10,), Value::None), TIMEOUT).expect("spawn");
    }
    let answers = parent.blocking_ask(("ask_children", 1), TIMEOUT).expect("ask");
    assert_eq!(answers, Value::List(vec![1.into(), 11.into(), 21.into()]));
    assert_eq!(rt.system().actor_count(), 4);
    rt.shutdown().expect("shutdown");
    assert_eq!(rt.system().actor_count(), 0);
}

fn send_after_delivers_later_and_can_be_cancelled(placement: Placement) {
    let rt = runtime();
    let timer = talk(&rt, "Timer", placement);
    let recorder = spawn(&rt, "Recorder");
    let started = Instant::now();
    timer.blocking_ask(("after", 0.2, recorder.clone(), "late"), TIMEOUT).expect("schedule");
    let cancelled = timer.blocking_ask(("after", 0.1, recorder.clone(), "never"), TIMEOUT).expect("schedule");
    assert_eq!(timer.blocking_ask(("cancel", cancelled.clone()), TIMEOUT).expect("cancel"), Value::Bool(true));
    assert_eq!(recorder.blocking_ask("get", TIMEOUT).expect("get"), Value::List(vec![]), "nothing yet");
    eventually("the delayed message arrives", || {
        recorder.blocking_ask("get", TIMEOUT).expect("get") == Value::List(vec!["late".into()])
    });
    assert!(started.elapsed() >= Duration::from_millis(200), "not before its delay");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(recorder.blocking_ask("get", TIMEOUT).expect("get"), Value::List(vec!["late".into()]));
    assert_eq!(timer.blocking_ask(("cancel", cancelled), TIMEOUT).expect("cancel"), Value::Bool(false));

    // A message still pending at shutdown is a dead letter.
    timer.blocking_ask(("after", 60.0, recorder, "pending"), TIMEOUT).expect("schedule");
    let before = rt.dead_letters().count();
    rt.shutdown().expect("shutdown");
    assert_eq!(rt.dead_letters().count(), before + 1);
}

fn the_type_stub_matches_the_in_actor_module(placement: Placement) {
    let stub = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crates/subactor-host/subactor.pyi"))
        .expect("stub");
    let mut declared: Vec<String> = stub
        .lines()
        .filter_map(|line| line.strip_prefix("def ").or_else(|| line.strip_prefix("class ")))
        .map(|rest| rest.split(['(', ':']).next().unwrap_or_default().to_owned())
        .collect();
    declared.sort();
    let rt = runtime();
    let names: Vec<String> =
        talk(&rt, "Introspect", placement).blocking_ask((), TIMEOUT).expect("names").try_into().expect("strs");
    assert_eq!(names, declared, "subactor.pyi and the module disagree");
    rt.shutdown().expect("shutdown");
}
