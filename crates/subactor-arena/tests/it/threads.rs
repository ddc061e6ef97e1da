//! The same bytes at the same address on every thread.

use std::sync::Barrier;
use std::thread;

use subactor_arena::Buffer;

use crate::{fill, holds_pattern, small_arena};

#[test]
fn clones_and_slices_are_seen_at_one_address_by_every_thread() {
    let arena = small_arena();
    let threads = if cfg!(miri) { 3 } else { 8 };
    let buffers: Vec<Buffer> = [300, 20_000]
        .into_iter()
        .map(|len| {
            let mut buffer = arena.alloc(len).expect("alloc");
            fill(&mut buffer, len as u64);
            buffer.freeze()
        })
        .collect();
    for buffer in &buffers {
        let tag = buffer.len() as u64;
        let address = buffer.as_ptr() as usize;
        let barrier = Barrier::new(threads);
        let seen: Vec<(usize, usize, bool)> = thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let clone = buffer.clone();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait(); // read all at once
                        let slice = clone.slice(i..);
                        let intact =
                            holds_pattern(&clone, tag) && slice.iter().enumerate().all(|(j, &b)| b == clone[i + j]);
                        (clone.as_ptr() as usize, slice.as_ptr() as usize - i, intact)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("reader")).collect()
        });
        for (clone_address, slice_base, intact) in seen {
            assert_eq!(clone_address, address);
            assert_eq!(slice_base, address);
            assert!(intact);
        }
        assert_eq!(buffer.ref_count(), 1, "every clone was dropped");
    }
}

#[test]
fn a_buffer_filled_on_one_thread_is_read_on_another() {
    let arena = small_arena();
    let buffer = arena.alloc(5000).expect("alloc");
    let address = buffer.as_ptr() as usize;
    // Fill and freeze on a worker thread...
    let frozen = thread::spawn(move || {
        let mut buffer = buffer;
        fill(&mut buffer, 77);
        buffer.freeze()
    })
    .join()
    .expect("writer");
    assert_eq!(frozen.as_ptr() as usize, address);
    // ...read on another, and drop there: the memory goes back to the arena.
    let reader_arena = arena.clone();
    thread::spawn(move || {
        assert!(holds_pattern(&frozen, 77));
        drop(frozen);
        assert_eq!(reader_arena.stats().buffers_live, 0);
    })
    .join()
    .expect("reader");
}
