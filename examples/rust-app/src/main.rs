//! A Rust application that spawns Python actors with subactor.
//!
//! Run with: `cargo run` (see `Cargo.toml` for where this crate must sit).

use std::time::Duration;

use subactor::{PythonActor, Runtime, Value};

const TIMEOUT: Duration = Duration::from_secs(60);
const LIMIT: i64 = 200_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Actors import the application's Python modules from `python/`.
    let rt = Runtime::builder().python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/python")]).build()?;

    let counter = rt.spawn(PythonActor::new("workers", "Counter").args((10,)))?;
    counter.blocking_tell(5)?;
    let total = counter.blocking_ask(1, TIMEOUT)?;
    println!("counter: {total:?}");

    // One actor per core, each in its own interpreter with its own GIL, counting the
    // primes of a slice of [0, LIMIT) at the same time.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let workers = rt.spawn_workers(&PythonActor::new("workers", "PrimeCounter"), cores)?;
    let n = i64::try_from(cores)?;
    let step = LIMIT / n;
    let spans = (0..n).map(|i| (i * step, if i + 1 == n { LIMIT } else { (i + 1) * step }));
    let replies = std::thread::scope(|scope| {
        let asks: Vec<_> = workers
            .iter()
            .zip(spans)
            .map(|(worker, span)| scope.spawn(move || worker.blocking_ask(span, TIMEOUT)))
            .collect();
        asks.into_iter().map(|ask| ask.join().expect("an asking thread panicked")).collect::<Result<Vec<_>, _>>()
    })?;
    let primes: i64 = replies.iter().map(|n| if let Value::Int(n) = n { *n } else { 0 }).sum();
    println!("primes below {LIMIT}: {primes}, counted by {cores} Python actors in parallel");

    let version = rt.spawn(PythonActor::new("workers", "Version"))?.blocking_ask(Value::None, TIMEOUT)?;
    println!("python: {version:?}");
    rt.shutdown()?;
    Ok(())
}
