//! Issue 13's figures: arena buffers handed to process actors without a copy (1 KB to
//! 1 GB), a numpy job on 1..cores process actors, and automatic placement beside the
//! interpreter placement for a pure-Python actor.
//!
//! Run with: `cargo bench --bench placement` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`, which puts
//! them beside multiprocessing's `SharedMemory` and `Pipe.send_bytes()` handoffs and its
//! `ProcessPoolExecutor` running the same numpy job, measured in the same run).
//!
//! The numpy job needs numpy where the process actors' Python looks for packages: run it
//! inside a virtualenv that has numpy (`bench/run` sets `VIRTUAL_ENV` to its own).
//!
//! Nothing here asserts: the machines are shared and noisy, so the numbers are for
//! reading, not for failing builds.

use std::error::Error;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use subactor::{ArenaConfig, Placement, PythonActor, Runtime, Value};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(600);
const SIZES: &[(&str, usize)] = &[("1 KB", 1 << 10), ("1 MB", 1 << 20), ("100 MB", 100 << 20), ("1 GB", 1 << 30)];

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("placement", &options);
    // The template imports the numpy job's module once (it sets one BLAS thread per
    // worker before numpy loads): every process actor starts with numpy loaded, as
    // multiprocessing's fork workers do.
    let rt = Runtime::builder()
        .python_path(["examples/python"])
        .arena(ArenaConfig::new().with_max_bytes(3 << 30))
        .preload(["bench_numpy"])
        .build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    println!("subactor placement benchmark: Python {major}.{minor}.{micro}{}", if quick { ", quick" } else { "" });
    println!();

    handoff(&rt, if quick { 300 } else { 2_000 }, &mut record)?;
    let (tasks, size) = if quick { (64, 250) } else { (128, 300) };
    record.meta("numpy_tasks", tasks);
    record.meta("numpy_size", size);
    numpy_job(&rt, tasks, size, &mut record)?;
    auto_beside_interpreter(&rt, quick, &mut record)?;
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

fn process(module: &str, class: &str) -> PythonActor {
    PythonActor::new(module, class).placement(Placement::Process)
}

/// An arena buffer of each size handed to a process actor in an ask: the child maps the
/// buffer's memfd segment (once per segment: the descriptor crosses the socket the first
/// time), reads the buffer's first and last byte and answers its length. Timed ask by
/// ask, after a warm-up; the same buffer each time, as multiprocessing's SharedMemory
/// block is the same each time. From Rust (`blocking_ask`), and from a Python actor in an
/// interpreter (`subactor.alloc`, then `ref.ask()`).
fn handoff(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let touch = rt.spawn(process("bench", "Touch"))?;
    let producer = rt.spawn(PythonActor::new("bench", "Handoff").placement(Placement::Interpreter))?;
    println!("handoff of an arena buffer to a process actor (it reads the first and last byte, answers the length)");
    println!("{:>8}  {:>30}  {:>30}", "size", "from Rust: p50 (p10-p90)", "from a Python actor: p50 (p10-p90)");
    for &(label, size) in SIZES {
        let mut draft = rt.arena().alloc(size)?;
        draft[0] = 1;
        draft[size - 1] = 2;
        let buffer = draft.freeze();
        let message = Value::Buffer(buffer);
        for _ in 0..20 {
            touch.blocking_ask(message.clone(), TIMEOUT)?;
        }
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let answer = touch.blocking_ask(message.clone(), TIMEOUT)?;
            samples.push(started.elapsed());
            if answer != Value::from(size) {
                return Err(format!("the process actor answered {answer}, not {size}").into());
            }
        }
        drop(message);
        record.durations("handoff.process", Some(size as f64), &samples);
        samples.sort();

        // From an interpreter actor: it allocates and freezes the buffer itself.
        producer.blocking_ask((touch.clone(), "buffer", size, 20), TIMEOUT)?;
        let from_actor: Vec<f64> =
            producer.blocking_ask((touch.clone(), "buffer", size, rounds), TIMEOUT)?.try_into()?;
        record.values("handoff.process_from_actor", Some(size as f64), "s", from_actor.iter().copied());
        let mut actor: Vec<Duration> = from_actor.iter().map(|s| Duration::from_secs_f64(*s)).collect();
        actor.sort();
        println!(
            "{label:>8}  {:>9.2} us ({:>7.2} - {:>7.2})  {:>9.2} us ({:>7.2} - {:>7.2})",
            us(pct(&samples, 0.5)),
            us(pct(&samples, 0.1)),
            us(pct(&samples, 0.9)),
            us(pct(&actor, 0.5)),
            us(pct(&actor, 0.1)),
            us(pct(&actor, 0.9)),
        );
    }
    println!("goal: flat from 1 KB to 1 GB, >= 10x faster than SharedMemory's name-and-attach (see bench/run)");
    println!();
    for actor in [touch, producer] {
        actor.stop();
        actor.blocking_wait();
    }
    Ok(())
}

/// The numpy job (`examples/python/bench_numpy.py`: `tasks` tasks, each a `size` x
/// `size` matrix squared) on 1..cores process actors: the wall time of spawning them,
/// doing every task (one Rust thread per actor asks it for the next task whenever it has
/// answered one, as a pool hands out tasks) and stopping them.
fn numpy_job(rt: &Runtime, tasks: usize, size: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // The first process actor starts the template (numpy imported there): not timed, as
    // a pool's first start is not.
    let warm = rt.spawn(process("bench_numpy", "Worker"))?;
    warm.blocking_ask((0, size), TIMEOUT)?;
    warm.stop();
    warm.blocking_wait();
    println!("numpy job: {tasks} tasks of a {size}x{size} matrix product, on N process actors (start-up included)");
    let mut one = None;
    let mut expected: Option<f64> = None;
    for workers in 1..=cores {
        let started = Instant::now();
        let total = run_numpy(rt, workers, tasks, size)?;
        let elapsed = started.elapsed();
        match expected {
            None => expected = Some(total),
            Some(e) if (e - total).abs() > 1e-6 * e.abs().max(1.0) => {
                return Err(format!("{workers} workers summed {total}, one worker {e}").into());
            }
            Some(_) => {}
        }
        record.values("numpy.total", Some(workers as f64), "s", [elapsed.as_secs_f64()]);
        let base = *one.get_or_insert(elapsed);
        println!(
            "  {workers} process actor{}   {:>8.1} ms   speedup {:.2}x",
            if workers > 1 { "s" } else { " " },
            ms(elapsed),
            base.as_secs_f64() / elapsed.as_secs_f64()
        );
    }
    println!("  (goal: the speedup at 2 >= ProcessPoolExecutor's in the same run; see bench/run)");
    println!();
    Ok(())
}

/// Spawns `workers` numpy process actors, has them do every task, stops them; the sum of
/// the tasks' results, in task order.
fn run_numpy(rt: &Runtime, workers: usize, tasks: usize, size: usize) -> Result<f64, Box<dyn Error>> {
    let actors = (0..workers).map(|_| rt.spawn(process("bench_numpy", "Worker"))).collect::<Result<Vec<_>, _>>()?;
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![0.0f64; tasks]);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for actor in &actors {
            let (next, results, failure) = (&next, &results, &failure);
            scope.spawn(move || {
                loop {
                    let task = next.fetch_add(1, Ordering::Relaxed);
                    if task >= tasks {
                        return;
                    }
                    match actor.blocking_ask((task as i64, size as i64), TIMEOUT) {
                        Ok(Value::Float(value)) => results.lock().expect("results")[task] = value,
                        Ok(other) => *failure.lock().expect("failure") = Some(format!("task {task} answered {other}")),
                        Err(error) => *failure.lock().expect("failure") = Some(format!("task {task}: {error}")),
                    }
                }
            });
        }
    });
    for actor in &actors {
        actor.stop();
    }
    for actor in &actors {
        actor.blocking_wait();
    }
    if let Some(failure) = failure.into_inner().expect("failure") {
        return Err(failure.into());
    }
    Ok(results.into_inner().expect("results").iter().sum())
}

/// A pure-Python actor (`bench.Echo`) spawned with `Placement::Auto` (the default) and
/// with `Placement::Interpreter`, alternately: spawn until the first answer, then ask
/// round trips in interleaved blocks, so that both meet the same load.
fn auto_beside_interpreter(rt: &Runtime, quick: bool, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let placements = [(Placement::Interpreter, "interpreter"), (Placement::Auto, "auto")];
    let echo = |placement| PythonActor::new("bench", "Echo").placement(placement);
    // Warm-up (and `auto` learns, once, that this class runs in an interpreter).
    for (placement, _) in placements {
        let actor = rt.spawn(echo(placement))?;
        actor.blocking_ask(0, TIMEOUT)?;
        actor.stop();
        actor.blocking_wait();
    }
    let spawns = if quick { 10 } else { 30 };
    let mut spawn_times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for i in 0..spawns {
        for (slot, (placement, _)) in placements.iter().enumerate() {
            let started = Instant::now();
            let actor = rt.spawn(echo(*placement))?;
            actor.blocking_ask(i as i64, TIMEOUT)?;
            spawn_times[slot].push(started.elapsed());
            actor.stop();
            actor.blocking_wait();
        }
    }
    let actors = placements.iter().map(|(p, _)| rt.spawn(echo(*p))).collect::<Result<Vec<_>, _>>()?;
    for actor in &actors {
        for i in 0..2_000 {
            actor.blocking_ask(i, TIMEOUT)?;
        }
    }
    let (blocks, per_block) = if quick { (5, 1_000) } else { (25, 2_000) };
    let mut ask_times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..blocks {
        for (slot, actor) in actors.iter().enumerate() {
            for i in 0..per_block {
                let started = Instant::now();
                actor.blocking_ask(i as i64, TIMEOUT)?;
                ask_times[slot].push(started.elapsed());
            }
        }
    }
    for actor in &actors {
        actor.stop();
        actor.blocking_wait();
    }
    println!("a pure-Python actor, placement auto beside interpreter (alternated)");
    for (slot, (_, name)) in placements.iter().enumerate() {
        record.durations(&format!("auto.spawn.{name}"), None, &spawn_times[slot]);
        record.durations(&format!("auto.ask.{name}"), None, &ask_times[slot]);
        spawn_times[slot].sort();
        ask_times[slot].sort();
        println!(
            "  {name:<12} spawn p50 {:>7.2} ms (p10-p90 {:.2} - {:.2})   blocking_ask p50 {:>6.2} us (p10-p90 {:.2} - {:.2})",
            ms(pct(&spawn_times[slot], 0.5)),
            ms(pct(&spawn_times[slot], 0.1)),
            ms(pct(&spawn_times[slot], 0.9)),
            us(pct(&ask_times[slot], 0.5)),
            us(pct(&ask_times[slot], 0.1)),
            us(pct(&ask_times[slot], 0.9)),
        );
    }
    println!("  (goal: auto within noise of interpreter)");
    println!();
    Ok(())
}
