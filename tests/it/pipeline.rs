//! Pipelines of Python actors.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use subactor::{AnyRef, Output, Pipeline, PythonActor, ReceiveError, Routing, Runtime, Value};

use crate::common::{rss_kib, runtime};

fn workers(rt: &Runtime, class: &str, args: impl Into<Value>, count: usize) -> Vec<AnyRef> {
    let spec = PythonActor::new("stages", class).args(args);
    rt.spawn_workers(&spec, count).expect("workers").into_iter().map(Into::into).collect()
}

/// Sends `items` while a thread collects the outputs; returns them all.
fn run(mut pipeline: Pipeline, items: impl IntoIterator<Item = Value>) -> Vec<Output> {
    let outputs = pipeline.outputs();
    let consumer = std::thread::spawn(move || outputs.iter().collect::<Vec<_>>());
    for item in items {
        pipeline.send(item).expect("send");
    }
    pipeline.close();
    consumer.join().expect("consumer")
}

#[test]
fn every_item_goes_through_every_stage_once() {
    let rt = runtime();
    let pipeline = Pipeline::builder()
        .stage("double", workers(&rt, "Double", (), 2), Routing::RoundRobin)
        .stage("add", workers(&rt, "AddOne", (), 2), Routing::LeastLoaded)
        .stage("double again", workers(&rt, "Double", (), 1), Routing::RoundRobin)
        .build()
        .expect("build");
    let outputs = run(pipeline, (0..2000).map(Value::from));
    assert_eq!(outputs.len(), 2000);
    let mut seen = vec![false; 2000];
    for output in outputs {
        let Output::Item { seq, value } = output else { panic!("unexpected {output:?}") };
        assert!(!std::mem::replace(&mut seen[seq as usize], true), "item {seq} came out twice");
        assert_eq!(value, Value::from((seq as i64 * 2 + 1) * 2));
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn ordered_output_keeps_the_input_order() {
    let rt = runtime();
    // Two workers of unequal speed would reorder items; ordered mode puts them back.
    let mut fast_and_slow = workers(&rt, "Delay", (0.0,), 1);
    fast_and_slow.extend(workers(&rt, "Delay", (0.01,), 1));
    let mut pipeline =
        Pipeline::builder().stage("delay", fast_and_slow, Routing::LeastLoaded).ordered(true).build().expect("build");
    let feeder = std::thread::spawn(move || {
        for i in 0..100 {
            pipeline.send(i).expect("send");
        }
        pipeline.finish()
    });
    let outputs = feeder.join().expect("feeder");
    let order: Vec<u64> = outputs.iter().map(Output::seq).collect();
    assert_eq!(order, (0..100).collect::<Vec<_>>());
    rt.shutdown().expect("shutdown");
}

#[test]
fn failures_name_the_stage_and_the_item_and_the_rest_goes_on() {
    let rt = runtime();
    let pipeline = Pipeline::builder()
        .stage("double", workers(&rt, "Double", (), 1), Routing::RoundRobin)
        .stage("check", workers(&rt, "Refuse", (14,), 2), Routing::RoundRobin)
        .build()
        .expect("build");
    let outputs = run(pipeline, (0..700).map(Value::from));
    assert_eq!(outputs.len(), 700, "failures are reported with the outputs, not lost");
    let mut failed = Vec::new();
    for output in outputs {
        match output {
            Output::Item { seq, value } => assert_eq!(value, Value::from(seq as i64 * 2)),
            Output::Failed(failure) => {
                assert_eq!(&*failure.stage, "check");
                let error = failure.error.downcast_ref::<ReceiveError>().expect("a Python actor's error");
                let exception = error.exception().expect("an exception");
                assert_eq!(exception.type_name, "ValueError");
                assert_eq!(exception.message, format!("{} is refused", failure.seq * 2));
                assert!(failure.to_string().contains(&format!("item {} failed in stage \"check\"", failure.seq)));
                failed.push(failure.seq);
            }
        }
    }
    failed.sort_unstable();
    assert_eq!(failed, (0..700).filter(|n| n % 7 == 0).collect::<Vec<_>>());
    rt.shutdown().expect("shutdown");
}

#[test]
fn least_loaded_routing_favours_the_faster_worker() {
    let rt = runtime();
    let fast = workers(&rt, "Delay", (0.0,), 1);
    let slow = workers(&rt, "Delay", (0.02,), 1);
    let (fast_id, slow_id) = (fast[0].id().as_u64(), slow[0].id().as_u64());
    let count = |routing| {
        let workers = vec![fast[0].clone(), slow[0].clone()];
        let pipeline = Pipeline::builder().stage("delay", workers, routing).build().expect("build");
        let mut by_worker: HashMap<u64, usize> = HashMap::new();
        for output in run(pipeline, (0..100).map(Value::from)) {
            let Output::Item { value, .. } = output else { panic!("unexpected {output:?}") };
            *by_worker.entry(u64::try_from(value).expect("id")).or_default() += 1;
        }
        (by_worker.get(&fast_id).copied().unwrap_or(0), by_worker.get(&slow_id).copied().unwrap_or(0))
    };
    assert_eq!(count(Routing::RoundRobin), (50, 50), "round-robin alternates");
    let (to_fast, to_slow) = count(Routing::LeastLoaded);
    assert_eq!(to_fast + to_slow, 100);
    assert!(to_fast > 80, "least-loaded sends most items to the fast worker: {to_fast} vs {to_slow}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_stopped_worker_fails_its_items_and_the_others_take_over() {
    let rt = runtime();
    let pool = workers(&rt, "Delay", (0.001,), 2);
    let victim = pool[0].clone();
    let pipeline = Pipeline::builder().stage("delay", pool, Routing::RoundRobin).build().expect("build");
    let outputs = pipeline.outputs();
    let consumer = std::thread::spawn(move || outputs.iter().collect::<Vec<_>>());
    let mut pipeline = pipeline;
    for i in 0..400 {
        if i == 100 {
            victim.kill();
        }
        pipeline.send(i).expect("send");
    }
    pipeline.close();
    let outputs = consumer.join().expect("consumer");
    assert_eq!(outputs.len(), 400, "every item is accounted for");
    let failed = outputs.iter().filter(|o| matches!(o, Output::Failed(_))).count();
    let handled_after_kill = outputs.iter().filter(|o| o.seq() >= 300 && matches!(o, Output::Item { .. })).count();
    assert_eq!(handled_after_kill, 100, "after the kill, the surviving worker takes every item");
    assert!(failed < 400);
    rt.shutdown().expect("shutdown");
}

/// A million items, a fast source and a slow last stage: memory stays bounded because
/// every queue is, and no item is lost or duplicated.
#[test]
fn a_million_items_with_a_slow_last_stage_keep_memory_bounded() {
    const ITEMS: u64 = 1_000_000;
    let rt = runtime();
    let pipeline = Pipeline::builder()
        .stage("measure", workers(&rt, "Measure", (), 1), Routing::RoundRobin)
        .stage("slow", workers(&rt, "Slow", (), 1), Routing::RoundRobin)
        .build()
        .expect("build");
    let baseline = rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Each item carries 200 bytes: held all at once, a million would take 200+ MB.
    let payload = "x".repeat(200);
    let outputs = pipeline.outputs();
    let consumer = std::thread::spawn(move || {
        let mut seen = vec![false; ITEMS as usize];
        let mut count = 0u64;
        for output in outputs.iter() {
            let Output::Item { seq, value } = output else { panic!("unexpected {output:?}") };
            assert_eq!(value, Value::Int(200), "item {seq}");
            assert!(!std::mem::replace(&mut seen[seq as usize], true), "item {seq} came out twice");
            count += 1;
        }
        count
    });
    let mut pipeline = pipeline;
    for _ in 0..ITEMS {
        pipeline.send(payload.as_str()).expect("send");
    }
    pipeline.close();
    let count = consumer.join().expect("consumer");
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    assert_eq!(count, ITEMS, "no item lost");
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB for {ITEMS} items");
    rt.shutdown().expect("shutdown");
}
