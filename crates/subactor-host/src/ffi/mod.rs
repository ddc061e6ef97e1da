//! Every line of subactor-host that touches the CPython C API.
//!
//! The rest of the crate is safe code that uses three types from here:
//! - [`process::Lease`]: a share of the process's Python (the main interpreter),
//!   initialised on a dedicated thread by the first lease and finalised on that same
//!   thread when the last lease is released;
//! - [`interp::Interpreter`]: one own-GIL subinterpreter, created, used and ended on
//!   the thread that owns it (it is neither `Send` nor `Sync`);
//! - the conversions between [`Value`](subactor_core::Value) and Python objects, which
//!   [`interp::Interpreter`] uses on its own thread;
//! - [`module`]: the in-actor module `subactor`, which actor code imports;
//! - [`replies`]: the replies of asks awaited by asyncio code in an actor, delivered
//!   to its event loop through an eventfd;
//! - [`interrupt::Interrupter`]: how the core's watchdog thread raises an exception in
//!   a running handler (a kill, a time limit);
//! - [`fork`]: what a child forked while actors run finds (public as
//!   `subactor_host::fork`);
//! - [`main`]: the same objects and conversions in the main interpreter, for the Python
//!   package (public as `subactor_host::main_interpreter`);
//! - [`codecache`]: compiled Python source, marshalled once per process for every
//!   actor interpreter that imports it;
//! - [`reclaim`]: the allocator memory CPython keeps after an own-GIL interpreter
//!   ends, given back (see its module docs);
//! - [`zygote`]: the template process of process actors (Python initialised once, a
//!   fork per child), and [`child`]: the actor in such a child, in its main
//!   interpreter.
//!
//! Invariants the code here relies on, and keeps:
//! - an [`object::Obj`] (an owned `PyObject*`) is created, used and dropped only while
//!   its interpreter's thread state is attached on the current thread: `Obj`s never
//!   leave the `Interpreter` that made them, and the `Interpreter` attaches itself
//!   before it drops them;
//! - no Python object crosses interpreters: only `Value`s do;
//! - PyO3's high-level API is not used anywhere in this crate (its statics are per
//!   process, not per interpreter).

pub(crate) mod buffers;
pub(crate) mod child;
pub(crate) mod codecache;
pub(crate) mod convert;
pub mod fork;
pub(crate) mod helpers;
pub(crate) mod interp;
pub(crate) mod interrupt;
pub mod main;
pub(crate) mod module;
pub(crate) mod object;
pub(crate) mod process;
pub(crate) mod reclaim;
pub(crate) mod replies;
pub(crate) mod zygote;
