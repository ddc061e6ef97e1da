//! Tell and ask with Python actors.

use std::time::{Duration, Instant};

use subactor::{AskError, ReceiveError, SendError, Value};

use crate::common::{TIMEOUT, eventually, runtime, spawn};

#[test]
fn tell_then_ask_sees_the_state_the_tells_built() {
    let rt = runtime();
    let counter = spawn(&rt, "Counter");
    for n in 1..=100 {
        counter.blocking_tell(n).expect("tell");
    }
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(5050));
    rt.shutdown().expect("shutdown");
}

#[test]
fn each_sender_is_received_in_order() {
    let rt = runtime();
    let recorder = spawn(&rt, "Recorder");
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let recorder = recorder.clone();
            std::thread::spawn(move || {
                for seq in 0..500 {
                    recorder.blocking_tell((sender, seq)).expect("tell");
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let seen: Vec<(i64, i64)> = recorder.blocking_ask("get", TIMEOUT).expect("get").try_into().expect("pairs");
    assert_eq!(seen.len(), 2000);
    for sender in 0..4 {
        let order: Vec<i64> = seen.iter().filter(|(s, _)| *s == sender).map(|(_, n)| *n).collect();
        assert_eq!(order, (0..500).collect::<Vec<_>>(), "sender {sender} out of order");
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn async_tell_and_ask_work_from_tokio() {
    let rt = runtime();
    let counter = spawn(&rt, "Counter");
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let total = tokio.block_on(async {
        for n in 1..=10 {
            counter.tell(n).await.expect("tell");
        }
        counter.ask(0, TIMEOUT).await.expect("ask")
    });
    assert_eq!(total, Value::from(55));
    rt.shutdown().expect("shutdown");
}

#[test]
fn an_ask_times_out_and_the_actor_keeps_serving() {
    let rt = runtime();
    let sleeper = spawn(&rt, "Sleeper");
    let started = Instant::now();
    match sleeper.blocking_ask(1.0, Duration::from_millis(100)) {
        Err(AskError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(900), "the ask must not wait for the handler");
    // The timed-out message is still handled; the actor then answers the next one.
    assert_eq!(sleeper.blocking_ask(0.0, TIMEOUT).expect("ask"), Value::from(2));

    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let timed_out = tokio.block_on(sleeper.ask(1.0, Duration::from_millis(100)));
    assert!(matches!(timed_out, Err(AskError::Timeout)), "{timed_out:?}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn an_exception_reaches_the_asker_with_type_message_and_traceback() {
    let rt = runtime();
    let raiser = spawn(&rt, "Raiser");
    let err = raiser.blocking_ask("value", TIMEOUT).expect_err("raises");
    let AskError::Failed(ReceiveError::Exception(exception)) = &err else {
        panic!("expected an exception, got {err:?}");
    };
    assert_eq!(exception.type_name, "ValueError");
    assert_eq!(exception.message, "bad value: 42");
    assert!(exception.traceback.starts_with("Traceback (most recent call last):"), "{}", exception.traceback);
    assert!(exception.traceback.contains("actors.py"), "{}", exception.traceback);
    assert!(exception.traceback.contains("in receive"), "{}", exception.traceback);
    assert_eq!(err.to_string(), "receive() raised ValueError: bad value: 42");

    let err = raiser.blocking_ask("custom", TIMEOUT).expect_err("raises");
    let exception = err.handler_error().and_then(ReceiveError::exception).expect("an exception");
    assert_eq!(exception.type_name, "actors.Failure", "exception types are qualified by module");
    assert!(exception.traceback.contains("in helper_that_raises"), "{}", exception.traceback);
    assert!(format!("{exception:#}").contains("Traceback"), "the alternate form shows the traceback");

    // Chained causes are part of the traceback, innermost first, as Python prints them.
    let err = raiser.blocking_ask("chained", TIMEOUT).expect_err("raises");
    let traceback = &err.handler_error().and_then(ReceiveError::exception).expect("an exception").traceback;
    let (cause, link, outer) = (
        traceback.find("KeyError: 'missing'").expect("the cause"),
        traceback.find("The above exception was the direct cause").expect("the link"),
        traceback.find("RuntimeError: lookup failed").expect("the exception"),
    );
    assert!(cause < link && link < outer, "{traceback}");
    assert!(traceback.contains(r#"{}["missing"]"#), "source lines are shown: {traceback}");
    let err = raiser.blocking_ask("group", TIMEOUT).expect_err("raises");
    let traceback = &err.handler_error().and_then(ReceiveError::exception).expect("an exception").traceback;
    assert!(traceback.contains("ValueError: one") && traceback.contains("TypeError: two"), "{traceback}");

    // SystemExit in a handler is an exception like any other: the process lives on.
    let err = raiser.blocking_ask("exit", TIMEOUT).expect_err("raises");
    assert_eq!(err.handler_error().and_then(ReceiveError::exception).map(|e| e.type_name.as_str()), Some("SystemExit"));

    // A failing tell is logged; the actor keeps serving.
    raiser.blocking_tell("value").expect("tell");
    assert_eq!(raiser.blocking_ask("fine", TIMEOUT).expect("still serving"), Value::from("ok"));
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_full_mailbox_pushes_back_on_python_actors() {
    let rt = runtime();
    let sleeper = rt.spawn(subactor::PythonActor::new("actors", "Sleeper").mailbox_capacity(4)).expect("spawn");
    sleeper.blocking_tell(0.3).expect("a slow first message");
    eventually("the slow message is taken", || sleeper.mailbox_len() == 0);
    for _ in 0..4 {
        sleeper.try_tell(0.0).expect("room");
    }
    match sleeper.try_tell(0.0) {
        Err(SendError::Full(v)) => assert_eq!(v, Value::Float(0.0), "the message comes back"),
        other => panic!("expected Full, got {other:?}"),
    }
    let started = Instant::now();
    sleeper.blocking_tell(0.0).expect("waits for room, then delivers");
    assert!(started.elapsed() >= Duration::from_millis(50), "blocking_tell must have waited for room");
    assert_eq!(sleeper.blocking_ask("handled", TIMEOUT).expect("ask"), Value::from(6));
    rt.shutdown().expect("shutdown");
}

#[test]
fn many_messages_are_all_handled() {
    let rt = runtime();
    let counter = spawn(&rt, "Counter");
    for _ in 0..100_000 {
        counter.blocking_tell(1).expect("tell");
    }
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(100_000));
    rt.shutdown().expect("shutdown");
}
