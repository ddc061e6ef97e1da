//! Actors talking: Python -> Python round trips, and pipeline throughput with one and
//! two workers per stage.
//!
//! Run with: `cargo bench --bench actors` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`)

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{AnyRef, Output, Pipeline, PythonActor, Routing, Runtime};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("actors", &options);
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("subactor actors benchmark, {cores} cores{}\n", if quick { ", quick" } else { "" });
    ping_pong(&rt, if quick { 20_000 } else { 200_000 }, &mut record)?;
    pipeline(&rt, 400, if quick { 4_000 } else { 20_000 }, &mut record)?;
    pipeline(&rt, 4_000, if quick { 1_000 } else { 5_000 }, &mut record)?;
    rt.shutdown()?;
    record.finish()?;
    Ok(())
}

fn ping_pong(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let ping = rt.spawn(PythonActor::new("bench", "Ping"))?;
    let pong = rt.spawn(PythonActor::new("bench", "Echo"))?;
    ping.blocking_ask((pong.clone(), 10_000), TIMEOUT)?;
    let mut times: Vec<f64> = ping.blocking_ask((pong, rounds), TIMEOUT)?.try_into()?;
    times.sort_by(f64::total_cmp);
    record.values("ask.python", None, "s", times.iter().copied());
    let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize] * 1e6;
    println!("ask round trip, Python -> Python ({rounds} asks, timed in Python)");
    println!(
        "  p50 {:>7.2} us   p99 {:>7.2} us   (goal: p50 <= 15 us; multiprocessing Pipe 30-60 us)\n",
        at(0.5),
        at(0.99)
    );
    Ok(())
}

fn pipeline(rt: &Runtime, rounds: i64, items: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    println!(
        "pipeline: a light stage, then a heavy stage ({rounds} rounds of pure-Python work per item), {items} items"
    );
    let mut one = None;
    for per_stage in [1, 2] {
        let stage = |spec: PythonActor| -> Result<Vec<AnyRef>, Box<dyn Error>> {
            Ok(rt.spawn_workers(&spec, per_stage)?.into_iter().map(Into::into).collect())
        };
        let first = stage(PythonActor::new("bench", "Echo"))?;
        let second = stage(PythonActor::new("bench", "Work").args((rounds,)))?;
        let all: Vec<AnyRef> = first.iter().chain(&second).cloned().collect();
        let mut pipeline = Pipeline::builder()
            .stage("first", first, Routing::LeastLoaded)
            .stage("second", second, Routing::LeastLoaded)
            .build()?;
        let outputs = pipeline.outputs();
        let started = Instant::now();
        let consumer = std::thread::spawn(move || outputs.iter().filter(|o| matches!(o, Output::Item { .. })).count());
        for i in 0..items {
            pipeline.send(i as i64)?;
        }
        pipeline.close();
        let done = consumer.join().map_err(|_| "consumer panicked")?;
        let rate = done as f64 / started.elapsed().as_secs_f64();
        record.values(&format!("pipeline.rounds{rounds}"), Some(per_stage as f64), "items/s", [rate]);
        let speedup = one.map_or(String::new(), |one: f64| format!("   speedup {:.2}x", rate / one));
        println!("  {per_stage} worker(s) per stage   {rate:>9.0} items/s{speedup}");
        one.get_or_insert(rate);
        for worker in all {
            worker.stop();
            worker.blocking_wait();
        }
    }
    println!();
    Ok(())
}
