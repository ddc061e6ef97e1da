//! Calls and answers on the wire: hostile bytes never panic the decoder, and
//! references cross as the handles say.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use subactor_arena::Arena;
use subactor_core::codec::{self, Handles};
use subactor_core::{ActorSystem, AnyRef, NeverFails, Props, Value};

use super::*;
use crate::{Exports, LinkHandles};

fn exports() -> Arc<dyn Handles> {
    Arc::new(LinkHandles::owner(Arc::new(Exports::new()), Arena::new()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_to_a_call_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let handles = exports();
        let _ = codec::decode_with::<Call>(&bytes, &handles);
        let _ = codec::decode_with::<Answer>(&bytes, &handles);
    }

    #[test]
    fn calls_round_trip(value in subactor_core::testing::any_value()) {
        let handles = exports();
        let mut bytes = Vec::new();
        let call = Call::SendAfter { delay: Duration::from_millis(5), to: dead(), msg: value.clone() };
        codec::encode_into(&call, &mut bytes, &handles).expect("encode");
        let Call::SendAfter { delay, msg, .. } = codec::decode_with::<Call>(&bytes, &handles).expect("decode") else {
            panic!("another call")
        };
        prop_assert_eq!(delay, Duration::from_millis(5));
        prop_assert_eq!(msg, value);
    }
}

/// A reference to an actor that is not running.
fn dead() -> AnyRef {
    AnyRef::remote(Arc::new(crate::DeadRef::new(
        codec::RefAddr {
            node: None,
            id: 424_242,
            name: Some("gone".into()),
            placement: subactor_core::Placement::Process,
        },
        None,
    )))
}

struct Echo;

impl subactor_core::Actor for Echo {
    type Msg = Value;
    type Reply = Value;
    type Error = std::convert::Infallible;

    fn handle(&mut self, _ctx: &subactor_core::ActorContext<Self>, msg: Value) -> Result<Value, Self::Error> {
        Ok(msg)
    }
}

#[test]
fn an_exported_reference_comes_back_as_the_same_actor_and_an_unknown_one_as_stopped() {
    let system = ActorSystem::builder().build();
    let echo: AnyRef = system.spawn(Props::new(|| Ok::<_, NeverFails>(Echo))).expect("spawn").into();
    let handles = exports();
    let mut bytes = Vec::new();
    codec::encode_into(&Value::from(vec![Value::Actor(echo.clone())]), &mut bytes, &handles).expect("encode");
    let Value::List(items) = codec::decode_with::<Value>(&bytes, &handles).expect("decode") else { panic!() };
    let Value::Actor(back) = &items[0] else { panic!("a reference") };
    assert_eq!(back, &echo);
    assert_eq!(back.blocking_ask(5, Duration::from_secs(5)).expect("usable"), Value::from(5));

    // An id this side never exported is an actor that has stopped.
    let unknown = codec::RefAddr {
        node: None,
        id: u64::MAX,
        name: Some("ghost".into()),
        placement: subactor_core::Placement::Process,
    };
    let ghost = handles.decode_ref(unknown).expect("decodes");
    assert_eq!(ghost.state(), subactor_core::ActorState::Stopped);
    assert!(matches!(ghost.try_tell(1), Err(subactor_core::SendError::Stopped(_))));
    assert!(matches!(ghost.blocking_ask(1, Duration::from_secs(1)), Err(subactor_core::AskError::Stopped(_))));
    system.shutdown();
}

struct Env;

impl ActorEnv for Env {
    fn lookup(&self, _name: &str) -> Option<AnyRef> {
        None
    }
    fn spawn(&self, request: SpawnRequest) -> Result<AnyRef, String> {
        Err(format!("no spawning {}", request.class))
    }
    fn send_after(&self, _delay: Duration, _to: AnyRef, _msg: Value) -> Option<u64> {
        None
    }
    fn cancel_timer(&self, _id: u64) -> bool {
        false
    }
    fn describe(&self, error: &BoxError) -> RemoteError {
        RemoteError { type_name: "E".into(), message: error.to_string(), traceback: String::new() }
    }
    fn rebuild(&self, error: RemoteError) -> BoxError {
        Box::new(error)
    }
}

#[test]
fn serving_a_call_acts_on_the_actor() {
    let system = ActorSystem::builder().build();
    let echo: AnyRef = system.spawn(Props::new(|| Ok::<_, NeverFails>(Echo))).expect("spawn").into();
    let answer = serve(Call::Ask { to: echo.clone(), msg: "hi".into(), timeout: Duration::from_secs(5) }, &Env);
    assert!(matches!(answer, Answer::Reply(ref v) if *v == Value::from("hi")), "{answer:?}");
    let request = SpawnRequest {
        module: "m".into(),
        class: "C".into(),
        args: vec![],
        name: None,
        placement: subactor_core::Placement::Interpreter,
        node: None,
        settings: crate::SpawnSettings::default(),
    };
    let spawned = serve(Call::Spawn(request), &Env);
    assert!(matches!(spawned, Answer::SpawnFailed(ref e) if e == "no spawning C"), "{spawned:?}");
    assert!(matches!(serve(Call::Stop(echo.clone()), &Env), Answer::Done));
    let waited = serve(Call::Wait { of: echo, timeout: Some(Duration::from_secs(5)) }, &Env);
    assert!(matches!(waited, Answer::Stopped(Some(_))), "{waited:?}");
    system.shutdown();
}
