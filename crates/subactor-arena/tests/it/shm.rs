//! Linux only: the arena's memory really is shared memory, reachable through the segment's memfd.

use std::ffi::c_void;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::ptr::{self, NonNull};

use rustix::fs::SealFlags;
use rustix::mm::{MapFlags, ProtFlags};

use crate::{fill, holds_pattern, small_arena};

/// A second, independent mapping of a segment's memfd, unmapped on drop.
struct SecondMapping {
    base: NonNull<u8>,
    size: usize,
}

impl SecondMapping {
    fn new(segment: &subactor_arena::Segment) -> Self {
        let fd = segment.fd().expect("memfd segments have a descriptor");
        let size = segment.size();
        // SAFETY: a null hint maps fresh address space and replaces nothing; the memfd is
        // `size` bytes long and sealed against shrinking, so the whole mapping is backed.
        let addr = unsafe {
            rustix::mm::mmap(ptr::null_mut(), size, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, 0)
        }
        .expect("mmap the memfd a second time");
        Self { base: NonNull::new(addr.cast()).expect("non-null mapping"), size }
    }

    fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.size);
        let mut out = vec![0; len];
        // SAFETY: `[offset, offset + len)` is inside this live mapping (asserted above), and
        // `out` is a distinct allocation of `len` bytes. Volatile-free copying is fine: nothing
        // writes these bytes while the test copies them.
        unsafe { ptr::copy_nonoverlapping(self.base.as_ptr().add(offset), out.as_mut_ptr(), len) };
        out
    }

    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.size);
        // SAFETY: in bounds of this live, writable mapping (asserted above); the caller holds no
        // Rust reference to these bytes through the arena while writing.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.as_ptr().add(offset), bytes.len());
        }
    }
}

impl Drop for SecondMapping {
    fn drop(&mut self) {
        // SAFETY: exactly the address and length `mmap` returned and was given, unmapped once.
        unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), self.size) }.expect("munmap");
    }
}

#[test]
fn segments_are_sealed_memfds() {
    let arena = small_arena();
    for len in [100, 50_000] {
        let buffer = arena.alloc(len).expect("alloc").freeze();
        let segment = buffer.segment();
        assert!(segment.is_shared_memory());
        let fd = segment.fd().expect("descriptor");
        let target =
            std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))).expect("readlink");
        assert!(target.to_string_lossy().starts_with("/memfd:subactor-arena"), "{target:?}");
        let seals = rustix::fs::fcntl_get_seals(fd).expect("seals");
        assert!(seals.contains(SealFlags::SHRINK | SealFlags::GROW), "{seals:?}");
        let file = File::from(fd.try_clone_to_owned().expect("dup"));
        assert_eq!(file.metadata().expect("fstat").len(), segment.size() as u64);
    }
}

#[test]
fn a_second_mapping_of_the_memfd_sees_the_same_bytes() {
    let arena = small_arena();
    for len in [3000, 40_000] {
        let mut buffer = arena.alloc(len).expect("alloc");
        let second = SecondMapping::new(buffer.segment());
        let offset = buffer.segment_offset();
        assert_ne!(second.base.as_ptr().cast_const(), buffer.segment().as_ptr(), "another address");

        // Written through the buffer, seen through the other mapping...
        fill(&mut buffer, 5);
        assert!(holds_pattern(&second.read(offset, len), 5));

        // ...and written through the other mapping, seen through the buffer.
        second.write(offset + 10, b"from the other side");
        assert_eq!(&buffer[10..29], b"from the other side");

        let frozen = buffer.freeze();
        assert_eq!(&second.read(offset, 10), &frozen[..10]);

        // Reading the file itself (as another process would after receiving the fd) agrees.
        let fd = frozen.segment().fd().expect("descriptor");
        let file = File::from(fd.try_clone_to_owned().expect("dup"));
        let mut read = vec![0; len];
        file.read_exact_at(&mut read, offset as u64).expect("pread");
        assert_eq!(&read[..], &frozen[..]);
    }
}

// ---- foreign segments: another process's arena, mapped here ------------------------------

mod foreign {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use subactor_arena::{Arena, ArenaError, ForeignSegment};

    #[test]
    fn a_foreign_buffer_shows_the_owners_bytes_and_reports_its_release_once() {
        let arena = Arena::new();
        let mut owned = arena.alloc(4096).expect("alloc");
        owned.as_mut_slice()[..5].copy_from_slice(b"hello");
        let owned = owned.freeze();
        let fd = owned.segment().fd().expect("a memfd").try_clone_to_owned().expect("dup");
        let segment = ForeignSegment::map(fd).expect("maps");
        assert_ne!(segment.segment().as_ptr(), owned.segment().as_ptr(), "a second mapping");
        let released = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&released);
        let lent = segment
            .buffer(owned.segment_offset(), owned.len(), move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .expect("in bounds");
        assert_eq!(&lent[..5], b"hello");
        let slice = lent.slice(1..3);
        drop(lent);
        assert_eq!(released.load(Ordering::SeqCst), 0, "a slice still holds it");
        assert_eq!(&slice[..], b"el");
        drop(slice);
        assert_eq!(released.load(Ordering::SeqCst), 1, "released once, by the last handle");
        assert_eq!(arena.stats().buffers_live, 1, "foreign handles do not count in the owner's arena");
    }

    #[test]
    fn out_of_bounds_ranges_and_unsealed_descriptors_are_refused() {
        let arena = Arena::new();
        let owned = arena.copy_from(b"x").expect("alloc");
        let fd = owned.segment().fd().expect("a memfd").try_clone_to_owned().expect("dup");
        let segment = ForeignSegment::map(fd).expect("maps");
        let size = segment.segment().size();
        assert!(matches!(segment.buffer(size - 1, 2, || {}), Err(ArenaError::OutOfBounds { .. })));
        assert!(matches!(segment.buffer(usize::MAX, 2, || {}), Err(ArenaError::OutOfBounds { .. })));
        let file = std::fs::File::open("/proc/self/status").expect("a file");
        assert!(matches!(ForeignSegment::map(file.into()), Err(ArenaError::Map { .. })));
    }
}
