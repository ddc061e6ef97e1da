//! A pipeline across placements, on real data: every `.py` file of the standard
//! library is tokenized in interpreter actors (pure Python), embedded with numpy in
//! process actors, and reduced to a centroid and the files nearest to it.
//!
//! Run with: `cargo run --release --example vectors` (numpy must be importable by the
//! Python subactor embeds: activate a virtualenv that has it, e.g.
//! `python3.13 -m venv .venv && .venv/bin/pip install numpy && . .venv/bin/activate`).
//!
//! tokenize (interpreter actors) -> embed (process actors, numpy) -> reduce (a process
//! actor). Token hashes and embeddings travel as arena buffers: the stages in other
//! processes read the same pages, nothing is copied. The placements are chosen by the
//! runtime (`Placement::Auto`, the default): the numpy classes refuse subinterpreters,
//! so they start in processes. Run with 1 worker per stage, then 2, with the speedup.
//! numpy is limited to one BLAS thread per actor, so that actors do not oversubscribe
//! the cores.

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{Output, Pipeline, PythonActor, Routing, Runtime, Value};
use tracing_subscriber::EnvFilter;

const TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    // SAFETY: no other thread runs yet. The template of process actors inherits this
    // environment, so numpy's BLAS starts with one thread in every child.
    unsafe { std::env::set_var("OPENBLAS_NUM_THREADS", "1") };
    let rt = Runtime::builder().python_path(["examples/python"]).preload(["numpy"]).build()?;
    let lister = rt.spawn(PythonActor::new("vectors", "Lister"))?;
    let paths: Vec<String> = lister.blocking_ask((), TIMEOUT)?.try_into()?;
    lister.stop();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{} .py files in the standard library, {cores} cores\n", paths.len());

    let mut one = None;
    let mut last = Value::None;
    for workers in [1, 2] {
        let (time, result, failed) = run(&rt, &paths, workers)?;
        let rate = paths.len() as f64 / time.as_secs_f64();
        let speedup = one.map_or(String::new(), |one: f64| format!("   speedup {:.2}x", one / time.as_secs_f64()));
        println!(
            "{workers} worker(s) per stage: {:>7.3} s   {rate:>7.0} files/s   {failed} files did not tokenize{speedup}",
            time.as_secs_f64()
        );
        one.get_or_insert(time.as_secs_f64());
        last = result;
    }
    let (files, nearest): (i64, Value) = last.try_into()?;
    println!("\n{files} files embedded; the nearest to their centroid:");
    if let Value::List(nearest) = nearest {
        for pair in nearest {
            let (path, score): (String, f64) = pair.try_into()?;
            println!("  {score:>6.3}  {path}");
        }
    }
    rt.shutdown()?;
    Ok(())
}

/// Runs the pipeline with `workers` per stage; returns the time, the result and the
/// number of files that failed.
fn run(rt: &Runtime, paths: &[String], workers: usize) -> Result<(Duration, Value, usize), Box<dyn Error>> {
    let tokenizers = rt.spawn_workers(&PythonActor::new("vectors", "Tokenizer"), workers)?;
    let embedders = rt.spawn_workers(&PythonActor::new("vectors", "Embedder"), workers)?;
    let reducer = rt.spawn(PythonActor::new("vectors", "Reducer"))?;
    let placements: Vec<String> =
        [&tokenizers[0], &embedders[0], &reducer].iter().map(|a| a.placement().to_string()).collect();
    println!("placements: tokenize {}, embed {}, reduce {}", placements[0], placements[1], placements[2]);
    let started = Instant::now();
    let mut pipeline = Pipeline::builder()
        .stage("tokenize", tokenizers.iter().cloned().map(Into::into).collect(), Routing::LeastLoaded)
        .stage("embed", embedders.iter().cloned().map(Into::into).collect(), Routing::LeastLoaded)
        .stage("reduce", vec![reducer.clone().into()], Routing::RoundRobin)
        .build()?;
    let outputs = pipeline.outputs();
    let consumer = std::thread::spawn(move || outputs.iter().filter(|o| matches!(o, Output::Failed(_))).count());
    for path in paths {
        pipeline.send(path.as_str())?;
    }
    pipeline.close();
    let failed = consumer.join().map_err(|_| "the consumer panicked")?;
    let elapsed = started.elapsed();
    let result = reducer.blocking_ask("result", TIMEOUT)?;
    for actor in tokenizers.iter().chain(&embedders).chain([&reducer]) {
        actor.stop();
    }
    Ok((elapsed, result, failed))
}
