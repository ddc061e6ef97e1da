//! The actor core's own cost: asks and tells through Rust actors (no Python) beside the
//! same message pattern on raw flume channels, in the same run, so that the core's
//! overhead over its channel is a visible ratio.
//!
//! Run with: `cargo bench --bench core` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`)
//!
//! The flume baselines do what the core does, minus the actor: a thread receives
//! `(message, reply sender)` pairs from a bounded channel and answers on a fresh
//! `bounded(1)` reply channel; a one-way stream goes into a bounded channel of the
//! core's default mailbox capacity and is counted. Each baseline runs twice: waiting
//! the way the core waits (spin briefly, then park: the policy of
//! `subactor_core::DEFAULT_SPIN`), and blocking in `recv` at once (a futex wake-up
//! per message when the receiver is idle). Blocks of each are interleaved, so that
//! noise from a shared machine falls on all of them alike.

use std::convert::Infallible;
use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use flume::{Receiver, TryRecvError};
use subactor_core::{Actor, ActorContext, ActorSystem, DEFAULT_MAILBOX_CAPACITY, DEFAULT_SPIN, NeverFails, Props};

mod support;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Answers every ask with its message.
struct Echo;

impl Actor for Echo {
    type Msg = u64;
    type Reply = u64;
    type Error = Infallible;

    fn handle(&mut self, _ctx: &ActorContext<Self>, n: u64) -> Result<u64, Infallible> {
        Ok(n)
    }
}

/// Counts tells; answers an ask with the count.
struct Counter(u64);

impl Actor for Counter {
    type Msg = u64;
    type Reply = u64;
    type Error = Infallible;

    fn handle(&mut self, _ctx: &ActorContext<Self>, _msg: u64) -> Result<u64, Infallible> {
        Ok(self.0)
    }

    fn handle_tell(&mut self, _ctx: &ActorContext<Self>, _msg: u64) -> Result<(), Infallible> {
        self.0 += 1;
        Ok(())
    }
}

/// How a raw flume receiver waits for its next message.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Spin like the core (see [`spin_recv`]), then park.
    Spin,
    /// Park in `recv` at once.
    Park,
}

impl Wait {
    fn recv<T>(self, rx: &Receiver<T>) -> Option<T> {
        match self {
            Wait::Spin => spin_recv(rx),
            Wait::Park => rx.recv().ok(),
        }
    }
}

/// The core's waiting policy (`spin_for` in `subactor-core`): 64 pure spins, then
/// yielding between polls for up to [`DEFAULT_SPIN`], then parking in `recv`. The core
/// also stops spinning when every core has a busy actor; here two threads share the
/// machine, so that never applies.
fn spin_recv<T>(rx: &Receiver<T>) -> Option<T> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        match rx.try_recv() {
            Ok(item) => return Some(item),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if round < 64 {
            round += 1;
            std::hint::spin_loop();
        } else if start.elapsed() < DEFAULT_SPIN {
            thread::yield_now();
        } else {
            return rx.recv().ok();
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let options = Options::from_args()?;
    let mut record = Record::new("core", &options);
    let (per_block, messages, blocks) = if options.quick { (10_000, 300_000, 3) } else { (40_000, 2_000_000, 7) };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "subactor core benchmark: Rust actors beside raw flume, {cores} cores{}\n",
        if options.quick { ", quick" } else { "" }
    );
    let system = ActorSystem::builder().build();

    let mut core = Vec::with_capacity(per_block * blocks);
    let mut spin = Vec::with_capacity(per_block * blocks);
    let mut park = Vec::with_capacity(per_block * blocks);
    for _ in 0..blocks {
        core.extend(core_round_trips(&system, per_block)?);
        spin.extend(flume_round_trips(Wait::Spin, per_block)?);
        park.extend(flume_round_trips(Wait::Park, per_block)?);
    }
    for samples in [&mut core, &mut spin, &mut park] {
        samples.sort();
    }
    println!(
        "ask round trip ({} asks of a u64 each, in {blocks} interleaved blocks, a fresh thread each), p50 / p99",
        core.len()
    );
    println!("  core blocking_ask           {}", p50_p99(&core));
    for (name, samples) in [("flume, spin then park", &spin), ("flume, park at once", &park)] {
        println!("  {name:<27} {}   core / flume {:.2}x", p50_p99(samples), ratio(&core, samples));
    }
    println!();
    record.durations("ask.core", None, &core);
    record.durations("ask.flume_spin", None, &spin);
    record.durations("ask.flume_park", None, &park);

    let (mut core, mut spin, mut park) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..blocks {
        core.push(core_tells(&system, messages)?);
        spin.push(flume_sends(Wait::Spin, messages)?);
        park.push(flume_sends(Wait::Park, messages)?);
    }
    let median = |rates: &[f64]| {
        let mut sorted = rates.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    println!("tell throughput ({messages} u64 messages into one actor, until the last is handled), median of {blocks}");
    println!("  core blocking_tell          {:>12.0} msg/s", median(&core));
    for (name, rates) in [("flume, spin then park", &spin), ("flume, park at once", &park)] {
        println!("  {name:<27} {:>12.0} msg/s   core / flume {:.2}x", median(rates), median(&core) / median(rates));
    }
    println!();
    record.values("tell.core", None, "msg/s", core);
    record.values("tell.flume_spin", None, "msg/s", spin);
    record.values("tell.flume_park", None, "msg/s", park);

    system.shutdown();
    record.finish()?;
    Ok(())
}

/// The first round trips of a block, not recorded: thread start-up and first-touch
/// costs are not what a running program sees.
const WARM_UP: u64 = 1_000;

/// `rounds` asks to a fresh Rust actor (a fresh thread, as for the flume baselines:
/// where the scheduler places the two threads matters, see the suite's report).
fn core_round_trips(system: &ActorSystem, rounds: usize) -> Result<Vec<Duration>, Box<dyn Error>> {
    let echo = system.spawn(Props::new(|| Ok::<_, NeverFails>(Echo)))?;
    for i in 0..WARM_UP {
        echo.blocking_ask(i, TIMEOUT)?;
    }
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds as u64 {
        let started = Instant::now();
        echo.blocking_ask(i, TIMEOUT)?;
        samples.push(started.elapsed());
    }
    echo.stop();
    echo.blocking_wait();
    Ok(samples)
}

/// `rounds` round trips to a fresh thread answering on a fresh reply channel per
/// message.
fn flume_round_trips(wait: Wait, rounds: usize) -> Result<Vec<Duration>, Box<dyn Error>> {
    let (tx, rx) = flume::bounded::<(u64, flume::Sender<u64>)>(DEFAULT_MAILBOX_CAPACITY);
    let server = thread::spawn(move || {
        while let Some((n, reply)) = wait.recv(&rx) {
            let _ = reply.send(n);
        }
    });
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..WARM_UP + rounds as u64 {
        let started = Instant::now();
        let (reply_tx, reply_rx) = flume::bounded(1);
        tx.send((i, reply_tx))?;
        wait.recv(&reply_rx).ok_or("the flume server stopped")?;
        if i >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    drop(tx);
    server.join().map_err(|_| "the flume server panicked")?;
    Ok(samples)
}

/// Messages per second told into a fresh counting actor, until it has handled the last.
fn core_tells(system: &ActorSystem, messages: usize) -> Result<f64, Box<dyn Error>> {
    let counter = system.spawn(Props::new(|| Ok::<_, NeverFails>(Counter(0))))?;
    let started = Instant::now();
    for i in 0..messages as u64 {
        counter.blocking_tell(i)?;
    }
    let count = counter.blocking_ask(0u64, TIMEOUT)?;
    let elapsed = started.elapsed();
    counter.stop();
    counter.blocking_wait();
    if count != messages as u64 {
        return Err(format!("the counter counted {count}, expected {messages}").into());
    }
    Ok(messages as f64 / elapsed.as_secs_f64())
}

/// Messages per second sent into a bounded channel, until a counting thread has
/// received the last.
fn flume_sends(wait: Wait, messages: usize) -> Result<f64, Box<dyn Error>> {
    let (tx, rx) = flume::bounded::<u64>(DEFAULT_MAILBOX_CAPACITY);
    let (done_tx, done_rx) = flume::bounded::<usize>(1);
    let consumer = thread::spawn(move || {
        let mut count = 0;
        while wait.recv(&rx).is_some() {
            count += 1;
            if count == messages {
                let _ = done_tx.send(count);
            }
        }
    });
    let started = Instant::now();
    for i in 0..messages as u64 {
        tx.send(i)?;
    }
    let count = done_rx.recv()?;
    let elapsed = started.elapsed();
    drop(tx);
    consumer.join().map_err(|_| "the flume consumer panicked")?;
    if count != messages {
        return Err(format!("the consumer counted {count}, expected {messages}").into());
    }
    Ok(messages as f64 / elapsed.as_secs_f64())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn p50_p99(sorted: &[Duration]) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!("{:>8.2} / {:>8.2} us", us(pct(sorted, 0.5)), us(pct(sorted, 0.99)))
}

/// The ratio of the medians of two sorted series.
fn ratio(a: &[Duration], b: &[Duration]) -> f64 {
    pct(a, 0.5).as_secs_f64() / pct(b, 0.5).as_secs_f64()
}
