//! Integration tests of the `subactor` facade: real interpreters on real threads.
//!
//! Python actor classes live in `tests/python`.

mod buffers;
mod cluster;
mod common;
mod fork;
mod lifecycle;
mod messaging;
mod nats;
mod observe;
mod pipeline;
mod process;
mod services;
mod spawn;
mod supervision;
mod talking;
mod values;
