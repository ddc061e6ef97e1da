//! Issue 14's figures: nodes of one actor system over NATS, through a real `nats-server`
//! on loopback that this benchmark starts (a free port, JetStream on, a store in a
//! temporary folder) and a second node process (`subactor node`, the workspace's binary).
//!
//! - **remote ask round trip**: `blocking_ask` of an int from this node ("a") to a Python
//!   `Echo` actor on node "b", beside the floor: raw `async-nats` request/reply of 8 bytes
//!   from this process (`client.request().await` in a loop on a multi-thread Tokio runtime,
//!   as async-nats's own examples run) to a responder process (this executable again,
//!   `--responder URL SUBJECT`) that publishes every payload back, through the same
//!   server. Interleaved blocks, so that both meet the same load.
//! - **remote tell throughput**: `blocking_tell` of ints from one sender into a counting
//!   actor on "b" (batched; a bounded outbox and a window of unconfirmed tells are the
//!   backpressure), until the ask for the count that follows them is answered: every tell
//!   has been handled on "b".
//! - **node loss**: a node process ("gone-N", an `Echo` actor on it, monitored here) is
//!   SIGKILLed; the time until the monitor gets its `Down`, at the default heartbeat
//!   settings (a beat every 250 ms, down after 1.5 s of silence).
//!
//! Run with: `cargo bench --bench cluster` (add `-- --quick` for a shorter run, and
//! `-- --json PATH` to write the samples for the benchmark suite, `bench/run`).
//! `nats-server` must be on PATH (Debian's package; `bench/run` skips this benchmark,
//! saying so, when it is not).
//!
//! Nothing here asserts: the machines are shared and noisy, so the numbers are for
//! reading, not for failing builds.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use subactor::{ClusterConfig, PythonActor, Runtime, Value};

#[allow(dead_code, reason = "shared with the tests and the cluster example; not every item is used here")]
#[path = "../examples/support/nats_server.rs"]
mod nats_server;
mod support;
use nats_server::NatsServer;
use support::{Options, Record};

const TIMEOUT: Duration = Duration::from_secs(120);
const SUBJECT: &str = "bench.echo";

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--responder") {
        let (Some(url), Some(subject)) = (args.get(2), args.get(3)) else {
            return Err("usage: --responder URL SUBJECT".into());
        };
        return responder(url, subject);
    }
    // The cluster's own logs, when RUST_LOG asks for them (for finding out why a figure
    // is what it is).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let options = Options::from_args()?;
    let quick = options.quick;
    let mut record = Record::new("cluster", &options);
    // JetStream on, stored in a temporary directory removed with the server.
    let store = nats_server::temp_dir("bench-nats")?;
    let nats = NatsServer::start(&nats_server::jetstream_args(&store), Some(store), TIMEOUT)?;
    let version = Command::new("nats-server").arg("--version").output()?;
    record.meta("nats_server", String::from_utf8_lossy(&version.stdout).trim().to_owned());
    let b = Node::start(&nats.url(), "b")?;
    let rt =
        Runtime::builder().python_path(["examples/python"]).cluster(ClusterConfig::new([nats.url()], "a")).build()?;
    let cluster = rt.cluster().ok_or("the runtime has no cluster")?;
    if !cluster.wait_for_node("b", TIMEOUT) {
        return Err("node b never came up".into());
    }
    let (major, minor, micro) = rt.python_version().unwrap_or_default();
    record.meta("python", format!("{major}.{minor}.{micro}"));
    println!(
        "subactor cluster benchmark: Python {major}.{minor}.{micro}, {} on {}{}",
        String::from_utf8_lossy(&version.stdout).trim(),
        nats.url(),
        if quick { ", quick" } else { "" }
    );
    println!();

    round_trips(&rt, &nats, quick, &mut record)?;
    tell_throughput(&rt, if quick { 2 } else { 5 }, if quick { 50_000 } else { 200_000 }, &mut record)?;
    node_loss(&rt, &nats, if quick { 2 } else { 5 }, &mut record)?;
    rt.shutdown()?;
    drop(b);
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

/// A process started here that says when it is ready on its standard output, killed
/// (SIGKILL) when dropped.
struct Proc {
    child: Child,
    _stdin: Option<ChildStdin>,
}

impl Proc {
    fn start(mut command: Command, ready: &str) -> Result<Proc, Box<dyn Error>> {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        if !BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == ready) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{command:?} ended without saying {ready:?}").into());
        }
        Ok(Proc { child, _stdin: stdin })
    }

    /// SIGKILLs the process; returns when the signal is sent.
    fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node process: `subactor node`, the workspace's binary.
struct Node;

impl Node {
    fn start(url: &str, name: &str) -> Result<Proc, Box<dyn Error>> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_subactor"));
        command.args(["node", "--nats", url, "--name", name, "--python-path", "examples/python"]);
        Proc::start(command, &format!("node {name} ready"))
    }
}

/// The responder of the raw request/reply floor: publishes every request's payload back
/// to its reply subject.
fn responder(url: &str, subject: &str) -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = async_nats::connect(url).await?;
        let mut requests = client.subscribe(subject.to_owned()).await?;
        client.flush().await?;
        println!("responder ready");
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                client.publish(reply, request.payload).await?;
            }
        }
        Ok::<(), Box<dyn Error>>(())
    })
}

/// Remote asks beside raw request/reply, in interleaved blocks.
fn round_trips(rt: &Runtime, nats: &NatsServer, quick: bool, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--responder", &nats.url(), SUBJECT]);
    let _responder = Proc::start(command, "responder ready")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let client = runtime.block_on(async_nats::connect(nats.url()))?;
    let echo = rt.spawn_on("b", PythonActor::new("bench", "Echo"))?;

    let raw_block = |n: usize, samples: &mut Vec<Duration>| -> Result<(), Box<dyn Error>> {
        runtime.block_on(async {
            for i in 0..n {
                let payload = bytes::Bytes::copy_from_slice(&(i as u64).to_le_bytes());
                let started = Instant::now();
                let reply = client.request(SUBJECT, payload.clone()).await?;
                samples.push(started.elapsed());
                if reply.payload != payload {
                    return Err("the responder answered something else".into());
                }
            }
            Ok(())
        })
    };
    let ask_block = |n: usize, samples: &mut Vec<Duration>| -> Result<(), Box<dyn Error>> {
        for i in 0..n {
            let started = Instant::now();
            let answer = echo.blocking_ask(i as i64, TIMEOUT).map_err(|e| e.to_string())?;
            samples.push(started.elapsed());
            if answer != Value::from(i as i64) {
                return Err(format!("the remote echo answered {answer}, not {i}").into());
            }
        }
        Ok(())
    };
    let (mut raw, mut asks) = (Vec::new(), Vec::new());
    raw_block(500, &mut raw)?;
    ask_block(500, &mut asks)?;
    raw.clear();
    asks.clear();
    let (blocks, per_block) = if quick { (4, 500) } else { (10, 2_000) };
    for _ in 0..blocks {
        raw_block(per_block, &mut raw)?;
        ask_block(per_block, &mut asks)?;
    }
    echo.stop();
    record.durations("ask.remote", None, &asks);
    record.durations("ask.raw_nats", None, &raw);
    asks.sort();
    raw.sort();
    println!("round trip through nats-server on loopback ({} each, interleaved blocks)", asks.len());
    for (name, samples) in [("remote ask (a -> Echo on b)", &asks), ("raw async-nats request/reply", &raw)] {
        println!(
            "  {name:<30} p50 {:>8.1} us   p10 {:>8.1} us   p90 {:>8.1} us",
            us(pct(samples, 0.5)),
            us(pct(samples, 0.1)),
            us(pct(samples, 0.9))
        );
    }
    println!(
        "  ratio of the p50s: {:.2}x   (goal: <= 1.5x)",
        pct(&asks, 0.5).as_secs_f64() / pct(&raw, 0.5).as_secs_f64()
    );
    println!();
    Ok(())
}

/// `messages` tells into a counting actor on "b", then an ask for the count; `reps` times,
/// a fresh actor each time.
fn tell_throughput(rt: &Runtime, reps: usize, messages: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let sink = rt.spawn_on("b", PythonActor::new("bench", "Sink"))?;
        sink.blocking_ask("count", TIMEOUT).map_err(|e| e.to_string())?;
        let started = Instant::now();
        for i in 0..messages {
            sink.blocking_tell(i as i64).map_err(|e| e.to_string())?;
        }
        let count = sink.blocking_ask("count", TIMEOUT).map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        sink.stop();
        if count != Value::from(messages) {
            return Err(format!("the remote sink counted {count}, expected {messages}").into());
        }
        rates.push(messages as f64 / elapsed.as_secs_f64());
    }
    record.values("tell.remote", None, "msg/s", rates.iter().copied());
    println!("remote tell throughput, one sender, {messages} ints until the last is handled on b ({reps} runs)");
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "  blocking_tell   median {:>10.0} msg/s   (min {:.0}, max {:.0}; goal: >= 100,000)",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1]
    );
    println!();
    Ok(())
}

/// A node process SIGKILLed `samples` times: the time from the kill until a monitor here
/// of an actor on it gets `Down`.
fn node_loss(rt: &Runtime, nats: &NatsServer, samples: usize, record: &mut Record) -> Result<(), Box<dyn Error>> {
    let cluster = rt.cluster().ok_or("the runtime has no cluster")?;
    let mut times = Vec::with_capacity(samples);
    for n in 0..samples {
        let name = format!("gone-{n}");
        let mut node = Node::start(&nats.url(), &name)?;
        if !cluster.wait_for_node(&name, TIMEOUT) {
            return Err(format!("node {name} never came up").into());
        }
        let echo = rt.spawn_on(&name, PythonActor::new("bench", "Echo"))?;
        echo.blocking_ask(1, TIMEOUT).map_err(|e| e.to_string())?;
        let (tx, downs) = flume::bounded(1);
        echo.monitor(move |down| drop(tx.send((Instant::now(), down.reason.clone()))));
        // Past the first heartbeats, as a node that has been up for a while.
        std::thread::sleep(Duration::from_millis(600));
        node.kill()?;
        let killed = Instant::now();
        let (at, reason) = downs.recv_timeout(Duration::from_secs(60)).map_err(|_| "no Down within 60 s")?;
        let noticed = at.saturating_duration_since(killed);
        println!("  node {name} SIGKILLed: Down after {:.0} ms ({reason:?})", noticed.as_secs_f64() * 1e3);
        times.push(noticed);
        drop(node);
    }
    record.durations("node.down", None, &times);
    times.sort();
    println!(
        "node loss noticed (SIGKILL until a monitor's Down, default settings): median {:.0} ms, max {:.0} ms (goal: <= 2 s)",
        pct(&times, 0.5).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!();
    Ok(())
}
