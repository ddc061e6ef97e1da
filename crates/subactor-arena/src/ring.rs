//! A byte stream from one process to another through shared memory: a single-producer,
//! single-consumer ring on a memfd that both processes map.
//!
//! A process actor's link carries its frames through two of these (one each way) instead
//! of through its Unix socket: a frame written is a copy and a release store, a frame
//! read a load and a copy, with no system call on either side while both run. The socket
//! stays, for what shared memory cannot carry: file descriptors, the wake-up of a reader
//! that sleeps, and the end of the peer (`subactor_wire::stream` builds that on top).
//!
//! # Layout
//!
//! One memfd per ring, its size sealed: a 256-byte header, then the data, a power of two
//! of bytes. The header holds three words, each on a cache line of its own: `head` (bytes
//! ever written; only the writer stores it), `tail` (bytes ever read; only the reader
//! stores it) and `asleep` (the reader's "wake me" flag, see [`RingReader::sleep`]). Byte
//! `n` of the stream lives at `data[n % capacity]`.
//!
//! # Trust
//!
//! The other process may be broken: every index it stores is checked before use (a ring
//! that claims more bytes than it holds is [`RingError::Corrupt`]), and its bytes are
//! copied out, never referenced, so that a peer writing where it should not can only hand
//! over wrong bytes, which the frame decoder above rejects.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::segment::Segment;

/// Bytes before the data: three words on cache lines of their own.
const HEADER: usize = 256;
const HEAD: usize = 0;
const TAIL: usize = 64;
const ASLEEP: usize = 128;

/// Where the data starts: after the header, on a page of its own.
fn data_offset() -> usize {
    HEADER.max(crate::page_size())
}

/// Why a ring could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring's indices say something impossible: the other process broke it.
    #[error("the shared ring is corrupt: {0}")]
    Corrupt(String),
    /// It could not be created or mapped.
    #[error("cannot map a shared ring: {0}")]
    Io(#[from] io::Error),
}

/// A mapped ring, before it is taken as this process's reading or writing end.
pub struct Ring {
    segment: Segment,
    capacity: usize,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl Ring {
    /// Creates a ring of `capacity` data bytes (a power of two, at least a page) on a new
    /// memfd. Fails where segments are not shared memory (no memfd).
    pub fn create(capacity: usize) -> Result<Ring, RingError> {
        if !capacity.is_power_of_two() || capacity < crate::page_size() {
            return Err(RingError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a ring's capacity must be a power of two of at least a page, not {capacity}"),
            )));
        }
        let segment = Segment::map(0, data_offset() + capacity)?;
        if !segment.is_shared_memory() {
            return Err(RingError::Io(io::Error::new(io::ErrorKind::Unsupported, "no shared memory here")));
        }
        Ok(Ring { segment, capacity })
    }

    /// Maps a ring another process created, from its memfd (received over a Unix socket).
    #[cfg(unix)]
    pub fn join(fd: std::os::fd::OwnedFd) -> Result<Ring, RingError> {
        let segment = Segment::import(0, fd, true)?;
        let start = data_offset();
        let capacity = segment.size().saturating_sub(start);
        if !capacity.is_power_of_two() || capacity < crate::page_size() {
            return Err(RingError::Corrupt(format!(
                "a ring's memfd of {} bytes has no valid capacity",
                segment.size()
            )));
        }
        Ok(Ring { segment, capacity })
    }

    /// The memfd, to send to the process at the other end.
    #[cfg(unix)]
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.segment.fd()
    }

    /// Its capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Closes the memfd (once sent, or once mapped): the mapping stays, and the ring
    /// costs the process no descriptor.
    pub fn close_fd(&mut self) {
        self.segment.close_fd();
    }

    /// This process's end is the writing one.
    pub fn into_writer(self) -> RingWriter {
        let head = self.word(HEAD).load(Ordering::Acquire);
        RingWriter { ring: self, head }
    }

    /// This process's end is the reading one.
    pub fn into_reader(self) -> RingReader {
        let tail = self.word(TAIL).load(Ordering::Acquire);
        RingReader { ring: self, tail }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 64 == 0 && offset + 8 <= HEADER);
        // SAFETY: the segment is mapped for as long as `self` lives, page-aligned, and at
        // least `HEADER` bytes long, so `offset` (a multiple of 64 below `HEADER - 8`) is an
        // aligned, in-bounds address for a u64. The other process only ever accesses these
        // words atomically as well.
        unsafe { &*self.segment.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn asleep(&self) -> &AtomicU32 {
        // SAFETY: as in `word`: `ASLEEP` is an aligned, in-bounds offset of the header,
        // accessed only atomically by both processes.
        unsafe { &*self.segment.as_ptr().add(ASLEEP).cast::<AtomicU32>() }
    }

    /// The data area's first byte.
    fn data(&self) -> *mut u8 {
        // SAFETY: the data starts right after the header page, inside the mapping.
        unsafe { self.segment.as_ptr().add(data_offset()).cast_mut() }
    }

    /// How many bytes the ring holds between `tail` and `head`, checked.
    fn used(&self, head: u64, tail: u64) -> Result<usize, RingError> {
        let used = head.wrapping_sub(tail);
        usize::try_from(used).ok().filter(|&used| used <= self.capacity).ok_or_else(|| {
            RingError::Corrupt(format!(
                "{used} bytes claimed in a ring of {} (head {head}, tail {tail})",
                self.capacity
            ))
        })
    }
}

/// The writing end of a ring. One per ring, in one process.
#[derive(Debug)]
pub struct RingWriter {
    ring: Ring,
    /// Bytes written so far (the `head` this end last stored).
    head: u64,
}

impl RingWriter {
    /// Copies as much of `bytes` as fits into the ring and makes it visible to the reader;
    /// the count copied (0 when the ring is full).
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, RingError> {
        let ring = &self.ring;
        let tail = ring.word(TAIL).load(Ordering::Acquire);
        let used = ring.used(self.head, tail)?;
        let n = bytes.len().min(ring.capacity - used);
        if n == 0 {
            return Ok(0);
        }
        let at = (self.head % ring.capacity as u64) as usize;
        let first = n.min(ring.capacity - at);
        // SAFETY: `at + first <= capacity` and `n - first <= capacity`: both ranges are in the
        // data area, which is mapped while `ring` lives; they lie in the ring's free part,
        // which the reader does not read until `head` says so (the release store below). The
        // source is a slice of this process, which cannot overlap the shared mapping we copy to
        // (`&[u8]` into it are never handed out).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ring.data().add(at), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), ring.data(), n - first);
        }
        self.head += n as u64;
        ring.word(HEAD).store(self.head, Ordering::Release);
        Ok(n)
    }

    /// Whether the ring has room for at least one byte.
    pub fn has_room(&self) -> Result<bool, RingError> {
        let tail = self.ring.word(TAIL).load(Ordering::Acquire);
        Ok(self.ring.used(self.head, tail)? < self.ring.capacity)
    }

    /// After a write: whether the reader went to sleep and must be woken (the caller
    /// wakes it, once; the flag is cleared here). Pairs with [`RingReader::sleep`]: either
    /// the reader sees the bytes before it sleeps, or this sees it asleep.
    pub fn reader_asleep(&self) -> bool {
        fence(Ordering::SeqCst);
        let asleep = self.ring.asleep();
        asleep.load(Ordering::Relaxed) != 0 && asleep.swap(0, Ordering::AcqRel) != 0
    }
}

/// The reading end of a ring. One per ring, in one process.
#[derive(Debug)]
pub struct RingReader {
    ring: Ring,
    /// Bytes read so far (the `tail` this end last stored).
    tail: u64,
}

impl RingReader {
    /// Copies up to `out.len()` of the bytes waiting in the ring into `out` and frees
    /// their room; the count (0 when none wait).
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, RingError> {
        let ring = &self.ring;
        let head = ring.word(HEAD).load(Ordering::Acquire);
        let n = ring.used(head, self.tail)?.min(out.len());
        if n == 0 {
            return Ok(0);
        }
        let at = (self.tail % ring.capacity as u64) as usize;
        let first = n.min(ring.capacity - at);
        // SAFETY: both ranges are in the data area (as in `write`), inside the part the
        // writer published with its release store of `head` (acquired above) and will not
        // write again until `tail` moves past it (the release store below). `out` is this
        // process's memory, not the shared mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(ring.data().add(at), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(ring.data(), out.as_mut_ptr().add(first), n - first);
        }
        self.tail += n as u64;
        ring.word(TAIL).store(self.tail, Ordering::Release);
        Ok(n)
    }

    /// Whether bytes wait in the ring.
    pub fn has_bytes(&self) -> Result<bool, RingError> {
        let head = self.ring.word(HEAD).load(Ordering::Acquire);
        Ok(self.ring.used(head, self.tail)? > 0)
    }

    /// Before sleeping: raises the "wake me" flag, then looks again. `Ok(true)`: nothing
    /// came, sleep (the writer's [`RingWriter::reader_asleep`] will say to wake this end);
    /// `Ok(false)`: bytes came meanwhile, the flag is lowered, read them.
    pub fn sleep(&self) -> Result<bool, RingError> {
        self.ring.asleep().store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.has_bytes()? {
            self.wake();
            return Ok(false);
        }
        Ok(true)
    }

    /// Lowers the "wake me" flag (after sleeping).
    pub fn wake(&self) {
        self.ring.asleep().store(0, Ordering::Relaxed);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn pair(capacity: usize) -> (RingWriter, RingReader) {
        let ring = Ring::create(capacity).expect("ring");
        let fd = ring.fd().expect("memfd").try_clone_to_owned().expect("dup");
        let other = Ring::join(fd).expect("join");
        (ring.into_writer(), other.into_reader())
    }

    #[test]
    fn bytes_come_out_in_order_across_the_wrap() {
        let (mut w, mut r) = pair(4096);
        let mut sent = Vec::new();
        let mut got = Vec::new();
        let mut next = 0u8;
        for round in 0..200 {
            let chunk: Vec<u8> = (0..(round * 37 % 3000 + 1))
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            let n = w.write(&chunk).expect("write");
            sent.extend_from_slice(&chunk[..n]);
            let mut out = vec![0; round * 53 % 4000 + 1];
            let m = r.read(&mut out).expect("read");
            got.extend_from_slice(&out[..m]);
        }
        let mut out = vec![0; 4096];
        let m = r.read(&mut out).expect("read");
        got.extend_from_slice(&out[..m]);
        assert!(sent.len() > 100_000, "the ring wrapped many times");
        assert_eq!(got, sent);
    }

    #[test]
    fn a_ring_works_on_once_its_memfds_are_closed() {
        let mut ring = Ring::create(4096).expect("ring");
        let mut other = Ring::join(ring.fd().expect("memfd").try_clone_to_owned().expect("dup")).expect("join");
        ring.close_fd();
        other.close_fd();
        assert!(ring.fd().is_none() && other.fd().is_none());
        let (mut w, mut r) = (ring.into_writer(), other.into_reader());
        assert_eq!(w.write(b"still shared").expect("write"), 12);
        let mut out = [0; 32];
        let n = r.read(&mut out).expect("read");
        assert_eq!(&out[..n], b"still shared");
    }

    #[test]
    fn a_full_ring_takes_nothing_more_until_read() {
        let (mut w, mut r) = pair(4096);
        assert_eq!(w.write(&[7; 5000]).expect("write"), 4096);
        assert!(!w.has_room().expect("room"));
        assert_eq!(w.write(&[8; 10]).expect("full"), 0);
        let mut out = [0; 100];
        assert_eq!(r.read(&mut out).expect("read"), 100);
        assert_eq!(w.write(&[9; 1000]).expect("write"), 100);
    }

    #[test]
    fn a_sleeping_reader_is_woken_by_the_next_write_only() {
        let (mut w, r) = pair(4096);
        assert!(!w.reader_asleep());
        assert!(r.sleep().expect("sleep"), "nothing to read: sleep");
        w.write(b"x").expect("write");
        assert!(w.reader_asleep(), "the write sees the sleeper");
        assert!(!w.reader_asleep(), "and wakes it once");
        assert!(!r.sleep().expect("sleep"), "a byte waits: no sleep");
    }

    #[test]
    fn indices_broken_by_the_other_process_are_an_error() {
        let (mut w, mut r) = pair(4096);
        // The reader's side of the header, as a broken peer could write it.
        w.ring.word(HEAD).store(1 << 40, Ordering::Release);
        let mut out = [0; 16];
        assert!(matches!(r.read(&mut out), Err(RingError::Corrupt(_))));
        r.ring.word(TAIL).store(1 << 40, Ordering::Release);
        w.head = 0;
        assert!(matches!(w.write(b"x"), Err(RingError::Corrupt(_))));
    }

    #[test]
    fn a_memfd_of_the_wrong_size_is_refused() {
        let segment = Segment::map(0, crate::page_size() * 4).expect("segment");
        let fd = segment.fd().expect("memfd").try_clone_to_owned().expect("dup");
        assert!(matches!(Ring::join(fd), Err(RingError::Corrupt(_))));
        assert!(Ring::create(1000).is_err(), "not a power of two");
    }
}
