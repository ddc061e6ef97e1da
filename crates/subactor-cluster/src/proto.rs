//! What nodes send each other over NATS, encoded by [`subactor_core::codec`].
//!
//! Subjects, under the cluster's prefix `P`:
//! - `P.<node>.in`: batches of calls for `<node>`'s actors; a frame larger than a NATS
//!   message travels in [`Wire::Part`]s, each a request answered with an [`Ack`]. A
//!   batch in one message is published without a reply subject: its [`Ack`] comes with
//!   the answers ([`Replies::acks`]), so that an ask and its answer are two messages; a
//!   batch sent again (no ack came) is a request, answered as a part is;
//! - `P.<node>.reply`: [`Replies`] to `<node>`'s calls (asks, lookups, spawns...); one
//!   published without a reply subject is acknowledged on the next [`Batch`] (`taken`),
//!   a part or one sent again is a request answered with an empty message;
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
    /// Bunches of answers ([`Replies`]) from the receiver that the sender has taken, as
    /// `(the receiver's incarnation, the bunch's frame)`: the acknowledgement of bunches
    /// that came without a reply subject rides on the next batch. A batch with `seq` 0
    /// and no items carries only these (sent when no batch went for a moment), and is
    /// not acknowledged itself.
    pub(crate) taken: Vec<(u64, u64)>,
}

/// One call; `corr` (not 0) asks for a [`Reply`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) corr: u64,
    pub(crate) call: subactor_wire::Call,
    /// The sender's trace context: the call is served inside it.
    pub(crate) trace: Option<subactor_core::trace::TraceContext>,
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
    /// The sender's incarnation and this bunch's number: a bunch that came without a
    /// reply subject is acknowledged by these on the receiver's next [`Batch`]
    /// (`taken`).
    pub(crate) incarnation: u64,
    pub(crate) frame: u64,
    pub(crate) answers: Vec<(u64, Answer)>,
    /// Acks of the receiver's batches that came without a reply subject, as `(the
    /// batch's incarnation, its ack)`: an ask's answer carries the ack of its batch,
    /// so that an ask costs two NATS messages.
    pub(crate) acks: Vec<(u64, Ack)>,
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

#[cfg(test)]
mod tests {
    //! Everything a node decodes comes from the network: arbitrary bytes, and valid
    //! frames cut short or with bytes changed, are an error or a value, never a panic or
    //! an allocation the bytes do not pay for.

    use proptest::prelude::*;
    use subactor_core::Value;

    use super::*;
    use crate::{decode_plain, encode_plain};

    /// Decodes `bytes` as every type that comes from another node.
    fn decode_all(bytes: &[u8]) {
        let _ = decode_plain::<Wire>(bytes);
        let _ = decode_plain::<Batch>(bytes);
        let _ = decode_plain::<Item>(bytes);
        let _ = decode_plain::<Result<Ack, String>>(bytes);
        let _ = decode_plain::<Replies>(bytes);
        let _ = decode_plain::<Heartbeat>(bytes);
        let _ = decode_plain::<NameEntry>(bytes);
    }

    /// Valid frames of each kind, to mutate.
    fn samples() -> Vec<Vec<u8>> {
        let trace = Some(subactor_core::trace::TraceContext { trace_id: 0x5eed, span_id: 0xabc, flags: 1 });
        let item = encode_plain(&Item { corr: 7, call: subactor_wire::Call::Lookup("counter".into()), trace })
            .expect("encodes");
        let batch = Batch {
            from: "a".into(),
            incarnation: 3,
            seq: 9,
            items: vec![serde_bytes::ByteBuf::from(item.clone())],
            taken: vec![(4, 17)],
        };
        let batch = encode_plain(&batch).expect("encodes");
        let answers = Replies {
            from: "b".into(),
            incarnation: 4,
            frame: 17,
            answers: vec![(7, Answer::Reply(Value::from((1, "two", vec![3u8; 40])))), (8, Answer::Done)],
            acks: vec![(3, Ack { seq: 9, accepted: 1, refused: vec![(0, Answer::Done)] })],
        };
        vec![
            item,
            encode_plain(&Wire::Whole(batch.clone())).expect("encodes"),
            encode_plain(&Wire::Part { from: "a".into(), incarnation: 1, frame: 2, index: 0, total: 3, bytes: batch })
                .expect("encodes"),
            encode_plain(&Ok::<Ack, String>(Ack { seq: 9, accepted: 1, refused: vec![(0, Answer::Done)] }))
                .expect("encodes"),
            encode_plain(&answers).expect("encodes"),
            encode_plain(&Heartbeat { node: "a".into(), incarnation: 1, leaving: false }).expect("encodes"),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_all(&bytes);
        }

        #[test]
        fn changed_or_cut_frames_never_panic(
            which in 0usize..6,
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = samples().swap_remove(which);
            for (at, byte) in changes {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            decode_all(&bytes);
            let end = cut.index(bytes.len() + 1);
            decode_all(&bytes[..end]);
        }
    }

    #[test]
    fn the_samples_decode_as_what_they_are() {
        let samples = samples();
        assert!(decode_plain::<Item>(&samples[0]).is_ok());
        assert!(matches!(decode_plain::<Wire>(&samples[1]), Ok(Wire::Whole(_))));
        assert!(matches!(decode_plain::<Wire>(&samples[2]), Ok(Wire::Part { total: 3, .. })));
        assert!(decode_plain::<Replies>(&samples[4]).is_ok());
        assert!(decode_plain::<Heartbeat>(&samples[5]).is_ok());
    }
}
