//! The endpoint over real HTTP, against a system of Rust actors.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use subactor_core::{
    Actor, ActorContext, ActorSystem, ChildSpec, FailurePolicy, NeverFails, Props, Strategy, SupervisorSpec,
};

use super::{ObserveConfig, ObserveError, Observer};

struct Echo;

#[derive(Debug, thiserror::Error)]
#[error("echo refuses {0}")]
struct Refused(u64);

impl Actor for Echo {
    type Msg = u64;
    type Reply = u64;
    type Error = Refused;

    fn handle(&mut self, _ctx: &ActorContext<Self>, n: u64) -> Result<u64, Refused> {
        if n == 1000 { Err(Refused(n)) } else { Ok(n) }
    }
}

fn echo() -> Props<impl FnMut() -> Result<Echo, NeverFails> + Send + Clone + 'static> {
    Props::new(|| Ok(Echo))
}

/// A plain HTTP/1.1 GET: the status line, the headers, the body.
fn get(addr: std::net::SocketAddr, path: &str) -> (String, Vec<String>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines().map(str::to_owned);
    let status = lines.next().expect("a status line");
    (status, lines.collect(), body.to_owned())
}

/// The value of the sample `name{labels}` in a Prometheus text body, where `labels`
/// are some of the sample's labels.
fn sample(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            return None;
        }
        let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        all.then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn prometheus_text_counts_what_actors_did() {
    let system = ActorSystem::builder().metrics(true).build();
    let a = system.spawn(echo().name("echo")).expect("spawn");
    for n in 0..20_u64 {
        a.blocking_ask(n, Duration::from_secs(1)).expect("ask");
    }
    assert!(a.blocking_ask(1000_u64, Duration::from_secs(1)).is_err());
    let sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .name("sup")
                .child(ChildSpec::new(echo().name("kid").on_failure(FailurePolicy::Restart))),
        )
        .expect("spawn");
    let mut observer = Observer::start(system.clone(), ObserveConfig::at("127.0.0.1:0")).expect("start");
    assert!(observer.addr().ip().is_loopback());
    let (status, headers, body) = get(observer.addr(), "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(headers.iter().any(|h| h.to_ascii_lowercase().starts_with("content-type: text/plain; version=0.0.4")));
    let me = [("actor", "echo"), ("placement", "thread"), ("kind", "Echo")];
    assert_eq!(sample(&body, "subactor_actor_messages_handled_total", &me), Some(21.0), "{body}");
    assert_eq!(sample(&body, "subactor_actor_messages_failed_total", &me), Some(1.0));
    assert_eq!(sample(&body, "subactor_actor_restarts_total", &[("actor", "kid")]), Some(0.0));
    assert_eq!(sample(&body, "subactor_actor_mailbox_capacity", &me), Some(1024.0));
    let count = sample(&body, "subactor_actor_handler_seconds_count", &me).expect("a histogram");
    assert!((2.0..=21.0).contains(&count), "sampled: {count}");
    assert!(sample(&body, "subactor_actor_handler_seconds_bucket", &[("actor", "echo"), ("le", "+Inf")]).is_some());
    assert_eq!(sample(&body, "subactor_messages_handled_total", &[]), Some(21.0));
    assert_eq!(sample(&body, "subactor_actors_spawned_total", &[]), Some(3.0));
    assert_eq!(sample(&body, "subactor_actors", &[("placement", "thread"), ("state", "running")]), Some(3.0));
    assert!(sample(&body, "subactor_spawn_seconds_count", &[("placement", "thread")]).is_some());
    // Every line is a comment or a sample of a family that was declared.
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().expect("a name");
        let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        assert!(body.contains(&format!("# TYPE {family} ")) || body.contains(&format!("# TYPE {name} ")), "{line}");
    }
    drop(sup);
    observer.stop();
    system.shutdown();
}

#[test]
fn json_snapshot_history_page_and_events() {
    let system = ActorSystem::builder().metrics(true).build();
    let a = system.spawn(echo().name("echo")).expect("spawn");
    let config = ObserveConfig { interval: Duration::from_millis(50), ..ObserveConfig::at("127.0.0.1:0") };
    let observer = Observer::start(system.clone(), config).expect("start");
    let (status, _, page) = get(observer.addr(), "/");
    assert!(status.contains("200") && page.contains("<title>subactor: live view</title>"));
    a.blocking_ask(1_u64, Duration::from_secs(1)).expect("ask");
    let (_, headers, body) = get(observer.addr(), "/api/metrics");
    assert!(headers.iter().any(|h| h.eq_ignore_ascii_case("content-type: application/json")));
    let snap: serde_json::Value = serde_json::from_str(&body).expect("json");
    let actor = &snap["actors"][0];
    assert_eq!((actor["name"].as_str(), actor["handled"].as_u64()), (Some("echo"), Some(1)));
    assert_eq!(actor["placement"], "thread");
    // Events: read two snapshots off the stream; the second carries rates.
    let mut stream = TcpStream::connect(observer.addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    let mut reader = BufReader::new(stream);
    let mut snapshots = Vec::new();
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshots.len() < 2 && Instant::now() < deadline {
        line.clear();
        reader.read_line(&mut line).expect("a line");
        if let Some(data) = line.strip_prefix("data: ") {
            snapshots.push(serde_json::from_str::<serde_json::Value>(data.trim()).expect("json"));
        }
    }
    assert_eq!(snapshots.len(), 2);
    assert!(snapshots[0]["totals"]["rate"].is_null(), "no rate before a second snapshot");
    assert!(snapshots[1]["totals"]["rate"].as_f64().is_some());
    // The history fills once a second.
    std::thread::sleep(Duration::from_millis(2200));
    let (_, _, history) = get(observer.addr(), "/api/history");
    let history: serde_json::Value = serde_json::from_str(&history).expect("json");
    assert!(!history.as_array().expect("points").is_empty(), "{history}");
    // Stopping ends the open event stream too.
    drop(observer);
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    system.shutdown();
}

#[test]
fn a_taken_port_or_a_bad_address_is_an_error() {
    let system = ActorSystem::builder().build();
    let first = Observer::start(system.clone(), ObserveConfig::at("127.0.0.1:0")).expect("start");
    let taken = Observer::start(system.clone(), ObserveConfig::at(first.addr().to_string()));
    assert!(matches!(taken, Err(ObserveError::Bind { .. })), "{taken:?}");
    let bad = Observer::start(system.clone(), ObserveConfig::at("no port here"));
    assert!(matches!(bad, Err(ObserveError::BadAddress(_))), "{bad:?}");
    // Metrics off: the endpoint still shows the actors, with zero counts.
    let _a = system.spawn(echo().name("quiet")).expect("spawn");
    let (_, _, body) = get(first.addr(), "/api/metrics");
    let snap: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(snap["enabled"], false);
    assert_eq!(snap["actors"][0]["name"], "quiet");
    system.shutdown();
}

#[test]
fn top_renders_the_tree_from_the_endpoint() {
    let system = ActorSystem::builder().metrics(true).build();
    let _sup = system
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .name("pool")
                .child(ChildSpec::new(echo().name("worker-a")))
                .child(ChildSpec::new(echo().name("worker-b"))),
        )
        .expect("spawn");
    let lone = system.spawn(echo().name("lone")).expect("spawn");
    lone.blocking_ask(5_u64, Duration::from_secs(1)).expect("ask");
    let observer = Observer::start(system.clone(), ObserveConfig::at("127.0.0.1:0")).expect("start");
    let endpoint = observer.addr().to_string();
    assert_eq!(crate::top::snapshot_url(&endpoint), format!("http://{endpoint}/api/metrics"));
    assert_eq!(crate::top::snapshot_url(&format!("http://{endpoint}/")), format!("http://{endpoint}/api/metrics"));
    let snap = crate::top::fetch(&endpoint, Duration::from_secs(5)).expect("fetch");
    let screen = crate::top::render(&snap, 200);
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[0].starts_with("subactor  actors 4"), "{screen}");
    let row = |name: &str| lines.iter().position(|l| l.contains(name)).unwrap_or_else(|| panic!("{name}: {screen}"));
    // The children under their supervisor, drawn as a tree.
    assert!(row("pool") < row("worker-a") && row("worker-a") < row("worker-b"), "{screen}");
    assert!(lines[row("worker-a")].starts_with("├─ worker-a") && lines[row("worker-b")].starts_with("└─ worker-b"));
    assert!(lines[row("lone")].contains("thread") && lines[row("lone")].contains("running"), "{screen}");
    // Nothing listening: a clear error.
    drop(observer);
    let gone = crate::top::fetch(&endpoint, Duration::from_secs(2));
    assert!(matches!(gone, Err(crate::top::TopError::Fetch { .. })), "{gone:?}");
    system.shutdown();
}

/// A handler that asks another actor, within a root span: the second handler's span is
/// the first's child, which is the root's.
#[cfg(feature = "otel")]
#[test]
fn the_handlers_span_is_a_child_of_the_senders() {
    use opentelemetry::trace::SpanId;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use subactor_core::ActorRef;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    struct Relay(ActorRef<Echo>);
    impl Actor for Relay {
        type Msg = u64;
        type Reply = u64;
        type Error = Refused;
        fn handle(&mut self, _ctx: &ActorContext<Self>, n: u64) -> Result<u64, Refused> {
            tracing::info!("relaying");
            self.0.blocking_ask(n + 1, Duration::from_secs(5)).map_err(|_| Refused(n))
        }
    }

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    tracing_subscriber::registry().with(crate::otel::layer(&provider)).try_init().expect("the only subscriber");
    assert!(!subactor_core::trace::enabled());
    assert!(subactor_core::trace::install(Box::new(crate::otel::OtelPropagator)));

    let system = ActorSystem::builder().build();
    let b = system.spawn(echo().name("b")).expect("spawn");
    let a = system.spawn(Props::new(move || Ok::<_, NeverFails>(Relay(b.clone()))).name("a")).expect("spawn");
    let root = tracing::info_span!("root");
    let root_id = {
        let _entered = root.enter();
        assert_eq!(a.blocking_ask(1_u64, Duration::from_secs(5)).expect("ask"), 2);
        let current = subactor_core::trace::current().expect("the root's context");
        assert_eq!(
            current.span_id,
            crate::otel::trace_context(&{
                use opentelemetry::trace::TraceContextExt as _;
                use tracing_opentelemetry::OpenTelemetrySpanExt as _;
                root.context().span().span_context().clone()
            })
            .expect("valid")
            .span_id
        );
        current
    };
    // A message sent outside any span carries nothing: its handler's span is a root.
    a.blocking_ask(10_u64, Duration::from_secs(5)).expect("ask");
    drop(root);
    system.shutdown();
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let receive = |name: &str| -> Vec<SpanData> {
        spans
            .iter()
            .filter(|s| {
                s.name == "subactor.receive"
                    && s.attributes.iter().any(|kv| kv.key.as_str() == "actor.name" && kv.value.as_str() == name)
            })
            .cloned()
            .collect()
    };
    let (a_spans, b_spans) = (receive("a"), receive("b"));
    assert_eq!((a_spans.len(), b_spans.len()), (2, 2), "{spans:#?}");
    let traced_a = a_spans.iter().find(|s| s.parent_span_id != SpanId::INVALID).expect("a child of the root");
    assert_eq!(u64::from_be_bytes(traced_a.parent_span_id.to_bytes()), root_id.span_id);
    assert_eq!(u128::from_be_bytes(traced_a.span_context.trace_id().to_bytes()), root_id.trace_id);
    let traced_b = b_spans.iter().find(|s| s.parent_span_id == traced_a.span_context.span_id()).expect("a's child");
    assert_eq!(traced_b.span_context.trace_id(), traced_a.span_context.trace_id());
    // The untraced ask: a's span has no parent, b's is its child in a new trace.
    let root_a = a_spans.iter().find(|s| s.parent_span_id == SpanId::INVALID).expect("a root span");
    assert!(b_spans.iter().any(|s| s.parent_span_id == root_a.span_context.span_id()));
}
