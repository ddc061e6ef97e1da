//! Exact statistics, and the segment policy: shared segments for small buffers, dedicated ones
//! for large buffers, and segments returned when their buffers are gone.

use std::collections::BTreeMap;

use subactor_arena::{Arena, ArenaConfig, ArenaStats, Buffer, page_size};

use crate::{small_arena, small_config};

/// The stats implied by a set of live buffers, when no empty segment is cached.
fn expected(buffers: &[Buffer]) -> ArenaStats {
    let segments: BTreeMap<u64, usize> = buffers.iter().map(|b| (b.segment().id(), b.segment().size())).collect();
    ArenaStats {
        bytes_live: buffers.iter().map(Buffer::len).sum(),
        buffers_live: buffers.len(),
        segments_mapped: segments.len(),
        bytes_mapped: segments.values().sum(),
    }
}

#[test]
fn stats_are_exact_while_allocating_and_dropping() {
    let arena = small_arena();
    assert_eq!(arena.stats(), ArenaStats::default(), "nothing is mapped up front");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut buffers: Vec<Buffer> = Vec::new();
    let count = if cfg!(miri) { 25 } else { 120 };
    for i in 0..count {
        // Mostly small, some above the 8 KiB threshold.
        let len = if i % 10 == 9 { 8193 + rng.usize(..30_000) } else { rng.usize(..3000) };
        buffers.push(arena.alloc(len).expect("alloc").freeze());
        assert_eq!(arena.stats(), expected(&buffers), "after {} allocations", i + 1);
    }
    // Clones and slices are not extra buffers.
    let extra: Vec<Buffer> = buffers.iter().map(|b| b.slice(b.len() / 2..)).collect();
    assert_eq!(arena.stats(), expected(&buffers));
    drop(extra);

    // Drop in a random order; with no empty segment kept, the stats stay exactly those of the
    // remaining buffers, segments included.
    while !buffers.is_empty() {
        let victim = buffers.swap_remove(rng.usize(..buffers.len()));
        drop(victim);
        assert_eq!(arena.stats(), expected(&buffers), "{} buffers left", buffers.len());
    }
    assert_eq!(arena.stats(), ArenaStats::default(), "every segment returned");
}

#[test]
fn one_empty_segment_is_kept_by_default_and_trim_releases_it() {
    let config = small_config().with_keep_empty_segments(ArenaConfig::DEFAULT_KEEP_EMPTY_SEGMENTS);
    let arena = Arena::with_config(config).expect("config");
    let segment_size = arena.config().segment_size();
    // Three segments' worth of 8 KiB buffers, plus a large one.
    let small: Vec<Buffer> = (0..24).map(|_| arena.alloc(8 << 10).expect("alloc").freeze()).collect();
    let large = arena.alloc(100_000).expect("alloc");
    assert_eq!(arena.stats().segments_mapped, 4);
    drop(large);
    drop(small);
    let stats = arena.stats();
    assert_eq!((stats.buffers_live, stats.bytes_live), (0, 0));
    assert_eq!(stats.segments_mapped, 1, "exactly one empty shared segment is cached");
    assert_eq!(stats.bytes_mapped, segment_size);

    // The cached segment is reused: no new mapping.
    let reused = arena.alloc(100).expect("alloc");
    assert_eq!(arena.stats().segments_mapped, 1);
    drop(reused);

    assert_eq!(arena.trim(), 1);
    assert_eq!(arena.stats(), ArenaStats::default());
    assert_eq!(arena.trim(), 0);
}

#[test]
fn keep_empty_segments_bounds_the_cache() {
    let arena = Arena::with_config(small_config().with_keep_empty_segments(2)).expect("config");
    let small: Vec<Buffer> = (0..40).map(|_| arena.alloc(8 << 10).expect("alloc").freeze()).collect();
    assert_eq!(arena.stats().segments_mapped, 5);
    drop(small);
    assert_eq!(arena.stats().segments_mapped, 2);
    assert_eq!(arena.trim(), 2);
    assert_eq!(arena.stats().segments_mapped, 0);
}

#[test]
fn many_small_allocations_share_one_segment() {
    let arena =
        Arena::with_config(ArenaConfig::new().with_segment_size(4 << 20).with_keep_empty_segments(0)).expect("config");
    let count = if cfg!(miri) { 500 } else { 10_000 };
    let mut rng = fastrand::Rng::with_seed(11);
    let buffers: Vec<Buffer> = (0..count).map(|_| arena.alloc(1 + rng.usize(..256)).expect("alloc").freeze()).collect();
    let stats = arena.stats();
    assert_eq!(stats.buffers_live, count);
    assert_eq!(stats.segments_mapped, 1, "small buffers must not map a segment each");
    assert_eq!(stats.bytes_mapped, 4 << 20);
    let first = buffers[0].segment().id();
    assert!(buffers.iter().all(|b| b.segment().id() == first));
    drop(buffers);
    assert_eq!(arena.stats(), ArenaStats::default());
}

#[test]
fn a_large_buffer_gets_its_own_segment_unmapped_on_drop() {
    let arena = small_arena();
    let small = arena.alloc(100).expect("alloc").freeze();
    let before = arena.stats();
    assert_eq!((before.segments_mapped, before.bytes_mapped), (1, 64 << 10));

    let large = arena.alloc(100_000).expect("alloc").freeze();
    let size = 100_000_usize.next_multiple_of(page_size());
    assert_ne!(large.segment().id(), small.segment().id());
    assert_eq!(large.segment().size(), size, "sized to fit, page-rounded");
    assert_eq!(large.segment_offset(), 0);
    let during = arena.stats();
    assert_eq!(during.segments_mapped, 2);
    assert_eq!(during.bytes_mapped, (64 << 10) + size);

    // A slice keeps the segment mapped after the original handle is gone.
    let tail = large.slice(99_990..);
    drop(large);
    assert_eq!(arena.stats().segments_mapped, 2);
    assert_eq!(tail.len(), 10);
    drop(tail);
    assert_eq!(arena.stats(), before, "the dedicated segment is unmapped on drop");

    // A buffer above the threshold but below the segment size is dedicated too.
    let medium = arena.alloc((8 << 10) + 1).expect("alloc");
    assert_eq!(medium.segment().size(), ((8 << 10) + 1_usize).next_multiple_of(page_size()));
    assert_eq!(arena.stats().segments_mapped, 2);
    drop(medium);
    drop(small);
    assert_eq!(arena.stats(), ArenaStats::default());
}

#[test]
fn a_threshold_of_zero_gives_every_buffer_its_own_segment() {
    let arena = Arena::with_config(small_config().with_large_threshold(0)).expect("config");
    let a = arena.alloc(0).expect("alloc");
    let b = arena.alloc(10).expect("alloc");
    assert_ne!(a.segment().id(), b.segment().id());
    assert_eq!(a.segment().size(), page_size());
    assert_eq!(arena.stats().segments_mapped, 2);
    drop((a, b));
    assert_eq!(arena.stats(), ArenaStats::default());
}
