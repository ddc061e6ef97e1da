//! Supervision's figures: how long a Python actor takes to restart (failure to
//! replacement serving) beside a cold spawn, how long a kill takes to interrupt a
//! runaway pure-Python loop, and how much RSS 1,000 fresh-interpreter restarts leave
//! behind (`SUBACTOR_KEEP_INTERPRETER_MEMORY=1` shows it without the host giving back
//! what CPython keeps).
//!
//! Run with: `cargo bench --bench supervision` (add `-- --quick` for a shorter run)
//!
//! Measured in this run, each beside its baseline, and printed with its goal. Nothing
//! here asserts: the machines are shared and noisy.

use std::error::Error;
use std::time::{Duration, Instant};

use subactor::{AskError, ChildSpec, Fault, PyActor, PythonActor, Runtime, Strategy, SupervisorSpec};

const TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 20 } else { 100 };
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "subactor supervision benchmark: Python {major}.{minor}.{micro}, {cores} cores{}",
        if quick { ", quick" } else { "" }
    );
    println!();
    restart_latency(&rt, rounds)?;
    restart_memory(&rt, if quick { 200 } else { 1000 })?;
    interrupt_latency(&rt, rounds / 2)?;
    rt.shutdown()?;
    Ok(())
}

fn scorer() -> PythonActor {
    PythonActor::new("jobs", "Scorer")
}

/// Percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(label: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let p50 = pct(samples, 0.5);
    println!("  {label:<34} p50 {:>8.3} ms   p90 {:>8.3} ms", ms(p50), ms(pct(samples, 0.9)));
    p50
}

/// From the moment the failing message is sent (its handler raises at once) to the
/// moment the replacement answers the next one: the exception's report, the end of the
/// old interpreter, the new one, the import and the constructor.
fn restart_latency(rt: &Runtime, rounds: usize) -> Result<(), Box<dyn Error>> {
    let sup = rt.spawn(
        SupervisorSpec::new(Strategy::OneForOne)
            .intensity(u32::MAX, Duration::from_secs(60))
            .child(ChildSpec::new(scorer()))
            .child(ChildSpec::new(scorer().keep_interpreter_on_restart(true))),
    )?;
    let (fresh, kept) = (sup.child::<PyActor>(0).ok_or("child 0")?, sup.child::<PyActor>(1).ok_or("child 1")?);
    let measure = |actor: &subactor::PyRef| -> Result<Vec<Duration>, Box<dyn Error>> {
        let mut samples = Vec::with_capacity(rounds);
        for i in 0..rounds + 3 {
            let failed_at = Instant::now();
            if actor.blocking_ask("bad:x", TIMEOUT).is_ok() {
                return Err("the worker should have failed".into());
            }
            actor.blocking_ask("ok:1", TIMEOUT)?;
            // The first restarts warm the page cache and the bootstrap's marshal cache.
            if i >= 3 {
                samples.push(failed_at.elapsed());
            }
        }
        Ok(samples)
    };
    let mut fresh_samples = measure(&fresh)?;
    let mut kept_samples = measure(&kept)?;
    let mut spawns = Vec::with_capacity(rounds);
    for i in 0..rounds + 3 {
        let started = Instant::now();
        let actor = rt.spawn(scorer())?;
        actor.blocking_ask("ok:1", TIMEOUT)?;
        if i >= 3 {
            spawns.push(started.elapsed());
        }
        actor.stop();
        actor.blocking_wait();
    }
    println!("restart latency ({rounds} restarts each: failing message sent -> replacement answers)");
    let fresh_p50 = line("restart, fresh interpreter", &mut fresh_samples);
    line("restart, kept interpreter", &mut kept_samples);
    let spawn_p50 = line("cold spawn + first answer (baseline)", &mut spawns);
    println!(
        "  fresh restart / cold spawn: {:.2}x   (goal: <= 1.2x)",
        fresh_p50.as_secs_f64() / spawn_p50.as_secs_f64()
    );
    println!();
    sup.stop();
    sup.blocking_wait();
    Ok(())
}

/// From `kill()` to the asker of a runaway `while True: pass` handler getting its
/// error, and how far past a time limit such a handler runs.
fn interrupt_latency(rt: &Runtime, rounds: usize) -> Result<(), Box<dyn Error>> {
    let mut kills = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let actor = rt.spawn(scorer())?;
        let asker = {
            let actor = actor.clone();
            std::thread::spawn(move || actor.blocking_ask("hang:", TIMEOUT))
        };
        std::thread::sleep(Duration::from_millis(20));
        let killed_at = Instant::now();
        actor.kill();
        let answer = asker.join().map_err(|_| "asker panicked")?;
        kills.push(killed_at.elapsed());
        if !matches!(answer, Err(AskError::Fault(Fault::Killed))) {
            return Err(format!("expected the loop to be killed, got {answer:?}").into());
        }
        actor.blocking_wait();
    }
    let limit = Duration::from_millis(50);
    let limited = rt.spawn(scorer().time_limit(limit))?;
    let mut overshoots = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let answer = limited.blocking_ask("hang:", TIMEOUT);
        overshoots.push(started.elapsed().saturating_sub(limit));
        if !matches!(answer, Err(AskError::Fault(Fault::TimeLimit(_)))) {
            return Err(format!("expected the time limit, got {answer:?}").into());
        }
    }
    println!("interrupting a runaway pure-Python loop ({rounds} rounds)");
    let kill_p50 = line("kill() -> asker has Killed", &mut kills);
    line("time limit 50 ms: answer past limit", &mut overshoots);
    println!("  goal: interrupt <= 100 ms   ({:.1} ms p50)", ms(kill_p50));
    Ok(())
}

/// This process's resident set size, in KiB.
fn rss_kib() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).ok_or("no VmRSS")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// RSS growth over `rounds` restarts of a supervised actor in a fresh interpreter each
/// (a failing message, then one answer), after 10 to warm up.
fn restart_memory(rt: &Runtime, rounds: usize) -> Result<(), Box<dyn Error>> {
    let sup = rt.spawn(
        SupervisorSpec::new(Strategy::OneForOne)
            .intensity(u32::MAX, Duration::from_secs(60))
            .child(ChildSpec::new(scorer())),
    )?;
    let fresh = sup.child::<PyActor>(0).ok_or("child 0")?;
    let restart = || -> Result<(), Box<dyn Error>> {
        if fresh.blocking_ask("bad:x", TIMEOUT).is_ok() {
            return Err("the worker should have failed".into());
        }
        fresh.blocking_ask("ok:1", TIMEOUT)?;
        Ok(())
    };
    for _ in 0..10 {
        restart()?;
    }
    let (before, given_back) = (rss_kib()?, subactor::interpreter_memory());
    let started = Instant::now();
    for _ in 0..rounds {
        restart()?;
    }
    let took = started.elapsed();
    let growth = rss_kib()?.saturating_sub(before);
    let after = subactor::interpreter_memory();
    let per_1000 = growth as f64 * 1000.0 / rounds as f64 / 1024.0;
    println!("memory of fresh-interpreter restarts ({rounds} restarts in {:.1} s)", took.as_secs_f64());
    println!(
        "  RSS growth             {:>8.1} MiB   = {per_1000:.1} MiB per 1,000 restarts   (goal: <= 50 MiB per 1,000)",
        growth as f64 / 1024.0
    );
    println!(
        "  given back by the host {:>8.1} MiB of arenas, {} interpreters ({} kept what they had){}",
        (after.bytes_reclaimed - given_back.bytes_reclaimed) as f64 / (1 << 20) as f64,
        after.interpreters_reclaimed - given_back.interpreters_reclaimed,
        after.interpreters_kept - given_back.interpreters_kept,
        if after.available { "" } else { "   (off: SUBACTOR_KEEP_INTERPRETER_MEMORY=1, or not available here)" }
    );
    println!();
    sup.stop();
    sup.blocking_wait();
    Ok(())
}
