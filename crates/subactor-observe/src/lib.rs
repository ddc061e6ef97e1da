//! The observation endpoint of a subactor runtime: an HTTP server (opt-in, bound to
//! loopback by default) that serves
//!
//! - `GET /metrics`: the runtime's metrics in the Prometheus text format ([`prom`]);
//! - `GET /`: the live view, a page showing the supervision tree, each actor's
//!   placement, state, mailbox, message rate, restarts and last failure, the latest dead
//!   letters and a plot of the message rates over the last minutes;
//! - `GET /api/metrics`: the same snapshot as JSON ([`json`]), with rates over the last
//!   second (what `subactor top` reads);
//! - `GET /api/history`: the runtime's message rates, one point a second, for the last
//!   ten minutes;
//! - `GET /api/events`: server-sent events, a JSON snapshot every
//!   [`ObserveConfig::interval`] (250 ms by default), which the page renders.
//!
//! No Python here: it reads [`ActorSystem::metrics`]. The server runs on a thread of its
//! own (`subactor-observe`, a single-threaded Tokio runtime) and stops with
//! [`Observer::stop`] or when dropped.

pub mod json;
#[cfg(feature = "otel")]
pub mod otel;
pub mod prom;
pub mod top;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::Stream;
use subactor_core::ActorSystem;
use subactor_core::metrics::Metrics;
use tokio::sync::watch;

use crate::json::Rates;

/// The page of the live view.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// How many points of rate history are kept (one a second: ten minutes).
pub const HISTORY_POINTS: usize = 600;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The address is not of the form `host:port`.
    #[error("not an address to listen on: {0:?} (expected host:port, e.g. 127.0.0.1:9464)")]
    BadAddress(String),
    /// The server's thread or runtime could not start.
    #[error("cannot start the observation server: {0}")]
    Start(std::io::Error),
}

/// How the endpoint runs.
#[derive(Clone, Debug)]
pub struct ObserveConfig {
    /// Where to listen (`127.0.0.1:9464` by default; port 0 picks a free one, see
    /// [`Observer::addr`]). An address other than loopback exposes the runtime's
    /// metrics and actor names to the network: a warning is logged.
    pub addr: String,
    /// How often the live view's events are sent.
    pub interval: Duration,
}

impl Default for ObserveConfig {
    fn default() -> ObserveConfig {
        ObserveConfig { addr: "127.0.0.1:9464".to_owned(), interval: Duration::from_millis(250) }
    }
}

impl ObserveConfig {
    /// Listens on `addr` (`host:port`).
    pub fn at(addr: impl Into<String>) -> ObserveConfig {
        ObserveConfig { addr: addr.into(), ..ObserveConfig::default() }
    }
}

/// A point of the rate history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Seconds since the Unix epoch.
    pub at: f64,
    /// Messages handled per second.
    pub rate: f64,
    /// Messages failed per second.
    pub failure_rate: f64,
    /// Live actors.
    pub actors: usize,
}

struct Shared {
    system: ActorSystem,
    interval: Duration,
    /// The sampler's latest snapshot (the `before` of `/api/metrics`' rates).
    last: Mutex<Option<Metrics>>,
    history: Mutex<VecDeque<Point>>,
    stopping: watch::Receiver<bool>,
}

impl Shared {
    fn history(&self) -> Vec<Point> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }
}

/// A running observation endpoint; stops when dropped.
#[derive(Debug)]
pub struct Observer {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl Observer {
    /// Starts serving `system`'s metrics and live view at `config.addr`. The address is
    /// bound before this returns (a taken port is an error here, not later).
    pub fn start(system: ActorSystem, config: ObserveConfig) -> Result<Observer, ObserveError> {
        let addr: SocketAddr = match config.addr.parse() {
            Ok(addr) => addr,
            Err(_) => {
                use std::net::ToSocketAddrs as _;
                config
                    .addr
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or_else(|| ObserveError::BadAddress(config.addr.clone()))?
            }
        };
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the observation endpoint listens beyond this machine");
        }
        let listener =
            StdListener::bind(addr).map_err(|source| ObserveError::Bind { addr: config.addr.clone(), source })?;
        listener.set_nonblocking(true).map_err(ObserveError::Start)?;
        let addr = listener.local_addr().map_err(ObserveError::Start)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(ObserveError::Start)?;
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared {
            system,
            interval: config.interval.max(Duration::from_millis(10)),
            last: Mutex::new(None),
            history: Mutex::new(VecDeque::with_capacity(HISTORY_POINTS)),
            stopping: stopping.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("subactor-observe".into())
            .spawn(move || runtime.block_on(serve(listener, shared, stopping)))
            .map_err(ObserveError::Start)?;
        tracing::info!(%addr, "observation endpoint listening");
        Ok(Observer { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server (open event streams end) and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the observation server's thread panicked");
            }
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: StdListener, shared: Arc<Shared>, mut stopping: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "the observation endpoint cannot listen");
            return;
        }
    };
    tokio::spawn(sample(Arc::clone(&shared)));
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(prometheus_text))
        .route("/api/metrics", get(metrics_json))
        .route("/api/history", get(history))
        .route("/api/events", get(events))
        .with_state(shared);
    let shutdown = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(%error, "the observation endpoint failed");
    }
}

/// Takes a snapshot every second for the rate history.
async fn sample(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        let now = shared.system.metrics();
        let mut last = shared.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(before) = last.as_ref() {
            let rates = Rates::between(before, &now);
            let point = Point {
                at: now.at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                rate: rates.total.0,
                failure_rate: rates.total.1,
                actors: now.actors.len(),
            };
            let mut history = shared.history.lock().unwrap_or_else(PoisonError::into_inner);
            if history.len() == HISTORY_POINTS {
                history.pop_front();
            }
            history.push_back(point);
        }
        *last = Some(now);
    }
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn prometheus_text(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, prom::CONTENT_TYPE)], prom::encode(&shared.system.metrics()))
}

/// A JSON body (axum's `Json` needs a feature with more than this needs).
fn json_body(value: &serde_json::Value) -> impl IntoResponse + use<> {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string())
}

async fn metrics_json(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let now = shared.system.metrics();
    let last = shared.last.lock().unwrap_or_else(PoisonError::into_inner);
    let rates = last.as_ref().map(|before| Rates::between(before, &now));
    json_body(&json::snapshot(&now, rates.as_ref()))
}

fn points(points: &[Point]) -> serde_json::Value {
    points
        .iter()
        .map(|p| serde_json::json!({"at": p.at, "rate": p.rate, "failure_rate": p.failure_rate, "actors": p.actors}))
        .collect()
}

async fn history(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    json_body(&points(&shared.history()))
}

/// One event a tick: the snapshot, with rates since the previous event, and the
/// latest point of the history.
async fn events(State(shared): State<Arc<Shared>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Stream {
        shared: Arc<Shared>,
        previous: Option<Metrics>,
        first: bool,
        stopping: watch::Receiver<bool>,
    }
    let stopping = shared.stopping.clone();
    let start = Stream { shared, previous: None, first: true, stopping };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        if !s.first {
            let pause = tokio::time::sleep(s.shared.interval);
            tokio::select! {
                () = pause => {}
                _ = s.stopping.wait_for(|stop| *stop) => return None,
            }
        }
        if *s.stopping.borrow() {
            return None;
        }
        s.first = false;
        let started = Instant::now();
        let now = s.shared.system.metrics();
        let rates = s.previous.as_ref().map(|before| Rates::between(before, &now));
        let mut body = json::snapshot(&now, rates.as_ref());
        if let Some(point) = s.shared.history.lock().unwrap_or_else(PoisonError::into_inner).back() {
            body["point"] = points(std::slice::from_ref(point))[0].clone();
        }
        tracing::trace!(took = ?started.elapsed(), "snapshot for the live view");
        s.previous = Some(now);
        Some((Ok(Event::default().event("snapshot").data(body.to_string())), s))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests;
