"""The numpy job of the benchmarks (benches/placement.rs and bench/run's runners): the
same CPU-bound numpy work, cut into the same tasks, for subactor's process actors and
for multiprocessing's ProcessPoolExecutor.

numpy refuses own-GIL interpreters, so this module runs in process actors (and in
multiprocessing's workers). Each worker uses one BLAS thread (set here, before numpy
loads), so that N workers on N cores do not oversubscribe them.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def block(seed, size):
    """One task: a size x size matrix of standard normal values drawn from `seed`,
    multiplied by itself; the trace of the product."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size))
    return float(np.trace(a @ a))


class Worker:
    """A process actor doing one task per message: (seed, size) -> block(seed, size)."""

    def receive(self, msg):
        seed, size = msg
        return block(seed, size)
