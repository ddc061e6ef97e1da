//! Frames larger than a NATS message (a batch of calls, a bunch of answers): split into
//! [`Wire::Part`]s on the way out, put together on the way in.
//!
//! What comes in is network input: a part with an impossible index or count, parts that
//! disagree, or more unfinished bytes than [`MAX_HELD`] are refused, never trusted for an
//! allocation; parts of a frame that never completes (its sender gave up or restarted)
//! are dropped after [`EXPIRY`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::proto::Wire;

/// The largest frame a node sends or puts together (a buffer crosses nodes inside one).
pub(crate) const MAX_FRAME: usize = 2 << 30;
/// The smallest part a node sends (NATS servers allow 1 MiB messages by default).
pub(crate) const MIN_PART: usize = 16 << 10;
/// The most bytes of unfinished frames a node holds at once, from all senders.
pub(crate) const MAX_HELD: usize = 4 << 30;
/// How long the parts of an unfinished frame are kept after the latest one came.
pub(crate) const EXPIRY: Duration = Duration::from_secs(60);

/// The most parts one frame may have.
const MAX_PARTS: usize = MAX_FRAME.div_ceil(MIN_PART);
/// The memory of one part's slot in an unfinished frame.
const SLOT: usize = std::mem::size_of::<Option<Vec<u8>>>();

/// A frame's parts, in order (one [`Wire::Whole`] when it fits in `part_size` bytes).
pub(crate) fn split(
    from: &str,
    incarnation: u64,
    frame: u64,
    bytes: Vec<u8>,
    part_size: usize,
) -> Result<Vec<Wire>, String> {
    let part_size = part_size.max(MIN_PART);
    if bytes.len() <= part_size {
        return Ok(vec![Wire::Whole(bytes)]);
    }
    if bytes.len() > MAX_FRAME {
        return Err(format!(
            "{} bytes cannot travel to another node (at most {MAX_FRAME} in one message)",
            bytes.len()
        ));
    }
    let total = u32::try_from(bytes.len().div_ceil(part_size)).map_err(|e| e.to_string())?;
    bytes
        .chunks(part_size)
        .enumerate()
        .map(|(index, chunk)| {
            Ok(Wire::Part {
                from: from.to_owned(),
                incarnation,
                frame,
                index: u32::try_from(index).map_err(|e| e.to_string())?,
                total,
                bytes: chunk.to_vec(),
            })
        })
        .collect()
}

/// (sender, its incarnation, frame): whose parts these are.
type Key = (String, u64, u64);

struct Partial {
    slots: Vec<Option<Vec<u8>>>,
    /// The bytes of the parts in.
    bytes: usize,
    /// The memory of `slots` itself (counted in [`Reassembly::held`] with `bytes`, so that
    /// parts claiming many slots cannot hold memory unaccounted).
    overhead: usize,
    touched: Instant,
}

/// Puts frames together from their parts.
pub(crate) struct Reassembly {
    partial: HashMap<Key, Partial>,
    held: usize,
    /// The most it holds ([`MAX_HELD`]; less in tests).
    limit: usize,
}

impl Default for Reassembly {
    fn default() -> Reassembly {
        Reassembly { partial: HashMap::new(), held: 0, limit: MAX_HELD }
    }
}

/// What a part came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// The frame is complete: its bytes.
    Frame(Vec<u8>),
    /// Kept; more parts are to come.
    Kept,
}

impl Reassembly {
    /// Takes one frame or part; the frame once all its parts are in.
    pub(crate) fn take(&mut self, wire: Wire) -> Result<Piece, String> {
        self.expire(Instant::now());
        let (from, incarnation, frame, index, total, bytes) = match wire {
            Wire::Whole(bytes) => return Ok(Piece::Frame(bytes)),
            Wire::Part { from, incarnation, frame, index, total, bytes } => {
                (from, incarnation, frame, index as usize, total as usize, bytes)
            }
        };
        if total == 0 || total > MAX_PARTS || index >= total {
            return Err(format!("part {index} of {total}: not a possible part of a frame"));
        }
        let key = (from, incarnation, frame);
        let overhead = if self.partial.contains_key(&key) { 0 } else { total * SLOT };
        if self.held + overhead + bytes.len() > self.limit {
            self.drop_frame(&key);
            return Err(format!("more than {} bytes of unfinished frames: part refused", self.limit));
        }
        let partial = self.partial.entry(key.clone()).or_insert_with(|| Partial {
            slots: vec![None; total],
            bytes: 0,
            overhead,
            touched: Instant::now(),
        });
        self.held += overhead;
        if partial.slots.len() != total {
            self.drop_frame(&key);
            return Err("parts of one frame disagree on their count".into());
        }
        partial.touched = Instant::now();
        let len = bytes.len();
        if let Some(old) = partial.slots[index].replace(bytes) {
            // The same part again (its acknowledgement was lost).
            partial.bytes -= old.len();
            self.held -= old.len();
        }
        partial.bytes += len;
        self.held += len;
        if partial.bytes > MAX_FRAME {
            self.drop_frame(&key);
            return Err(format!("a frame of more than {MAX_FRAME} bytes"));
        }
        if partial.slots.iter().any(Option::is_none) {
            return Ok(Piece::Kept);
        }
        let Some(done) = self.partial.remove(&key) else { return Ok(Piece::Kept) };
        self.held -= done.bytes + done.overhead;
        let mut frame = Vec::with_capacity(done.bytes);
        for slot in done.slots.into_iter().flatten() {
            frame.extend_from_slice(&slot);
        }
        Ok(Piece::Frame(frame))
    }

    /// Bytes held in unfinished frames.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    fn drop_frame(&mut self, key: &Key) {
        if let Some(partial) = self.partial.remove(key) {
            self.held -= partial.bytes + partial.overhead;
        }
    }

    fn expire(&mut self, now: Instant) {
        if self.partial.is_empty() {
            return;
        }
        let held = &mut self.held;
        self.partial.retain(|_, partial| {
            let keep = now.saturating_duration_since(partial.touched) < EXPIRY;
            if !keep {
                *held -= partial.bytes + partial.overhead;
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn part(frame: u64, index: u32, total: u32, bytes: &[u8]) -> Wire {
        Wire::Part { from: "b".into(), incarnation: 1, frame, index, total, bytes: bytes.to_vec() }
    }

    #[test]
    fn a_frame_split_and_put_together_again_is_the_same_in_any_order_with_repeats() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut parts = split("b", 1, 7, bytes.clone(), MIN_PART).expect("splits");
        assert_eq!(parts.len(), 100_000usize.div_ceil(MIN_PART));
        parts.reverse();
        let again = split("b", 1, 7, bytes.clone(), MIN_PART).expect("splits").remove(2);
        parts.insert(1, again);
        let mut whole = Reassembly::default();
        let mut frames = Vec::new();
        for wire in parts {
            if let Piece::Frame(frame) = whole.take(wire).expect("a good part") {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![bytes]);
        assert_eq!(whole.held(), 0);
    }

    #[test]
    fn a_small_frame_goes_whole() {
        let parts = split("b", 1, 1, vec![1, 2, 3], 1 << 20).expect("splits");
        assert!(matches!(parts.as_slice(), [Wire::Whole(b)] if b == &[1, 2, 3]));
    }

    #[test]
    fn impossible_or_disagreeing_parts_are_refused_and_nothing_is_kept() {
        let mut whole = Reassembly::default();
        assert!(whole.take(part(1, 0, 0, b"x")).is_err());
        assert!(whole.take(part(1, 3, 3, b"x")).is_err());
        assert!(whole.take(part(1, 0, u32::MAX, b"x")).is_err(), "no allocation for 4 billion parts");
        assert_eq!(whole.take(part(2, 0, 3, b"abc")), Ok(Piece::Kept));
        assert!(whole.take(part(2, 1, 4, b"def")).is_err());
        assert_eq!(whole.held(), 0);
        // The frame starts over cleanly after a refusal.
        assert_eq!(whole.take(part(2, 0, 2, b"ab")), Ok(Piece::Kept));
        assert_eq!(whole.take(part(2, 1, 2, b"cd")), Ok(Piece::Frame(b"abcd".to_vec())));
    }

    #[test]
    fn parts_claiming_many_slots_count_them_against_the_limit() {
        // Each first part of a frame of MAX_PARTS parts costs its slots (3 MiB), not its
        // one byte: a sender cannot make a node hold memory by claiming huge counts.
        let mut whole = Reassembly { limit: 10 << 20, ..Reassembly::default() };
        let total = u32::try_from(MAX_PARTS).expect("fits");
        let kept = (0..10).take_while(|&frame| whole.take(part(frame, 0, total, b"x")).is_ok()).count();
        assert_eq!(kept, (10 << 20) / (MAX_PARTS * SLOT + 1));
        assert!(whole.held() <= 10 << 20);
        // Finished or dropped frames give their slots back.
        whole.expire(Instant::now() + EXPIRY + Duration::from_secs(1));
        assert_eq!(whole.held(), 0);
        assert_eq!(whole.take(part(99, 0, 1, b"y")), Ok(Piece::Frame(b"y".to_vec())));
        assert_eq!(whole.held(), 0);
    }

    #[test]
    fn unfinished_frames_expire() {
        let mut whole = Reassembly::default();
        assert_eq!(whole.take(part(1, 0, 2, b"abc")), Ok(Piece::Kept));
        assert_eq!(whole.held(), 3 + 2 * SLOT);
        whole.expire(Instant::now() + EXPIRY + Duration::from_secs(1));
        assert_eq!(whole.held(), 0);
    }

    proptest! {
        /// Arbitrary parts (hostile counts, indices, senders) never panic, never hold
        /// more than they were given, and a frame comes out only when complete.
        #[test]
        fn arbitrary_parts_are_safe(
            parts in proptest::collection::vec((0u64..3, 0u32..6, 0u32..6, proptest::collection::vec(any::<u8>(), 0..64)), 0..64)
        ) {
            let mut whole = Reassembly::default();
            let mut given = 0;
            for (frame, index, total, bytes) in parts {
                given += bytes.len();
                if let Ok(Piece::Frame(frame)) = whole.take(part(frame, index, total, &bytes)) {
                    prop_assert!(frame.len() <= given);
                }
                // What was given, and the slots of at most 3 unfinished frames of 6 parts.
                prop_assert!(whole.held() <= given + 3 * 6 * SLOT);
            }
        }
    }
}
