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
    pub(crate) fn save(&self, store: &StateStore, name: Option<&str>, state: Value) -> Result<(), StateError> {
        match store {
            StateStore::Memory => {
                *lock(&self.memory) = Some(state);
                Ok(())
            }
            StateStore::Directory(dir) => write_file(&state_file(dir, name)?, &state),
        }
    }

    /// The latest snapshot, if any.
    pub(crate) fn load(&self, store: &StateStore, name: Option<&str>) -> Result<Option<Value>, StateError> {
        match store {
            StateStore::Memory => Ok(lock(&self.memory).clone()),
            StateStore::Directory(dir) => read_file(&state_file(dir, name)?),
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
        let store = StateStore::Directory(dir.clone());
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
