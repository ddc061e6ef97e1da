//! Values crossing between Rust and Python, both ways.

use num_bigint::BigInt;
use proptest::prelude::*;
use subactor::{AskError, ConvertError, ReceiveError, Value};

use crate::common::{TIMEOUT, runtime, spawn};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Rust -> Python -> Rust returns the same value, for every kind of value.
    #[test]
    fn every_value_round_trips_through_python(values in prop::collection::vec(subactor_core::testing::python_value(), 16)) {
        let rt = runtime();
        let echo = spawn(&rt, "Echo");
        for value in values {
            let back = echo.blocking_ask(value.clone(), TIMEOUT).expect("echo");
            prop_assert_eq!(back, value);
        }
        rt.shutdown().expect("shutdown");
    }
}

#[test]
fn python_values_arrive_as_the_right_kinds() {
    let rt = runtime();
    let samples = spawn(&rt, "Samples");
    let plain = samples.blocking_ask("plain", TIMEOUT).expect("ask");
    let Value::Dict(pairs) = plain else { panic!("expected a dict, got {plain:?}") };
    let get = |key: &str| pairs.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v.clone()).expect(key);
    assert_eq!(get("none"), Value::None);
    assert_eq!(get("true"), Value::Bool(true));
    assert_eq!(get("int"), Value::Int(-7));
    assert_eq!(get("big"), Value::BigInt(BigInt::from(2).pow(200) + 1));
    assert_eq!(get("negative_big"), Value::BigInt(-BigInt::from(2).pow(100)));
    let edges: Vec<BigInt> = get("int64_edge").try_into().expect("ints");
    let two = BigInt::from(2);
    assert_eq!(edges, vec![two.pow(63) - 1, -two.pow(63), two.pow(63), -two.pow(63) - 1, two.pow(64)]);
    assert!(
        matches!(get("int64_edge"), Value::List(items) if matches!(items[0], Value::Int(_)) && matches!(items[2], Value::BigInt(_)))
    );
    assert_eq!(get("float"), Value::Float(1.5));
    assert_eq!(get("str"), Value::from("héllo ✓ 🌍 日本"));
    assert_eq!(get("bytes"), Value::bytes(*b"\x00\xff\xfe"));
    assert_eq!(get("list"), Value::List(vec![1.into(), Value::List(vec![2.into(), Value::List(vec![3.into()])])]));
    assert_eq!(get("tuple"), Value::from((1, ("a",), ())));
    assert_eq!(get("set"), Value::Set(vec![1.into(), 2.into()]));
    assert_eq!(get("frozenset"), Value::FrozenSet(vec!["x".into()]));
    assert_eq!(
        get("dict_keys"),
        Value::Dict(vec![
            (Value::from((1, 2)), "tuple key".into()),
            (3.into(), "int key".into()),
            (Value::None, "none key".into())
        ])
    );
    rt.shutdown().expect("shutdown");
}

#[test]
fn other_objects_travel_pickled_and_keep_their_type() {
    let rt = runtime();
    let samples = spawn(&rt, "Samples");
    let describe = spawn(&rt, "Describe");
    for (what, type_name, repr) in [
        ("fraction", "fractions.Fraction", "Fraction(1, 3)"),
        ("ordered", "collections.OrderedDict", "OrderedDict({'b': 1, 'a': 2})"),
        ("surrogate", "builtins.str", "'a\\udcffb'"),
    ] {
        let value = samples.blocking_ask(what, TIMEOUT).expect("ask");
        assert!(matches!(value, Value::Pickled(_)), "{what} travels pickled, got {value:?}");
        let seen = describe.blocking_ask(value, TIMEOUT).expect("describe");
        assert_eq!(seen, Value::from((type_name, repr)), "{what}");
    }
    rt.shutdown().expect("shutdown");
}

/// The in-actor module's exception classes (made on first use) name themselves
/// `subactor.<Name>` and pickle back to the same class.
#[test]
fn in_actor_exception_classes_keep_their_names_and_pickle() {
    let rt = runtime();
    let names = spawn(&rt, "ErrorNames");
    let got = names.blocking_ask(Value::None, TIMEOUT).expect("ask");
    let expected = Value::List(vec![
        Value::List(vec![
            Value::from("subactor.ActorStopped"),
            Value::from("subactor.RemoteError"),
            Value::from("subactor.Down"),
        ]),
        Value::Bool(true),
        Value::from("gone"),
    ]);
    assert_eq!(got, expected);
    rt.shutdown().expect("shutdown");
}

fn reply_error(result: Result<Value, AskError<Value, ReceiveError>>) -> ConvertError {
    match result {
        Err(AskError::Failed(ReceiveError::Reply(e))) => e,
        other => panic!("expected a reply conversion error, got {other:?}"),
    }
}

#[test]
fn unsendable_replies_are_clear_errors_and_the_actor_keeps_running() {
    let rt = runtime();
    let samples = spawn(&rt, "Samples");
    assert_eq!(reply_error(samples.blocking_ask("cycle", TIMEOUT)), ConvertError::Cycle { type_name: "list".into() });
    assert!(matches!(reply_error(samples.blocking_ask("dict_cycle", TIMEOUT)), ConvertError::Cycle { .. }));
    assert_eq!(
        reply_error(samples.blocking_ask("deep", TIMEOUT)),
        ConvertError::TooDeep { limit: subactor::MAX_DEPTH }
    );
    match reply_error(samples.blocking_ask("lock", TIMEOUT)) {
        ConvertError::Unpicklable { type_name, error } => {
            assert_eq!(type_name, "_thread.lock");
            assert_eq!(error.type_name, "TypeError");
        }
        other => panic!("expected Unpicklable, got {other:?}"),
    }
    let err = reply_error(samples.blocking_ask("generator", TIMEOUT));
    assert!(matches!(&err, ConvertError::Unpicklable { type_name, .. } if type_name == "generator"), "{err:?}");
    assert!(err.to_string().starts_with("cannot send an object of type generator"), "{err}");
    // Still serving.
    assert!(matches!(samples.blocking_ask("plain", TIMEOUT), Ok(Value::Dict(_))));
    rt.shutdown().expect("shutdown");
}

#[test]
fn unbuildable_messages_are_clear_errors_and_the_actor_keeps_running() {
    let rt = runtime();
    let echo = spawn(&rt, "Echo");
    let mut deep = Value::None;
    for _ in 0..=subactor::MAX_DEPTH {
        deep = Value::List(vec![deep]);
    }
    match echo.blocking_ask(deep, TIMEOUT) {
        Err(AskError::Failed(ReceiveError::Message(ConvertError::TooDeep { .. }))) => {}
        other => panic!("expected TooDeep, got {other:?}"),
    }
    let unhashable = Value::Set(vec![Value::List(vec![])]);
    match echo.blocking_ask(unhashable, TIMEOUT) {
        Err(AskError::Failed(ReceiveError::Message(ConvertError::Build(e)))) => {
            assert_eq!(e.type_name, "TypeError");
            assert!(e.message.contains("unhashable"), "{e}");
        }
        other => panic!("expected Build, got {other:?}"),
    }
    match echo.blocking_ask(Value::Pickled(b"not a pickle".to_vec()), TIMEOUT) {
        Err(AskError::Failed(ReceiveError::Message(ConvertError::Unpickle(e)))) => {
            assert_eq!(e.type_name, "_pickle.UnpicklingError");
        }
        other => panic!("expected Unpickle, got {other:?}"),
    }
    assert_eq!(echo.blocking_ask("fine", TIMEOUT).expect("still serving"), Value::from("fine"));
    rt.shutdown().expect("shutdown");
}
