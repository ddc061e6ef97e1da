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
