//! Nodes of one actor system over NATS: real `nats-server` processes started here (on
//! free loopback ports), real node processes (`subactor node`), real failures.
//!
//! `nats-server` must be on PATH (scripts/test installs Debian's package).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use subactor::{AnyRef, AskError, Auth, ClusterConfig, DeadLetter, Error, PythonActor, Runtime, StopReason, Value};

use crate::common::{TIMEOUT, eventually};
use crate::nats::{Nats, free_port, temp_dir};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// A node process (`subactor node`), killed when dropped.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Node {
    fn start(url: &str, name: &str, extra: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_subactor"))
            .args(["node", "--nats", url, "--name", name, "--python-path", PYTHON])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the node starts");
        let stdout = child.stdout.take().expect("stdout");
        let ready =
            BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == format!("node {name} ready"));
        assert!(ready, "node {name} did not report ready");
        let stdin = child.stdin.take();
        Node { child, stdin }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves the cluster gracefully (standard input closes) and waits.
    fn leave(mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn join(url: &str, node: &str) -> Runtime {
    join_with(ClusterConfig::new([url], node))
}

fn join_with(config: ClusterConfig) -> Runtime {
    Runtime::builder().python_path([PYTHON]).cluster(config).build().expect("joins the cluster")
}

fn wait_for(rt: &Runtime, node: &str) {
    assert!(rt.cluster().expect("a cluster").wait_for_node(node, TIMEOUT), "node {node} never came up");
}

#[test]
fn actors_on_two_nodes_spawn_tell_ask_look_up_and_pass_references() {
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");

    let counter = rt.spawn_on("b", PythonActor::new("actors", "Counter").args((10,)).name("counter")).expect("spawn");
    assert_eq!(counter.node(), Some("b"));
    assert_eq!(counter.blocking_ask(1, TIMEOUT).expect("ask"), Value::from(11));
    for _ in 0..100 {
        counter.blocking_tell(1).expect("tell");
    }
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(111), "one sender's tells in order");

    // The registry spans the nodes.
    let found = rt.lookup_any("counter").expect("found on b");
    assert_eq!(found, counter);
    assert!(rt.lookup_any("nobody").is_none());
    let duplicate = rt.spawn(PythonActor::new("actors", "Echo").name("counter"));
    assert!(duplicate.is_err(), "names are unique across the cluster");

    // References travel both ways: b's relay asks a's counter through a reference it
    // was sent, and a's relay asks b's counter.
    let local = rt.spawn(PythonActor::new("actors", "Counter").args((100,))).expect("spawn");
    let remote_relay = rt.spawn_on("b", PythonActor::new("talk", "Relay")).expect("spawn");
    let ask = |to: AnyRef, payload: i64| {
        Value::dict([("op", Value::from("ask")), ("to", Value::Actor(to)), ("payload", Value::from(payload))])
    };
    assert_eq!(remote_relay.blocking_ask(ask(local.clone().into(), 5), TIMEOUT).expect("b asks a"), Value::from(105));
    let local_relay = rt.spawn(PythonActor::new("talk", "Relay")).expect("spawn");
    assert_eq!(local_relay.blocking_ask(ask(counter.clone(), 1), TIMEOUT).expect("a asks b"), Value::from(112));

    // An exception on b reaches the asker on a, typed.
    let raiser = rt.spawn_on("b", PythonActor::new("actors", "Raiser")).expect("spawn");
    let failed = raiser.blocking_ask("value", TIMEOUT).expect_err("raises");
    assert!(format!("{failed:?}").contains("ValueError"), "{failed:?}");

    // The recipe's settings travel with it: b runs the actor in a process of its own,
    // applies the time limit and the kill grace (the handler ignores the interrupt: its
    // process is killed) and the failure policy (the actor then stops).
    let limited = rt
        .spawn_on(
            "b",
            PythonActor::new("procs", "Sleeper")
                .placement(subactor::Placement::Process)
                .time_limit(Duration::from_millis(200))
                .kill_grace(Duration::from_millis(200))
                .on_failure(subactor::FailurePolicy::Stop)
                .mailbox_capacity(2),
        )
        .expect("spawn");
    assert_eq!(limited.placement(), subactor::Placement::Process);
    let failed = limited.blocking_ask("stuck", TIMEOUT).expect_err("the time limit applies on b");
    assert!(format!("{failed:?}").contains("TimeLimit"), "{failed:?}");
    eventually("the actor on b stops after failing", || limited.state() == subactor::ActorState::Stopped);
    rt.shutdown().expect("shutdown");
}

#[test]
fn messages_and_answers_larger_than_a_nats_message_cross_whole_even_many_at_once() {
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let echo = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn");

    // One message of 3 MiB (NATS allows 1 MiB messages): there and back in parts.
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
    let back = echo.blocking_ask(Value::Bytes(big.clone()), TIMEOUT).expect("a 3 MiB round trip");
    assert_eq!(back, Value::Bytes(big));

    // Many answers of 300 KB in flight at once: their bunches are larger than a NATS
    // message. Every one comes back, each to its own asker.
    let (tx, rx) = flume::unbounded();
    for i in 0..64u8 {
        let tx = tx.clone();
        let payload = vec![i; 300_000];
        echo.blocking_ask_then(Value::Bytes(payload), move |outcome| {
            let _ = tx.send((i, outcome));
        })
        .expect("sent");
    }
    drop(tx);
    let mut seen = HashSet::new();
    for _ in 0..64 {
        let (i, outcome) = rx.recv_timeout(TIMEOUT).expect("every answer comes back");
        match outcome {
            subactor::Outcome::Replied(Value::Bytes(bytes)) => {
                assert!(bytes.len() == 300_000 && bytes.iter().all(|&b| b == i), "answer {i} intact");
            }
            other => panic!("answer {i}: {other:?}"),
        }
        seen.insert(i);
    }
    assert_eq!(seen.len(), 64);

    // A pipeline whose stages run on the other node (as examples/cluster.rs does).
    let workers: Vec<AnyRef> =
        (0..2).map(|_| rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn")).collect();
    let mut pipeline =
        subactor::Pipeline::builder().stage("echo", workers, subactor::Routing::LeastLoaded).build().expect("pipeline");
    let outputs = pipeline.outputs();
    let feeder = std::thread::spawn(move || {
        for i in 0..500i64 {
            pipeline.send(Value::Bytes(vec![(i % 256) as u8; 50_000])).expect("send");
        }
        pipeline.close();
    });
    // `outputs()` gives them as they come: each item once, intact.
    let mut items: Vec<(u64, Vec<u8>)> = outputs
        .iter()
        .map(|item| match item {
            subactor::Output::Item { seq, value: Value::Bytes(bytes) } => (seq, bytes),
            other => panic!("{other:?}"),
        })
        .collect();
    feeder.join().expect("feeder");
    items.sort_by_key(|(seq, _)| *seq);
    assert_eq!(items.len(), 500);
    for (i, (seq, bytes)) in items.into_iter().enumerate() {
        assert_eq!(seq, i as u64);
        assert!(bytes.len() == 50_000 && bytes.iter().all(|&b| b == (i % 256) as u8), "item {i} intact");
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_node_killed_mid_stream_leaves_every_message_handled_once_or_reported() {
    const MESSAGES: i64 = 20_000;
    let nats = Nats::start(&[]);
    let b = Node::start(&nats.url(), "b", &[]);
    // The default failure detector (250 ms beats, down after 1.5 s): a shorter one took a
    // live node for lost when the machine was loaded.
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let logs = temp_dir("node-kill");
    let worker = rt
        .spawn_on("b", PythonActor::new("supervised", "Faulty").args((logs.to_string_lossy().as_ref(), 1, 0.0)))
        .expect("spawn");
    // Every dead letter, none missed (a node's loss reports thousands at once).
    let letters = rt.dead_letters().subscribe_all();
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let stop_rx = stop_rx;
    let collector = std::thread::spawn(move || {
        let number =
            |letter: DeadLetter| letter.message.and_then(|m| m.as_i64()).expect("the dead letter carries its message");
        let mut reported = HashSet::new();
        loop {
            match letters.recv_timeout(Duration::from_millis(50)) {
                Ok(letter) => {
                    reported.insert(number(letter));
                }
                Err(_) if stop_rx.is_disconnected() => break,
                Err(_) => {}
            }
        }
        reported.extend(letters.try_iter().map(number));
        reported
    });
    let mut refused = HashSet::new();
    let mut killed = None;
    let started = Instant::now();
    for n in 0..MESSAGES {
        if n == MESSAGES / 2 {
            // Kill b while messages are in flight.
            std::process::Command::new("kill").arg("-9").arg(b.pid().to_string()).status().expect("kill");
            killed = Some(Instant::now());
        }
        if worker.blocking_tell(n).is_err() {
            refused.insert(n);
        }
    }
    let killed = killed.expect("killed");
    eventually("b is noticed down", || rt.cluster().expect("cluster").nodes().iter().any(|n| n.name == "b" && !n.up));
    let noticed = killed.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    drop(stop_tx);
    let reported = collector.join().expect("collector");
    let mut processed: HashMap<i64, u32> = HashMap::new();
    for entry in std::fs::read_dir(&logs).expect("logs") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("log");
        for line in text.lines() {
            *processed.entry(line.parse().expect("a number")).or_default() += 1;
        }
    }
    let twice: Vec<_> = processed.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let lost: Vec<i64> =
        (0..MESSAGES).filter(|n| !processed.contains_key(n) && !reported.contains(n) && !refused.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "{} messages neither handled nor reported, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let both = (0..MESSAGES).filter(|n| processed.contains_key(n) && reported.contains(n)).count();
    eprintln!(
        "{MESSAGES} tells in {:?}: {} handled on b, {} reported here ({both} of them handled before b died), \
         b noticed down {noticed:?} after the kill",
        started.elapsed(),
        processed.len(),
        reported.len() + refused.len()
    );
    assert!(both <= subactor_cluster_window(), "at most a window's worth was handled without word of it");
    std::fs::remove_dir_all(&logs).ok();
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_long_stream_of_tells_to_a_fast_actor_on_another_node_never_stalls() {
    // More tells than the outbox and the window of unconfirmed tells hold together, to an
    // actor that handles each at once: the word that a tell was handled often comes back
    // before its batch's ack, and must still count (it once was lost, and the window
    // filled up with tells that had long been handled: sending stalled for good).
    const MESSAGES: i64 = 60_000;
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let counter = rt.spawn_on("b", PythonActor::new("actors", "Counter")).expect("spawn");
    for n in 0..MESSAGES {
        if let Err(error) = counter.blocking_tell_timeout(1, Duration::from_secs(30)) {
            panic!("tell {n} waited 30 s for room: {error:?}");
        }
    }
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(MESSAGES), "every tell handled once");
    eventually("every tell is confirmed", || rt.cluster().expect("cluster").unconfirmed_tells("b") == 0);
    assert_eq!(rt.dead_letters().count(), 0, "none reported undelivered");
    rt.shutdown().expect("shutdown");
}

/// Watches what nodes send each other: every message on the cluster's subjects and on
/// reply inboxes (acks of requests), from a client of its own.
struct Spy {
    runtime: tokio::runtime::Runtime,
    _client: async_nats::Client,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, bool, bytes::Bytes)>>>,
}

impl Spy {
    fn start(url: &str) -> Spy {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let client = runtime.block_on(async_nats::connect(url)).expect("the spy connects");
        let seen = std::sync::Arc::<std::sync::Mutex<Vec<_>>>::default();
        for subject in ["subactor.>", "_INBOX.>"] {
            let mut messages = runtime.block_on(client.subscribe(subject)).expect("the spy subscribes");
            let seen = std::sync::Arc::clone(&seen);
            runtime.spawn(async move {
                while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
                    seen.lock().expect("lock").push((m.subject.to_string(), m.reply.is_some(), m.payload));
                }
            });
        }
        runtime.block_on(client.flush()).expect("the spy's subscriptions are in place");
        Spy { runtime, _client: client, seen }
    }

    /// What node `from` and node `to` sent each other since the last call, decoded as
    /// `to` decodes it.
    fn traffic(&self, from: &str, to: &str) -> Traffic {
        let _enter = self.runtime.enter();
        let messages = std::mem::take(&mut *self.seen.lock().expect("lock"));
        let mut traffic = Traffic::default();
        for (subject, request, payload) in messages {
            if subject.starts_with("_INBOX.") {
                traffic.on_inboxes += 1;
                continue;
            }
            if subject == format!("subactor.{to}.in") {
                traffic.requests += usize::from(request);
                let seen = subactor_cluster::fuzzing::Inbound::default().message(&payload);
                match seen.items.expect("a batch that decodes") {
                    0 => traffic.acks_alone_of_answers += 1,
                    n => {
                        traffic.batches += 1;
                        traffic.calls += n;
                    }
                }
                traffic.bunches_acknowledged += seen.taken.unwrap_or(0);
            } else if subject == format!("subactor.{from}.reply") {
                traffic.requests += usize::from(request);
                let seen = subactor_cluster::fuzzing::Inbound::default().message(&payload);
                let (answers, acks) = (seen.answers.expect("answers that decode"), seen.acks.unwrap_or(0));
                traffic.bunches += 1;
                traffic.answers += answers;
                traffic.batches_acknowledged += acks;
                if answers > 0 && acks > 0 {
                    traffic.acks_with_answers += acks;
                }
            }
        }
        traffic
    }
}

/// Messages between two nodes (see [`Spy::traffic`]).
#[derive(Debug, Default)]
struct Traffic {
    /// Batches of calls, and their calls.
    batches: usize,
    calls: usize,
    /// Batches with no calls: acks of bunches of answers that no batch carried.
    acks_alone_of_answers: usize,
    /// Bunches of answers acknowledged (on batches, or alone).
    bunches_acknowledged: usize,
    /// Bunches of answers, their answers, and the acks of batches they carried.
    bunches: usize,
    answers: usize,
    batches_acknowledged: usize,
    /// Acks of batches that came with answers.
    acks_with_answers: usize,
    /// Messages sent as requests, and messages on reply inboxes (a request's answer).
    requests: usize,
    on_inboxes: usize,
}

/// Long enough for every ack to have been sent, alone if nothing carried it, and for
/// anything not acknowledged to be sent again (as a request: seen on the inboxes).
const SETTLE: Duration = Duration::from_millis(2500);

#[test]
fn an_ask_is_two_nats_messages_the_acks_riding_on_the_answer_and_the_next_batch() {
    const ASKS: usize = 50;
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let echo = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn");
    assert_eq!(echo.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(0));
    let spy = Spy::start(&nats.url());
    std::thread::sleep(SETTLE);
    spy.traffic("a", "b");

    for i in 1..=ASKS {
        assert_eq!(echo.blocking_ask(i as i64, TIMEOUT).expect("ask"), Value::from(i as i64));
    }
    std::thread::sleep(SETTLE);
    let t = spy.traffic("a", "b");
    println!("{ASKS} asks: {t:?}");
    assert_eq!((t.requests, t.on_inboxes), (0, 0), "no request, no ack on a reply inbox, nothing sent again: {t:?}");
    assert_eq!((t.batches, t.calls), (ASKS, ASKS), "one batch per ask: {t:?}");
    assert_eq!(t.answers, ASKS, "one answer per ask: {t:?}");
    assert_eq!(t.batches_acknowledged, ASKS, "every batch acknowledged once, on a bunch of answers: {t:?}");
    assert!(t.acks_with_answers >= 1, "answers carry the acks of their batches: {t:?}");
    assert_eq!(t.bunches_acknowledged, t.bunches, "every bunch of answers acknowledged once: {t:?}");
    assert!(t.acks_alone_of_answers >= 1, "the last answer's ack goes alone, after a moment: {t:?}");
    assert!(t.acks_alone_of_answers < t.bunches, "the next batch carries the acks of the answers before it: {t:?}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_stream_of_tells_alone_is_acknowledged_both_ways_without_requests() {
    const TELLS: usize = 3000;
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let counter = rt.spawn_on("b", PythonActor::new("actors", "Counter")).expect("spawn");
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(0));
    let spy = Spy::start(&nats.url());
    std::thread::sleep(SETTLE);
    spy.traffic("a", "b");

    for _ in 0..TELLS {
        counter.blocking_tell(1).expect("tell");
    }
    eventually("every tell is confirmed", || rt.cluster().expect("cluster").unconfirmed_tells("b") == 0);
    std::thread::sleep(SETTLE);
    let t = spy.traffic("a", "b");
    println!("{TELLS} tells: {t:?}");
    assert_eq!((t.requests, t.on_inboxes), (0, 0), "no request, no ack on a reply inbox, nothing sent again: {t:?}");
    assert_eq!(t.calls, TELLS, "every tell sent once: {t:?}");
    assert_eq!(t.answers, TELLS, "word of every tell's handling, once: {t:?}");
    assert_eq!(t.batches_acknowledged, t.batches, "every batch acknowledged once: {t:?}");
    assert_eq!(t.bunches_acknowledged, t.bunches, "every bunch of answers acknowledged once: {t:?}");
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(TELLS as i64), "every tell handled");
    assert_eq!(rt.dead_letters().count(), 0, "none reported undelivered");
    rt.shutdown().expect("shutdown");
}

/// The server itself loses what the nodes send: a subject mapping whose weights add up to
/// less than 100% drops the rest (nats-server's documented way to inject message loss for
/// tests), switched on and off by reloading the server's configuration.
struct Loss {
    nats: Nats,
    conf: PathBuf,
    store: PathBuf,
    probe: async_nats::Client,
    runtime: tokio::runtime::Runtime,
    /// Changes with each configuration, so that a reload can be seen to have happened.
    generation: u32,
}

impl Loss {
    fn start() -> Loss {
        let conf = temp_dir("nats-conf").join("nats.conf");
        let store = temp_dir("nats");
        let config = |generation| Loss::config_text(&store, generation, None);
        std::fs::write(&conf, config(0)).expect("config");
        let nats = Nats::start_configured(&conf, store.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let probe = runtime.block_on(async_nats::connect(nats.url())).expect("the probe connects");
        let mut loss = Loss { nats, conf, store, probe, runtime, generation: 0 };
        loss.set(None);
        loss
    }

    /// The server's configuration: `lost` (a subject) mapped with a weight of 0%, so that
    /// every message sent to it is dropped; a probe subject mapped to one that names the
    /// generation.
    fn config_text(store: &std::path::Path, generation: u32, lost: Option<&str>) -> String {
        let lost = lost.map_or(String::new(), |subject| {
            format!("  \"{subject}\": [ {{ destination: \"{subject}\", weight: 0% }} ]\n")
        });
        format!(
            "jetstream {{ store_dir: {:?} }}\nmappings = {{\n  \"loss-probe\": \"loss-probe.{}\"\n{lost}}}\n",
            store.to_string_lossy(),
            generation
        )
    }

    /// Drops every message sent to `lost` from now on (`None`: nothing), once the server
    /// has taken the new configuration.
    fn set(&mut self, lost: Option<&str>) {
        self.generation += 1;
        let generation = self.generation;
        std::fs::write(&self.conf, Loss::config_text(&self.store, generation, lost)).expect("config");
        let reloaded = Command::new("nats-server")
            .arg("--signal")
            .arg(format!("reload={}", self.nats.pid()))
            .status()
            .expect("nats-server --signal");
        assert!(reloaded.success(), "nats-server did not take the reload signal");
        let probe = self.probe.clone();
        self.runtime.block_on(async move {
            let mut seen = probe.subscribe(format!("loss-probe.{generation}")).await.expect("subscribe");
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            loop {
                probe.publish("loss-probe", "?".into()).await.expect("publish");
                probe.flush().await.expect("flush");
                let next = futures_util::StreamExt::next(&mut seen);
                if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), next).await {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "the server never took configuration {generation}");
            }
        });
    }
}

#[test]
fn answers_and_batches_the_server_loses_are_sent_again_and_handled_once() {
    const ASKS: i64 = 6;
    const TELLS: i64 = 200;
    let mut loss = Loss::start();
    let url = loss.nats.url();
    let _b = Node::start(&url, "b", &[]);
    let rt = join(&url, "a");
    wait_for(&rt, "b");
    let counter = rt.spawn_on("b", PythonActor::new("actors", "Counter")).expect("spawn");
    assert_eq!(counter.blocking_ask(0, TIMEOUT).expect("ask"), Value::from(0));
    let spy = Spy::start(&url);
    let mut total = 0;

    // First the answers node b sends to node a, then the batches node a sends to node b
    // (the acks of the answers too): asks and tells go while everything of that kind is
    // lost, and are all answered or handled, once each, after the loss ends.
    for lost in ["subactor.a.reply", "subactor.b.in"] {
        spy.traffic("a", "b");
        loss.set(Some(lost));
        let asks: Vec<_> = (0..ASKS)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || counter.blocking_ask(1, TIMEOUT))
            })
            .collect();
        for _ in 0..TELLS {
            counter.blocking_tell(1).expect("tell");
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(asks.iter().all(|ask| !ask.is_finished()), "with {lost} lost, no ask can have its answer");
        loss.set(None);
        let mut answers: Vec<i64> = asks
            .into_iter()
            .map(|ask| {
                let answer = ask.join().expect("asker").expect("answered once the loss ended");
                answer.as_i64().expect("an int")
            })
            .collect();
        answers.sort_unstable();
        answers.dedup();
        assert_eq!(answers.len(), ASKS as usize, "each ask handled once (a distinct running total each): {answers:?}");
        total += ASKS + TELLS;
        assert_eq!(
            counter.blocking_ask(0, TIMEOUT).expect("ask"),
            Value::from(total),
            "with {lost} lost for a while, every ask and tell handled exactly once"
        );
        eventually("every tell is confirmed", || rt.cluster().expect("cluster").unconfirmed_tells("b") == 0);
        let t = spy.traffic("a", "b");
        println!("{lost} lost: {t:?}");
        assert!(t.requests >= 1, "what was lost was sent again (as a request, with its ack on an inbox): {t:?}");
    }
    assert_eq!(rt.dead_letters().count(), 0, "nothing reported undelivered: nothing was");
    rt.shutdown().expect("shutdown");
}

/// The cluster's window of tells awaiting word of their handling.
fn subactor_cluster_window() -> usize {
    8192
}

#[test]
fn monitors_of_a_lost_nodes_actors_get_down_and_the_node_can_come_back() {
    let nats = Nats::start(&[]);
    let b = Node::start(&nats.url(), "b", &[]);
    // The default failure detector (250 ms beats, down after 1.5 s): a shorter one took a
    // live node for lost when the machine was loaded.
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let remote = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn");
    let watcher = rt.spawn(PythonActor::new("supervised", "Watcher")).expect("spawn");
    watcher.blocking_ask(("watch", Value::Actor(remote.clone())), TIMEOUT).expect("watch");
    let (tx, downs) = flume::bounded(1);
    remote.monitor(move |down| drop(tx.send(down.clone())));
    drop(b);
    let down = downs.recv_timeout(TIMEOUT).expect("a Down for the lost node's actor");
    let StopReason::Failed(why) = &down.reason else { panic!("{down:?}") };
    assert!(why.contains("node b is down") || why.contains("lost"), "{why}");
    eventually("the watching Python actor got its Down", || {
        watcher.blocking_ask(("downs",), TIMEOUT).expect("downs") != Value::List(vec![])
    });
    assert!(matches!(remote.blocking_ask(1, Duration::from_secs(2)), Err(AskError::Stopped(_) | AskError::NoReply)));

    // b comes back (a new process, same name): spawning there works again.
    let _b = Node::start(&nats.url(), "b", &[]);
    eventually("b is up again", || rt.cluster().expect("cluster").nodes().iter().any(|n| n.name == "b" && n.up));
    let again = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn on the new b");
    assert_eq!(again.blocking_ask("back", TIMEOUT).expect("ask"), Value::from("back"));
    rt.shutdown().expect("shutdown");
}

#[test]
fn wrong_credentials_are_refused_with_a_clear_error() {
    let nats = Nats::start(&["--user", "alice", "--pass", "secret"]);
    let good = ClusterConfig::new([nats.url()], "a")
        .auth(Auth::UserPassword { user: "alice".into(), password: "secret".into() });
    let rt = join_with(good);
    let bad = ClusterConfig::new([nats.url()], "b")
        .auth(Auth::UserPassword { user: "alice".into(), password: "wrong".into() });
    let refused = Runtime::builder().python_path([PYTHON]).cluster(bad).build().expect_err("refused");
    let text = refused.to_string();
    assert!(matches!(refused, Error::Cluster(subactor::ClusterError::Authentication { .. })), "{text}");
    assert!(text.contains("credentials"), "{text}");
    let none = Runtime::builder().python_path([PYTHON]).cluster(ClusterConfig::new([nats.url()], "c")).build();
    assert!(none.is_err(), "no credentials at all are refused too");
    rt.shutdown().expect("shutdown");
}

#[test]
fn only_plain_values_cross_nodes_unless_the_cluster_is_trusted() {
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let echo = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn");
    let pickled = Value::Pickled(b"\x80\x05K\x01.".to_vec());
    let refused = echo.blocking_ask(pickled, TIMEOUT).expect_err("refused");
    assert!(format!("{refused:?}").contains("pickled"), "{refused:?}");
    // Buffers cross by copy and arrive as arena buffers.
    let buffer = rt.arena().copy_from(b"bytes of a buffer").expect("buffer");
    let Value::Buffer(back) = echo.blocking_ask(Value::Buffer(buffer), TIMEOUT).expect("echo") else {
        panic!("a buffer")
    };
    assert_eq!(&back[..], b"bytes of a buffer");
    rt.shutdown().expect("shutdown");

    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &["--trusted"]);
    let rt = join_with(ClusterConfig::new([nats.url()], "a").trusted(true));
    wait_for(&rt, "b");
    let echo = rt.spawn_on("b", PythonActor::new("actors", "Echo")).expect("spawn");
    let fraction = Value::Pickled(b"\x80\x05K\x01.".to_vec());
    assert_eq!(echo.blocking_ask(fraction, TIMEOUT).expect("trusted"), Value::from(1));
    rt.shutdown().expect("shutdown");
}

/// Three `nats-server`s routed into one NATS cluster, with JetStream.
struct NatsCluster {
    servers: Vec<Option<Nats>>,
}

impl NatsCluster {
    /// Three servers routed to each other, on route ports picked in advance: started
    /// again on other ports if one was taken before its server bound it.
    fn start() -> NatsCluster {
        let mut failures = Vec::new();
        while failures.len() < 5 {
            let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
            let routes: Vec<String> = route_ports.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect();
            let started: Result<Vec<Nats>, String> = route_ports
                .iter()
                .enumerate()
                .map(|(i, port)| Nats::start_clustered(&format!("s{i}"), "subactor-test", *port, &routes))
                .collect();
            match started {
                Ok(servers) => return NatsCluster { servers: servers.into_iter().map(Some).collect() },
                Err(why) => failures.push(why),
            }
        }
        panic!("no NATS cluster in 5 tries: {failures:#?}");
    }

    fn urls(&self) -> String {
        self.servers.iter().flatten().map(Nats::url).collect::<Vec<_>>().join(",")
    }

    fn kill(&mut self, i: usize) {
        self.servers[i].take();
    }
}

/// Joins, retrying while the NATS cluster elects its JetStream leader.
fn join_retrying(config: ClusterConfig) -> Runtime {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Runtime::builder().python_path([PYTHON]).cluster(config.clone()).build() {
            Ok(rt) => return rt,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => panic!("cannot join the cluster: {error}"),
        }
    }
}

#[test]
fn losing_one_server_of_a_three_server_nats_cluster_loses_and_duplicates_nothing() {
    const MESSAGES: i64 = 6_000;
    let mut nats = NatsCluster::start();
    let rt = join_retrying(ClusterConfig::new([nats.urls()], "a"));
    let b = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(env!("CARGO_BIN_EXE_subactor"))
                .args(["node", "--nats", &nats.urls(), "--name", "b", "--python-path", PYTHON])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("node b");
            let stdout = child.stdout.take().expect("stdout");
            if BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l == "node b ready") {
                let stdin = child.stdin.take();
                break Node { child, stdin };
            }
            let _ = child.wait();
            assert!(Instant::now() < deadline, "node b cannot join");
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    wait_for(&rt, "b");
    let logs = temp_dir("failover");
    let worker = rt
        .spawn_on("b", PythonActor::new("supervised", "Faulty").args((logs.to_string_lossy().as_ref(), 1, 0.0)))
        .expect("spawn");
    let letters = rt.dead_letters().subscribe_all();
    let mut answered = HashSet::new();
    for n in 0..MESSAGES {
        if n == MESSAGES / 3 {
            nats.kill(0);
        }
        // Every fourth message is asked (its answer proves it was handled), the rest told.
        if n % 4 == 0 {
            if let Ok(reply) = worker.blocking_ask(n, Duration::from_secs(20)) {
                assert_eq!(reply, Value::from(n));
                answered.insert(n);
            }
        } else {
            worker.blocking_tell(n).expect("the outbox takes it (b stays up)");
        }
    }
    assert_eq!(worker.blocking_ask("flush", Duration::from_secs(30)).expect("flush"), Value::from("flushed"));
    let mut processed: HashMap<i64, u32> = HashMap::new();
    for entry in std::fs::read_dir(&logs).expect("logs") {
        for line in std::fs::read_to_string(entry.expect("entry").path()).expect("log").lines() {
            *processed.entry(line.parse().expect("a number")).or_default() += 1;
        }
    }
    let reported: HashSet<i64> = letters.try_iter().filter_map(|l| l.message.and_then(|m| m.as_i64())).collect();
    let twice: Vec<_> = processed.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let lost: Vec<i64> = (0..MESSAGES).filter(|n| !processed.contains_key(n) && !reported.contains(n)).collect();
    assert!(lost.is_empty(), "{} lost silently, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
    assert!(answered.iter().all(|n| processed.contains_key(n)), "an answer means it was handled");
    eprintln!(
        "{MESSAGES} messages across a server's loss: {} handled, {} reported, {} asks answered",
        processed.len(),
        reported.len(),
        answered.len()
    );
    drop(b);
    std::fs::remove_dir_all(&logs).ok();
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_node_that_leaves_gracefully_is_down_at_once_for_the_others() {
    let nats = Nats::start(&[]);
    let b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let remote = rt.spawn_on("b", PythonActor::new("actors", "Echo").name("leaving")).expect("spawn");
    assert!(rt.lookup_any("leaving").is_some());
    b.leave();
    eventually("b is down", || rt.cluster().expect("cluster").nodes().iter().any(|n| n.name == "b" && !n.up));
    assert!(remote.blocking_ask(1, Duration::from_secs(2)).is_err());
    eventually("its names are gone", || rt.lookup_any("leaving").is_none());
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_supervisor_here_restarts_its_child_on_another_node() {
    use subactor::{ChildSpec, NodeActor, OnNode, Strategy, SupervisorSpec};
    let nats = Nats::start(&[]);
    let b = Node::start(&nats.url(), "b", &[]);
    // The default failure detector (1.5 s): a node that a loaded machine holds up for
    // 600 ms is alive, and this test spawns on it.
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let crasher = PythonActor::new("procs", "Crasher").placement(subactor::Placement::Process);
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(2, Duration::from_secs(60))
                .child(ChildSpec::new(OnNode::new("b", crasher))),
        )
        .expect("supervisor");
    let child = sup.child::<NodeActor>(0).expect("child");
    assert_eq!(child.blocking_ask("x", TIMEOUT).expect("ask"), Value::from(("x", 1)));
    // The remote actor's process dies on b: the local side fails, the supervisor
    // restarts it, on b again.
    let died = child.blocking_ask("exit", TIMEOUT);
    assert!(died.is_err(), "{died:?}");
    eventually("restarted", || child.restarts() == 1);
    assert_eq!(child.blocking_ask("y", TIMEOUT).expect("ask"), Value::from(("y", 1)), "a fresh instance on b");
    // Node b goes: restarts on b fail, the intensity runs out, the supervisor fails.
    drop(b);
    eventually("the supervisor gave up", || sup.state() == subactor::ActorState::Stopped);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_supervised_actor_on_another_node_restarts_once_its_former_incarnation_has_ended() {
    // The local side of an actor on another node learns of a failure when the failed
    // message's error comes back, while the actor there is still ending (here its stopped
    // hook takes 1 s; a process actor's process exits): its name is still taken there. A
    // restart that spawned at once was refused ("already running") three times in a few
    // milliseconds, the supervisor gave up, and the child answered Stopped for good.
    use subactor::{ChildSpec, FailurePolicy, NodeActor, OnNode, Strategy, SupervisorSpec};
    let nats = Nats::start(&[]);
    let _b = Node::start(&nats.url(), "b", &[]);
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    let slow = |name: &str| {
        OnNode::new("b", PythonActor::new("services", "SlowToStop").name(name).on_failure(FailurePolicy::Stop))
    };

    // Its failure.
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(3, Duration::from_secs(60))
                .child(ChildSpec::new(slow("slow-to-stop"))),
        )
        .expect("supervisor");
    let local = sup.child::<NodeActor>(0).expect("child");
    assert!(local.blocking_ask("ping", TIMEOUT).is_ok());
    let first = rt.lookup_any("slow-to-stop").expect("the actor on b holds the name").id();
    let failed = local.blocking_ask(Value::Tuple(vec![Value::from("raise")]), TIMEOUT);
    assert!(failed.is_err(), "{failed:?}");
    let answer = local.blocking_ask("ping", TIMEOUT);
    assert!(answer.is_ok(), "the restarted child answers: {answer:?}");
    assert_eq!(local.restarts(), 1, "one restart, not refused");
    let named = rt.lookup_any("slow-to-stop").expect("the new actor holds the name");
    assert_ne!(named.id(), first, "a new actor on b");
    sup.stop();
    sup.blocking_wait();

    // A restart the supervisor asks for (a sibling failed): the former actor is stopped,
    // and its stop takes its stopped hook's time too.
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForAll)
                .intensity(3, Duration::from_secs(60))
                .child(ChildSpec::new(slow("slow-to-stop-2")))
                .child(ChildSpec::new(PythonActor::new("services", "Stateful"))),
        )
        .expect("supervisor");
    let local = sup.child::<NodeActor>(0).expect("child");
    let sibling: AnyRef = sup.child::<subactor::PyActor>(1).expect("sibling").into();
    assert!(local.blocking_ask("ping", TIMEOUT).is_ok());
    assert!(sibling.blocking_ask(Value::Tuple(vec![Value::from("crash")]), TIMEOUT).is_err(), "the sibling fails");
    eventually("restarted with its sibling", || local.restarts() == 1);
    let answer = local.blocking_ask("ping", TIMEOUT);
    assert!(answer.is_ok(), "the restarted child answers: {answer:?}");
    assert_eq!(local.restarts(), 1, "one restart, not refused");
    assert_eq!(sup.state(), subactor::ActorState::Running);
    sup.stop();
    sup.blocking_wait();
    rt.shutdown().expect("shutdown");
}

/// A state kept in the cluster's key-value store outlives the runtime: the same actor
/// started by a new runtime on another node restores it, in both placements, whatever
/// its size (past NATS's 1 MiB message, it is kept in parts).
#[test]
fn a_state_kept_in_the_cluster_is_restored_by_a_new_runtime_on_another_node() {
    use subactor::{FailurePolicy, Placement, Snapshots, StateStore};
    let nats = Nats::start(&[]);
    let blob = |placement: Placement, name: &str| {
        PythonActor::new("services", "Blob")
            .placement(placement)
            .name(name)
            .snapshots(Snapshots::EveryMessage)
            .state_store(StateStore::Cluster)
            .on_failure(FailurePolicy::Restart)
    };
    // 3.5 MiB that no two parts share.
    let big: Vec<u8> = (0..(7_u32 << 19)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (i, placement) in [Placement::Interpreter, Placement::Process].into_iter().enumerate() {
        let name = format!("blob-{placement:?}");
        let rt = join(&nats.url(), &format!("a{i}"));
        let actor = rt.spawn(blob(placement, &name)).expect("starts");
        assert_eq!(actor.blocking_ask(("set", "small"), TIMEOUT).expect("set"), Value::from(5));
        let size = i64::try_from(big.len()).expect("small");
        assert_eq!(actor.blocking_ask(("set", Value::Bytes(big.clone())), TIMEOUT).expect("set"), Value::from(size));
        rt.shutdown().expect("shutdown");

        // Another node, another runtime: the big state comes back whole.
        let rt = join(&nats.url(), &format!("c{i}"));
        let actor = rt.spawn(blob(placement, &name)).expect("starts again");
        assert_eq!(actor.blocking_ask("get", TIMEOUT).expect("get"), Value::Bytes(big.clone()), "{placement:?}");
        // Parts of the other slot, then a whole value again, then parts: each switch is
        // read back.
        let bigger: Vec<u8> = big.iter().chain(big.iter()).map(|b| b ^ 0x5a).collect();
        actor.blocking_ask(("set", Value::Bytes(bigger.clone())), TIMEOUT).expect("set");
        actor.stop();
        actor.blocking_wait();
        let actor = rt.spawn(blob(placement, &name)).expect("starts again");
        assert_eq!(actor.blocking_ask("get", TIMEOUT).expect("get"), Value::Bytes(bigger));
        actor.blocking_ask(("set", "whole"), TIMEOUT).expect("set");
        actor.stop();
        actor.blocking_wait();
        let actor = rt.spawn(blob(placement, &name)).expect("starts again");
        assert_eq!(actor.blocking_ask("get", TIMEOUT).expect("get"), Value::from("whole"));
        actor.blocking_ask(("set", Value::Bytes(big.clone())), TIMEOUT).expect("set");
        actor.stop();
        actor.blocking_wait();
        let actor = rt.spawn(blob(placement, &name)).expect("starts again");
        assert_eq!(actor.blocking_ask("get", TIMEOUT).expect("get"), Value::Bytes(big.clone()));

        // What cannot be kept fails the message, clearly, and the kept state stays.
        let refused = actor.blocking_ask(("fraction",), TIMEOUT).expect_err("an untrusted cluster");
        assert!(format!("{refused:?}").contains("pickled"), "{refused:?}");
        eventually("restarted after the refused snapshot", || actor.restarts() == 1);
        assert_eq!(actor.blocking_ask("get", TIMEOUT).expect("get"), Value::Bytes(big.clone()));
        actor.stop();
        actor.blocking_wait();

        // A cluster store needs a name.
        let unnamed = PythonActor::new("services", "Blob")
            .placement(placement)
            .snapshots(Snapshots::EveryMessage)
            .state_store(StateStore::Cluster);
        let error = rt.spawn(unnamed).expect_err("needs a name");
        assert!(error.to_string().contains("needs a name"), "{error}");
        rt.shutdown().expect("shutdown");
    }
    // A trusted cluster keeps pickled states.
    let rt = join_with(ClusterConfig::new([nats.url()], "t").trusted(true));
    let actor = rt.spawn(blob(Placement::Interpreter, "fraction")).expect("starts");
    actor.blocking_ask(("fraction",), TIMEOUT).expect("kept");
    actor.stop();
    actor.blocking_wait();
    let actor = rt.spawn(blob(Placement::Interpreter, "fraction")).expect("starts again");
    let back = actor.blocking_ask("get", TIMEOUT).expect("get");
    assert!(matches!(back, Value::Pickled(_)), "the Fraction, pickled on its way here: {back:?}");
    rt.shutdown().expect("shutdown");

    // Without a cluster, the store is refused at spawn.
    let rt = Runtime::builder().python_path([PYTHON]).build().expect("a runtime");
    let error = rt.spawn(blob(Placement::Interpreter, "nowhere")).expect_err("no cluster");
    assert!(error.to_string().contains("joined a cluster"), "{error}");
    rt.shutdown().expect("shutdown");
}

/// The long-running service options travel with a spawn on another node: an asyncio
/// actor's `max_concurrency` (in a process there), its snapshot policy and a cluster
/// store. The state follows the actor: after its node is lost, the same actor spawned on
/// another node restores it; and a supervisor here that restarts an [`OnNode`] child
/// (a new spawn on that node, whose memory store would be empty) restores it too.
#[test]
fn service_options_travel_to_other_nodes_and_a_state_in_the_cluster_follows_the_actor() {
    use subactor::{
        ChildSpec, FailurePolicy, NodeActor, OnNode, Placement, Snapshots, StateStore, Strategy, SupervisorSpec,
    };
    let nats = Nats::start(&[]);
    let b = Node::start(&nats.url(), "b", &[]);
    let _c = Node::start(&nats.url(), "c", &[]);
    // The default failure detector (1.5 s): a node that a loaded machine holds up for
    // 600 ms is alive, and this test spawns on it (c, b's peer, uses the default too).
    let rt = join(&nats.url(), "a");
    wait_for(&rt, "b");
    wait_for(&rt, "c");
    let tuple = |items: Vec<Value>| Value::Tuple(items);

    // max_concurrency on b, in a process: 20 sleeps of 200 ms reach 10 at once.
    let concurrent = rt
        .spawn_on("b", PythonActor::new("services", "Concurrent").placement(Placement::Process).max_concurrency(10))
        .expect("spawn");
    let askers: Vec<_> = (0..20)
        .map(|_| {
            let actor = concurrent.clone();
            std::thread::spawn(move || {
                actor.blocking_ask(Value::Tuple(vec![Value::from("sleep"), Value::Float(0.2)]), TIMEOUT)
            })
        })
        .collect();
    for asker in askers {
        asker.join().expect("joins").expect("answered");
    }
    let peak = concurrent.blocking_ask(tuple(vec![Value::from("peak")]), TIMEOUT).expect("peak");
    assert_eq!(peak, Value::from(10), "max_concurrency applies on b");

    // A state in the cluster, kept by an actor on b, restored on c once b is lost.
    let kept = |placement: Placement| {
        PythonActor::new("services", "Stateful")
            .placement(placement)
            .name("kept")
            .snapshots(Snapshots::EveryMessage)
            .state_store(StateStore::Cluster)
    };
    let add = |n: i64| tuple(vec![Value::from("add"), Value::from(n)]);
    let on_b = rt.spawn_on("b", kept(Placement::Interpreter)).expect("spawn on b");
    on_b.blocking_ask(add(40), TIMEOUT).expect("add");
    on_b.blocking_ask(add(2), TIMEOUT).expect("add");
    drop(b);
    eventually("b is down", || rt.cluster().expect("cluster").nodes().iter().any(|n| n.name == "b" && !n.up));
    // The name is b's until c has seen b go too.
    let deadline = Instant::now() + TIMEOUT;
    let on_c = loop {
        match rt.spawn_on("c", kept(Placement::Process)) {
            Ok(actor) => break actor,
            Err(error) if Instant::now() < deadline => {
                assert!(error.to_string().contains("taken") || error.to_string().contains("name"), "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("cannot spawn on c: {error}"),
        }
    };
    assert_eq!(on_c.blocking_ask("total", TIMEOUT).expect("total"), Value::from(42), "restored on c");
    assert_eq!(on_c.blocking_ask("restored", TIMEOUT).expect("restored"), Value::from(42));
    on_c.stop();

    // A supervisor here restarts its child on c: a new spawn there, restored.
    let child = PythonActor::new("services", "Stateful")
        .placement(Placement::Process)
        .name("supervised-kept")
        .snapshots(Snapshots::EveryMessage)
        .state_store(StateStore::Cluster)
        .on_failure(FailurePolicy::Stop);
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(3, Duration::from_secs(60))
                .child(ChildSpec::new(OnNode::new("c", child))),
        )
        .expect("supervisor");
    let local = sup.child::<NodeActor>(0).expect("child");
    assert_eq!(local.blocking_ask(add(5), TIMEOUT).expect("add"), Value::from(5));
    assert!(local.blocking_ask(tuple(vec![Value::from("exit")]), TIMEOUT).is_err(), "its process exits on c");
    eventually("restarted", || local.restarts() == 1);
    let deadline = Instant::now() + TIMEOUT;
    let total = loop {
        match local.blocking_ask("total", TIMEOUT) {
            Ok(total) => break total,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("the restarted child does not answer: {error:?}"),
        }
    };
    assert_eq!(total, Value::from(5), "the restart on c restored the state from the cluster");
    sup.stop();
    sup.blocking_wait();
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_name_is_free_again_as_soon_as_its_actor_ended() {
    // The cluster's registry entry of an ended actor is deleted in the background; a
    // restart (or a new spawn) under the same name on the same node must not wait for it.
    let nats = Nats::start(&[]);
    let rt = join(&nats.url(), "a");
    for round in 0..20 {
        let actor = rt
            .spawn(PythonActor::new("actors", "Echo").name("again"))
            .unwrap_or_else(|error| panic!("round {round}: the name is still taken: {error}"));
        assert_eq!(actor.blocking_ask(round, TIMEOUT).expect("ask"), Value::from(round));
        assert_eq!(rt.lookup_any("again").as_ref(), Some(&actor.clone().into()));
        actor.stop();
        actor.blocking_wait();
    }
    // A live holder still keeps it.
    let holder = rt.spawn(PythonActor::new("actors", "Echo").name("again")).expect("spawn");
    assert!(rt.spawn(PythonActor::new("actors", "Echo").name("again")).is_err(), "taken while its actor lives");
    holder.stop();
    rt.shutdown().expect("shutdown");
}
