//! A pipeline on real data: identifier frequencies over every `.py` file of the Python
//! standard library next to the interpreter.
//!
//! Run with: `cargo run --release --example wordcount`
//!
//! reader -> N tokenizer workers (pure-Python `tokenize`, least-loaded routing) -> totals.
//! The count is run with 1 tokenizer worker and with one per core, checked against a
//! plain single-threaded count, and the items/s and speedup are printed. Files that do
//! not tokenize are reported by the pipeline (stage and item) and counted as failures.

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{Output, Pipeline, PythonActor, Routing, Runtime, Value};
use tracing_subscriber::EnvFilter;

const TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let lister = rt.spawn(PythonActor::new("wordcount", "Lister"))?;
    let paths: Vec<String> = lister.blocking_ask((), TIMEOUT)?.try_into()?;
    lister.stop();
    println!("{} .py files in the standard library, {cores} cores\n", paths.len());

    let plain = rt.spawn(PythonActor::new("wordcount", "PlainCount"))?;
    let started = Instant::now();
    let reference = plain.blocking_ask(Value::from(paths.clone()), TIMEOUT)?;
    let plain_time = started.elapsed();
    plain.stop();
    let (total, distinct, top, plain_failed): (i64, i64, Value, i64) = reference.try_into()?;
    println!("plain single-threaded count: {:>7.3} s", plain_time.as_secs_f64());

    let mut one_worker = None;
    for workers in [1, cores] {
        let (time, result, failed) = run(&rt, &paths, workers)?;
        if result != Value::from((total, distinct, top.clone())) || failed != plain_failed {
            return Err(format!("{workers} worker(s) disagree with the plain count: {result} ({failed} failed)").into());
        }
        let rate = paths.len() as f64 / time.as_secs_f64();
        let speedup =
            one_worker.map_or(String::new(), |one: f64| format!("   speedup {:.2}x", one / time.as_secs_f64()));
        println!("pipeline, {workers} tokenizer(s):   {:>7.3} s   {rate:>7.0} files/s{speedup}", time.as_secs_f64());
        one_worker.get_or_insert(time.as_secs_f64());
    }
    println!("\n{total} identifiers, {distinct} distinct, {plain_failed} files that do not tokenize; the most common:");
    if let Value::List(top) = top {
        for pair in top {
            let (name, count): (String, i64) = pair.try_into()?;
            println!("  {name:<16} {count:>8}");
        }
    }
    rt.shutdown()?;
    Ok(())
}

/// Counts with `workers` tokenizers; returns the time, the totals and the failures.
fn run(rt: &Runtime, paths: &[String], workers: usize) -> Result<(Duration, Value, i64), Box<dyn Error>> {
    let readers = rt.spawn_workers(&PythonActor::new("wordcount", "Reader"), 1)?;
    let tokenizers = rt.spawn_workers(&PythonActor::new("wordcount", "Tokenizer"), workers)?;
    let totals = rt.spawn(PythonActor::new("wordcount", "Totals"))?;
    let started = Instant::now();
    let mut pipeline = Pipeline::builder()
        .stage("read", readers.iter().cloned().map(Into::into).collect(), Routing::RoundRobin)
        .stage("tokenize", tokenizers.iter().cloned().map(Into::into).collect(), Routing::LeastLoaded)
        .stage("total", vec![totals.clone().into()], Routing::RoundRobin)
        .build()?;
    // Outputs are consumed on another thread while this one feeds the pipeline.
    let outputs = pipeline.outputs();
    let consumer = std::thread::spawn(move || {
        let mut failed = Vec::new();
        for output in outputs.iter() {
            if let Output::Failed(failure) = output {
                failed.push(failure);
            }
        }
        failed
    });
    for path in paths {
        pipeline.send(path.as_str())?;
    }
    // The consumer sees the output disconnect once every item has come out.
    pipeline.close();
    let failed = consumer.join().map_err(|_| "the consumer panicked")?;
    let elapsed = started.elapsed();
    for failure in &failed {
        tracing::info!(stage = %failure.stage, path = %paths[failure.seq as usize], error = %failure.error, "not counted");
    }
    let result = totals.blocking_ask("result", TIMEOUT)?;
    for worker in readers.iter().chain(&tokenizers).chain([&totals]) {
        worker.stop();
    }
    Ok((elapsed, result, failed.len() as i64))
}
