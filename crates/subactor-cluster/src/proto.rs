//! What nodes send each other over NATS, encoded by [`subactor_core::codec`].
//!
//! Subjects, under the cluster's prefix `P`:
//! - `P.<node>.in`: batches of calls for `<node>`'s actors (a request: the answer is an
//!   [`Ack`]); a frame larger than a NATS message travels in [`Wire::Part`]s;
//! - `P.<node>.reply`: [`Reply`]s to `<node>`'s calls (asks, lookups, spawns...);
//! - `P.hb`: every node's [`Heartbeat`].

use serde::{Deserialize, Serialize};
use subactor_wire::Answer;

/// One frame on `P.<node>.in`, whole or in parts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Wire {
    /// A whole [`Batch`].
    Whole(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Part `index` of `total` of the batch `frame` of node `from`.
    Part {
        from: String,
        incarnation: u64,
        frame: u64,
        index: u32,
        total: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// Calls from one node to another, in the order they were made.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The sending node.
    pub(crate) from: String,
    /// The sender's incarnation (a node that restarts starts a new one).
    pub(crate) incarnation: u64,
    /// The batch's number on this link: a batch sent again (its ack was lost) is
    /// recognised and answered with the same ack.
    pub(crate) seq: u64,
    /// Each call encoded on its own ([`Item`]), so that one malformed call fails alone.
    pub(crate) items: Vec<serde_bytes::ByteBuf>,
}

/// One call; `corr` (not 0) asks for a [`Reply`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) corr: u64,
    pub(crate) call: subactor_wire::Call,
}

/// What the receiver did with a batch: it took the first `accepted` items, in order
/// (the rest, if any, must be sent again: a mailbox stayed full), and refused some of
/// those with an answer (a tell to an actor that is gone, a call it would not take).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ack {
    pub(crate) seq: u64,
    pub(crate) accepted: u32,
    pub(crate) refused: Vec<(u32, Answer)>,
}

/// Answers to calls of one node, from `from` (sent in bunches: every tell is answered
/// once its handler has run, so that the sender knows what was handled).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Replies {
    pub(crate) from: String,
    pub(crate) answers: Vec<(u64, Answer)>,
}

/// A node is alive (or, with `leaving`, is going away).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) node: String,
    pub(crate) incarnation: u64,
    pub(crate) leaving: bool,
}

/// Where a name points, in the cluster's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameEntry {
    pub(crate) node: String,
    pub(crate) incarnation: u64,
    pub(crate) id: u64,
    pub(crate) placement: subactor_core::Placement,
}
