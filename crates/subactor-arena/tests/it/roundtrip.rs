//! Allocate, write, freeze, read; alignment, zeroing, slicing.

use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;

use subactor_arena::{Arena, BUFFER_ALIGN, Buffer, BufferMut};

use crate::{fill, holds_pattern, small_arena};

#[test]
fn alloc_write_freeze_read_round_trip() {
    let arena = small_arena();
    for len in [1, 100, 4096, 8 << 10, (8 << 10) + 1, 100_000] {
        let mut buffer = arena.alloc(len).expect("alloc");
        assert_eq!(buffer.len(), len);
        fill(&mut buffer, len as u64);
        let frozen = buffer.freeze();
        assert_eq!(frozen.len(), len);
        assert!(holds_pattern(&frozen, len as u64), "len {len}");
    }
}

#[test]
fn freeze_does_not_copy() {
    let arena = small_arena();
    for len in [10, 50_000] {
        let mut buffer = arena.alloc(len).expect("alloc");
        buffer[0] = 42;
        let (ptr, segment, offset) = (buffer.as_ptr(), buffer.segment().id(), buffer.segment_offset());
        assert_eq!(buffer.as_mut_ptr().cast_const(), ptr);
        let frozen = buffer.freeze();
        assert_eq!(frozen.as_ptr(), ptr);
        assert_eq!(frozen.segment().id(), segment);
        assert_eq!(frozen.segment_offset(), offset);
        assert_eq!(frozen[0], 42);
        // `From` is the same freeze.
        let mut again = arena.alloc(len).expect("alloc");
        let ptr = again.as_mut_ptr().cast_const();
        assert_eq!(Buffer::from(again).as_ptr(), ptr);
    }
}

#[test]
fn copy_from_holds_a_copy() {
    let arena = small_arena();
    let source = vec![9u8; 3000];
    let buffer = arena.copy_from(&source).expect("copy");
    assert_eq!(&buffer[..], &source[..]);
    assert_ne!(buffer.as_ptr(), source.as_ptr());
    assert_eq!(arena.copy_from(&[]).expect("empty copy").len(), 0);
}

#[test]
fn new_buffers_are_zeroed_even_when_memory_is_reused() {
    let arena = Arena::with_config(crate::small_config().with_keep_empty_segments(1)).expect("config");
    let mut first = arena.alloc(5000).expect("alloc");
    first.fill(0xff);
    let first_ptr = first.as_ptr();
    drop(first);
    // Best fit at the lowest offset: the same bytes are handed out again, and must read as zero.
    let second = arena.alloc(5000).expect("alloc");
    assert_eq!(second.as_ptr(), first_ptr, "memory was expected to be reused");
    assert!(second.iter().all(|&b| b == 0));
    drop(second);
    // Straddling the part written before and fresh memory.
    let mut parts: Vec<BufferMut> = (0..3).map(|_| arena.alloc(3000).expect("alloc")).collect();
    for part in &mut parts {
        part.fill(0xee);
    }
    parts.clear();
    let big = arena.alloc(8000).expect("alloc");
    assert!(big.iter().all(|&b| b == 0));
    // Dedicated segments are fresh.
    let large = arena.alloc(20_000).expect("alloc");
    assert!(large.iter().all(|&b| b == 0));
}

#[test]
fn every_buffer_is_cache_line_aligned() {
    let arena = small_arena();
    let lens = [0, 1, 2, 63, 64, 65, 100, 127, 4095, 4097, 8 << 10, (8 << 10) + 1, 70_000];
    let buffers: Vec<Buffer> = lens.iter().map(|&len| arena.alloc(len).expect("alloc").freeze()).collect();
    for buffer in &buffers {
        assert_eq!(buffer.as_ptr() as usize % BUFFER_ALIGN, 0, "{buffer:?}");
        assert_eq!(buffer.segment_offset() % BUFFER_ALIGN, 0, "{buffer:?}");
        assert!(buffer.segment_offset() + buffer.len() <= buffer.segment().size());
        assert_eq!(buffer.segment().as_ptr() as usize % subactor_arena::page_size(), 0);
    }
    // Distinct allocations never overlap.
    let mut spans: Vec<(usize, usize)> =
        buffers.iter().map(|b| (b.as_ptr() as usize, b.as_ptr() as usize + b.len().max(1))).collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
}

#[test]
fn zero_length_buffers_are_allowed_and_counted() {
    let arena = small_arena();
    let a = arena.alloc(0).expect("alloc").freeze();
    let b = arena.alloc(0).expect("alloc");
    assert!(a.is_empty() && b.is_empty());
    assert_eq!(&a[..], &[] as &[u8]);
    assert_ne!(a.as_ptr(), b.as_ptr(), "each allocation has its own address");
    let stats = arena.stats();
    assert_eq!((stats.buffers_live, stats.bytes_live), (2, 0));
    drop((a, b));
    assert_eq!(arena.stats().buffers_live, 0);
}

#[test]
fn slices_share_memory_and_check_bounds() {
    let arena = small_arena();
    let buffer = arena.copy_from(b"0123456789").expect("copy");
    let base = buffer.as_ptr() as usize;

    let middle = buffer.slice(2..8);
    assert_eq!(&middle[..], b"234567");
    assert_eq!(middle.as_ptr() as usize, base + 2);
    assert_eq!(middle.segment_offset(), buffer.segment_offset() + 2);
    let inner = middle.slice(1..=2);
    assert_eq!(&inner[..], b"34");
    assert_eq!(inner.as_ptr() as usize, base + 3);
    assert!(inner.shares_allocation(&buffer));
    assert_eq!(&buffer.slice(..)[..], b"0123456789");
    assert_eq!(&buffer.slice(..3)[..], b"012");
    assert_eq!(buffer.slice(10..).len(), 0);
    assert_eq!(buffer.ref_count(), 3, "buffer, middle and inner");

    assert!(buffer.try_slice(3..11).is_none());
    assert!(buffer.try_slice(11..).is_none());
    #[allow(clippy::reversed_empty_ranges)]
    let decreasing = buffer.try_slice(5..4);
    assert!(decreasing.is_none());
    assert!(buffer.try_slice(..=usize::MAX).is_none());
    assert!(buffer.try_slice((Bound::Excluded(usize::MAX), Bound::Unbounded)).is_none());
    assert!(middle.try_slice(..7).is_none(), "bounds are the slice's, not the allocation's");

    let other = arena.copy_from(b"0123456789").expect("copy");
    assert!(!other.shares_allocation(&buffer));
}

#[test]
#[should_panic(expected = "out of range for a buffer of length 10")]
fn slice_out_of_bounds_panics_like_a_slice() {
    let arena = small_arena();
    let buffer = arena.copy_from(b"0123456789").expect("copy");
    let _ = buffer.slice(4..12);
}

#[test]
fn equality_and_hash_follow_contents() {
    let arena = small_arena();
    let a = arena.copy_from(b"same").expect("copy");
    let b = arena.copy_from(b"same").expect("copy");
    let c = arena.copy_from(b"different").expect("copy");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a == b"same"[..]);
    assert!(a == b"same".as_slice());
    // Hashes agree with `[u8]`'s, as `Borrow<[u8]>` requires.
    let hasher = RandomState::new();
    assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
    assert_eq!(hasher.hash_one(&a), hasher.hash_one(b"same".as_slice()));
    assert_ne!(hasher.hash_one(&a), hasher.hash_one(&c));
}

#[test]
fn buffers_outlive_every_arena_handle() {
    let arena = small_arena();
    let probe = arena.clone();
    let buffer = arena.copy_from(&[1, 2, 3]).expect("copy");
    let large = arena.copy_from(&[7; 20_000]).expect("copy");
    drop(arena);
    assert_eq!(&buffer[..], &[1, 2, 3]);
    assert_eq!(probe.stats().buffers_live, 2);
    drop(probe);
    assert_eq!(large[19_999], 7);
    drop((buffer, large));
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Arena>();
    assert_send_sync::<Buffer>();
    assert_send_sync::<BufferMut>();
    assert_send_sync::<subactor_arena::Segment>();
    assert_send_sync::<subactor_arena::ArenaError>();
}

#[test]
fn debug_output_names_location_not_contents() {
    let arena = small_arena();
    let buffer = arena.copy_from(b"secret").expect("copy");
    let text = format!("{buffer:?} {:?} {arena:?}", buffer.segment());
    assert!(text.contains("len: 6"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
