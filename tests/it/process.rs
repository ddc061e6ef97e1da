//! Process actors: Python actors whose handlers run in the main interpreter of a child
//! process. Real processes, real signals, real numpy.

use std::time::Duration;

use subactor::{AskError, Placement, PyRef, PythonActor, Runtime, Value};

use crate::common::{TIMEOUT, runtime};

fn process(class: &str) -> PythonActor {
    PythonActor::new("procs", class).placement(Placement::Process)
}

fn spawn(rt: &Runtime, class: &str) -> PyRef {
    rt.spawn(process(class)).expect("the process actor starts")
}

fn ask(actor: &PyRef, msg: impl Into<Value>) -> Value {
    actor.blocking_ask(msg, TIMEOUT).expect("an answer")
}

#[test]
fn a_process_actor_runs_in_the_main_interpreter_of_its_own_process() {
    let rt = runtime();
    let actor = spawn(&rt, "Where");
    assert_eq!(actor.placement(), Placement::Process);
    let pid = ask(&actor, "pid").as_i64().expect("a pid");
    assert_ne!(pid, i64::from(std::process::id()), "runs in another process");
    assert_eq!(ask(&actor, "main"), Value::Bool(true));
    assert_eq!(ask(&actor, "echo"), Value::from("echo"));
    actor.stop();
    actor.blocking_wait_timeout(TIMEOUT).expect("stops");
    rt.shutdown().expect("shutdown");
    let _ = Duration::ZERO;
    let _ = AskError::<Value, ()>::Timeout;
}
