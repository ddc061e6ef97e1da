//! The buffer types: the only place where the bytes of a segment become Rust slices.
//!
//! Soundness rests on four facts, each established elsewhere and restated at every `unsafe`:
//!
//! 1. **In bounds and mapped.** An [`Allocation`] covers `[offset, offset + len)` of its segment,
//!    inside the segment's size, and holds an `Arc` to the segment, so the memory stays mapped
//!    (at the same address) for as long as any buffer refers to it.
//! 2. **Initialised.** Segments are zero-filled when mapped, and bytes are only ever overwritten.
//! 3. **Disjoint.** The arena never hands out overlapping ranges of one segment
//!    ([`crate::freelist`] and a dedicated segment per large buffer), so distinct allocations
//!    never alias.
//! 4. **Unique until frozen.** A [`BufferMut`] owns its allocation by value: nothing else can
//!    reach those bytes, and `&mut self` makes each mutable borrow exclusive. [`BufferMut::freeze`]
//!    consumes it, and from then on the allocation is only read, through [`Buffer`]s.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Bound, Deref, DerefMut, RangeBounds};
use std::sync::Arc;

use crate::arena::Allocation;
use crate::segment::Segment;

/// The address of an allocation's first byte plus `start`, with the segment's provenance.
fn data_ptr(allocation: &Allocation, start: usize) -> *mut u8 {
    allocation.segment().base().as_ptr().wrapping_add(allocation.offset() + start)
}

/// A writable buffer that no one else can see yet: fill it, then [`freeze`](BufferMut::freeze)
/// it into a [`Buffer`].
///
/// Obtained from [`Arena::alloc`](crate::Arena::alloc); starts out zero-filled; its first byte is
/// aligned to [`BUFFER_ALIGN`](crate::BUFFER_ALIGN). Dropping it without freezing gives the
/// memory back.
///
/// ```
/// let arena = subactor_arena::Arena::new();
/// let mut buffer = arena.alloc(4)?;
/// assert_eq!(&buffer[..], &[0, 0, 0, 0]);
/// buffer[1] = 7;
/// buffer.as_mut_slice()[2..].copy_from_slice(&[8, 9]);
/// let before = buffer.as_ptr();
/// let frozen = buffer.freeze();
/// assert_eq!(frozen.as_ptr(), before); // no copy
/// assert_eq!(&frozen[..], &[0, 7, 8, 9]);
/// # Ok::<(), subactor_arena::ArenaError>(())
/// ```
pub struct BufferMut {
    allocation: Allocation,
}

impl BufferMut {
    /// Wraps an allocation lent by another process, only to freeze it at once: the bytes
    /// are the lender's, never written here (the segment is mapped read-only).
    pub(crate) fn from_foreign(allocation: Allocation) -> Self {
        Self { allocation }
    }

    /// Wraps a fresh allocation, zeroing the `dirty` leading bytes that may hold stale data.
    pub(crate) fn new(allocation: Allocation, dirty: usize) -> Self {
        let mut buffer = Self { allocation };
        let dirty = dirty.min(buffer.len());
        buffer.as_mut_slice()[..dirty].fill(0);
        buffer
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.allocation.len()
    }

    /// Whether the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The address of the first byte; it stays the same through [`BufferMut::freeze`].
    pub fn as_ptr(&self) -> *const u8 {
        data_ptr(&self.allocation, 0)
    }

    /// The address of the first byte, for writing through (for instance by a C library or a
    /// Python buffer-protocol consumer) while this buffer is borrowed mutably.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        data_ptr(&self.allocation, 0)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: by facts 1 and 2 of the module docs, `len` initialised bytes at this address
        // are mapped for as long as `self.allocation` lives, which outlives the returned borrow,
        // and `len <= segment size <= isize::MAX`. By facts 3 and 4 only this buffer reaches
        // them, and `&self` excludes a simultaneous `&mut` through it.
        unsafe { std::slice::from_raw_parts(data_ptr(&self.allocation, 0), self.len()) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `as_slice` (facts 1 and 2) the bytes are mapped, initialised and in
        // bounds for the borrow's lifetime; by facts 3 and 4 nothing but this buffer can reach
        // them and `&mut self` makes this the only borrow through it.
        unsafe { std::slice::from_raw_parts_mut(data_ptr(&self.allocation, 0), len) }
    }

    /// Turns the buffer into an immutable, shareable [`Buffer`] over the same bytes, without
    /// copying.
    pub fn freeze(self) -> Buffer {
        let len = self.len();
        Buffer { allocation: Arc::new(self.allocation), start: 0, len }
    }

    /// The segment holding the buffer.
    pub fn segment(&self) -> &Segment {
        self.allocation.segment()
    }

    /// The offset of the buffer's first byte in [`BufferMut::segment`]: together with the
    /// segment's file descriptor, what another process needs to map the same bytes.
    pub fn segment_offset(&self) -> usize {
        self.allocation.offset()
    }
}

impl Deref for BufferMut {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for BufferMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for BufferMut {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for BufferMut {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl fmt::Debug for BufferMut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferMut")
            .field("len", &self.len())
            .field("ptr", &self.as_ptr())
            .field("segment", &self.segment().id())
            .field("offset", &self.segment_offset())
            .finish()
    }
}

/// An immutable, reference-counted view of bytes in the arena.
///
/// Cloning and [slicing](Buffer::slice) are cheap (an atomic increment) and never copy: every
/// clone and slice points at the same memory, at the same address on every thread. The memory is
/// given back when the last `Buffer` referring to the allocation is dropped. `Send` and `Sync`.
///
/// Equality and hashing look at the contents, not the address: two buffers with equal bytes are
/// equal wherever they live. `Debug` shows the length and location, not the bytes.
///
/// ```
/// let arena = subactor_arena::Arena::new();
/// let buffer = arena.copy_from(b"hello, world")?;
/// let world = buffer.slice(7..);
/// assert_eq!(&world[..], b"world");
/// assert_eq!(world.as_ptr(), buffer.as_ptr().wrapping_add(7));
/// assert!(world.shares_allocation(&buffer));
/// # Ok::<(), subactor_arena::ArenaError>(())
/// ```
#[derive(Clone)]
pub struct Buffer {
    allocation: Arc<Allocation>,
    /// The view: `[start, start + len)` of the allocation.
    start: usize,
    len: usize,
}

impl Buffer {
    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first byte, stable for the buffer's lifetime. Aligned to
    /// [`BUFFER_ALIGN`](crate::BUFFER_ALIGN) unless this is a slice starting past the
    /// allocation's first byte.
    pub fn as_ptr(&self) -> *const u8 {
        data_ptr(&self.allocation, self.start)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: by facts 1 and 2 of the module docs the allocation's bytes are mapped and
        // initialised while `self.allocation` lives (at least as long as the borrow), and the
        // view `[start, start + len)` lies inside the allocation (checked when slicing), within
        // `isize::MAX`. By facts 3 and 4 the allocation was frozen: no `&mut` to these bytes
        // exists or can be created, so shared borrows from any number of threads are fine.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// A buffer over `range` of this one, sharing its memory (no copy).
    ///
    /// # Panics
    ///
    /// If the range is out of bounds or decreasing, like slicing a `[u8]`. See
    /// [`Buffer::try_slice`] for a version that returns `None` instead.
    #[track_caller]
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Buffer {
        let (start, end) = (range.start_bound().cloned(), range.end_bound().cloned());
        match self.try_slice((start, end)) {
            Some(buffer) => buffer,
            None => panic!("slice bounds ({start:?}, {end:?}) out of range for a buffer of length {}", self.len),
        }
    }

    /// A buffer over `range` of this one, sharing its memory (no copy), or `None` if the range is
    /// out of bounds or decreasing.
    pub fn try_slice(&self, range: impl RangeBounds<usize>) -> Option<Buffer> {
        let start = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => end.checked_add(1)?,
            Bound::Excluded(&end) => end,
            Bound::Unbounded => self.len,
        };
        if start > end || end > self.len {
            return None;
        }
        Some(Buffer { allocation: Arc::clone(&self.allocation), start: self.start + start, len: end - start })
    }

    /// The segment holding the buffer.
    pub fn segment(&self) -> &Segment {
        self.allocation.segment()
    }

    /// The offset of the buffer's first byte in [`Buffer::segment`]: together with the segment's
    /// file descriptor, what another process needs to map the same bytes.
    pub fn segment_offset(&self) -> usize {
        self.allocation.offset() + self.start
    }

    /// How many `Buffer`s (clones and slices) currently share this buffer's allocation, this
    /// one included. Other threads may change it at any moment.
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.allocation)
    }

    /// Whether `self` and `other` are views of the same allocation (clones or slices of one
    /// frozen buffer).
    pub fn shares_allocation(&self, other: &Buffer) -> bool {
        Arc::ptr_eq(&self.allocation, &other.allocation)
    }
}

impl From<BufferMut> for Buffer {
    fn from(buffer: BufferMut) -> Self {
        buffer.freeze()
    }
}

impl Deref for Buffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Buffer {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buffer {}

impl PartialEq<[u8]> for Buffer {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Buffer {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl Hash for Buffer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("ptr", &self.as_ptr())
            .field("segment", &self.segment().id())
            .field("offset", &self.segment_offset())
            .finish()
    }
}
