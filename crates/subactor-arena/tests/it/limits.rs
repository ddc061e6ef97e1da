//! The size limit: a typed error, never a panic, and room again once buffers are gone.

use std::error::Error as _;

use subactor_arena::{Arena, ArenaConfig, ArenaError, ArenaStats, BufferMut, page_size};

use crate::{small_arena, small_config};

const LIMIT: usize = 1 << 20;

#[test]
fn exceeding_the_limit_is_a_typed_error_and_freeing_makes_room() {
    let arena = small_arena();
    let len: usize = 600_000;
    let size = len.next_multiple_of(page_size());
    let first = arena.alloc(len).expect("within the limit");

    let error = arena.alloc(len).expect_err("over the limit");
    match &error {
        ArenaError::LimitReached { requested, needed, limit, mapped, live } => {
            assert_eq!(*requested, len);
            assert_eq!(*needed, size);
            assert_eq!(*limit, LIMIT);
            assert_eq!(*mapped, size);
            assert_eq!(*live, len);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("limit reached"), "{message}");
    assert!(message.contains(&len.to_string()), "{message}");
    assert!(message.contains(&LIMIT.to_string()), "{message}");
    // A refused request leaves no trace.
    let stats = arena.stats();
    assert_eq!((stats.buffers_live, stats.bytes_mapped), (1, size));

    drop(first);
    let second = arena.alloc(len).expect("room again after the drop");
    assert_eq!(second.len(), len);
}

#[test]
fn small_buffers_hit_the_limit_when_no_segment_can_be_mapped() {
    let arena = small_arena();
    let per_segment = (64 << 10) / (8 << 10);
    let segments = LIMIT / (64 << 10);
    let mut buffers: Vec<BufferMut> =
        (0..per_segment * segments).map(|_| arena.alloc(8 << 10).expect("alloc")).collect();
    assert_eq!(arena.stats().bytes_mapped, LIMIT);
    match arena.alloc(1) {
        Err(ArenaError::LimitReached { requested: 1, needed, mapped: LIMIT, .. }) => {
            assert_eq!(needed, 64 << 10, "a small buffer needs a whole segment")
        }
        other => panic!("expected LimitReached, got {other:?}"),
    }
    // Dropping one buffer makes room inside its segment: the same request now succeeds.
    buffers.pop();
    let again = arena.alloc(1).expect("room in an existing segment");
    assert_eq!(arena.stats().bytes_mapped, LIMIT);
    drop((again, buffers));
    assert_eq!(arena.stats(), ArenaStats::default());
}

#[test]
fn absurd_lengths_are_refused_without_panicking() {
    let arena = small_arena();
    for len in [LIMIT + 1, isize::MAX as usize, usize::MAX - 63, usize::MAX] {
        match arena.alloc(len) {
            Err(ArenaError::LimitReached { requested, .. }) => assert_eq!(requested, len),
            other => panic!("len {len}: expected LimitReached, got {other:?}"),
        }
    }
    assert_eq!(arena.stats(), ArenaStats::default());
    // Exactly the limit is fine when nothing else is mapped.
    let whole = arena.alloc(LIMIT).expect("the whole limit");
    assert_eq!(arena.stats().bytes_mapped, LIMIT);
    drop(whole);
    // And the default arena refuses too.
    assert!(matches!(Arena::new().alloc(usize::MAX), Err(ArenaError::LimitReached { .. })));
}

#[test]
fn cached_empty_segments_give_way_to_a_request() {
    let arena = Arena::with_config(small_config().with_keep_empty_segments(1)).expect("config");
    drop(arena.alloc(10).expect("alloc"));
    assert_eq!(arena.stats().segments_mapped, 1, "one empty segment cached");
    // The whole limit: only possible if the cached segment is unmapped first.
    let whole = arena.alloc(LIMIT).expect("the cache is given up");
    let stats = arena.stats();
    assert_eq!((stats.segments_mapped, stats.bytes_mapped), (1, LIMIT));
    drop(whole);
    assert_eq!(arena.stats(), ArenaStats::default());
}

#[test]
fn inconsistent_configs_are_refused() {
    let cases = [
        (ArenaConfig::new().with_segment_size(0), "segment_size"),
        (ArenaConfig::new().with_segment_size(1 << 20).with_large_threshold(2 << 20), "large_threshold"),
        (ArenaConfig::new().with_segment_size(8 << 20).with_max_bytes(4 << 20), "exceeds max_bytes"),
        (ArenaConfig::new().with_max_bytes(usize::MAX), "isize::MAX"),
        (ArenaConfig::new().with_segment_size(usize::MAX).with_max_bytes(usize::MAX / 2), "segment_size"),
    ];
    for (config, needle) in cases {
        match Arena::with_config(config.clone()) {
            Err(ArenaError::InvalidConfig(message)) => {
                assert!(message.contains(needle), "{config:?}: {message}");
            }
            other => panic!("{config:?}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn the_effective_config_is_page_rounded_and_defaults_are_documented() {
    let arena =
        Arena::with_config(ArenaConfig::new().with_segment_size(10_000).with_large_threshold(4096)).expect("config");
    assert_eq!(arena.config().segment_size(), 10_000_usize.next_multiple_of(page_size()));
    let defaults = Arena::new();
    let config = defaults.config();
    assert_eq!(config, &ArenaConfig::default());
    assert_eq!(config.segment_size(), 64 << 20);
    assert_eq!(config.large_threshold(), 1 << 20);
    assert_eq!(config.max_bytes(), 1 << 30);
    assert_eq!(config.keep_empty_segments(), 1);
    assert_eq!(defaults.stats(), ArenaStats::default());
}

#[test]
fn limit_errors_have_no_source_and_map_errors_keep_theirs() {
    let arena = small_arena();
    let error = arena.alloc(usize::MAX).expect_err("too large");
    assert!(error.source().is_none());
    let map = ArenaError::Map { size: 4096, source: std::io::Error::from(std::io::ErrorKind::OutOfMemory) };
    assert!(map.source().is_some());
    assert!(map.to_string().contains("4096"));
}
