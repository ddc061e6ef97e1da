//! Seeing the system: metrics of Python actors in every placement, and traces that follow
//! messages across interpreters, process actors and nodes (a real `nats-server`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use subactor::{
    ChildSpec, ClusterConfig, NodeActor, OnNode, Placement, PythonActor, Runtime, Strategy, SupervisorSpec, Value,
};
use subactor_observe::otel::{OtelPropagator, layer};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::common::{TIMEOUT, eventually};
use crate::nats::Nats;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// What the tests of this file observe, set up once per process (`tracing`'s subscriber
/// and the trace propagator are global): spans in an in-memory exporter, events of
/// target `subactor::python` kept as they come.
struct Global {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    logs: Arc<Mutex<Vec<LogEvent>>>,
}

/// A `tracing` event of a Python actor's `logging` record.
#[derive(Clone, Debug, Default)]
struct LogEvent {
    level: String,
    fields: BTreeMap<String, String>,
}

struct Capture(Arc<Mutex<Vec<LogEvent>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields<'a>(&'a mut BTreeMap<String, String>);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        if event.metadata().target() != "subactor::python" {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let level = event.metadata().level().to_string();
        self.0.lock().expect("the log").push(LogEvent { level, fields });
    }
}

fn global() -> &'static Global {
    static GLOBAL: OnceLock<Global> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing_subscriber::registry()
            .with(layer(&provider))
            .with(Capture(Arc::clone(&logs)))
            .try_init()
            .expect("the tests' subscriber");
        assert!(subactor::trace::install(Box::new(OtelPropagator)));
        Global { exporter, provider, logs }
    })
}

fn node(url: &str, name: &str) -> Runtime {
    Runtime::builder()
        .python_path([PYTHON])
        .metrics(true)
        .cluster(ClusterConfig::new([url], name))
        .build()
        .expect("joins the cluster")
}

#[test]
fn metrics_label_interpreters_processes_and_nodes() {
    let nats = Nats::start(&[]);
    let b = node(&nats.url(), "b");
    let a = node(&nats.url(), "a");
    assert!(a.cluster().expect("a cluster").wait_for_node("b", TIMEOUT));
    let sup = a
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .name("sup")
                .child(ChildSpec::new(PythonActor::new("actors", "Counter").name("here")))
                .child(ChildSpec::new(PythonActor::new("actors", "Counter").name("proc").placement(Placement::Process)))
                .child(ChildSpec::new(OnNode::new("b", PythonActor::new("actors", "Counter").name("there")))),
        )
        .expect("spawn");
    // The third child is the local side of the actor on b: what it is sent goes there.
    let there: subactor::AnyRef = sup.child::<NodeActor>(2).expect("the node's child").into();
    for actor in [a.lookup_any("here").expect("running"), a.lookup_any("proc").expect("running"), there] {
        for _ in 0..10 {
            actor.blocking_tell(Value::from(1)).expect("tell");
        }
        assert_eq!(actor.blocking_ask(Value::from(0), TIMEOUT).expect("ask"), Value::from(10));
    }
    let m = a.metrics();
    let sup_id = sup.id();
    let row = |name: &str| m.named(name).unwrap_or_else(|| panic!("{name} in {:?}", m.actors)).clone();
    let (here, proc, there) = (row("here"), row("proc"), row("there@local"));
    assert_eq!((here.placement_label(), here.handled, here.parent), ("interpreter", 11, Some(sup_id)));
    assert_eq!((proc.placement_label(), proc.handled, proc.parent), ("process", 11, Some(sup_id)));
    assert_eq!((there.placement_label(), there.node.as_deref(), there.handled), ("node", Some("b"), 11));
    // On b, the actor itself is an interpreter actor of b's.
    let on_b = b.metrics();
    let remote = on_b.named("there").expect("on b");
    assert_eq!((remote.placement_label(), remote.handled), ("interpreter", 11));
    a.shutdown().expect("shutdown");
    b.shutdown().expect("shutdown");
}

#[test]
fn a_process_actors_batched_tells_record_their_handler_times() {
    let rt = Runtime::builder().python_path([PYTHON]).metrics(true).build().expect("runtime");
    let slow =
        rt.spawn(PythonActor::new("actors", "Sleeper").name("slow-proc").placement(Placement::Process)).expect("spawn");
    // Tells go to a process actor in batches (one round trip each); its child times
    // each handler and the parent records those times.
    for _ in 0..5 {
        slow.blocking_tell(Value::from(0.02)).expect("tell");
    }
    assert_eq!(slow.blocking_ask(Value::from("handled"), TIMEOUT).expect("ask"), Value::from(5));
    let m = rt.metrics();
    let row = m.named("slow-proc").expect("listed");
    assert_eq!(row.handled, 6);
    assert!(row.handler_time.count >= 5, "{:?}", row.handler_time);
    assert!(row.handler_time.sum >= 5.0 * 0.02, "the sleeps: {:?}", row.handler_time);
    assert!(row.handler_time.quantile(0.5).is_some_and(|p50| p50 >= 0.01), "{:?}", row.handler_time);
    // Many fast tells: every one is timed (not one in 16, as handlers in this process).
    let counter =
        rt.spawn(PythonActor::new("actors", "Counter").name("fast-proc").placement(Placement::Process)).expect("spawn");
    for _ in 0..2000 {
        counter.blocking_tell(Value::from(1)).expect("tell");
    }
    assert_eq!(counter.blocking_ask(Value::from(0), TIMEOUT).expect("ask"), Value::from(2000));
    let m = rt.metrics();
    let row = m.named("fast-proc").expect("listed");
    assert_eq!(row.handled, 2001);
    assert!((2000..=2001).contains(&row.handler_time.count), "{:?}", row.handler_time);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_trace_follows_messages_across_interpreters_processes_and_nodes() {
    let Global { exporter, provider, .. } = global();

    let nats = Nats::start(&[]);
    let b = node(&nats.url(), "b");
    let a = node(&nats.url(), "a");
    assert!(a.cluster().expect("a cluster").wait_for_node("b", TIMEOUT));
    let relay = a.spawn(PythonActor::new("talk", "Relay").name("relay")).expect("spawn");
    let in_process =
        a.spawn(PythonActor::new("actors", "Counter").name("in-process").placement(Placement::Process)).expect("spawn");
    let on_b = a.spawn_on("b", PythonActor::new("actors", "Counter").name("on-b")).expect("spawn");
    let ask = |to: subactor::AnyRef| {
        Value::dict([("op", Value::from("ask")), ("to", Value::Actor(to)), ("payload", Value::from(1))])
    };
    let root = tracing::info_span!("root");
    let root_context = {
        let _entered = root.enter();
        // Rust -> relay (an interpreter) -> a process actor; Rust -> relay -> node b.
        assert_eq!(relay.blocking_ask(ask(in_process.clone().into()), TIMEOUT).expect("ask"), Value::from(1));
        assert_eq!(relay.blocking_ask(ask(on_b.clone()), TIMEOUT).expect("ask"), Value::from(1));
        // Rust -> node b directly.
        assert_eq!(on_b.blocking_ask(Value::from(1), TIMEOUT).expect("ask"), Value::from(2));
        subactor::trace::current().expect("the root's context")
    };
    drop(root);
    let receive = |name: &str| {
        let _ = provider.force_flush();
        let spans = exporter.get_finished_spans().expect("spans");
        spans
            .into_iter()
            .filter(|s| {
                s.name == "subactor.receive"
                    && s.attributes.iter().any(|kv| kv.key.as_str() == "actor.name" && kv.value.as_str() == name)
            })
            .collect::<Vec<SpanData>>()
    };
    eventually("b's spans", || receive("on-b").len() == 2);
    let relays = receive("relay");
    let trace_id = u128::from_be_bytes(relays[0].span_context.trace_id().to_bytes());
    assert_eq!(trace_id, root_context.trace_id);
    assert_eq!(relays.len(), 2);
    for r in &relays {
        assert_eq!(u64::from_be_bytes(r.parent_span_id.to_bytes()), root_context.span_id, "the relay's parent");
    }
    let child_of = |s: &SpanData| relays.iter().any(|r| r.span_context.span_id() == s.parent_span_id);
    let processes = receive("in-process");
    assert_eq!(processes.len(), 1);
    assert!(child_of(&processes[0]), "the process actor's handler is the relay's child");
    let remote = receive("on-b");
    assert!(remote.iter().all(|s| u128::from_be_bytes(s.span_context.trace_id().to_bytes()) == trace_id));
    assert_eq!(remote.iter().filter(|s| child_of(s)).count(), 1, "node b: the relay's child");
    assert_eq!(
        remote.iter().filter(|s| u64::from_be_bytes(s.parent_span_id.to_bytes()) == root_context.span_id).count(),
        1,
        "node b: the root's child"
    );
    assert!(remote.iter().all(|s| s.parent_span_id != SpanId::INVALID), "none a root of its own");
    a.shutdown().expect("shutdown");
    b.shutdown().expect("shutdown");
}

#[test]
fn python_logging_in_actors_goes_to_tracing_with_the_actors_id_and_name() {
    let logs = &global().logs;
    let rt = Runtime::builder().python_path([PYTHON]).build().expect("runtime");
    let here = rt.spawn(PythonActor::new("logs", "Logger").name("log-here")).expect("spawn");
    let there =
        rt.spawn(PythonActor::new("logs", "Logger").name("log-proc").placement(Placement::Process)).expect("spawn");
    for (actor, text) in [(&here, "in an interpreter"), (&there, "in a process")] {
        for level in ["INFO", "WARNING", "ERROR"] {
            let msg = Value::from((level, text));
            assert_eq!(actor.blocking_ask(msg, TIMEOUT).expect("ask"), Value::from(text));
        }
    }
    let of = |name: &str| {
        logs.lock()
            .expect("the log")
            .iter()
            .filter(|e| e.fields.get("actor.name").map(String::as_str) == Some(name))
            .cloned()
            .collect::<Vec<_>>()
    };
    // The process actor's records come over its control link: they may trail its answers.
    eventually("the process actor's records", || of("log-proc").len() == 2);
    for (actor, name, text) in [(&here, "log-here", "in an interpreter"), (&there, "log-proc", "in a process")] {
        let events = of(name);
        // Python's default level (WARNING) holds: the INFO record is not emitted.
        let levels: Vec<&str> = events.iter().map(|e| e.level.as_str()).collect();
        assert_eq!(levels, ["WARN", "ERROR"], "{name}: {events:?}");
        for event in &events {
            assert_eq!(event.fields["actor.id"], actor.id().as_u64().to_string(), "{event:?}");
            assert_eq!(event.fields["logger"], "app.worker");
            assert_eq!(event.fields["message"], format!("handled {text}"));
        }
    }
    rt.shutdown().expect("shutdown");
}
