//! The foundation's figures: spawn latency, ask round trips, tell throughput, and the
//! CPU speedup of N actors over one.
//!
//! Run with: `cargo bench --bench foundation` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`)
//!
//! Every figure is measured in this run, beside its baseline where there is one, and
//! printed with the goal it is held to. Nothing here asserts: the machines are shared
//! and noisy, so the numbers are for reading, not for failing builds.

use std::error::Error;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use subactor::{PyRef, PythonActor, Runtime, Value};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("foundation", &options);
    let scale = if quick { 10 } else { 1 };
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    record.meta("python", format!("{major}.{minor}.{micro}"));
    println!(
        "subactor foundation benchmark: Python {major}.{minor}.{micro}, {cores} cores{}",
        if quick { ", quick" } else { "" }
    );
    println!();

    spawn_latency(&rt, if quick { 20 } else { 60 }, &mut record)?;
    ask_round_trip(&rt, 200_000 / scale, &mut record)?;
    tell_throughput(&rt, 2_000_000 / scale, &mut record)?;
    cpu_speedup(&rt, cores, if quick { 300_000 } else { 1_000_000 }, &mut record)?;
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

fn spawn_latency(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    // The first spawns pay for first-time work (compiling the host's bootstrap, warming
    // the OS page cache); they are not what a running application sees.
    for _ in 0..3 {
        let actor = rt.spawn(PythonActor::new("bench", "Echo"))?;
        actor.stop();
        actor.blocking_wait();
    }
    let mut spawns = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let actor = rt.spawn(PythonActor::new("bench", "Echo"))?;
        spawns.push(started.elapsed());
        actor.stop();
        actor.blocking_wait();
    }
    spawns.sort();
    let bare = rt.spawn(PythonActor::new("bench", "BareInterpreters"))?;
    let mut baseline: Vec<Duration> =
        Vec::<f64>::try_from(bare.blocking_ask(rounds, TIMEOUT)?)?.into_iter().map(Duration::from_secs_f64).collect();
    bare.stop();
    baseline.sort();
    let warm = warm_spawns(rounds)?;
    record.durations("spawn.subactor", None, &spawns);
    record.durations("spawn.bare_interpreter", None, &baseline);
    record.durations("spawn.warm", None, &warm);
    println!("spawn latency ({rounds} spawns: thread + interpreter + import + constructor)");
    println!("  subactor spawn         p50 {:>8.2} ms   p99 {:>8.2} ms", ms(pct(&spawns, 0.5)), ms(pct(&spawns, 0.99)));
    println!(
        "  bare interpreter       p50 {:>8.2} ms   p99 {:>8.2} ms   (_interpreters.create, same process)",
        ms(pct(&baseline, 0.5)),
        ms(pct(&baseline, 0.99))
    );
    println!(
        "  ratio spawn / bare     {:.2}x   (goal: <= 1.00x)",
        pct(&spawns, 0.5).as_secs_f64() / pct(&baseline, 0.5).as_secs_f64()
    );
    println!(
        "  warm-pool spawn        p50 {:>8.2} ms   p99 {:>8.2} ms   (an interpreter of the warm pool was ready; \
         goal: <= 1/10 of a multiprocessing fork worker's start, bench/run compares)",
        ms(pct(&warm, 0.5)),
        ms(pct(&warm, 0.99))
    );
    println!();
    Ok(())
}

/// Spawns that find a ready interpreter in a warm pool (of 2): each waits until the
/// pool has refilled, so that it measures a spawn that finds one, not the refill.
fn warm_spawns(rounds: usize) -> Result<Vec<Duration>, Box<dyn Error>> {
    let rt = Runtime::builder().python_path(["examples/python"]).warm_interpreters(2).build()?;
    let ready = |rt: &Runtime| -> Result<(), Box<dyn Error>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while rt.warm_pool().ready < 2 {
            if Instant::now() > deadline {
                return Err(format!("the warm pool did not fill: {:?}", rt.warm_pool()).into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    };
    for _ in 0..3 {
        ready(&rt)?;
        let actor = rt.spawn(PythonActor::new("bench", "Echo"))?;
        actor.stop();
        actor.blocking_wait();
    }
    let mut warm = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        ready(&rt)?;
        let started = Instant::now();
        let actor = rt.spawn(PythonActor::new("bench", "Echo"))?;
        warm.push(started.elapsed());
        actor.stop();
        actor.blocking_wait();
    }
    let stats = rt.warm_pool();
    if stats.misses > 0 {
        return Err(format!("{} warm spawns found no interpreter ready: {stats:?}", stats.misses).into());
    }
    rt.shutdown()?;
    warm.sort();
    Ok(warm)
}

fn ask_round_trip(rt: &Runtime, rounds: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let echo = rt.spawn(PythonActor::new("bench", "Echo"))?;
    for i in 0..10_000 {
        echo.blocking_ask(i, TIMEOUT)?;
    }
    let mut blocking = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        echo.blocking_ask(i as i64, TIMEOUT)?;
        blocking.push(started.elapsed());
    }
    blocking.sort();
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut asynchronous = tokio.block_on(async {
        let mut samples = Vec::with_capacity(rounds / 4);
        for i in 0..rounds / 4 {
            let started = Instant::now();
            echo.ask(i as i64, TIMEOUT).await?;
            samples.push(started.elapsed());
        }
        Ok::<_, Box<dyn Error>>(samples)
    })?;
    asynchronous.sort();
    echo.stop();
    record.durations("ask.blocking", None, &blocking);
    record.durations("ask.tokio", None, &asynchronous);
    println!("ask round trip, Rust -> Python Echo -> Rust ({rounds} asks, int message)");
    println!(
        "  blocking_ask           p50 {:>8.2} us   p99 {:>8.2} us   (goal: p50 <= 10 us; multiprocessing Pipe 30-60 us)",
        us(pct(&blocking, 0.5)),
        us(pct(&blocking, 0.99))
    );
    println!(
        "  ask (tokio, 1 thread)  p50 {:>8.2} us   p99 {:>8.2} us",
        us(pct(&asynchronous, 0.5)),
        us(pct(&asynchronous, 0.99))
    );
    println!();
    Ok(())
}

fn tell_throughput(rt: &Runtime, messages: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let sink = rt.spawn(PythonActor::new("bench", "Sink"))?;
    let started = Instant::now();
    for i in 0..messages {
        sink.blocking_tell(i as i64)?;
    }
    let count = sink.blocking_ask("count", TIMEOUT)?;
    let elapsed = started.elapsed();
    if count != Value::from(messages) {
        return Err(format!("the sink counted {count}, expected {messages}").into());
    }
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let async_elapsed = tokio.block_on(async {
        let started = Instant::now();
        for i in 0..messages {
            sink.tell(i as i64).await?;
        }
        sink.ask("count", TIMEOUT).await?;
        Ok::<_, Box<dyn Error>>(started.elapsed())
    })?;
    sink.stop();
    record.values("tell.blocking", None, "msg/s", [messages as f64 / elapsed.as_secs_f64()]);
    record.values("tell.tokio", None, "msg/s", [messages as f64 / async_elapsed.as_secs_f64()]);
    println!("tell throughput into one Python actor (trivial receive, {messages} messages, until the last is handled)");
    println!("  blocking_tell          {:>12.0} msg/s   (goal: >= 1,000,000)", messages as f64 / elapsed.as_secs_f64());
    println!("  tell (tokio, 1 thread) {:>12.0} msg/s", messages as f64 / async_elapsed.as_secs_f64());
    println!();
    Ok(())
}

/// Times the same work done by 1..=`cores` actors. Prints the time of the work alone
/// (actors already started); records it, and also the time with start-up and stop
/// included (`cpu.total`), which is how the suite times every system.
fn cpu_speedup(rt: &Runtime, cores: usize, limit: i64, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let chunks = 32 * cores as i64;
    record.meta("cpu_limit", limit);
    record.meta("cpu_chunks", chunks);
    // (work alone, start-up + work + stop)
    let run = |actors: usize| -> Result<(Duration, Duration), Box<dyn Error>> {
        let spawned = Instant::now();
        let workers: Vec<PyRef> = (0..actors)
            .map(|i| rt.spawn(PythonActor::new("primes", "PrimeCounter").pin_to_core(i % cores)))
            .collect::<Result<_, _>>()?;
        // Each actor takes the next chunk when it has finished one, as a pool's workers
        // do. A fixed share per actor would time the slowest core: on a shared machine
        // one core can be slowed for a while, and a pinned actor cannot leave it.
        let next = AtomicI64::new(0);
        let started = Instant::now();
        std::thread::scope(|scope| {
            let handles: Vec<_> = workers
                .iter()
                .map(|worker| {
                    let next = &next;
                    scope.spawn(move || {
                        loop {
                            let chunk = next.fetch_add(1, Ordering::Relaxed);
                            if chunk >= chunks {
                                return Ok::<_, String>(());
                            }
                            let span = (chunk * limit / chunks, (chunk + 1) * limit / chunks);
                            worker.blocking_ask(span, TIMEOUT).map_err(|e| e.to_string())?;
                        }
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| h.join().map_err(|_| "worker panicked".to_string())?)
        })?;
        let elapsed = started.elapsed();
        for worker in &workers {
            worker.stop();
            worker.blocking_wait();
        }
        Ok((elapsed, spawned.elapsed()))
    };
    println!(
        "CPU-bound speedup (primes below {limit} in pure Python, {chunks} chunks taken as actors finish, actors pinned to cores)"
    );
    let (one, one_total) = run(1)?;
    record.durations("cpu.total", Some(1.0), &[one_total]);
    record.durations("cpu.work", Some(1.0), &[one]);
    println!("  1 actor                {:>8.3} s", one.as_secs_f64());
    for n in 2..=cores {
        let (t, total) = run(n)?;
        record.durations("cpu.total", Some(n as f64), &[total]);
        record.durations("cpu.work", Some(n as f64), &[t]);
        println!(
            "  {n} actors               {:>8.3} s   speedup {:.2}x   (goal at 2: >= 1.85x)",
            t.as_secs_f64(),
            one.as_secs_f64() / t.as_secs_f64()
        );
    }
    println!();
    Ok(())
}
