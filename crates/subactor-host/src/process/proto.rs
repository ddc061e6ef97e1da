//! The frames between a runtime, its template process and the children of process
//! actors. Encoded by [`subactor_core::codec`], framed by [`subactor_wire::stream`].

use std::borrow::Cow;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subactor_core::Value;
use subactor_core::codec::{self, Handles, RefAddr};
use subactor_wire::{Answer, Call, Channel, Frame, FrameWriter, LinkError};

use crate::{MainModule, ReceiveError, StartError};

/// What the runtime tells its template process first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TemplateConfig {
    /// Folders put first on `sys.path`.
    pub(crate) python_path: Vec<String>,
    /// Modules imported once in the template, so that every child starts with them.
    pub(crate) preload: Vec<String>,
    /// The driving program's main module, if Python drives the runtime.
    pub(crate) main: Option<MainModuleSpec>,
    /// How many children the template keeps forked and waiting.
    pub(crate) spares: usize,
}

/// [`MainModule`] as it travels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum MainModuleSpec {
    Script(String),
    Module(String),
}

impl From<&MainModule> for MainModuleSpec {
    fn from(main: &MainModule) -> MainModuleSpec {
        match main {
            MainModule::Script(path) => MainModuleSpec::Script(path.to_string_lossy().into_owned()),
            MainModule::Module(name) => MainModuleSpec::Module(name.clone()),
        }
    }
}

impl From<MainModuleSpec> for MainModule {
    fn from(main: MainModuleSpec) -> MainModule {
        match main {
            MainModuleSpec::Script(path) => MainModule::Script(path.into()),
            MainModuleSpec::Module(name) => MainModule::Module(name),
        }
    }
}

/// Runtime -> template.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToTemplate {
    Config(TemplateConfig),
    /// Hand a child over (a spare, or a fresh fork).
    Spawn {
        token: u64,
    },
    /// SIGKILL a child that has not been reaped yet.
    Kill {
        pid: i32,
    },
    /// The runtime has started an actor in the spare `pid` lent to it in advance
    /// ([`FromTemplate::Spare`]), or failed to: fork another.
    Took {
        pid: i32,
    },
}

/// Template -> runtime.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromTemplate {
    /// The configuration is applied (the preloads imported), or why not.
    Ready(Result<(), String>),
    /// A child for `token`; the frame carries the runtime's ends of its data and
    /// control sockets.
    Spawned { token: u64, pid: i32 },
    /// No child for `token`.
    SpawnFailed { token: u64, error: String },
    /// A child ended; `status` is the raw wait status.
    Exited { pid: i32, status: i32 },
    /// A spare lent in advance: the runtime keeps it until a spawn takes it (then says
    /// [`ToTemplate::Took`]); the frame carries the runtime's ends of its sockets.
    Spare { pid: i32 },
}

/// What a child needs to start its actor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StartSpec {
    pub(crate) module: String,
    pub(crate) class: String,
    pub(crate) args: Vec<Value>,
    /// The actor itself, as the parent knows it (for `subactor.self_ref()`).
    pub(crate) myself: RefAddr,
    /// `RLIMIT_DATA` for the child, in bytes.
    pub(crate) memory_limit: Option<u64>,
    /// The CPU core to pin the child to.
    pub(crate) core: Option<usize>,
    /// How long the child's reader spins before it sleeps, in microseconds.
    pub(crate) spin_us: u64,
    /// Snapshots: `None` none; 0 on `subactor.checkpoint()` only; n after every n
    /// messages.
    pub(crate) snapshot_every: Option<u32>,
    /// The state to restore before the first message.
    pub(crate) state: Option<Value>,
    /// An upgrade: the state goes to `upgrade(old_state)` when the class defines it,
    /// and the module is loaded anew from its source.
    pub(crate) upgrading: bool,
    /// How many messages an asyncio actor handles at once (above 1: they come as
    /// [`ToChild::Begin`], and end as [`FromChild::Finished`]).
    pub(crate) max_concurrency: usize,
    /// With `max_concurrency` above 1, the time limit of each message (the child's event
    /// loop enforces it).
    pub(crate) time_limit: Option<std::time::Duration>,
}

/// Runtime -> child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild<'a> {
    /// Start the actor (data socket, first frame).
    Start(Box<StartSpec>),
    /// Handle a message: the `seq`-th handler call of this child (data socket).
    Msg { seq: u64, msg: Value, reply: bool },
    /// Handle these tells in order, as handler call `seq`; with `stop_at_failure`, stop
    /// after the first that fails (data socket).
    Tells { seq: u64, msgs: Cow<'a, [Value]>, stop_at_failure: bool },
    /// The answer to the child's call `call` (on the socket the call came on).
    Answer { call: u64, answer: Answer },
    /// Interrupt handler `seq` if it still runs (control socket); `kill` (else the
    /// time limit).
    Interrupt { seq: u64, kill: bool },
    /// The runtime is done with the buffer the child lent as `lend` (control socket).
    Release { lend: u64 },
    /// Take a snapshot of the actor's state now, as handler call `seq`: answered with
    /// `Done` whose result is `(state,)`, or `None` when the class has no `snapshot`
    /// (data socket).
    Snapshot { seq: u64 },
    /// Begin a message of an asyncio actor whose `max_concurrency` is above 1, as a task
    /// on its event loop; its end comes as [`FromChild::Finished`] (data socket).
    Begin { token: u64, msg: Value, reply: bool },
    /// Cancel every message begun and not finished (`kill`: else a failure) (data
    /// socket).
    CancelAll { kill: bool },
}

/// How a message begun with [`ToChild::Begin`] ended.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Ended {
    /// Answered (`None` for a tell).
    Replied(Value),
    /// Raised, or its answer or snapshot could not be converted.
    Failed(ReceiveError),
    /// Cancelled by a kill (`kill`) or its time limit.
    Interrupted { kill: bool },
}

/// Child -> runtime.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    /// The actor started, or why not (data socket).
    Started(Result<(), StartError>),
    /// Handler `seq` ended, with the snapshot due after it, if any, and the buffers the
    /// runtime lent that the child was done with while it handled the message (sent
    /// here rather than as a `Release` each: no frame and no wake-up of the parent's
    /// watcher per handoff) (data socket).
    Done { seq: u64, result: Result<Value, ReceiveError>, snapshot: Option<Value>, released: Vec<u64> },
    /// Tells `seq` ended: the outcome of each message handled, in order, how long each
    /// one's handler ran (nanoseconds, in order: the parent's handler-time metrics), and
    /// the last snapshot due after them, if any (data socket).
    Told { seq: u64, results: Vec<Result<(), ReceiveError>>, nanos: Vec<u64>, snapshot: Option<Value> },
    /// A call on the parent's actors: on the data socket when the handler's own thread
    /// makes it, else on the control socket.
    Call { call: u64, request: Call },
    /// The child is done with the buffer the runtime lent as `lend` (control socket).
    Release { lend: u64 },
    /// A message begun as `token` ended, with the snapshot due after it, if any (control
    /// socket: sent by the child's event loop thread).
    Finished { token: u64, ended: Ended, snapshot: Option<Value> },
    /// A `logging` record of the actor, for the parent's `tracing` (control socket).
    Log(subactor_wire::LogRecord),
}

/// Encodes `item` and sends it on `channel` as one frame, with the segments its buffers
/// need and `extra` descriptors.
pub(crate) fn send<T: Serialize>(
    writer: &FrameWriter,
    channel: Channel,
    item: &T,
    handles: &Arc<dyn Handles>,
    extra: &[BorrowedFd<'_>],
) -> Result<(), LinkError> {
    subactor_wire::handles::send(writer, channel, item, handles, extra)
}

/// Decodes a received frame (its buffers take the descriptors they need).
pub(crate) fn decode<T: DeserializeOwned>(frame: &mut Frame, handles: &Arc<dyn Handles>) -> Result<T, LinkError> {
    subactor_wire::handles::decode(frame, handles)
}

/// Handles for frames that carry no live handle (the template's): any handle in them is
/// an error.
pub(crate) struct NoHandles;

impl Handles for NoHandles {
    fn encode_ref(&self, actor: &subactor_core::AnyRef) -> Result<RefAddr, String> {
        Err(format!("{actor:?} cannot travel on this link"))
    }

    fn decode_ref(&self, _addr: RefAddr) -> Result<subactor_core::AnyRef, String> {
        Err("no actor reference travels on this link".into())
    }

    fn encode_buffer(&self, _buffer: &subactor_arena::Buffer) -> Result<codec::BufferAddr, String> {
        Err("no buffer travels on this link".into())
    }

    fn decode_buffer(&self, _addr: codec::BufferAddr) -> Result<subactor_arena::Buffer, String> {
        Err("no buffer travels on this link".into())
    }
}

/// [`NoHandles`], shared.
pub(crate) fn no_handles() -> Arc<dyn Handles> {
    Arc::new(NoHandles)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use subactor_arena::Arena;
    use subactor_wire::{Exports, LinkHandles};

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Whatever bytes arrive as a frame's body, decoding answers a frame or an error.
        #[test]
        fn arbitrary_bytes_decode_to_a_frame_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let handles: Arc<dyn Handles> = Arc::new(LinkHandles::owner(Arc::new(Exports::new()), Arena::new()));
            let mut frame = Frame::from_body(bytes);
            let _ = decode::<ToChild<'static>>(&mut frame, &handles);
            let _ = decode::<FromChild>(&mut frame, &handles);
            let _ = decode::<ToTemplate>(&mut frame, &handles);
            let _ = decode::<FromTemplate>(&mut frame, &handles);
        }
    }

    /// Found by the test above: a batch of tells claiming 4.5e18 values aborted the
    /// process (bincode allocated what the length claimed).
    #[test]
    fn a_claimed_length_beyond_the_input_is_an_error() {
        let handles: Arc<dyn Handles> = Arc::new(LinkHandles::owner(Arc::new(Exports::new()), Arena::new()));
        let bytes = [
            0x02, 0x1e, 0xfd, 0x40, 0xce, 0x97, 0xf5, 0xa4, 0xa6, 0x4a, 0x3e, 0x5b, 0xca, 0xba, 0x89, 0x5d, 0x8b, 0x8e,
            0x02, 0xf6, 0x5c, 0xf3, 0x6d, 0x9b, 0x55, 0x94, 0xba, 0x8a, 0x38, 0xea, 0x46, 0xe0, 0xb4, 0x98, 0x32, 0x0a,
            0x0d, 0x71, 0xe5, 0x6e, 0xfc, 0x9d, 0xfb, 0x50, 0xc2,
        ];
        let mut frame = Frame::from_body(bytes.to_vec());
        assert!(decode::<ToChild<'static>>(&mut frame, &handles).is_err());
    }
}
