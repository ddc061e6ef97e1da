//! Handing buffers from one Python actor to another: arena buffers (shared, no copy)
//! beside the same data sent as plain `bytes` (copied), in the same run.
//!
//! Run with: `cargo bench --bench arena` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`)

use std::error::Error;
use std::time::Duration;

use subactor::{ArenaConfig, PythonActor, Runtime};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(3600);

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("arena", &options);
    let rt = Runtime::builder()
        .python_path(["examples/python"])
        .arena(ArenaConfig::new().with_max_bytes(4 << 30))
        .build()?;
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    let producer = rt.spawn(PythonActor::new("bench", "Handoff"))?;
    let consumer = rt.spawn(PythonActor::new("bench", "Length"))?;
    println!("handoff actor -> actor (an ask carrying the payload; its length comes back), p50 / p99\n");
    println!("{:>8}  {:>24}  {:>24}  {:>10}", "size", "arena Buffer", "bytes (copied)", "ratio");
    let sizes: &[(&str, usize)] = &[("1 KB", 1 << 10), ("1 MB", 1 << 20), ("100 MB", 100 << 20), ("1 GB", 1 << 30)];
    for &(label, size) in sizes {
        let copies = match size {
            s if s >= 1 << 30 => 3,
            s if s >= 100 << 20 => 5,
            s if s >= 1 << 20 => 200,
            _ => 2000,
        };
        let buffer_rounds = if quick { 200 } else { 2000 };
        let copy_rounds = if quick { copies.clamp(2, 50) } else { copies };
        let buffer = times(&producer, &consumer, "buffer", size, buffer_rounds, &mut record)?;
        let bytes = times(&producer, &consumer, "bytes", size, copy_rounds, &mut record)?;
        println!(
            "{label:>8}  {:>10.2} / {:>9.2} us  {:>10.2} / {:>9.2} us  {:>9.0}x",
            buffer.0,
            buffer.1,
            bytes.0,
            bytes.1,
            bytes.0 / buffer.0
        );
    }
    println!("\ngoal: arena handoff p50 <= 5 us, flat from 1 KB to 1 GB");
    rt.shutdown()?;
    record.finish()?;
    Ok(())
}

/// (p50, p99) in microseconds of `rounds` handoffs; the samples go to `record` as
/// `handoff.KIND` at x = `size`.
fn times(
    producer: &subactor::PyRef,
    consumer: &subactor::PyRef,
    kind: &str,
    size: usize,
    rounds: usize,
    record: &mut Record,
) -> Result<(f64, f64), Box<dyn Error>> {
    let mut samples: Vec<f64> = producer.blocking_ask((consumer.clone(), kind, size, rounds), TIMEOUT)?.try_into()?;
    samples.sort_by(f64::total_cmp);
    record.values(&format!("handoff.{kind}"), Some(size as f64), "s", samples.iter().copied());
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] * 1e6;
    Ok((at(0.5), at(0.99)))
}
