use std::time::Duration;
use subactor::{PythonActor, Runtime, Value};

#[test]
fn smoke() {
    let rt = Runtime::builder().python_path(["examples/python"]).build().expect("runtime");
    let c = rt.spawn(PythonActor::new("primes", "Counter").args((0,)).name("c")).expect("spawn");
    c.blocking_tell(5).expect("tell");
    let v = c.blocking_ask(1, Duration::from_secs(5)).expect("ask");
    assert_eq!(v, Value::from(6));
    let d = rt.spawn(PythonActor::new("primes", "PrimeCounter")).expect("spawn 2");
    let v = d.blocking_ask((0, 100), Duration::from_secs(5)).expect("ask");
    assert_eq!(v, Value::from(25));
    rt.shutdown().expect("shutdown");
}
