//! Free-space bookkeeping for one shared segment: pure offsets, no memory, no unsafe.
//!
//! A [`FreeList`] tracks which byte ranges of `[0, capacity)` are free. Allocation is best fit
//! (the smallest free range that is large enough; among equals, the lowest offset) and splits
//! that range; freeing coalesces with both neighbours, so a segment whose buffers are all gone is
//! one free range again. Both are `O(log n)` in the number of free ranges.
//!
//! The caller keeps every size a multiple of the buffer alignment; then every offset handed out
//! is a multiple of it too, because every range boundary is a sum of such sizes.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
mod tests;

/// The free ranges of a segment of `capacity` bytes.
#[derive(Debug, Clone)]
pub(crate) struct FreeList {
    capacity: usize,
    free_bytes: usize,
    /// Free ranges by start offset: `offset -> len`. Never two adjacent ranges (they coalesce).
    by_offset: BTreeMap<usize, usize>,
    /// The same ranges as `(len, offset)`, for best-fit search.
    by_size: BTreeSet<(usize, usize)>,
}

impl FreeList {
    /// A list over `[0, capacity)` whose first `first` bytes are already allocated (the
    /// allocation that caused the segment to be mapped), so that it cannot fail to fit.
    ///
    /// `first` is clamped to `capacity`.
    pub(crate) fn with_first_allocated(capacity: usize, first: usize) -> Self {
        let first = first.min(capacity);
        let mut list = Self { capacity, free_bytes: 0, by_offset: BTreeMap::new(), by_size: BTreeSet::new() };
        list.insert(first, capacity - first);
        list
    }

    /// The size of the tracked range.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of free bytes.
    #[cfg(test)]
    pub(crate) fn free_bytes(&self) -> usize {
        self.free_bytes
    }

    /// Whether nothing is allocated.
    #[cfg(test)]
    pub(crate) fn is_unused(&self) -> bool {
        self.free_bytes == self.capacity
    }

    /// The number of free ranges (a measure of fragmentation).
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> usize {
        self.by_offset.len()
    }

    /// Takes `size` bytes (`size > 0`) and returns their offset, or `None` if no free range is
    /// large enough.
    pub(crate) fn alloc(&mut self, size: usize) -> Option<usize> {
        if size == 0 || size > self.free_bytes {
            return None;
        }
        let &(len, offset) = self.by_size.range((size, 0)..).next()?;
        self.remove(offset, len);
        self.insert(offset + size, len - size);
        Some(offset)
    }

    /// Gives back `size` bytes at `offset`, previously returned by [`FreeList::alloc`] (or the
    /// first allocation) with that same size.
    pub(crate) fn free(&mut self, offset: usize, size: usize) {
        debug_assert!(offset + size <= self.capacity, "freed range out of bounds");
        let mut start = offset;
        let mut len = size;
        if let Some((&prev_offset, &prev_len)) = self.by_offset.range(..offset).next_back() {
            debug_assert!(prev_offset + prev_len <= offset, "double free (overlaps predecessor)");
            if prev_offset + prev_len == offset {
                self.remove(prev_offset, prev_len);
                start = prev_offset;
                len += prev_len;
            }
        }
        if let Some(&next_len) = self.by_offset.get(&(offset + size)) {
            self.remove(offset + size, next_len);
            len += next_len;
        }
        debug_assert!(
            self.by_offset.range(offset..).next().is_none_or(|(&next, _)| next >= offset + size),
            "double free (overlaps successor)"
        );
        self.insert(start, len);
    }

    fn insert(&mut self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        self.by_offset.insert(offset, len);
        self.by_size.insert((len, offset));
        self.free_bytes += len;
    }

    fn remove(&mut self, offset: usize, len: usize) {
        self.by_offset.remove(&offset);
        self.by_size.remove(&(len, offset));
        self.free_bytes -= len;
    }
}
