//! Several threads allocate, freeze, clone, slice and pass buffers to each other over channels,
//! dropping them in a seeded random order. Every byte is checked before its buffer is dropped,
//! and the arena ends up empty.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use subactor_arena::{Arena, ArenaConfig, ArenaStats, Buffer};

use crate::{fill, pattern};

/// A buffer in flight: its tag, where its view starts in the tagged pattern, and the address it
/// had when it was sent.
struct Parcel {
    tag: u64,
    start: usize,
    address: usize,
    buffer: Buffer,
}

impl Parcel {
    fn check(&self) {
        assert_eq!(self.buffer.as_ptr() as usize, self.address, "tag {}", self.tag);
        let intact = self.buffer.iter().enumerate().all(|(i, &b)| b == pattern(self.tag, self.start + i));
        assert!(intact, "buffer {} was corrupted", self.tag);
    }
}

fn worker(id: usize, arena: &Arena, inbox: Receiver<Parcel>, peers: Vec<Sender<Parcel>>, rounds: usize) -> usize {
    // Counts the views dropped (each checked first); received ones are also checked on arrival.
    let mut rng = fastrand::Rng::with_seed(0x5eed ^ id as u64);
    let mut held: Vec<Parcel> = Vec::new();
    let mut checked = 0;
    for round in 0..rounds {
        let tag = ((id as u64) << 32) | round as u64;
        let len = match rng.usize(..20) {
            0 => 8193 + rng.usize(..40_000), // dedicated segment
            1 => 0,
            _ => rng.usize(..4000),
        };
        let mut buffer = arena.alloc(len).expect("alloc within the limit");
        assert!(buffer.iter().all(|&b| b == 0), "fresh buffer not zeroed");
        fill(&mut buffer, tag);
        let frozen = buffer.freeze();
        let address = frozen.as_ptr() as usize;

        // Send a clone or a slice to a random peer (possibly ourselves).
        let (view, view_start) = if frozen.is_empty() || rng.usize(..2) == 0 {
            (frozen.clone(), 0)
        } else {
            let start = rng.usize(..frozen.len());
            (frozen.slice(start..), start)
        };
        let parcel = Parcel { tag, start: view_start, address: address + view_start, buffer: view };
        peers[rng.usize(..peers.len())].send(parcel).expect("peers drain their inbox until every sender is gone");
        held.push(Parcel { tag, start: 0, address, buffer: frozen });

        // Take in whatever arrived.
        while let Ok(parcel) = inbox.try_recv() {
            parcel.check();
            held.push(parcel);
        }
        // Drop random held buffers once there are many.
        while held.len() > 24 {
            let parcel = held.swap_remove(rng.usize(..held.len()));
            parcel.check();
            checked += 1;
        }
    }
    drop(peers);
    // Drain until every peer has hung up, then drop what is left in random order.
    for parcel in inbox {
        parcel.check();
        held.push(parcel);
    }
    while !held.is_empty() {
        let parcel = held.swap_remove(rng.usize(..held.len()));
        parcel.check();
        checked += 1;
    }
    checked
}

#[test]
fn threads_passing_buffers_around_leave_the_arena_empty() {
    let (threads, rounds) = if cfg!(miri) { (3, 25) } else { (8, 1500) };
    let arena = Arena::with_config(
        ArenaConfig::new()
            .with_segment_size(64 << 10)
            .with_large_threshold(8 << 10)
            .with_max_bytes(512 << 20)
            .with_keep_empty_segments(0),
    )
    .expect("config");
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel()).unzip();
    let checked: usize = thread::scope(|scope| {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(id, inbox)| {
                let peers = senders.clone();
                let arena = &arena;
                scope.spawn(move || worker(id, arena, inbox, peers, rounds))
            })
            .collect();
        drop(senders);
        handles.into_iter().map(|h| h.join().expect("worker")).sum()
    });
    // Every allocation was dropped twice, each time checked: the original and the parcel sent.
    assert_eq!(checked, 2 * threads * rounds);
    assert_eq!(arena.stats(), ArenaStats::default());
}
