//! The errors of Python actors.

use std::fmt;

/// A Python exception, described in the interpreter that raised it.
///
/// `Display` gives `Type: message`; the alternate form (`{:#}`) adds the formatted
/// traceback.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PythonException {
    /// The exception's type, qualified by its module unless it is a built-in
    /// (`ValueError`, `mypkg.errors.Refused`).
    pub type_name: String,
    /// `str(exception)`.
    pub message: String,
    /// The traceback as `traceback.format_exception` prints it.
    pub traceback: String,
}

impl fmt::Display for PythonException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.type_name)?;
        } else {
            write!(f, "{}: {}", self.type_name, self.message)?;
        }
        if f.alternate() && !self.traceback.is_empty() {
            write!(f, "\n{}", self.traceback.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for PythonException {}

/// A value could not cross between Rust and Python.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConvertError {
    /// The object contains itself.
    #[error("cannot send a {type_name} that contains itself (a reference cycle)")]
    Cycle {
        /// The type of the container met twice.
        type_name: String,
    },
    /// Containers nest deeper than the limit.
    #[error("cannot send a value nested deeper than {limit} containers")]
    TooDeep {
        /// [`subactor_core::MAX_DEPTH`].
        limit: usize,
    },
    /// Not a plain value, and pickling it failed.
    #[error("cannot send an object of type {type_name}: it is not a plain value and pickling it failed: {error}")]
    Unpicklable {
        /// The object's type.
        type_name: String,
        /// What pickle raised.
        error: PythonException,
    },
    /// A pickled value could not be unpickled by the receiver (its class may not be
    /// importable there).
    #[error("cannot unpickle a received object: {0}")]
    Unpickle(PythonException),
    /// Python refused to build or read a value (an unhashable dict key or set element,
    /// memory exhaustion).
    #[error("cannot build the Python value: {0}")]
    Build(PythonException),
}

/// A Python actor's `receive` failed. The actor keeps running.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ReceiveError {
    /// `receive` raised.
    #[error("receive() raised {0}")]
    Exception(PythonException),
    /// The message could not be turned into a Python object.
    #[error("the message could not be delivered to Python: {0}")]
    Message(ConvertError),
    /// What `receive` returned could not be sent back.
    #[error("the reply could not be sent back: {0}")]
    Reply(ConvertError),
    /// The actor has no instance (its start failed); not normally reachable.
    #[error("the actor has no instance")]
    NotInstantiated,
    /// The actor's process died while it handled the message (a process actor).
    #[error("the actor's process died: {0}")]
    ProcessDied(subactor_core::Death),
    /// The message was handled, but the snapshot due after it failed (`snapshot()`
    /// raised, or the store refused its state): a failure of the actor, whose next
    /// incarnation restores the previous snapshot.
    #[error("the snapshot after the message failed: {0}")]
    Snapshot(PythonException),
}

impl ReceiveError {
    /// The Python exception behind the error, if there is one.
    pub fn exception(&self) -> Option<&PythonException> {
        match self {
            ReceiveError::Exception(e) => Some(e),
            ReceiveError::Message(c) | ReceiveError::Reply(c) => c.exception(),
            ReceiveError::Snapshot(e) => Some(e),
            ReceiveError::NotInstantiated | ReceiveError::ProcessDied(_) => None,
        }
    }
}

impl ConvertError {
    /// The Python exception behind the error, if there is one.
    pub fn exception(&self) -> Option<&PythonException> {
        match self {
            ConvertError::Unpicklable { error, .. } | ConvertError::Unpickle(error) | ConvertError::Build(error) => {
                Some(error)
            }
            ConvertError::Cycle { .. } | ConvertError::TooDeep { .. } => None,
        }
    }
}

/// A Python actor could not start. The exception variants carry the Python traceback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum StartError {
    /// Python actors were spawned on a system without the Python host.
    #[error("Python actors need the Python host: spawn them through subactor::Runtime")]
    NoHost,
    /// CPython could not create the subinterpreter.
    #[error("cannot create a subinterpreter: {0}")]
    Interpreter(String),
    /// The host's set-up code failed in the new interpreter.
    #[error("cannot set up the subinterpreter: {0}")]
    Setup(PythonException),
    /// The module failed to import.
    #[error("cannot import {module:?}: {exception}")]
    Import {
        /// The module name or file path given.
        module: String,
        /// What the import raised.
        exception: PythonException,
    },
    /// An extension module refused to load in an own-GIL subinterpreter (numpy is one).
    #[error(
        "extension module {module:?} cannot be loaded in an own-GIL subinterpreter: it does not support \
         per-interpreter GIL (PEP 684); spawn the actor with placement process (it then runs in a child \
         process, where every extension works), or keep the module out of actor code ({exception})"
    )]
    IncompatibleExtension {
        /// The module that refused.
        module: String,
        /// The ImportError.
        exception: PythonException,
    },
    /// The module has no such class (or it is not callable).
    #[error("module {module:?} has no usable class {class:?}: {exception}")]
    MissingClass {
        /// The module name or file path given.
        module: String,
        /// The class name given.
        class: String,
        /// The AttributeError (or TypeError).
        exception: PythonException,
    },
    /// The constructor raised.
    #[error("{class}(...) raised {exception}")]
    Constructor {
        /// The class name.
        class: String,
        /// What the constructor raised.
        exception: PythonException,
    },
    /// A constructor argument could not be turned into a Python object.
    #[error("a constructor argument cannot be sent to Python: {0}")]
    Arguments(ConvertError),
    /// The instance has no callable `receive`.
    #[error("{class} instances have no receive(msg) method")]
    NoReceive {
        /// The class name.
        class: String,
    },
    /// The child process of a process actor could not be started, or died while the
    /// actor started.
    #[error("cannot start the actor's process: {0}")]
    Process(String),
    /// The kept state could not be read (a directory store), or the recipe's state
    /// keeping is misconfigured.
    #[error("cannot restore the actor's state: {0}")]
    State(String),
}

impl StartError {
    /// The Python exception behind the error, with its traceback, if there is one.
    pub fn exception(&self) -> Option<&PythonException> {
        match self {
            StartError::Setup(e)
            | StartError::Import { exception: e, .. }
            | StartError::IncompatibleExtension { exception: e, .. }
            | StartError::MissingClass { exception: e, .. }
            | StartError::Constructor { exception: e, .. } => Some(e),
            StartError::Arguments(c) => c.exception(),
            StartError::NoHost
            | StartError::Interpreter(_)
            | StartError::NoReceive { .. }
            | StartError::Process(_)
            | StartError::State(_) => None,
        }
    }
}

/// The process's Python could not be started or stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Initialisation failed.
    #[error("cannot initialise Python: {0}")]
    Init(String),
    /// The libpython loaded at run time is too old.
    #[error("subactor needs CPython >= 3.12 (own-GIL subinterpreters), but the loaded libpython is {0}")]
    Version(String),
    /// `Py_FinalizeEx` reported an error (typically flushing a standard stream).
    #[error("Python reported an error while finalising")]
    Finalize,
    /// This process was forked from one whose runtime was open: no runtime can start
    /// here (see [`fork`](crate::fork)).
    #[error(transparent)]
    ForkedChild(#[from] crate::fork::ForkedChild),
}
