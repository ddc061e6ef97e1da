//! Entry points for the fuzz targets (`fuzz/fuzz_targets/cluster_frames.rs`), built only
//! with the `fuzzing` feature: the decoders of what other nodes send, run as a node runs
//! them on NATS messages (frames or their parts put together, then batches, calls,
//! answers, acks, heartbeats and registry entries decoded).

use crate::decode_plain;
use crate::parts::{Piece, Reassembly};
use crate::proto::{Ack, Batch, Heartbeat, Item, NameEntry, Replies, Wire};

/// What a node keeps between messages: the unfinished frames of its two subjects.
#[derive(Default)]
pub struct Inbound {
    calls: Reassembly,
    replies: Reassembly,
    /// Bytes of all the messages so far (a frame put together is never longer).
    given: usize,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound").field("given", &self.given).finish_non_exhaustive()
    }
}

/// What one message came to, for the fuzz target's checks (and for tests that watch
/// what nodes send each other).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// A frame of calls was complete, and this many of its calls decoded (as plain
    /// values: a call holding a reference does not, without the node's handles).
    pub calls: Option<usize>,
    /// That frame's calls, decoded or not.
    pub items: Option<usize>,
    /// That frame of calls acknowledged this many bunches of answers.
    pub taken: Option<usize>,
    /// A bunch of answers was complete and decoded, with this many answers.
    pub answers: Option<usize>,
    /// That bunch carried this many acks of batches.
    pub acks: Option<usize>,
}

impl Inbound {
    /// Takes `payload` as a message on the node's subject of calls and, the same bytes,
    /// on its subject of answers; also decodes it as an ack, a heartbeat and a registry
    /// entry. Never panics: whatever the bytes, each step is a value or an error.
    pub fn message(&mut self, payload: &[u8]) -> Seen {
        self.given += payload.len();
        let mut seen = Seen::default();
        if let Ok(Piece::Frame(frame)) = decode_plain::<Wire>(payload).and_then(|wire| self.calls.take(wire)) {
            assert!(frame.len() <= self.given, "a frame longer than every byte given");
            if let Ok(batch) = decode_plain::<Batch>(&frame) {
                seen.calls = Some(batch.items.iter().filter(|item| decode_plain::<Item>(item).is_ok()).count());
                seen.items = Some(batch.items.len());
                seen.taken = Some(batch.taken.len());
            }
        }
        if let Ok(Piece::Frame(frame)) = decode_plain::<Wire>(payload).and_then(|wire| self.replies.take(wire)) {
            assert!(frame.len() <= self.given, "a frame longer than every byte given");
            if let Ok(replies) = decode_plain::<Replies>(&frame) {
                seen.answers = Some(replies.answers.len());
                seen.acks = Some(replies.acks.len());
            }
        }
        let _ = decode_plain::<Result<Ack, String>>(payload);
        let _ = decode_plain::<Heartbeat>(payload);
        let _ = decode_plain::<NameEntry>(payload);
        seen
    }
}
