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
