//! Supervised long-running workers: a pool of Python workers that crash on some inputs
//! and are restarted, while a pipeline keeps feeding them.
//!
//! Run with: `cargo run --release --example supervised`
//!
//! One worker per core, each an own-GIL interpreter, under a one-for-one supervisor. Of
//! 5,000 seeded records, about 1% are corrupt (the worker raises) and about 0.2% make it
//! loop forever (its 200 ms time limit interrupts the loop). Every failure restarts the
//! worker in place, in a fresh interpreter, with its queued records kept; the pipeline
//! reports the failed records and goes on. At the end: restarts per worker, processed,
//! failed and timed-out counts, and a check that every record is accounted for.

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{
    AnyRef, ChildSpec, Fault, Output, Pipeline, PyActor, PythonActor, ReceiveError, Routing, Runtime, Strategy,
    SupervisorSpec,
};
use tracing_subscriber::EnvFilter;

const RECORDS: u64 = 5_000;

fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error")))
        .init();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;

    let mut spec = SupervisorSpec::new(Strategy::OneForOne).intensity(1_000, Duration::from_secs(10)).name("pool");
    for i in 0..cores {
        let worker =
            PythonActor::new("jobs", "Scorer").name(format!("scorer-{i}")).time_limit(Duration::from_millis(200));
        spec = spec.child(ChildSpec::new(worker));
    }
    let pool = rt.spawn(spec)?;
    let workers: Vec<AnyRef> = pool.children().iter().filter_map(|c| c.actor::<PyActor>()).map(AnyRef::from).collect();
    println!("{} workers under a one-for-one supervisor, {RECORDS} records\n", workers.len());

    let mut pipeline = Pipeline::builder().stage("score", workers.clone(), Routing::LeastLoaded).build()?;
    // Outputs are consumed here while another thread feeds: the queues are bounded.
    let outputs = pipeline.outputs();
    let started = Instant::now();
    let feeder = std::thread::spawn(move || -> Result<(), subactor::PipelineError> {
        let mut rng = fastrand::Rng::with_seed(2026);
        for _ in 0..RECORDS {
            let roll = rng.u32(0..1000);
            let record = match roll {
                0..=9 => format!("bad:{roll}"),
                10..=11 => "hang:".to_owned(),
                _ => format!("ok:{}", rng.u32(2_000..20_000)),
            };
            pipeline.send(record)?;
        }
        pipeline.close();
        Ok(())
    });
    // The receiver ends when every record has left the pipeline.
    let outputs: Vec<Output> = outputs.iter().collect();
    feeder.join().map_err(|_| "the feeder panicked")??;
    let elapsed = started.elapsed();

    let (mut processed, mut failed, mut timed_out, mut other) = (0u64, 0u64, 0u64, 0u64);
    for output in &outputs {
        match output {
            Output::Item { .. } => processed += 1,
            Output::Failed(failure) => {
                if let Some(ReceiveError::Exception(_)) = failure.error.downcast_ref::<ReceiveError>() {
                    failed += 1;
                } else if let Some(Fault::TimeLimit(_)) = failure.error.downcast_ref::<Fault>() {
                    timed_out += 1;
                } else {
                    other += 1;
                    eprintln!("unexpected failure: {failure}");
                }
            }
        }
    }
    for worker in &workers {
        println!("{:<10} restarted {:>3} times", worker.name().unwrap_or("?"), worker.restarts());
    }
    let restarts: u64 = workers.iter().map(AnyRef::restarts).sum();
    println!();
    println!("processed  {processed:>6}");
    println!("failed     {failed:>6}  (the worker raised: corrupt record)");
    println!("timed out  {timed_out:>6}  (interrupted at the 200 ms time limit)");
    println!("restarts   {restarts:>6}  in {:.2} s", elapsed.as_secs_f64());
    let accounted = processed + failed + timed_out + other;
    println!("\nevery record accounted for: {} ({accounted} of {RECORDS})", accounted == RECORDS);
    rt.shutdown()?;
    if accounted != RECORDS || other != 0 || restarts != failed + timed_out {
        return Err("some records were not accounted for".into());
    }
    Ok(())
}
