//! Memory per idle Python actor: how much the process grows for each actor that has
//! started, handled a message and now waits for the next one.
//!
//! Run with: `cargo bench --bench memory` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`)
//!
//! Actors are spawned in batches; each batch is one sample: the growth of the process's
//! resident set (`VmRSS` in `/proc/self/status`) over the batch, divided by its actors.
//! The proportional (`Pss`) and private (`Private_Clean + Private_Dirty`, the USS)
//! figures of `/proc/self/smaps_rollup` are recorded beside it. The actors of earlier
//! batches stay alive, so that no ended interpreter's memory is counted or reused. A
//! process worker's RSS, to compare with, is measured by `bench/run` in the same run.

use std::error::Error;
use std::time::Duration;

use subactor::{PyRef, PythonActor, Runtime};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let mut record = Record::new("memory", &options);
    let (batches, per_batch) = if options.quick { (3, 10) } else { (5, 20) };
    let rt = Runtime::builder().python_path(["examples/python"]).build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    record.meta("actors_per_batch", per_batch);
    println!(
        "subactor memory benchmark: Python {major}.{minor}.{micro}{}\n",
        if options.quick { ", quick" } else { "" }
    );

    // The first actors pay for what every later one shares (libpython's pages, the
    // host's bootstrap code): they are not what an additional actor costs.
    let mut alive: Vec<PyRef> = spawn_idle(&rt, 3)?;
    let mut rss = Vec::with_capacity(batches);
    let mut pss = Vec::with_capacity(batches);
    let mut uss = Vec::with_capacity(batches);
    for _ in 0..batches {
        let before = Usage::now()?;
        alive.extend(spawn_idle(&rt, per_batch)?);
        let after = Usage::now()?;
        let per_actor = |b: u64, a: u64| a.saturating_sub(b) as f64 / per_batch as f64;
        rss.push(per_actor(before.rss, after.rss));
        pss.push(per_actor(before.pss, after.pss));
        uss.push(per_actor(before.uss, after.uss));
    }
    let mib = |v: &[f64]| {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2] / f64::from(1 << 20)
    };
    println!(
        "memory per idle Python actor ({batches} batches of {per_batch} actors, {} alive at the end), median",
        alive.len()
    );
    println!("  RSS growth             {:>8.2} MiB per actor", mib(&rss));
    println!("  PSS growth             {:>8.2} MiB per actor", mib(&pss));
    println!("  USS growth             {:>8.2} MiB per actor", mib(&uss));
    println!("  (goal: <= 1/5 of a process worker's RSS; bench/run measures one in the same run)\n");
    record.values("memory.rss", None, "B", rss);
    record.values("memory.pss", None, "B", pss);
    record.values("memory.uss", None, "B", uss);
    for actor in &alive {
        actor.stop();
    }
    rt.shutdown()?;
    record.finish()?;
    Ok(())
}

/// Spawns `n` Echo actors and has each handle one message, so that each is started,
/// has run Python, and waits idle.
fn spawn_idle(rt: &Runtime, n: usize) -> Result<Vec<PyRef>, Box<dyn Error>> {
    let actors: Vec<PyRef> = (0..n).map(|_| rt.spawn(PythonActor::new("bench", "Echo"))).collect::<Result<_, _>>()?;
    for actor in &actors {
        actor.blocking_ask(1, TIMEOUT)?;
    }
    // Past the idle spin: every actor is parked.
    std::thread::sleep(Duration::from_millis(50));
    Ok(actors)
}

/// The process's memory, in bytes.
struct Usage {
    rss: u64,
    pss: u64,
    uss: u64,
}

impl Usage {
    fn now() -> Result<Usage, Box<dyn Error>> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup")?;
        Ok(Usage {
            rss: kib_field(&status, "VmRSS:")?,
            pss: kib_field(&rollup, "Pss:")?,
            uss: kib_field(&rollup, "Private_Clean:")? + kib_field(&rollup, "Private_Dirty:")?,
        })
    }
}

/// The value of a `NAME:   1234 kB` line of a /proc file, in bytes.
fn kib_field(text: &str, name: &str) -> Result<u64, Box<dyn Error>> {
    let line = text.lines().find(|l| l.starts_with(name)).ok_or_else(|| format!("no {name} line in /proc"))?;
    let kib: u64 =
        line[name.len()..].split_whitespace().next().ok_or_else(|| format!("no value on the {name} line"))?.parse()?;
    Ok(kib * 1024)
}
