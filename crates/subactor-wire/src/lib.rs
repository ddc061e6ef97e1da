//! subactor's wire: how actors in different processes reach each other. No Python.
//!
//! - [`stream`]: frames over a Unix stream socket, with file descriptors alongside;
//!   the reader never trusts the peer (limits, truncation, descriptor counts).
//! - [`call`]: [`Call`]s — tell, ask, stop, kill, monitor, lookup, spawn, timers — made
//!   by one side on the other side's actors, and [`serve`], which carries them out.
//! - [`handles`]: how actor references and arena buffers inside values cross a link
//!   ([`LinkHandles`]: references as ids resolved by the runtime's [`Exports`] or as
//!   [`ProxyRef`]s; buffers lent without a copy, their segments' memfds passed once), and
//!   [`handles::send`] / [`handles::decode`], which frame items with the descriptors
//!   they need.
//!
//! Items are encoded by [`subactor_core::codec`], the one codec of the project.

pub mod call;
pub mod handles;
pub mod proxy;
pub mod stream;

pub use call::{
    ActorEnv, Answer, AskFailure, Call, LogRecord, Nodes, NodesExt, RemoteError, SpawnRequest, SpawnSettings, serve,
};
pub use handles::{Channel, Exports, LinkHandles};
pub use proxy::{CallFailed, Caller, DeadRef, ProxyRef};
pub use stream::{Frame, FrameReader, FrameWriter, LinkError};
