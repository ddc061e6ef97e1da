//! State that survives restarts, and hot code upgrades.
//!
//! A Python actor whose recipe keeps snapshots ([`PythonActor::snapshots`](crate::PythonActor::snapshots))
//! defines `snapshot(self)` (returning a value that can cross between actors) and
//! `restore(self, state)`. After the messages its [`Snapshots`] policy counts (or when
//! the actor calls `subactor.checkpoint()`), the host takes a snapshot and keeps it in
//! the recipe's [`StateStore`]; an incarnation that starts after a restart — in a fresh
//! interpreter, or in a new process for a process actor — gets `restore(state)` before
//! its first message.
//!
//! An upgrade ([`PythonHost::upgrade`](crate::PythonHost::upgrade)) restarts the actor in
//! place after the message in hand with its module loaded anew (or another module and
//! class), carrying the state over through `snapshot()` and then `upgrade(old_state)`
//! (or `restore(state)`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use subactor_core::{Value, codec};

/// When a Python actor's state is snapshotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshots {
    /// After every message whose handler returned (not after one that raised).
    EveryMessage,
    /// After every `n` messages handled (and on `subactor.checkpoint()`).
    Every(u32),
    /// Only when the actor calls `subactor.checkpoint()` (taken when that handler
    /// returns).
    OnCheckpoint,
}

impl Snapshots {
    /// The bootstrap's `snapshot_every`: 0 for checkpoints only.
    pub(crate) fn every(self) -> u32 {
        match self {
            Snapshots::EveryMessage => 1,
            Snapshots::Every(n) => n.max(1),
            Snapshots::OnCheckpoint => 0,
        }
    }
}

/// Where an actor's latest snapshot is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateStore {
    /// In this runtime's memory (the default): survives restarts of the actor, in
    /// interpreters or processes, not the end of the runtime.
    #[default]
    Memory,
    /// A file `<name>.state` in this directory, `name` being the actor's name (a
    /// directory store needs a named actor): survives the runtime too. Each snapshot is
    /// written to a temporary file and renamed over the last one, so a crash at any point
    /// leaves the previous snapshot or the new one, never a torn file; it is not
    /// `fsync`ed (a power loss can lose the latest ones).
    Directory(PathBuf),
    /// The key-value store of the cluster this runtime is a node of (a JetStream
    /// key-value bucket of its NATS servers, see `Runtime::builder().cluster(..)`), under
    /// the actor's name (a cluster store needs a named actor; names are unique across
    /// the cluster): survives the runtime and the node, so the actor restarted on
    /// another node, or by a new runtime, restores it. States larger than a NATS message
    /// are stored in parts, switched to at once. A spawn with it fails when the runtime
    /// did not join a cluster. As for messages between nodes, a state holding pickled
    /// objects is refused unless the cluster is trusted.
    Cluster,
}

/// A store of actors' states outside this process, found by key: what
/// [`StateStore::Cluster`] uses (the `subactor` facade registers the cluster's
/// key-value store as the actor system's extension [`ClusterStates`]).
pub trait StateBackend: Send + Sync {
    /// Keeps `state` under `key`, replacing what was there. Returns once it is stored.
    fn save(&self, key: &str, state: &Value) -> Result<(), String>;
    /// The state kept under `key`, if any.
    fn load(&self, key: &str) -> Result<Option<Value>, String>;
}

/// The actor system's extension under which [`StateStore::Cluster`] finds its store.
#[derive(Clone)]
pub struct ClusterStates(pub Arc<dyn StateBackend>);

impl std::fmt::Debug for ClusterStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterStates")
    }
}

/// A [`StateStore`] with what it needs to work (the cluster's store, once found).
#[derive(Clone)]
pub(crate) enum Store {
    Memory,
    Directory(PathBuf),
    Shared(Arc<dyn StateBackend>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Memory => f.write_str("Memory"),
            Store::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            Store::Shared(_) => f.write_str("Cluster"),
        }
    }
}

impl Store {
    /// `store` as the actor system `system` provides it.
    pub(crate) fn resolve(store: &StateStore, system: &subactor_core::ActorSystem) -> Result<Store, StateError> {
        Ok(match store {
            StateStore::Memory => Store::Memory,
            StateStore::Directory(dir) => Store::Directory(dir.clone()),
            StateStore::Cluster => {
                let states = system.extension::<ClusterStates>().ok_or(StateError::NoCluster)?;
                Store::Shared(Arc::clone(&states.0))
            }
        })
    }
}

/// Why a state could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state could not be encoded or decoded (it holds an actor reference or a
    /// buffer, which have no meaning outside a runtime, for a directory store).
    #[error("the actor's state cannot be stored: {0}")]
    Codec(String),
    /// The directory store failed.
    #[error("the state file {path} cannot be {what}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// "written" or "read".
        what: &'static str,
        /// The system's error.
        error: std::io::Error,
    },
    /// A directory store needs a named actor.
    #[error("an actor whose state is kept in a directory needs a name (its file is <name>.state)")]
    Unnamed,
    /// A cluster store needs a named actor.
    #[error("an actor whose state is kept in the cluster needs a name (its key is the name)")]
    UnnamedInCluster,
    /// A cluster store needs a runtime that joined a cluster.
    #[error("the state store \"cluster\" needs a runtime that joined a cluster")]
    NoCluster,
    /// The cluster's store failed or refused the state.
    #[error("the cluster's state store: {0}")]
    Cluster(String),
}

/// A module and class to upgrade an actor to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upgrade {
    /// The module (dotted name or `.py` path); `None` keeps the actor's, loaded anew.
    pub module: Option<String>,
    /// The class; `None` keeps the actor's.
    pub class: Option<String>,
}

impl Upgrade {
    /// The actor's own module and class, loaded anew from their source.
    pub fn reload() -> Upgrade {
        Upgrade::default()
    }

    /// Another module and class.
    pub fn to(module: impl Into<String>, class: impl Into<String>) -> Upgrade {
        Upgrade { module: Some(module.into()), class: Some(class.into()) }
    }
}

/// What a recipe and its running actor share (and the host reaches for upgrades).
#[derive(Debug, Default)]
pub(crate) struct Keeper {
    /// The memory store's latest snapshot.
    memory: Mutex<Option<Value>>,
    /// An upgrade asked for and not carried out yet.
    upgrade: Mutex<Option<Upgrade>>,
    /// The state carried over by an upgrade (taken from the old incarnation as it ended).
    carried: Mutex<Option<Value>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Keeper {
    pub(crate) fn new() -> Arc<Keeper> {
        Arc::new(Keeper::default())
    }

    /// Keeps `state` as the latest snapshot.
    pub(crate) fn save(&self, store: &Store, name: Option<&str>, state: Value) -> Result<(), StateError> {
        match store {
            Store::Memory => {
                *lock(&self.memory) = Some(state);
                Ok(())
            }
            Store::Directory(dir) => write_file(&state_file(dir, name)?, &state),
            Store::Shared(backend) => {
                backend.save(name.ok_or(StateError::UnnamedInCluster)?, &state).map_err(StateError::Cluster)
            }
        }
    }

    /// The latest snapshot, if any.
    pub(crate) fn load(&self, store: &Store, name: Option<&str>) -> Result<Option<Value>, StateError> {
        match store {
            Store::Memory => Ok(lock(&self.memory).clone()),
            Store::Directory(dir) => read_file(&state_file(dir, name)?),
            Store::Shared(backend) => {
                backend.load(name.ok_or(StateError::UnnamedInCluster)?).map_err(StateError::Cluster)
            }
        }
    }

    pub(crate) fn request_upgrade(&self, upgrade: Upgrade) {
        *lock(&self.upgrade) = Some(upgrade);
    }

    pub(crate) fn pending_upgrade(&self) -> Option<Upgrade> {
        lock(&self.upgrade).clone()
    }

    pub(crate) fn take_upgrade(&self) -> Option<Upgrade> {
        lock(&self.upgrade).take()
    }

    pub(crate) fn carry(&self, state: Option<Value>) {
        *lock(&self.carried) = state;
    }

    pub(crate) fn take_carried(&self) -> Option<Value> {
        lock(&self.carried).take()
    }
}

fn state_file(dir: &Path, name: Option<&str>) -> Result<PathBuf, StateError> {
    let name = name.ok_or(StateError::Unnamed)?;
    // A name is the file's stem: keep it inside the directory.
    let safe: String = name.chars().map(|c| if c == '/' || c == '\\' || c == '\0' { '_' } else { c }).collect();
    let safe = if safe.starts_with('.') { format!("_{safe}") } else { safe };
    Ok(dir.join(format!("{safe}.state")))
}

fn write_file(path: &Path, state: &Value) -> Result<(), StateError> {
    let bytes = codec::encode(state).map_err(|e| StateError::Codec(e.to_string()))?;
    let io = |error| StateError::Io { path: path.to_owned(), what: "written", error };
    let tmp = path.with_extension("state.tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

fn read_file(path: &Path) -> Result<Option<Value>, StateError> {
    match fs::read(path) {
        Ok(bytes) => codec::decode(&bytes).map(Some).map_err(|e| StateError::Codec(e.to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StateError::Io { path: path.to_owned(), what: "read", error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_store_keeps_the_latest_state_and_refuses_unnamed_actors() {
        let dir = std::env::temp_dir().join(format!("subactor-state-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let store = Store::Directory(dir.clone());
        let keeper = Keeper::new();
        assert!(keeper.load(&store, Some("a/b")).expect("reads").is_none());
        keeper.save(&store, Some("a/b"), Value::from(1)).expect("writes");
        keeper.save(&store, Some("a/b"), Value::from(2)).expect("writes");
        assert_eq!(keeper.load(&store, Some("a/b")).expect("reads"), Some(Value::from(2)));
        assert!(dir.join("a_b.state").is_file(), "the name's slash stays inside the directory");
        assert!(matches!(keeper.save(&store, None, Value::None), Err(StateError::Unnamed)));
        fs::write(dir.join("bad.state"), b"\xff\xff\xff").expect("write");
        assert!(matches!(keeper.load(&store, Some("bad")), Err(StateError::Codec(_))));
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
