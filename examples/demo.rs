//! The main demo: true parallelism with Python actors.
//!
//! Run with: `cargo run --release --example demo`
//!
//! Spawns one Python actor per core, each in its own-GIL subinterpreter, and gives them
//! a pure-Python CPU-bound job (counting primes by trial division). The same total work
//! is done first by one actor, then by one actor per core; the demo prints both wall
//! times and the speedup, and checks that both runs found the same answer.
//!
//! `RUST_LOG=subactor=debug` shows what the runtime does (interpreters created and
//! ended, actors started and stopped).

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{PyRef, PythonActor, Runtime, Value};
use tracing_subscriber::EnvFilter;

/// Primes are counted in [0, LIMIT), in CHUNKS pieces dealt round-robin to the actors.
const LIMIT: i64 = 1_000_000;
const CHUNKS: i64 = 64;

fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    println!(
        "subactor demo: Python {major}.{minor}.{micro}, {cores} cores, counting primes below {LIMIT} in pure Python\n"
    );

    let (one_time, one_count) = run(&rt, 1)?;
    println!("1 actor:   {:>8.3} s   ({one_count} primes)", one_time.as_secs_f64());
    let (n_time, n_count) = run(&rt, cores)?;
    println!("{cores} actors:  {:>8.3} s   ({n_count} primes)", n_time.as_secs_f64());
    if one_count != n_count {
        return Err(format!("the runs disagree: {one_count} vs {n_count}").into());
    }
    println!(
        "\nspeedup: {:.2}x with {cores} actors (ideal {cores}.00x; a GIL-bound thread pool stays near 1x)",
        one_time.as_secs_f64() / n_time.as_secs_f64()
    );
    rt.shutdown()?;
    Ok(())
}

/// Counts the primes below LIMIT with `actors` actors; returns the wall time of the work
/// (spawning excluded) and the count.
fn run(rt: &Runtime, actors: usize) -> Result<(Duration, i64), Box<dyn Error>> {
    let workers: Vec<PyRef> = (0..actors)
        .map(|core| rt.spawn(PythonActor::new("primes", "PrimeCounter").pin_to_core(core)))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    // One thread per actor asks for its share of the chunks, one after the other.
    let total = std::thread::scope(|scope| -> Result<i64, Box<dyn Error + Send + Sync>> {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, worker)| {
                scope.spawn(move || -> Result<i64, Box<dyn Error + Send + Sync>> {
                    let mut count = 0;
                    for chunk in (i as i64..CHUNKS).step_by(actors) {
                        let span = (chunk * LIMIT / CHUNKS, (chunk + 1) * LIMIT / CHUNKS);
                        let found: Value = worker.blocking_ask(span, Duration::from_secs(600))?;
                        count += i64::try_from(found)?;
                    }
                    Ok(count)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| "a worker thread panicked")?).sum()
    })
    .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    for worker in &workers {
        worker.stop();
        worker.blocking_wait();
    }
    Ok((elapsed, total))
}
