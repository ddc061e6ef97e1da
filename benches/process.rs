//! Process actors' figures: spawn until the first answer, ask round trips, and tell
//! throughput into one process actor (`Placement::Process`: the actor's `receive` runs in
//! the main interpreter of a child process forked from the runtime's template).
//!
//! Run with: `cargo bench --bench process` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`, which puts
//! them beside multiprocessing's worker start, Pipe round trip and Pipe throughput,
//! measured in the same run).
//!
//! Nothing here asserts: the machines are shared and noisy, so the numbers are for
//! reading, not for failing builds.

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{Placement, PythonActor, Runtime, Value};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(600);

fn process(class: &str) -> PythonActor {
    PythonActor::new("bench", class).placement(Placement::Process)
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("process", &options);
    // The defaults a Rust application gets: the template is this binary, taken over
    // before `main`, and keeps one spare child forked.
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    println!("subactor process-actor benchmark: Python {major}.{minor}.{micro}{}", if quick { ", quick" } else { "" });
    println!();

    spawn_latency(&rt, if quick { 10 } else { 40 }, &mut record)?;
    ask_round_trip(&rt, if quick { 5_000 } else { 50_000 }, &mut record)?;
    tell_throughput(&rt, if quick { 100_000 } else { 500_000 }, &mut record)?;
    rt.shutdown()?;
    record.finish()?;
    Ok(())
}

/// Percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `rt.spawn()` of a process actor until its first answer arrives, then stop and wait
/// (not timed), as multiprocessing's worker start is timed until the worker answers.
fn spawn_latency(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    // The first spawn starts the template (initialising Python in it), as the first
    // forkserver start starts its server; the next ones warm the page cache. Neither
    // is what a running application sees.
    for _ in 0..3 {
        let actor = rt.spawn(process("Echo"))?;
        actor.blocking_ask(0, TIMEOUT)?;
        actor.stop();
        actor.blocking_wait();
    }
    let mut spawns = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        let actor = rt.spawn(process("Echo"))?;
        let answer = actor.blocking_ask(i as i64, TIMEOUT)?;
        spawns.push(started.elapsed());
        if answer != Value::from(i as i64) {
            return Err(format!("the echo answered {answer}, not {i}").into());
        }
        actor.stop();
        actor.blocking_wait();
    }
    record.durations("spawn.process", None, &spawns);
    spawns.sort();
    println!("spawn latency of a process actor ({rounds} spawns: rt.spawn() until the first answer)");
    println!(
        "  process actor          p50 {:>8.2} ms   p10 {:>8.2} ms   p90 {:>8.2} ms",
        ms(pct(&spawns, 0.5)),
        ms(pct(&spawns, 0.1)),
        ms(pct(&spawns, 0.9))
    );
    println!("  (goal: <= multiprocessing fork's worker start, <= 1/5 of forkserver's; see bench/run)");
    println!();
    Ok(())
}

/// `blocking_ask` of a small int to an echo process actor, timed one by one.
fn ask_round_trip(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let echo = rt.spawn(process("Echo"))?;
    for i in 0..2_000 {
        echo.blocking_ask(i, TIMEOUT)?;
    }
    let mut blocking = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        echo.blocking_ask(i as i64, TIMEOUT)?;
        blocking.push(started.elapsed());
    }
    echo.stop();
    echo.blocking_wait();
    record.durations("ask.process", None, &blocking);
    blocking.sort();
    println!("ask round trip, Rust -> process actor Echo -> Rust ({rounds} asks, int message)");
    println!(
        "  blocking_ask           p50 {:>8.2} us   p10 {:>8.2} us   p90 {:>8.2} us   (goal: <= 1/3 of a Pipe round trip)",
        us(pct(&blocking, 0.5)),
        us(pct(&blocking, 0.1)),
        us(pct(&blocking, 0.9))
    );
    println!();
    Ok(())
}

/// `blocking_tell` of `messages` ints into a counting process actor, then one ask that
/// answers the count: until the last tell is handled.
fn tell_throughput(rt: &Runtime, messages: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let sink = rt.spawn(process("Sink"))?;
    sink.blocking_ask("count", TIMEOUT)?; // the child is up
    let started = Instant::now();
    for i in 0..messages {
        sink.blocking_tell(i as i64)?;
    }
    let count = sink.blocking_ask("count", TIMEOUT)?;
    let elapsed = started.elapsed();
    sink.stop();
    sink.blocking_wait();
    if count != Value::from(messages) {
        return Err(format!("the sink counted {count}, expected {messages}").into());
    }
    let rate = messages as f64 / elapsed.as_secs_f64();
    record.values("tell.process", None, "msg/s", [rate]);
    println!("tell throughput into one process actor ({messages} ints, until the last is handled)");
    println!("  blocking_tell          {rate:>12.0} msg/s   (goal: >= 2x a Pipe's)");
    println!();
    Ok(())
}
