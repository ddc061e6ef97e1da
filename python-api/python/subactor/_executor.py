"""``Executor``: a ``concurrent.futures.Executor`` whose workers are actors."""

from __future__ import annotations

import concurrent.futures
import inspect
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _native
from ._native import ActorRef

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Executor"]

T = TypeVar("T")

#: The worker actor's file, spawned by path in each worker's interpreter.
WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_subactor_worker.py")


class _TaskFuture(concurrent.futures.Future[Any]):
    """A task's future: cancellable while the task waits in the executor's queue."""

    _subactor_core: _native.ExecutorCore | None = None
    _subactor_ticket: int = 0

    def cancel(self) -> bool:
        core = self._subactor_core
        if core is not None and not self.done() and not core.cancel(self._subactor_ticket):
            return False
        return super().cancel()


_REFS: dict[Any, Any] = {}


def _fn_ref(fn: Callable[..., Any]) -> Any:
    """How a callable travels to a worker: ``(module, qualname)`` for a function or class
    defined at module level (found again by name there: the cheap way), else the callable
    itself, pickled (bound methods, ``functools.partial``, callable instances)."""
    try:
        ref = _REFS.get(fn)
    except TypeError:  # unhashable callable
        return fn
    if ref is not None:
        return ref
    ref = fn
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if (
        isinstance(module, str)
        and isinstance(qualname, str)
        and "<" not in qualname
        and (inspect.isfunction(fn) or inspect.isbuiltin(fn) or isinstance(fn, type))
    ):
        obj: Any = sys.modules.get(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is fn:
            ref = (module, qualname)
    if len(_REFS) > 4096:
        _REFS.clear()
    _REFS[fn] = ref
    return ref


class Executor(concurrent.futures.Executor):
    """Runs callables in worker actors, each in its own interpreter with its own GIL:
    CPU-bound Python code runs in parallel, in one process.

    Made by ``Runtime.executor(workers)``. A drop-in ``concurrent.futures.Executor``:
    ``submit``, ``map`` (with ``chunksize``), ``shutdown``, use as a context manager.

    Functions travel by reference (module and qualified name; functions of the main
    script work: workers load it without running its ``__main__`` block); arguments and
    results travel as values (the built-in types natively, other objects pickled). A
    task that raises completes its future with that exception (unpickled in the main
    interpreter; ``RemoteError`` if it cannot be), with the worker's traceback as the
    ``__cause__``.

    Modules a worker imports stay imported in that worker, as in a process pool. An
    extension module that refuses own-GIL interpreters (numpy) fails the task with
    ``ImportError``: use it in the main interpreter.
    """

    def __init__(self, runtime: Runtime, workers: int | None = None, *, pin: bool = False) -> None:
        count = workers if workers is not None else (os.cpu_count() or 1)
        if count < 1:
            raise ValueError("an executor needs at least one worker")
        self._core = runtime._core.executor(count, WORKER_PATH, pin)
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def workers(self) -> list[ActorRef]:
        """The worker actors."""
        return self._core.workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Schedules ``fn(*args, **kwargs)``; returns its future. Never blocks."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = _TaskFuture()
        future._subactor_core = self._core
        future._subactor_ticket = self._core.submit(future, _fn_ref(fn), args, kwargs or None)
        return future

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Like the built-in ``map``, in the workers; results in order. With
        ``chunksize`` > 1, items travel in chunks of that many (one message each way),
        which cuts the per-item overhead of tiny tasks. ``buffersize`` is accepted for
        compatibility and ignored: every task is submitted at once."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        end_time = None if timeout is None else timeout + time.monotonic()
        ref = _fn_ref(fn)
        items = zip(*iterables)
        futures: list[_TaskFuture] = []
        while chunk := list(itertools.islice(items, chunksize)):
            future = _TaskFuture()
            future._subactor_core = self._core
            future._subactor_ticket = self._core.submit_chunk(future, ref, chunk)
            futures.append(future)

        def results() -> Iterator[T]:
            try:
                futures.reverse()
                while futures:
                    future = futures.pop()
                    if end_time is None:
                        yield from future.result()
                    else:
                        yield from future.result(end_time - time.monotonic())
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Takes no new tasks; with ``cancel_futures``, cancels those still queued; with
        ``wait``, waits for the others to complete and for the workers to stop (Ctrl-C
        interrupts the wait). Without ``wait``, the workers stop in the background once
        the remaining tasks are done."""
        with self._lock:
            self._shutdown = True
            self._core.close()
        if cancel_futures:
            for future in self._core.cancel_queued():
                concurrent.futures.Future.cancel(future)
        if wait:
            self._core.wait_idle()
            self._core.stop_workers(True)
        else:
            self._core.stop_workers_when_idle()

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> Literal[False]:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C (or SystemExit): do not wait for the queue; interrupt the workers.
            self.shutdown(wait=False, cancel_futures=True)
            self._core.kill_workers()
        else:
            self.shutdown(wait=True)
        return False

    def __repr__(self) -> str:
        return (
            f"<subactor.Executor {len(self._core.workers)} workers, {self._core.outstanding} outstanding"
            f"{' (shut down)' if self._shutdown else ''}>"
        )
