/* Build-time probe (run by build.rs, never linked into subactor): prints, as Rust, the
 * layout of CPython's small-object allocator (obmalloc) in the interpreter that
 * subactor is built against, read from that interpreter's own internal headers.
 *
 * subactor-host uses it to give back the memory CPython 3.12 and 3.13 keep after an
 * own-GIL interpreter ends (see src/ffi/reclaim.rs). Every figure printed here is
 * checked again at run time against a live interpreter before it is trusted. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include "internal/pycore_interp.h"
#include "internal/pycore_obmalloc.h"

#if !defined(WITH_PYMALLOC) || defined(Py_GIL_DISABLED) || !WITH_PYMALLOC_RADIX_TREE \
    || !defined(USE_INTERIOR_NODES)
int main(void) { printf("None\n"); return 0; }
#else
int main(void) {
    PyInterpreterState *interp = NULL;
    struct pool_header *pool = NULL;
    int in_place = sizeof(interp->obmalloc) != sizeof(void *);
    printf("Some(Layout {\n");
    printf("    python_hex: 0x%lx,\n", (unsigned long)PY_VERSION_HEX);
    printf("    interp_size: %zu,\n", sizeof(PyInterpreterState));
    printf("    interp_obmalloc: %zu,\n", offsetof(PyInterpreterState, obmalloc));
    printf("    obmalloc_in_place: %s,\n", in_place ? "true" : "false");
    printf("    state_arenas: %zu,\n", offsetof(struct _obmalloc_state, mgmt.arenas));
    printf("    state_maxarenas: %zu,\n", offsetof(struct _obmalloc_state, mgmt.maxarenas));
    printf("    state_map_root: %zu,\n", offsetof(struct _obmalloc_state, usage.arena_map_root));
    printf("    arena_object_size: %zu,\n", sizeof(struct arena_object));
    printf("    arena_object_address: %zu,\n", offsetof(struct arena_object, address));
    printf("    arena_size: %lu,\n", (unsigned long)ARENA_SIZE);
    printf("    pool_size: %lu,\n", (unsigned long)POOL_SIZE);
    printf("    pool_overhead: %lu,\n", (unsigned long)POOL_OVERHEAD);
    printf("    alignment_shift: %d,\n", ALIGNMENT_SHIFT);
    printf("    small_request_threshold: %d,\n", SMALL_REQUEST_THRESHOLD);
    printf("    pool_count: %zu,\n", offsetof(struct pool_header, ref.count));
    printf("    pool_freeblock: %zu,\n", offsetof(struct pool_header, freeblock));
    printf("    pool_szidx: %zu,\n", offsetof(struct pool_header, szidx));
    printf("    pool_nextoffset: %zu,\n", offsetof(struct pool_header, nextoffset));
    printf("    map_top_shift: %d,\n", MAP_TOP_SHIFT);
    printf("    map_top_mask: %lu,\n", (unsigned long)MAP_TOP_MASK);
    printf("    map_mid_shift: %d,\n", MAP_MID_SHIFT);
    printf("    map_mid_mask: %lu,\n", (unsigned long)MAP_MID_MASK);
    printf("})\n");
    (void)pool;
    return 0;
}
#endif
