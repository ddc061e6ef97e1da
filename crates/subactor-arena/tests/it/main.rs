//! Integration tests of the arena: one binary, one module per topic.

mod limits;
mod roundtrip;
#[cfg(all(target_os = "linux", not(miri)))]
mod shm;
mod stats;
mod stress;
mod threads;

use subactor_arena::{Arena, ArenaConfig};

/// 64 KiB shared segments, buffers above 8 KiB in their own segment, a 1 MiB limit, and no empty
/// segment kept, so that returning segments is observable at once.
fn small_config() -> ArenaConfig {
    ArenaConfig::new()
        .with_segment_size(64 << 10)
        .with_large_threshold(8 << 10)
        .with_max_bytes(1 << 20)
        .with_keep_empty_segments(0)
}

fn small_arena() -> Arena {
    Arena::with_config(small_config()).expect("valid config")
}

/// The byte a buffer tagged `tag` holds at index `i`.
fn pattern(tag: u64, i: usize) -> u8 {
    (tag.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8
}

fn fill(buffer: &mut [u8], tag: u64) {
    for (i, byte) in buffer.iter_mut().enumerate() {
        *byte = pattern(tag, i);
    }
}

fn holds_pattern(buffer: &[u8], tag: u64) -> bool {
    buffer.iter().enumerate().all(|(i, &b)| b == pattern(tag, i))
}
