use super::FreeList;

const ALIGN: usize = 64;

#[test]
fn first_allocation_is_taken_and_rest_is_free() {
    let list = FreeList::with_first_allocated(4096, 128);
    assert_eq!(list.capacity(), 4096);
    assert_eq!(list.free_bytes(), 4096 - 128);
    assert_eq!(list.ranges(), 1);
    assert!(!list.is_unused());

    let full = FreeList::with_first_allocated(4096, 4096);
    assert_eq!(full.free_bytes(), 0);
    assert_eq!(full.ranges(), 0);

    let clamped = FreeList::with_first_allocated(4096, 10_000);
    assert_eq!(clamped.free_bytes(), 0);
}

#[test]
fn alloc_splits_and_free_coalesces_both_ways() {
    let mut list = FreeList::with_first_allocated(1024, 0);
    assert!(list.is_unused());
    let a = list.alloc(256).expect("fits");
    let b = list.alloc(256).expect("fits");
    let c = list.alloc(256).expect("fits");
    assert_eq!((a, b, c), (0, 256, 512));
    assert_eq!(list.free_bytes(), 256);

    // Free the middle, then its neighbours: each free coalesces.
    list.free(b, 256);
    assert_eq!(list.ranges(), 2);
    list.free(a, 256);
    assert_eq!(list.ranges(), 2);
    list.free(c, 256);
    assert_eq!(list.ranges(), 1);
    assert!(list.is_unused());
}

#[test]
fn best_fit_prefers_the_smallest_hole_then_the_lowest_offset() {
    let mut list = FreeList::with_first_allocated(4096, 0);
    let offsets: Vec<usize> = (0..8).map(|_| list.alloc(512).expect("fits")).collect();
    // Holes of 512 at offsets[1], [3]; one of 1024 at offsets[5..7].
    list.free(offsets[5], 512);
    list.free(offsets[6], 512);
    list.free(offsets[3], 512);
    list.free(offsets[1], 512);
    assert_eq!(list.alloc(512), Some(offsets[1]));
    assert_eq!(list.alloc(512), Some(offsets[3]));
    assert_eq!(list.alloc(1024), Some(offsets[5]));
    assert_eq!(list.alloc(64), None);
}

#[test]
fn zero_and_oversized_requests_are_refused() {
    let mut list = FreeList::with_first_allocated(1024, 0);
    assert_eq!(list.alloc(0), None);
    assert_eq!(list.alloc(1088), None);
    assert_eq!(list.alloc(usize::MAX), None);
    assert!(list.is_unused());
}

/// Random allocations and frees checked against a byte-per-granule model: no range is handed out
/// twice, every offset is aligned, the free count is exact, and freeing everything leaves one
/// range.
#[test]
fn random_operations_match_a_model() {
    let rounds = if cfg!(miri) { 2 } else { 40 };
    let steps = if cfg!(miri) { 150 } else { 2_000 };
    for seed in 0..rounds {
        let mut rng = fastrand::Rng::with_seed(seed);
        let granules = 256;
        let capacity = granules * ALIGN;
        let mut list = FreeList::with_first_allocated(capacity, 0);
        let mut used = vec![false; granules];
        let mut live: Vec<(usize, usize)> = Vec::new();
        for _ in 0..steps {
            if live.is_empty() || rng.usize(..3) != 0 {
                let size = (1 + rng.usize(..16)) * ALIGN;
                match list.alloc(size) {
                    Some(offset) => {
                        assert_eq!(offset % ALIGN, 0, "seed {seed}: misaligned offset");
                        assert!(offset + size <= capacity, "seed {seed}: out of bounds");
                        for granule in &mut used[offset / ALIGN..(offset + size) / ALIGN] {
                            assert!(!*granule, "seed {seed}: range handed out twice");
                            *granule = true;
                        }
                        live.push((offset, size));
                    }
                    None => {
                        // Refusal is only allowed when no run of free granules is long enough.
                        let longest = used.split(|&u| u).map(<[bool]>::len).max().unwrap_or(0);
                        assert!(longest * ALIGN < size, "seed {seed}: refused despite room");
                    }
                }
            } else {
                let (offset, size) = live.swap_remove(rng.usize(..live.len()));
                for granule in &mut used[offset / ALIGN..(offset + size) / ALIGN] {
                    *granule = false;
                }
                list.free(offset, size);
            }
            let model_free = used.iter().filter(|&&u| !u).count() * ALIGN;
            assert_eq!(list.free_bytes(), model_free, "seed {seed}: free bytes drifted");
        }
        while let Some((offset, size)) = live.pop() {
            list.free(offset, size);
        }
        assert!(list.is_unused(), "seed {seed}");
        assert_eq!(list.ranges(), 1, "seed {seed}: free ranges did not coalesce");
    }
}
