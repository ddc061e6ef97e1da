//! The word-count pipeline (see `wordcount.rs`) spread over three node processes of one
//! cluster on this machine, talking through NATS.
//!
//! Run with: `cargo run --release --example cluster` (needs `nats-server` on PATH:
//! `apt-get install nats-server`).
//!
//! The example starts a `nats-server` on a free loopback port, then two node processes
//! (this same program, started again as `cluster node NAME URL`), and joins the cluster
//! itself as node `a`:
//!
//! - node `b`: the reader (a path in, the file's bytes out) and half the tokenizers;
//! - node `c`: the other half of the tokenizers;
//! - node `a` (here): the pipeline's routing and the totals.
//!
//! Every file's bytes and counts cross nodes through NATS. The result is checked against
//! a plain single-threaded count; the throughput, and where each stage ran (node, process,
//! how many files), are printed. The node processes leave the cluster when their standard
//! input closes, which is how this program stops them.

use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use subactor::{AnyRef, ClusterConfig, Output, Pipeline, PythonActor, Routing, Runtime, Value};
use tracing_subscriber::EnvFilter;

#[allow(dead_code, reason = "shared with the tests and the cluster benchmark; not every item is used here")]
#[path = "support/nats_server.rs"]
mod nats_server;
use nats_server::NatsServer;

const TIMEOUT: Duration = Duration::from_secs(600);
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python");

fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // Logs go to standard error: a node's standard output is read by the first process.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, name, url] = args.as_slice()
        && mode == "node"
    {
        return node(name, url);
    }
    if !args.is_empty() {
        return Err("usage: cluster (the node processes are started as: cluster node NAME NATS_URL)".into());
    }

    // JetStream on, stored in a temporary directory removed with the server.
    let store = nats_server::temp_dir("example-nats")?;
    let nats = NatsServer::start(&nats_server::jetstream_args(&store), Some(store), Duration::from_secs(30))?;
    let url = nats.url();
    println!("nats-server on {url} (pid {})", nats.pid());
    let b = NodeProcess::start("b", &url)?;
    let c = NodeProcess::start("c", &url)?;
    let rt = Runtime::builder().python_path([PYTHON]).cluster(ClusterConfig::new([url.as_str()], "a")).build()?;
    let cluster = rt.cluster().ok_or("the runtime joined no cluster")?;
    for name in ["b", "c"] {
        if !cluster.wait_for_node(name, Duration::from_secs(30)) {
            return Err(format!("node {name} did not join").into());
        }
    }
    println!("nodes: a (this process, pid {}), b (pid {}), c (pid {})\n", std::process::id(), b.pid(), c.pid());

    let lister = rt.spawn(PythonActor::new("wordcount", "Lister"))?;
    let paths: Vec<String> = lister.blocking_ask((), TIMEOUT)?.try_into()?;
    lister.stop();
    let bytes: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    println!("{} .py files in the standard library ({:.1} MB)", paths.len(), bytes as f64 / 1e6);

    let plain = rt.spawn(PythonActor::new("wordcount", "PlainCount"))?;
    let started = Instant::now();
    let reference = plain.blocking_ask(Value::from(paths.clone()), TIMEOUT)?;
    let plain_time = started.elapsed();
    plain.stop();
    let (total, distinct, top, plain_failed): (i64, i64, Value, i64) = reference.try_into()?;
    println!("plain single-threaded count on node a: {:>7.3} s\n", plain_time.as_secs_f64());

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let per_node = cores.div_ceil(2).max(1);
    let readers = vec![rt.spawn_on("b", PythonActor::new("wordcount", "Reader"))?];
    let mut tokenizers = Vec::new();
    for node in ["b", "c"] {
        for _ in 0..per_node {
            tokenizers.push(rt.spawn_on(node, PythonActor::new("wordcount", "Tokenizer"))?);
        }
    }
    let totals: AnyRef = rt.spawn(PythonActor::new("wordcount", "Totals"))?.into();

    let started = Instant::now();
    let failed = run(&readers, &tokenizers, &totals, &paths)?;
    let elapsed = started.elapsed();
    let result = ask(&totals, "result")?;
    if result != Value::from((total, distinct, top.clone())) || failed != plain_failed {
        return Err(format!("the cluster disagrees with the plain count: {result} ({failed} failed)").into());
    }
    println!(
        "pipeline over 3 nodes: {:>7.3} s   {:.0} files/s   {:.1} MB/s through NATS (each file's bytes b -> a -> b/c)",
        elapsed.as_secs_f64(),
        paths.len() as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
    );
    println!(
        "the same totals as the plain count ({total} identifiers, {distinct} distinct, {failed} files that do not tokenize)\n"
    );

    println!("where each stage ran:");
    for (stage, workers) in [("read", &readers), ("tokenize", &tokenizers)] {
        for worker in workers {
            let (pid, handled): (i64, i64) = ask(worker, "where")?.try_into()?;
            println!(
                "  {stage:<9} node {}   {:?} actor, pid {pid:<8} {handled:>5} files",
                worker.node().unwrap_or("a"),
                worker.placement(),
            );
        }
    }
    println!("  {:<9} node a   {:?} actor (here)", "total", totals.placement());
    if let Value::List(top) = top {
        println!("\nthe most common identifiers:");
        for pair in top {
            let (name, count): (String, i64) = pair.try_into()?;
            println!("  {name:<16} {count:>8}");
        }
    }

    for worker in readers.iter().chain(&tokenizers).chain([&totals]) {
        worker.stop();
    }
    b.leave();
    c.leave();
    rt.shutdown()?;
    Ok(())
}

/// Asks `actor` (an error from its handler comes as text: `AnyRef`'s errors are boxed).
fn ask(actor: &AnyRef, msg: &str) -> Result<Value, Box<dyn Error + Send + Sync>> {
    actor.blocking_ask(msg, TIMEOUT).map_err(|error| format!("asking {msg:?}: {error}").into())
}

/// Feeds every path through read -> tokenize -> total; returns how many files failed.
fn run(
    readers: &[AnyRef],
    tokenizers: &[AnyRef],
    totals: &AnyRef,
    paths: &[String],
) -> Result<i64, Box<dyn Error + Send + Sync>> {
    let mut pipeline = Pipeline::builder()
        .stage("read", readers.to_vec(), Routing::RoundRobin)
        .stage("tokenize", tokenizers.to_vec(), Routing::LeastLoaded)
        .stage("total", vec![totals.clone()], Routing::RoundRobin)
        .build()?;
    let outputs = pipeline.outputs();
    let consumer =
        std::thread::spawn(move || outputs.iter().filter(|output| matches!(output, Output::Failed(_))).count() as i64);
    for path in paths {
        pipeline.send(path.as_str())?;
    }
    pipeline.close();
    Ok(consumer.join().map_err(|_| "the consumer panicked")?)
}

/// A node process: joins the cluster as `name`, hosts what the others spawn on it, and
/// leaves when its standard input closes.
fn node(name: &str, url: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let rt = Runtime::builder().python_path([PYTHON]).cluster(ClusterConfig::new([url], name)).build()?;
    println!("node {name} ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    rt.shutdown()?;
    Ok(())
}

/// This program started again as a node.
struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl NodeProcess {
    fn start(name: &str, url: &str) -> Result<NodeProcess, Box<dyn Error + Send + Sync>> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["node", name, url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let ready =
            BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == format!("node {name} ready"));
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("node {name} did not start").into());
        }
        let stdin = child.stdin.take();
        Ok(NodeProcess { child, stdin })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves the cluster (standard input closes) and waits for the process.
    fn leave(mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
