//! subactor's cluster: runtimes on several machines as nodes of one actor system, over
//! NATS. No Python.
//!
//! A node is a runtime joined to a cluster ([`Cluster::connect`]). Nodes reach each
//! other only through NATS subjects (nothing listens on a port of subactor's own):
//! calls on another node's actors go through a per-node outbox ([`link`]), in batches
//! acknowledged by the receiver, which serves them against its own actors
//! ([`inbound`]). References travel as (node, id) and arrive usable anywhere
//! ([`handles`]). Names are unique across the cluster, in a JetStream key-value bucket.
//! Every node publishes a heartbeat; one that stays silent is declared down: calls to
//! it fail at once, tells waiting for it become dead letters here, and monitors of its
//! actors receive a `Down`.
//!
//! Across nodes only plain values travel unless the cluster is configured as trusted
//! ([`ClusterConfig::trusted`]): unpickling bytes from the network runs code.

mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handles;
mod inbound;
mod link;
mod parts;
mod proto;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use subactor_arena::Arena;
use subactor_core::codec::{self, Handles, RefAddr};
use subactor_core::{ActorId, ActorSystem, AnyRef, DeadLetters, Down, NameClaimError, NameService, StopReason, Value};
use subactor_wire::{ActorEnv, Call, Exports, Nodes, SpawnRequest};
use tracing::{debug, info, warn};

pub use config::{Auth, ClusterConfig};

use handles::ClusterHandles;
use link::{Link, NodeRef};
use proto::{Ack, Batch, Heartbeat, NameEntry, Replies, Wire};

/// Joining or using the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The configuration is not usable.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// NATS refused this node's credentials.
    #[error("NATS refused the credentials of node {node:?}: {reason}")]
    Authentication {
        /// The node.
        node: String,
        /// What NATS said.
        reason: String,
    },
    /// No NATS server could be reached.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The servers tried.
        urls: String,
        /// Why.
        reason: String,
    },
    /// Another live node has this name.
    #[error("a node named {0:?} is already in the cluster")]
    NodeNameTaken(String),
    /// The cluster's registry (JetStream key-value) is not available.
    #[error("the cluster's registry is not available (is JetStream enabled on the NATS servers?): {0}")]
    Registry(String),
    /// The tasks of the cluster could not start.
    #[error("cannot start the cluster's tasks: {0}")]
    Runtime(String),
}

/// Why a batch did not reach another node.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// NATS did not carry it, or no ack came: worth sending again.
    Transport(String),
    /// It cannot be sent, or the other node refused it for good: its calls fail.
    Refused(String),
}

/// A node of a cluster: this runtime's membership.
///
/// Cheap to clone. Leave the cluster with [`Cluster::leave`] (the `subactor` facade's
/// `Runtime::shutdown` does).
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

/// A node, as seen from this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Whether its heartbeats arrive.
    pub up: bool,
}

struct Peer {
    incarnation: u64,
    last_seen: Instant,
    up: bool,
    /// This incarnation said it leaves: a heartbeat of it that comes later (published
    /// just before it left) does not bring it back.
    left: bool,
}

/// Why a node is no longer in the cluster.
#[derive(Clone, Copy, Debug)]
enum Gone {
    /// It said it leaves.
    Left,
    /// Its heartbeats stopped.
    Silent,
    /// It came back as a new incarnation (what the old one had is gone).
    Restarted,
}

/// What the runtime gives the cluster once it is built.
struct Attached {
    system: ActorSystem,
    env: Arc<dyn ActorEnv>,
}

pub(crate) struct Inner {
    /// This cluster, weakly (for its tasks).
    me: Weak<Inner>,
    config: ClusterConfig,
    pub(crate) node: String,
    pub(crate) incarnation: u64,
    /// The cluster's tasks; `None` once left.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    pub(crate) client: async_nats::Client,
    registry: kv::Store,
    /// Actors' states (see [`state`]), opened on first use.
    states: tokio::sync::OnceCell<kv::Store>,
    exports: Arc<Exports>,
    attached: OnceLock<Attached>,
    handles: OnceLock<Arc<dyn Handles>>,
    links: Mutex<HashMap<String, Arc<Link>>>,
    peers: Mutex<HashMap<String, Peer>>,
    /// Actors of other nodes that local actors monitor: told `Down` if their node goes.
    watched: Mutex<HashMap<String, Vec<(RefAddr, AnyRef)>>>,
    /// Answers and acks waiting to be sent, by node (sent in bunches by the replier task).
    replies: Mutex<HashMap<String, Queued>>,
    /// Bunches of answers published without a reply subject and not yet acknowledged
    /// (by node and frame), each with the wake-up of the task that sends it again as a
    /// request if no ack comes (and lets go of it as soon as one does).
    unacked: Mutex<HashMap<(String, u64), tokio::sync::oneshot::Sender<()>>>,
    /// Bunches of answers from other nodes taken here, to acknowledge (by node, as
    /// `(its incarnation, frame)`): they ride on the next batch to that node, or go alone
    /// after [`ACK_DELAY`].
    owed: Mutex<HashMap<String, Vec<(u64, u64)>>>,
    replies_waiting: Arc<tokio::sync::Notify>,
    max_payload: usize,
    /// Numbers the bunches of answers this node sends (to tell their parts apart).
    reply_frames: std::sync::atomic::AtomicU64,
    left: AtomicBool,
}

/// How long an acknowledgement waits for a message that would carry it (a batch's ack
/// for the answers to its calls, a bunch of answers' for the next batch) before it goes
/// alone: longer than a short handler takes, short beside a retransmission.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(1);
/// How long a message published without a reply subject (a batch, a bunch of answers)
/// waits for its acknowledgement before it is sent again, as a request.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(1);

/// Forgets a bunch of answers as unacknowledged when its sending ends (acknowledged,
/// or its node gone).
struct Unacked {
    cluster: Weak<Inner>,
    key: (String, u64),
}

impl Drop for Unacked {
    fn drop(&mut self) {
        if let Some(inner) = self.cluster.upgrade() {
            lock(&inner.unacked).remove(&self.key);
        }
    }
}

/// What waits to be sent to one node by the replier task.
#[derive(Default)]
struct Queued {
    answers: Vec<(u64, subactor_wire::Answer)>,
    /// Acks of that node's batches, as `(the batch's incarnation, ack)`.
    acks: Vec<(u64, Ack)>,
    /// When the oldest of `acks` was queued: without answers to carry them, they go
    /// alone [`ACK_DELAY`] later.
    acks_since: Option<tokio::time::Instant>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Handles for frames without live handles (batches of already-encoded items, acks).
struct NoHandles;

impl Handles for NoHandles {
    fn encode_ref(&self, actor: &AnyRef) -> Result<RefAddr, String> {
        Err(format!("{actor:?} cannot travel here"))
    }
    fn decode_ref(&self, _addr: RefAddr) -> Result<AnyRef, String> {
        Err("no reference travels here".into())
    }
    fn encode_buffer(&self, _buffer: &subactor_arena::Buffer) -> Result<codec::BufferAddr, String> {
        Err("no buffer travels here".into())
    }
    fn decode_buffer(&self, _addr: codec::BufferAddr) -> Result<subactor_arena::Buffer, String> {
        Err("no buffer travels here".into())
    }
}

fn no_handles() -> Arc<dyn Handles> {
    static NONE: OnceLock<Arc<dyn Handles>> = OnceLock::new();
    Arc::clone(NONE.get_or_init(|| Arc::new(NoHandles)))
}

fn encode_plain<T: Serialize>(item: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    codec::encode_into(item, &mut out, &no_handles()).map_err(|e| e.to_string())?;
    Ok(out)
}

fn decode_plain<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    codec::decode_with(bytes, &no_handles()).map_err(|e| e.to_string())
}

impl Cluster {
    /// Joins the cluster: connects to NATS (failing clearly on refused credentials),
    /// opens the registry, and starts this node's heartbeat and subscriptions.
    pub fn connect(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        config.check().map_err(ClusterError::Config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("subactor-nats")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Runtime(e.to_string()))?;
        let handle = runtime.handle().clone();
        let (client, registry) = runtime.block_on(open(&config))?;
        let max_payload = client.server_info().max_payload.max(64 << 10);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let incarnation = u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(1) ^ u64::from(std::process::id());
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            node: config.node.clone(),
            config,
            incarnation,
            runtime: Mutex::new(Some(runtime)),
            handle,
            client,
            registry,
            states: tokio::sync::OnceCell::new(),
            exports: Arc::new(Exports::new()),
            attached: OnceLock::new(),
            handles: OnceLock::new(),
            links: Mutex::default(),
            peers: Mutex::default(),
            watched: Mutex::default(),
            replies: Mutex::default(),
            unacked: Mutex::default(),
            owed: Mutex::default(),
            replies_waiting: Arc::new(tokio::sync::Notify::new()),
            max_payload,
            reply_frames: std::sync::atomic::AtomicU64::new(1),
            left: AtomicBool::new(false),
        });
        inner.handle.block_on(inner.refuse_duplicate_name())?;
        inner.start_tasks()?;
        info!(node = %inner.node, "joined the cluster");
        Ok(Cluster { inner })
    }

    /// Gives the cluster the runtime it serves: its actor system (whose actors other
    /// nodes reach), what serving needs (spawning, timers), and its arena (where buffers
    /// from other nodes land). Call once, before other nodes' calls can be served.
    pub fn attach(&self, system: &ActorSystem, env: Arc<dyn ActorEnv>, arena: Arena) {
        let inner = &self.inner;
        inner.exports.set_dead_letters(system.dead_letter_sink());
        let _ = inner.attached.set(Attached { system: system.clone(), env });
        let handles: Arc<dyn Handles> = Arc::new(ClusterHandles {
            node: inner.node.clone(),
            exports: Arc::clone(&inner.exports),
            arena,
            cluster: Arc::downgrade(inner),
        });
        let _ = inner.handles.set(handles);
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The other nodes this one has heard of.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> =
            lock(&self.inner.peers).iter().map(|(name, peer)| NodeInfo { name: name.clone(), up: peer.up }).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// Waits until `node` is up, for at most `timeout`.
    pub fn wait_for_node(&self, node: &str, timeout: Duration) -> bool {
        let deadline = subactor_core::deadline_after(timeout);
        while Instant::now() < deadline {
            if lock(&self.inner.peers).get(node).is_some_and(|p| p.up) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// How many tells sent to `node` wait for word that their handler ran there (they
    /// become dead letters if the node goes first); at most a window's worth.
    pub fn unconfirmed_tells(&self, node: &str) -> usize {
        lock(&self.inner.links).get(node).map_or(0, |link| link.unconfirmed())
    }

    /// The actor named `name` on any node.
    pub fn lookup(&self, name: &str) -> Option<AnyRef> {
        self.inner.lookup(name)
    }

    /// Spawns a Python actor on `node`.
    pub fn spawn_on(&self, node: &str, request: SpawnRequest) -> Result<AnyRef, String> {
        self.inner.spawn_on(node, request)
    }

    /// Keeps an actor's state under its name `name` in the cluster's key-value store
    /// (the bucket `<prefix>_state`, made on first use), for the actor to restore on any
    /// node: in parts when it is larger than a NATS message (switched to at once). A
    /// state holding pickled objects is refused unless the cluster is trusted; one
    /// holding actor references or buffers cannot be stored.
    pub fn save_state(&self, name: &str, state: &Value) -> Result<(), String> {
        self.inner.save_state(name, state)
    }

    /// The state kept for the actor name `name`, if any (see [`Cluster::save_state`]).
    pub fn load_state(&self, name: &str) -> Result<Option<Value>, String> {
        self.inner.load_state(name)
    }

    /// The registry of names across the cluster, for the actor system.
    pub fn names(&self) -> Arc<dyn NameService> {
        Arc::new(Names(Arc::downgrade(&self.inner)))
    }

    /// What the actor system's extension [`subactor_wire::NodesExt`] holds.
    pub fn as_nodes(&self) -> Arc<dyn Nodes> {
        Arc::new(NodesOf { node: self.inner.node.clone(), cluster: Arc::downgrade(&self.inner) })
    }

    /// Leaves the cluster: says so to the other nodes, and stops this node's tasks.
    /// Calls still waiting to be sent are reported (tells as dead letters).
    pub fn leave(&self) {
        let inner = &self.inner;
        if inner.left.swap(true, Ordering::AcqRel) {
            return;
        }
        let bye = Heartbeat { node: inner.node.clone(), incarnation: inner.incarnation, leaving: true };
        if let Ok(bytes) = encode_plain(&bye) {
            let client = inner.client.clone();
            let subject = inner.subject("hb");
            let _ = inner.handle.block_on(async move {
                let _ = client.publish(subject, Bytes::from(bytes)).await;
                tokio::time::timeout(Duration::from_secs(2), client.flush()).await
            });
        }
        for link in lock(&inner.links).values() {
            link.fail_all();
        }
        if let Some(runtime) = lock(&inner.runtime).take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        info!(node = %inner.node, "left the cluster");
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.inner.node).finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = lock(&self.runtime).take() {
            runtime.shutdown_background();
        }
    }
}

/// Connects to NATS and opens (or creates) the registry bucket.
async fn open(config: &ClusterConfig) -> Result<(async_nats::Client, kv::Store), ClusterError> {
    let mut options = match &config.auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
        Auth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
        Auth::CredentialsFile(path) => async_nats::ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|e| ClusterError::Config(format!("cannot read the credentials file {}: {e}", path.display())))?,
    };
    if config.require_tls {
        options = options.require_tls(true);
        if let Some(root) = &config.tls_root {
            options = options.add_root_certificates(root.clone());
        }
    }
    let node = config.node.clone();
    options = options
        .name(format!("subactor:{}:{}", config.prefix, config.node))
        .connection_timeout(config.connect_timeout)
        .request_timeout(Some(Duration::from_secs(5)))
        .max_reconnects(None)
        .event_callback(move |event| {
            let node = node.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => warn!(%node, "lost the connection to NATS; reconnecting"),
                    async_nats::Event::Connected => info!(%node, "connected to NATS"),
                    other => debug!(%node, event = %other, "NATS event"),
                }
            }
        });
    let urls = config.urls.join(",");
    let addrs: Vec<async_nats::ServerAddr> = config
        .urls
        .iter()
        .map(|u| u.parse().map_err(|e| ClusterError::Config(format!("bad NATS URL {u:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let client = options.connect(addrs).await.map_err(|e| {
        use async_nats::ConnectErrorKind as Kind;
        match e.kind() {
            Kind::Authentication | Kind::AuthorizationViolation => {
                ClusterError::Authentication { node: config.node.clone(), reason: e.to_string() }
            }
            _ => ClusterError::Connect { urls: urls.clone(), reason: e.to_string() },
        }
    })?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let registry = open_bucket(&jetstream, &format!("{}_names", config.prefix), config.urls.len())
        .await
        .map_err(ClusterError::Registry)?;
    Ok((client, registry))
}

/// Opens (or creates) the key-value bucket `bucket`, replicated on up to 3 of the
/// `servers` servers.
pub(crate) async fn open_bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: &str,
    servers: usize,
) -> Result<kv::Store, String> {
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    // The bucket's stream, as a key-value bucket has it (async-nats' `create_key_value`
    // first reads the account's limits, an answer of 2.9 servers it cannot parse; the
    // stream itself is created the same way).
    let replicas = servers.clamp(1, 3);
    let stream = |num_replicas| async_nats::jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        num_replicas,
        ..Default::default()
    };
    if let Err(first) = jetstream.create_stream(stream(replicas)).await {
        // Created meanwhile by another node, or fewer servers than replicas.
        if jetstream.get_key_value(bucket).await.is_err() {
            jetstream.create_stream(stream(1)).await.map_err(|e| format!("{first}; {e}"))?;
        }
    }
    jetstream.get_key_value(bucket).await.map_err(|e| e.to_string())
}

impl Inner {
    pub(crate) fn subject(&self, what: &str) -> String {
        format!("{}.{what}", self.config.prefix)
    }

    fn node_subject(&self, node: &str, what: &str) -> String {
        format!("{}.{node}.{what}", self.config.prefix)
    }

    pub(crate) fn handles(&self) -> Option<&Arc<dyn Handles>> {
        self.handles.get()
    }

    pub(crate) fn env(&self) -> Option<Arc<dyn ActorEnv>> {
        self.attached.get().map(|a| Arc::clone(&a.env))
    }

    pub(crate) fn dead_letters(&self) -> Option<Arc<DeadLetters>> {
        self.attached.get().map(|a| a.system.dead_letter_sink())
    }

    pub(crate) fn trusted(&self) -> bool {
        self.config.trusted
    }

    /// Encodes an item with this node's handles.
    pub(crate) fn encode<T: Serialize>(&self, item: &T) -> Result<Vec<u8>, String> {
        let handles = self.handles().ok_or("the cluster is not attached to a runtime yet")?;
        let mut out = Vec::new();
        codec::encode_into(item, &mut out, handles).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Decodes an item with this node's handles.
    pub(crate) fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let handles = self.handles().ok_or("the cluster is not attached to a runtime yet")?;
        codec::decode_with(bytes, handles).map_err(|e| e.to_string())
    }

    /// Refuses to join when a live node already has this name.
    async fn refuse_duplicate_name(&self) -> Result<(), ClusterError> {
        let mut beats =
            self.client.subscribe(self.subject("hb")).await.map_err(|e| ClusterError::Runtime(e.to_string()))?;
        let listen = self.config.down_after.min(Duration::from_millis(800));
        let deadline = tokio::time::Instant::now() + listen;
        loop {
            let beat = tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut beats)).await;
            let Ok(Some(message)) = beat else { return Ok(()) };
            if let Ok(beat) = decode_plain::<Heartbeat>(&message.payload) {
                if beat.node == self.node && !beat.leaving {
                    return Err(ClusterError::NodeNameTaken(self.node.clone()));
                }
            }
        }
    }

    /// Starts the heartbeat, the failure detector and the subscriptions.
    fn start_tasks(self: &Arc<Self>) -> Result<(), ClusterError> {
        let spawn = |future| self.handle.spawn(future);
        let this = Arc::downgrade(self);
        let client = self.client.clone();
        let beats = self.handle.block_on(client.subscribe(self.subject("hb")));
        let inbound = self.handle.block_on(client.subscribe(self.node_subject(&self.node, "in")));
        let replies = self.handle.block_on(client.subscribe(self.node_subject(&self.node, "reply")));
        let (beats, inbound, replies) = match (beats, inbound, replies) {
            (Ok(b), Ok(i), Ok(r)) => (b, i, r),
            (b, i, r) => {
                let error = [b.err(), i.err(), r.err()].into_iter().flatten().next().map(|e| e.to_string());
                return Err(ClusterError::Runtime(error.unwrap_or_default()));
            }
        };
        spawn(Box::pin(heartbeat(this.clone())) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>);
        spawn(Box::pin(listen_heartbeats(this.clone(), beats)));
        spawn(Box::pin(inbound::listen(this.clone(), inbound)));
        spawn(Box::pin(listen_replies(this.clone(), replies)));
        spawn(Box::pin(replier(this)));
        Ok(())
    }

    /// The link to `node`, made on first use.
    pub(crate) fn link(self: &Arc<Self>, node: &str) -> Arc<Link> {
        let mut links = lock(&self.links);
        if let Some(link) = links.get(node) {
            return Arc::clone(link);
        }
        let (link, outbox) = Link::new(node, self.config.outbox, Arc::downgrade(self));
        if lock(&self.peers).get(node).is_some_and(|p| !p.up) {
            link.fail_all();
        }
        self.handle.spawn(link::run(Arc::clone(&link), outbox, Arc::downgrade(self)));
        links.insert(node.to_owned(), Arc::clone(&link));
        link
    }

    /// A reference to an actor of another node.
    pub(crate) fn remote_ref(self: &Arc<Self>, addr: RefAddr) -> AnyRef {
        let node = addr.node.clone().unwrap_or_default();
        AnyRef::remote(Arc::new(NodeRef { addr, link: self.link(&node) }))
    }

    /// Sends a batch to `link`'s node (in parts if it is larger than a NATS message) and
    /// waits for its ack. With `publish`, a batch in one message is published without a
    /// reply subject, its ack coming with the answers (see [`proto`]) within [`ACK_WAIT`];
    /// otherwise (and always in parts) it is a request, its ack the answer.
    pub(crate) async fn send_batch(&self, link: &Link, batch: &Batch, publish: bool) -> Result<Ack, SendFailure> {
        let node = &link.node;
        let subject = self.node_subject(node, "in");
        let bytes = encode_plain(batch).map_err(SendFailure::Refused)?;
        let parts = parts::split(&batch.from, batch.incarnation, batch.seq, bytes, self.part_size())
            .map_err(SendFailure::Refused)?;
        if publish && parts.len() == 1 {
            let part = encode_plain(&parts[0]).map_err(SendFailure::Refused)?;
            let ack = link.expect_ack(batch.seq);
            if let Err(error) = self.client.publish(subject, Bytes::from(part)).await {
                link.unexpect_ack();
                return Err(SendFailure::Transport(error.to_string()));
            }
            return match tokio::time::timeout(ACK_WAIT, ack).await {
                Ok(Ok(ack)) => Ok(ack),
                _ => {
                    link.unexpect_ack();
                    Err(SendFailure::Transport("no ack came".into()))
                }
            };
        }
        let wait = Duration::from_secs(5);
        let mut last = None;
        for part in parts {
            // Each part is acknowledged: the next one waits (backpressure).
            let part = encode_plain(&part).map_err(SendFailure::Refused)?;
            last = Some(self.request(subject.clone(), part, wait).await.map_err(SendFailure::Transport)?);
        }
        let reply = last.ok_or_else(|| SendFailure::Refused("an empty batch".into()))?;
        match decode_plain::<Result<Ack, String>>(&reply) {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(refusal)) => Err(SendFailure::Refused(format!("node {node} refused a batch: {refusal}"))),
            Err(error) => Err(SendFailure::Transport(format!("an unreadable ack from node {node}: {error}"))),
        }
    }

    /// The largest part of a frame this node sends (a NATS message, less room for the
    /// part's header).
    fn part_size(&self) -> usize {
        self.max_payload.saturating_sub(4096).max(parts::MIN_PART)
    }

    async fn request(&self, subject: String, payload: Vec<u8>, wait: Duration) -> Result<Bytes, String> {
        match tokio::time::timeout(wait, self.client.request(subject, Bytes::from(payload))).await {
            Ok(Ok(message)) => Ok(message.payload),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer".into()),
        }
    }

    /// Sends the bunch of answers `frame` to `node`, part after part (an answer may be
    /// larger than a NATS message), each until `node` acknowledges it (answers are
    /// idempotent: one that arrives twice is taken once), or until it is down. A part
    /// lost while a NATS server fails over is sent again. A bunch in one message is first
    /// published without a reply subject (acknowledged on `node`'s next batch, see
    /// [`proto`]), and sent again as a request if no ack came within [`ACK_WAIT`].
    fn deliver(&self, node: &str, subject: String, payload: Vec<u8>, frame: u64) {
        let parts = match parts::split(&self.node, self.incarnation, frame, payload, self.part_size()) {
            Ok(parts) => parts,
            Err(error) => {
                warn!(%error, %node, "answers cannot be sent to another node");
                return;
            }
        };
        let client = self.client.clone();
        let key = (node.to_owned(), frame);
        let node = node.to_owned();
        // Checked between tries: the node went down, or this one left.
        let gone = move |inner: &Inner| {
            inner.left.load(Ordering::Acquire) || lock(&inner.peers).get(&node).is_some_and(|p| !p.up)
        };
        let cluster = self.me.clone();
        let acked = (parts.len() == 1).then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            lock(&self.unacked).insert(key.clone(), tx);
            rx
        });
        self.handle.spawn(async move {
            if let Some(acked) = acked {
                let payload = match encode_plain(&parts[0]) {
                    Ok(payload) => Bytes::from(payload),
                    Err(error) => {
                        warn!(%error, "a part of answers cannot be encoded");
                        if let Some(inner) = cluster.upgrade() {
                            lock(&inner.unacked).remove(&key);
                        }
                        return;
                    }
                };
                if let Err(error) = client.publish(subject.clone(), payload).await {
                    debug!(%error, "publishing answers failed: sending them again");
                }
                // Ends (and lets go of the answers) as soon as the ack comes.
                let came = matches!(tokio::time::timeout(ACK_WAIT, acked).await, Ok(Ok(())));
                let Some(inner) = cluster.upgrade() else { return };
                let _unacked = Unacked { cluster: cluster.clone(), key: key.clone() };
                if came || !lock(&inner.unacked).contains_key(&key) || gone(&inner) {
                    return;
                }
                debug!(node = %key.0, frame = key.1, "no ack came for answers: sending them again");
            }
            let _unacked = Unacked { cluster: cluster.clone(), key };
            for part in parts {
                let payload = match encode_plain(&part) {
                    Ok(payload) => Bytes::from(payload),
                    Err(error) => {
                        warn!(%error, "a part of answers cannot be encoded");
                        return;
                    }
                };
                loop {
                    let sent =
                        tokio::time::timeout(Duration::from_secs(2), client.request(subject.clone(), payload.clone()));
                    if let Ok(Ok(_)) = sent.await {
                        break;
                    }
                    let Some(inner) = cluster.upgrade() else { return };
                    if gone(&inner) {
                        return;
                    }
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }

    /// Publishes `payload` on `subject` from any thread, without waiting.
    pub(crate) fn publish(&self, subject: String, payload: Vec<u8>) {
        let client = self.client.clone();
        self.handle.spawn(async move {
            if let Err(error) = client.publish(subject, Bytes::from(payload)).await {
                debug!(%error, "publishing failed");
            }
        });
    }

    /// Queues the answer to call `corr` of `node` (the replier sends answers in bunches,
    /// at once when one arrives alone).
    pub(crate) fn reply(&self, node: &str, corr: u64, answer: subactor_wire::Answer) {
        lock(&self.replies).entry(node.to_owned()).or_default().answers.push((corr, answer));
        self.replies_waiting.notify_one();
    }

    /// Queues the ack of a batch of `node` (of its incarnation `incarnation`) that came
    /// without a reply subject: it goes with the next answers to `node`, or alone after
    /// [`ACK_DELAY`].
    pub(crate) fn queue_ack(&self, node: &str, incarnation: u64, ack: Ack) {
        let first = {
            let mut replies = lock(&self.replies);
            let queued = replies.entry(node.to_owned()).or_default();
            queued.acks.push((incarnation, ack));
            let first = queued.acks_since.is_none();
            if first {
                queued.acks_since = Some(tokio::time::Instant::now());
            }
            first
        };
        if first {
            // The replier learns when they are due.
            self.replies_waiting.notify_one();
        }
    }

    /// `node` took these bunches of answers (`(incarnation, frame)`): no need to send
    /// them again.
    pub(crate) fn replies_taken(&self, node: &str, taken: &[(u64, u64)]) {
        let mut unacked = lock(&self.unacked);
        for &(incarnation, frame) in taken {
            if incarnation == self.incarnation
                && let Some(waiting) = unacked.remove(&(node.to_owned(), frame))
            {
                let _ = waiting.send(());
            }
        }
    }

    /// The acks owed to `node` for bunches of its answers (they ride on a batch).
    pub(crate) fn take_owed(&self, node: &str) -> Vec<(u64, u64)> {
        lock(&self.owed).remove(node).unwrap_or_default()
    }

    /// A bunch of answers of `node` (published without a reply subject) was taken: its
    /// ack rides on the next batch to `node`, or goes alone after [`ACK_DELAY`].
    fn owe(&self, node: &str, incarnation: u64, frame: u64) {
        let first = {
            let mut owed = lock(&self.owed);
            let list = owed.entry(node.to_owned()).or_default();
            list.push((incarnation, frame));
            list.len() == 1
        };
        if !first {
            return;
        }
        let (cluster, node) = (self.me.clone(), node.to_owned());
        self.handle.spawn(async move {
            tokio::time::sleep(ACK_DELAY).await;
            let Some(inner) = cluster.upgrade() else { return };
            let taken = inner.take_owed(&node);
            if taken.is_empty() {
                return;
            }
            // No batch carried them: a batch of acks alone (`seq` 0, no calls).
            let batch =
                Batch { from: inner.node.clone(), incarnation: inner.incarnation, seq: 0, items: Vec::new(), taken };
            match encode_plain(&batch).and_then(|bytes| encode_plain(&Wire::Whole(bytes))) {
                Ok(bytes) => {
                    if let Err(error) = inner.client.publish(inner.node_subject(&node, "in"), Bytes::from(bytes)).await
                    {
                        debug!(%error, "publishing acks failed (the answers will come again)");
                    }
                }
                Err(error) => warn!(%error, "acks cannot be encoded"),
            }
        });
    }

    /// Sends the queued answers (with the acks of the batches of their node), and acks
    /// that waited [`ACK_DELAY`] for answers to carry them; the time when the next acks
    /// are due, if some wait.
    fn flush_replies(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        let mut next: Option<tokio::time::Instant> = None;
        let mut due = Vec::new();
        lock(&self.replies).retain(|node, queued| {
            let acks_due = queued.acks_since.map(|since| since + ACK_DELAY);
            if !queued.answers.is_empty() || acks_due.is_some_and(|at| at <= now) {
                due.push((node.clone(), std::mem::take(queued)));
                return false;
            }
            if let Some(at) = acks_due {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            acks_due.is_some()
        });
        for (node, Queued { answers, mut acks, .. }) in due {
            let subject = self.node_subject(&node, "reply");
            let mut answers = answers.into_iter().peekable();
            while answers.peek().is_some() || !acks.is_empty() {
                let bunch = Replies {
                    from: self.node.clone(),
                    incarnation: self.incarnation,
                    frame: self.reply_frames.fetch_add(1, Ordering::Relaxed),
                    answers: answers.by_ref().take(512).collect(),
                    acks: std::mem::take(&mut acks),
                };
                match self.encode(&bunch) {
                    Ok(bytes) => self.deliver(&node, subject.clone(), bytes, bunch.frame),
                    Err(_) => {
                        // One answer cannot be encoded (its reply holds something that
                        // cannot travel): each goes alone, that one as a refusal, and the
                        // acks alone.
                        let alone = |answers, acks| Replies {
                            from: self.node.clone(),
                            incarnation: self.incarnation,
                            frame: self.reply_frames.fetch_add(1, Ordering::Relaxed),
                            answers,
                            acks,
                        };
                        let mut singles: Vec<Replies> =
                            bunch.answers.into_iter().map(|one| alone(vec![one], Vec::new())).collect();
                        if !bunch.acks.is_empty() {
                            singles.push(alone(Vec::new(), bunch.acks));
                        }
                        for mut one in singles {
                            let bytes = self.encode(&one).or_else(|error| {
                                for (_, answer) in &mut one.answers {
                                    *answer =
                                        subactor_wire::Answer::Refused(format!("the answer cannot travel: {error}"));
                                }
                                self.encode(&one)
                            });
                            match bytes {
                                Ok(bytes) => self.deliver(&node, subject.clone(), bytes, one.frame),
                                Err(error) => warn!(%error, "an answer cannot be encoded for another node"),
                            }
                        }
                    }
                }
            }
        }
        next
    }

    /// Remembers that `watcher` monitors `target` on `node`: told `Down` if the node goes.
    pub(crate) fn watch_remote(&self, node: &str, target: RefAddr, watcher: AnyRef) {
        lock(&self.watched).entry(node.to_owned()).or_default().push((target, watcher));
    }

    /// A `Down` from `node` reached `watcher`: that monitor is done.
    pub(crate) fn unwatch(&self, node: &str, target: u64, watcher: &AnyRef) {
        if let Some(list) = lock(&self.watched).get_mut(node) {
            list.retain(|(t, w)| !(t.id == target && w == watcher));
        }
    }

    fn node_down(self: &Arc<Self>, node: &str, why: Gone) {
        match why {
            Gone::Left => info!(%node, "node left the cluster"),
            Gone::Silent => warn!(%node, "node is down (its heartbeats stopped)"),
            Gone::Restarted => warn!(%node, "node restarted: its former actors are gone"),
        }
        if let Some(link) = lock(&self.links).get(node) {
            link.fail_all();
        }
        let watched = lock(&self.watched).remove(node).unwrap_or_default();
        for (target, watcher) in watched {
            let down = Down {
                id: ActorId::from_u64(target.id),
                name: target.name.as_deref().map(Into::into),
                reason: StopReason::Failed(
                    match why {
                        Gone::Left => format!("node {node} is down: it left the cluster"),
                        Gone::Silent => format!("node {node} is down: its heartbeats stopped"),
                        Gone::Restarted => format!("node {node} is down: it restarted"),
                    }
                    .into(),
                ),
            };
            watcher.notify(Value::Down(Box::new(down)));
        }
        // Its names are stale now.
        let registry = self.registry.clone();
        let node = node.to_owned();
        self.handle.spawn(async move { forget_names_of(&registry, &node).await });
    }

    fn node_up(&self, node: &str) {
        if let Some(link) = lock(&self.links).get(node) {
            link.up();
        }
    }

    fn lookup(self: &Arc<Self>, name: &str) -> Option<AnyRef> {
        let entry = self.handle.block_on(self.registry.get(state::key_of(name))).ok().flatten()?;
        let entry: NameEntry = decode_plain(&entry).ok()?;
        if entry.node == self.node {
            // Ours: the system's own registry answers for it (it was not found there).
            return None;
        }
        let peer_ok = lock(&self.peers).get(&entry.node).is_some_and(|p| p.up && p.incarnation == entry.incarnation);
        if !peer_ok {
            return None;
        }
        Some(self.remote_ref(RefAddr {
            node: Some(entry.node),
            id: entry.id,
            name: Some(name.to_owned()),
            placement: entry.placement,
        }))
    }

    fn spawn_on(self: &Arc<Self>, node: &str, request: SpawnRequest) -> Result<AnyRef, String> {
        if node == self.node {
            return self.env().ok_or("the cluster is not attached to a runtime")?.spawn(request);
        }
        if !lock(&self.peers).get(node).is_some_and(|p| p.up) {
            return Err(format!("node {node:?} is not in the cluster (or is down)"));
        }
        let link = self.link(node);
        let addr = RefAddr { node: Some(node.into()), id: 0, name: None, placement: subactor_core::Placement::Auto };
        let probe = NodeRef { addr, link };
        probe.spawn(request)
    }
}

/// The failure detector's own view of time.
async fn heartbeat(cluster: Weak<Inner>) {
    let mut last_tick: Option<Instant> = None;
    loop {
        let Some(inner) = cluster.upgrade() else { return };
        if inner.left.load(Ordering::Acquire) {
            return;
        }
        let beat = Heartbeat { node: inner.node.clone(), incarnation: inner.incarnation, leaving: false };
        if let Ok(bytes) = encode_plain(&beat) {
            let _ = inner.client.publish(inner.subject("hb"), Bytes::from(bytes)).await;
        }
        // Nodes silent for too long are down.
        let now = Instant::now();
        let every = inner.config.heartbeat;
        let stalled = last_tick.map_or(Duration::ZERO, |last| stall(now.duration_since(last), every));
        last_tick = Some(now);
        if !stalled.is_zero() {
            debug!(?stalled, "the failure detector's tick came late: that time is not counted as peers' silence");
        }
        let down = silent_peers(&mut lock(&inner.peers), now, inner.config.down_after, stalled);
        for node in down {
            inner.node_down(&node, Gone::Silent);
        }
        drop(inner);
        tokio::time::sleep(every).await;
    }
}

/// How long this node did not run its failure detector, given the time `between` two of
/// its ticks that are `every` apart: past one interval of lateness, this process (or its
/// runtime's threads) was held up, and heartbeats that arrived meanwhile may still be
/// unread; zero otherwise.
fn stall(between: Duration, every: Duration) -> Duration {
    let late = between.saturating_sub(every);
    if late > every { late } else { Duration::ZERO }
}

/// Marks down, and returns, the peers silent for longer than `down_after` at `now`, not
/// counting the time `stalled` this node did not look (their heartbeats of that time may
/// wait unread: a loaded machine that held this process up for a second must not make it
/// declare every other node down).
fn silent_peers(
    peers: &mut HashMap<String, Peer>,
    now: Instant,
    down_after: Duration,
    stalled: Duration,
) -> Vec<String> {
    peers
        .iter_mut()
        .filter_map(|(name, p)| {
            if !p.up {
                return None;
            }
            // The stall is credited: the silence counts from when this node looked again.
            p.last_seen = (p.last_seen + stalled).min(now);
            (now.duration_since(p.last_seen) > down_after).then(|| {
                p.up = false;
                name.clone()
            })
        })
        .collect()
}

async fn listen_heartbeats(cluster: Weak<Inner>, mut beats: async_nats::Subscriber) {
    while let Some(message) = futures_util::StreamExt::next(&mut beats).await {
        let Some(inner) = cluster.upgrade() else { return };
        let Ok(beat) = decode_plain::<Heartbeat>(&message.payload) else { continue };
        if beat.node == inner.node {
            continue;
        }
        let (went_down, came_up) = {
            let mut peers = lock(&inner.peers);
            let peer = peers.entry(beat.node.clone()).or_insert(Peer {
                incarnation: beat.incarnation,
                last_seen: Instant::now(),
                up: false,
                left: false,
            });
            let same = peer.incarnation == beat.incarnation;
            if same && peer.left {
                continue;
            }
            let restarted = !same && peer.up;
            let was_up = peer.up;
            peer.incarnation = beat.incarnation;
            peer.last_seen = Instant::now();
            peer.up = !beat.leaving;
            peer.left = beat.leaving;
            let went_down =
                if restarted { Some(Gone::Restarted) } else { (was_up && beat.leaving).then_some(Gone::Left) };
            (went_down, !beat.leaving && (!was_up || restarted))
        };
        if let Some(why) = went_down {
            inner.node_down(&beat.node, why);
        }
        if came_up {
            info!(node = %beat.node, "node is up");
            inner.node_up(&beat.node);
        }
    }
}

async fn listen_replies(cluster: Weak<Inner>, mut replies: async_nats::Subscriber) {
    let mut reassembly = parts::Reassembly::default();
    while let Some(message) = futures_util::StreamExt::next(&mut replies).await {
        let Some(inner) = cluster.upgrade() else { return };
        let frame = match decode_plain::<Wire>(&message.payload).and_then(|wire| reassembly.take(wire)) {
            Ok(parts::Piece::Frame(frame)) => Some(frame),
            Ok(parts::Piece::Kept) => None,
            Err(error) => {
                warn!(%error, "a malformed part of answers from another node");
                None
            }
        };
        match frame.map(|frame| inner.decode::<Replies>(&frame)).transpose() {
            Ok(None) => {}
            Ok(Some(Replies { from, incarnation, frame, answers, acks })) => {
                let link = lock(&inner.links).get(&from).cloned();
                if let Some(link) = link {
                    // The acks first: they came before the answers to their calls.
                    for (of, ack) in acks {
                        if of == inner.incarnation {
                            link.acked(ack);
                        }
                    }
                    for (corr, answer) in answers {
                        link.answer(corr, answer);
                    }
                }
                if message.reply.is_none() {
                    // Acknowledged on the next batch to that node (or alone, shortly).
                    inner.owe(&from, incarnation, frame);
                }
            }
            Err(error) => warn!(%error, "malformed answers from another node"),
        }
        // Taken (or refused for good): the sender goes on.
        if let Some(reply) = message.reply {
            let _ = inner.client.publish(reply, Bytes::new()).await;
        }
    }
}

/// Sends the answers queued by [`Inner::reply`], in bunches: what gathers while one
/// bunch is sent goes in the next.
async fn replier(cluster: Weak<Inner>) {
    let Some(waiting) = cluster.upgrade().map(|inner| Arc::clone(&inner.replies_waiting)) else { return };
    loop {
        let Some(inner) = cluster.upgrade() else { return };
        let next = if lock(&inner.replies).is_empty() { None } else { inner.flush_replies() };
        drop(inner);
        // A reply queued meanwhile left a permit: this wakes at once.
        let until = next.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(until, waiting.notified()).await;
    }
}

/// Deletes the registry's names that point to `node`.
async fn forget_names_of(registry: &kv::Store, node: &str) {
    let Ok(keys) = registry.keys().await else { return };
    let keys: Vec<String> = futures_util::StreamExt::collect::<Vec<_>>(keys).await.into_iter().flatten().collect();
    for key in keys {
        if let Ok(Some(value)) = registry.get(&key).await {
            if decode_plain::<NameEntry>(&value).is_ok_and(|e| e.node == node) {
                let _ = registry.delete(&key).await;
            }
        }
    }
}

/// The cluster's registry as the actor system's [`NameService`].
struct Names(Weak<Inner>);

impl NameService for Names {
    fn claim(&self, name: &str, id: ActorId) -> Result<(), NameClaimError> {
        let Some(inner) = self.0.upgrade() else { return Ok(()) };
        let placement = subactor_core::Placement::Auto;
        let entry = NameEntry { node: inner.node.clone(), incarnation: inner.incarnation, id: id.as_u64(), placement };
        let bytes = encode_plain(&entry).map_err(NameClaimError::Unavailable)?;
        let registry = inner.registry.clone();
        // Names may hold what a key may not (`@`, spaces): escaped, one to one.
        let key = state::key_of(name);
        let held = |entry: &NameEntry| {
            if entry.node == inner.node && entry.incarnation == inner.incarnation {
                // This node's own registry has just given the name to `id`: an entry of
                // this node for another actor is one that ended, whose release has not
                // reached the bucket yet (a restart under the same name, at once).
                return entry.id == id.as_u64();
            }
            lock(&inner.peers).get(&entry.node).is_some_and(|p| p.up && p.incarnation == entry.incarnation)
        };
        inner.handle.block_on(async {
            match registry.create(&key, Bytes::from(bytes.clone())).await {
                Ok(_) => Ok(()),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    // Taken, unless by an actor of a node that has gone (or an earlier
                    // incarnation of this one, or an ended actor of this one): then it is
                    // stale and can be taken over.
                    let current = registry.entry(&key).await.map_err(|e| NameClaimError::Unavailable(e.to_string()))?;
                    let Some(current) = current else {
                        return Err(NameClaimError::Unavailable("a name changed meanwhile".into()));
                    };
                    let holder = decode_plain::<NameEntry>(&current.value).ok();
                    if holder.as_ref().is_some_and(&held) {
                        return Err(NameClaimError::Taken);
                    }
                    registry
                        .update(&key, Bytes::from(bytes), current.revision)
                        .await
                        .map(drop)
                        .map_err(|_| NameClaimError::Taken)
                }
                Err(error) => Err(NameClaimError::Unavailable(error.to_string())),
            }
        })
    }

    fn release(&self, name: &str, id: ActorId) {
        let Some(inner) = self.0.upgrade() else { return };
        if inner.left.load(Ordering::Acquire) {
            return;
        }
        let registry = inner.registry.clone();
        // Names may hold what a key may not (`@`, spaces): escaped, one to one.
        let key = state::key_of(name);
        let node = inner.node.clone();
        let release = async move {
            if let Ok(Some(entry)) = registry.entry(&key).await {
                if decode_plain::<NameEntry>(&entry.value).is_ok_and(|e| e.node == node && e.id == id.as_u64()) {
                    let _ = registry.delete_expect_revision(&key, Some(entry.revision)).await;
                }
            }
        };
        // Done before the actor's stop completes (a name is free again once `wait`
        // returns), within a bound when NATS is unreachable.
        if inner.handle.block_on(async { tokio::time::timeout(Duration::from_secs(1), release).await }).is_err() {
            debug!(name, "releasing a name in the cluster's registry timed out");
        }
    }
}

/// The cluster as the actor system's [`Nodes`].
struct NodesOf {
    node: String,
    cluster: Weak<Inner>,
}

impl Nodes for NodesOf {
    fn this_node(&self) -> &str {
        &self.node
    }

    fn lookup(&self, name: &str) -> Option<AnyRef> {
        self.cluster.upgrade()?.lookup(name)
    }

    fn spawn_on(&self, node: &str, request: SpawnRequest) -> Result<AnyRef, String> {
        self.cluster.upgrade().ok_or("the cluster has been left")?.spawn_on(node, request)
    }
}

impl NodeRef {
    /// Spawns an actor on this reference's node (its id is not used).
    fn spawn(&self, request: SpawnRequest) -> Result<AnyRef, String> {
        match self.call(Call::Spawn(request), None) {
            Some(subactor_wire::Answer::Actor(Some(actor))) => Ok(actor),
            Some(subactor_wire::Answer::SpawnFailed(error)) => Err(error),
            Some(subactor_wire::Answer::Refused(error)) => Err(error),
            Some(other) => Err(format!("unexpected answer to a spawn: {other:?}")),
            None => Err(format!("node {} did not answer (it is down or unreachable)", self.link.node)),
        }
    }
}

#[cfg(test)]
mod detector_tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(100);
    const DOWN_AFTER: Duration = Duration::from_millis(600);

    fn peer(last_seen: Instant) -> Peer {
        Peer { incarnation: 1, last_seen, up: true, left: false }
    }

    #[test]
    fn a_late_tick_of_the_detector_is_not_counted_as_peers_silence() {
        // Heard from at `start`; this process is held up for a second, so its next tick
        // comes then (the peer's heartbeats of that second wait unread).
        let start = Instant::now();
        let mut peers = HashMap::from([("b".to_owned(), peer(start))]);
        let resumed = start + Duration::from_secs(1);
        let stalled = stall(Duration::from_secs(1), EVERY);
        assert_eq!(stalled, Duration::from_millis(900));
        assert!(silent_peers(&mut peers, resumed, DOWN_AFTER, stalled).is_empty(), "not down for this node's stall");
        assert!(peers["b"].up);
        // A peer that stays silent while this node runs on time is down once down_after
        // has passed since this node looked again (less the one interval a tick may be
        // late without counting as a stall).
        let mut now = resumed;
        let down = loop {
            now += EVERY;
            let down = silent_peers(&mut peers, now, DOWN_AFTER, stall(EVERY, EVERY));
            if !down.is_empty() {
                break down;
            }
            assert!(now < resumed + Duration::from_secs(10), "never declared down");
        };
        assert_eq!(down, ["b"]);
        assert!(!peers["b"].up);
        let waited = now.duration_since(resumed);
        assert!(waited >= DOWN_AFTER - EVERY && waited <= DOWN_AFTER + EVERY, "{waited:?}");
    }

    #[test]
    fn ticks_on_time_judge_the_whole_silence() {
        // Within one interval of lateness a tick is on time: no stall.
        assert_eq!(stall(Duration::from_millis(190), EVERY), Duration::ZERO);
        assert_eq!(stall(Duration::from_millis(100), EVERY), Duration::ZERO);
        let start = Instant::now();
        let mut peers =
            HashMap::from([("b".to_owned(), peer(start)), ("c".to_owned(), peer(start + Duration::from_millis(500)))]);
        let now = start + Duration::from_millis(700);
        assert_eq!(silent_peers(&mut peers, now, DOWN_AFTER, Duration::ZERO), ["b"]);
        assert!(!peers["b"].up && peers["c"].up);
        // One already down is not reported again.
        assert!(silent_peers(&mut peers, now + Duration::from_secs(1), DOWN_AFTER, Duration::ZERO) == ["c"]);
    }

    #[test]
    fn a_detector_held_up_on_every_tick_still_declares_a_silent_peer_down() {
        // Each tick 300 ms apart (200 ms late): the credit is the lateness, the silence
        // still grows by one interval a tick.
        let start = Instant::now();
        let mut peers = HashMap::from([("b".to_owned(), peer(start))]);
        let between = Duration::from_millis(300);
        let mut now = start;
        for tick in 1.. {
            now += between;
            if !silent_peers(&mut peers, now, DOWN_AFTER, stall(between, EVERY)).is_empty() {
                assert!(tick <= 10, "down after {tick} ticks");
                return;
            }
            assert!(tick < 100, "never declared down");
        }
    }
}
