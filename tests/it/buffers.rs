//! Arena buffers between actors: zero-copy, read-only, and alive exactly as long as their
//! last handle or view.

use subactor::{AskError, ReceiveError, Runtime, Value};

use crate::common::{TIMEOUT, eventually, runtime};

fn actor(rt: &Runtime, class: &str) -> subactor::PyRef {
    rt.spawn(subactor::PythonActor::new("buffers", class)).expect("spawn")
}

#[test]
fn a_buffer_written_in_place_and_frozen_keeps_its_address_everywhere() {
    let rt = runtime();
    let producer = actor(&rt, "Producer");
    let readers: Vec<_> = (0..3).map(|_| actor(&rt, "Reader")).collect();
    let made = producer.blocking_ask(("make", 1 << 20), TIMEOUT).expect("make");
    let (frozen, draft_address, frozen_address, produced_digest): (Value, u64, u64, String) =
        made.try_into().expect("tuple");
    let Value::Buffer(buffer) = frozen else { panic!("expected a buffer") };
    assert_eq!(draft_address, frozen_address, "freeze() does not copy");
    assert_eq!(buffer.as_ptr() as u64, frozen_address, "Rust sees the same memory");
    assert_eq!(buffer.len(), 1 << 20);
    assert_eq!((buffer[0], buffer[4096], buffer[1]), (0, (4096 % 251) as u8, 0));

    // Many actors read it at once, at the same address, without a copy.
    let handles: Vec<_> = readers
        .iter()
        .map(|reader| {
            let (reader, buffer) = (reader.clone(), buffer.clone());
            std::thread::spawn(move || reader.blocking_ask(("read", Value::Buffer(buffer)), TIMEOUT).expect("read"))
        })
        .collect();
    for handle in handles {
        let seen = handle.join().expect("reader");
        assert_eq!(seen, Value::from(("Buffer", frozen_address, 1 << 20, produced_digest.as_str())));
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_rust_buffer_reaches_python_actors_without_a_copy() {
    let rt = runtime();
    let mut draft = rt.arena().alloc(4096).expect("alloc");
    draft.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 256) as u8);
    let buffer = draft.freeze();
    let reader = actor(&rt, "Reader");
    let Value::Tuple(seen) = reader.blocking_ask(("read", Value::Buffer(buffer.clone())), TIMEOUT).expect("read")
    else {
        panic!("expected a tuple")
    };
    assert_eq!(seen[1], Value::from(buffer.as_ptr() as u64));
    rt.shutdown().expect("shutdown");
}

#[test]
fn buffers_are_read_only_and_slice_without_copying() {
    let rt = runtime();
    let reader = actor(&rt, "Reader");
    let buffer = rt.arena().copy_from(&(0..=255).collect::<Vec<u8>>()).expect("copy");
    let errors = reader.blocking_ask(("write", Value::Buffer(buffer.clone())), TIMEOUT).expect("write");
    assert_eq!(errors, Value::List(vec!["TypeError".into(), "TypeError".into()]), "writing raises");
    let sliced = reader.blocking_ask(("slice", Value::Buffer(buffer)), TIMEOUT).expect("slice");
    assert_eq!(sliced, Value::from(("Buffer", 10, true, 5, 255, Value::bytes(vec![0u8, 2, 4, 6]))));
    rt.shutdown().expect("shutdown");
}

#[test]
fn freezing_waits_for_views_and_drafts_cannot_be_sent() {
    let rt = runtime();
    let producer = actor(&rt, "Producer");
    let (refused, after, len): (String, String, i64) =
        producer.blocking_ask(("freeze_with_view",), TIMEOUT).expect("freeze").try_into().expect("tuple");
    assert!(refused.contains("cannot freeze while memoryviews"), "{refused}");
    assert!(after.contains("was frozen"), "{after}");
    assert_eq!(len, 16);
    match producer.blocking_ask(("send_draft",), TIMEOUT) {
        Err(AskError::Failed(ReceiveError::Reply(e))) => assert!(e.to_string().contains("freeze() it"), "{e}"),
        other => panic!("expected a conversion error, got {other:?}"),
    }
    let (copy, equal, len): (Value, bool, i64) =
        producer.blocking_ask(("from_bytes",), TIMEOUT).expect("from_bytes").try_into().expect("tuple");
    assert!(matches!(copy, Value::Buffer(_)) && equal && len == 1024);
    rt.shutdown().expect("shutdown");
}

#[test]
fn memory_lives_as_long_as_the_last_handle_or_view_in_any_interpreter() {
    let rt = runtime();
    let arena = rt.arena().clone();
    let producer = actor(&rt, "Producer");
    let reader = actor(&rt, "Reader");
    let (frozen, _, _, produced): (Value, u64, u64, String) =
        producer.blocking_ask(("make", 100_000), TIMEOUT).expect("make").try_into().expect("tuple");
    assert_eq!(arena.stats().buffers_live, 1);
    // The reader keeps a view; the producer, then Rust, let go.
    reader.blocking_ask(("keep", frozen.clone()), TIMEOUT).expect("keep");
    producer.stop();
    producer.blocking_wait();
    drop(frozen);
    assert_eq!(arena.stats().buffers_live, 1, "a view in another interpreter keeps the memory");
    let kept = reader.blocking_ask(("kept_digest", Value::None), TIMEOUT).expect("digest");
    assert_ne!(kept, Value::from(produced.as_str()), "the view is a slice: a different digest");
    assert!(matches!(kept, Value::Str(_)), "and it is still readable after its producer ended");
    // The reader's interpreter ends with the view still alive: the memory goes with it.
    reader.stop();
    reader.blocking_wait();
    eventually("the memory is returned", || arena.stats().buffers_live == 0);
    assert_eq!(arena.stats().bytes_live, 0);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_buffer_outlives_restarts_of_its_producer_and_of_the_reader_holding_a_view() {
    let rt = runtime();
    let arena = rt.arena().clone();
    let restarting = |class: &str| {
        rt.spawn(subactor::PythonActor::new("buffers", class).on_failure(subactor::FailurePolicy::Restart))
            .expect("spawn")
    };
    let (producer, reader) = (restarting("Producer"), restarting("Reader"));
    let (frozen, address, _, _): (Value, u64, u64, String) =
        producer.blocking_ask(("make", 1 << 20), TIMEOUT).expect("make").try_into().expect("tuple");
    reader.blocking_ask(("keep", frozen.clone()), TIMEOUT).expect("keep");
    let kept = reader.blocking_ask(("kept_digest", Value::None), TIMEOUT).expect("digest");
    drop(frozen);

    // The producer restarts: the interpreter that made the buffer ends.
    assert!(producer.blocking_ask(("boom",), TIMEOUT).is_err());
    eventually("the producer restarted", || producer.restarts() == 1);
    assert_eq!(arena.stats().buffers_live, 1, "the reader's view keeps the memory");
    assert_eq!(reader.blocking_ask(("kept_digest", Value::None), TIMEOUT).expect("digest"), kept, "same bytes");

    // A fresh buffer from the restarted producer does not reuse the memory still viewed.
    let (again, ..): (Value, u64, u64, String) =
        producer.blocking_ask(("make", 1 << 20), TIMEOUT).expect("make").try_into().expect("tuple");
    let Value::Buffer(again) = again else { panic!("a buffer") };
    assert_ne!(again.as_ptr() as u64, address);
    drop(again);

    // The reader restarts with the view alive in its old interpreter: the memory goes.
    assert!(reader.blocking_ask(("boom", Value::None), TIMEOUT).is_err());
    eventually("the memory is returned", || arena.stats().buffers_live == 0);
    assert_eq!(arena.stats().bytes_live, 0);
    rt.shutdown().expect("shutdown");
}

#[test]
fn the_arena_limit_is_a_clear_python_error() {
    let rt = Runtime::builder()
        .python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python")])
        .arena(subactor::ArenaConfig::new().with_max_bytes(64 << 20))
        .build()
        .expect("runtime");
    let producer = actor(&rt, "Producer");
    let message = producer.blocking_ask(("too_big", 100 << 20), TIMEOUT).expect("too big");
    let message = message.as_str().expect("the MemoryError's message").to_owned();
    assert!(message.contains("limit"), "{message}");
    let (_, _, _, _): (Value, u64, u64, String) =
        producer.blocking_ask(("make", 1 << 20), TIMEOUT).expect("still works").try_into().expect("tuple");
    rt.shutdown().expect("shutdown");
}

#[test]
fn buffers_do_not_leave_the_process_through_the_codec() {
    let rt = runtime();
    let buffer = rt.arena().copy_from(b"abc").expect("copy");
    let err = subactor::codec::encode(&Value::List(vec![Value::Buffer(buffer)])).expect_err("live handle");
    assert!(err.to_string().contains("live handle"), "{err}");
    rt.shutdown().expect("shutdown");
}
