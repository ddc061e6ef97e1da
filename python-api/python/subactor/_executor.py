"""``Executor``: a ``concurrent.futures.Executor`` whose workers are actors."""

from __future__ import annotations

import collections
import concurrent.futures
import inspect
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from . import _native, _shipping
from ._native import ActorRef

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Executor", "Ran", "Routes"]

T = TypeVar("T")

#: The worker actor's file, spawned by path in each worker's interpreter.
WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_subactor_worker.py")

#: Set at interpreter exit: no executor takes a task any more.
_interpreter_shutdown = False


def _usable_cores() -> int:
    """The CPUs this process may run on (its affinity), as ``ProcessPoolExecutor``
    counts them."""
    count: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)  # 3.13+
    if count is not None:
        return count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _TaskFuture(concurrent.futures.Future[Any]):
    """A task's future: cancellable while the task waits in the executor's queue."""

    _subactor_core: _native.ExecutorCore | None = None
    _subactor_ticket: int = 0

    def cancel(self) -> bool:
        core = self._subactor_core
        if core is not None and not self.done() and not core.cancel(self._subactor_ticket):
            return False
        return super().cancel()


# How the functions and classes sent so far travel: found again by name. Keys are weak
# references to them (removed when they die: the executor keeps no callable alive), or
# built-in functions themselves (which cannot be weakly referenced; their module holds
# them anyway).
_NAMED: dict[Any, tuple[str, str]] = {}


def _forget(key: weakref.ref[Any]) -> None:
    _NAMED.pop(key, None)


_BUILTIN = type(len)


def _fn_ref(fn: Callable[..., Any]) -> Any:
    """How a callable travels to a worker: ``(module, qualname)`` for a function or class
    that workers can import (found again by name there: the cheap way), else the callable
    itself, pickled (bound methods, ``functools.partial``, callable instances; by value,
    with cloudpickle, what workers cannot import: see ``_shipping``)."""
    key: Any
    if type(fn) is _BUILTIN:
        key = fn
    else:
        try:
            key = weakref.ref(fn)
        except TypeError:  # neither a function nor a class
            return fn
    try:
        ref = _NAMED.get(key)
    except TypeError:  # unhashable
        return fn
    if ref is not None:
        return ref
    if key is fn or inspect.isfunction(fn) or isinstance(fn, type):
        found = _shipping.reference(fn)
        if found is not None:
            if len(_NAMED) > 4096:
                _NAMED.clear()
            _NAMED[fn if key is fn else weakref.ref(fn, _forget)] = found
            return found
    # Not kept: once its task is sent, the executor holds nothing of it. (Pickled by
    # value, with cloudpickle, if workers cannot import it.)
    return fn


def _multiprocessing_authkey() -> bytes | None:
    """This program's ``multiprocessing`` authkey, if it uses ``multiprocessing``: the
    workers get it, so that a manager's proxies passed to tasks connect there (as in the
    child processes of a process pool)."""
    process = sys.modules.get("multiprocessing.process")
    if process is None:
        return None
    return bytes(process.current_process().authkey)


def _check_options(
    max_workers: int | None,
    mp_context: object,
    initializer: Callable[..., object] | None,
    max_tasks_per_child: int | None,
) -> int:
    """Checks the arguments as ``ProcessPoolExecutor`` does (same errors, same messages);
    returns the number of workers."""
    if max_workers is None:
        count = _usable_cores()
    elif isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an integer or None, got {type(max_workers).__name__}")
    elif max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    else:
        count = max_workers
    if mp_context is not None:
        import multiprocessing.context

        if not isinstance(mp_context, multiprocessing.context.BaseContext):
            raise TypeError(f"mp_context must be a multiprocessing context or None, got {type(mp_context).__name__}")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if max_tasks_per_child is not None:
        if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int):
            raise TypeError("max_tasks_per_child must be an integer")
        if max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")
    return count


_PLACEMENTS = ("interpreter", "process", "auto")


def _check_placement(placement: object) -> None:
    if not isinstance(placement, str):
        raise TypeError(f"placement must be a str, not {type(placement).__name__}")
    if placement not in _PLACEMENTS:
        raise ValueError(f"placement must be 'interpreter', 'process' or 'auto', got {placement!r}")


class Ran(NamedTuple):
    """Where an executor's tasks ran (``Executor.ran``)."""

    interpreter: int
    """Tasks run by interpreter workers."""
    process: int
    """Tasks run by process workers."""


class Routes(NamedTuple):
    """What an ``"auto"`` executor sends straight to process workers
    (``Executor.routes``)."""

    everything: bool
    """Every task: the initializer cannot run in an interpreter."""
    modules: tuple[str, ...]
    """Modules that cannot load in an interpreter: every function of theirs."""
    functions: tuple[str, ...]
    """Functions (``module.qualname``; ``<by value>`` for a callable sent pickled) that
    met a refusing module when called, or among their arguments."""


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` whose workers are actors, each a CPython
    interpreter with its own GIL, in this process: CPU-bound Python code runs in
    parallel, with no process per worker.

    It takes ``ProcessPoolExecutor``'s arguments, so swapping one for the other is one
    line::

        with subactor.Executor(max_workers=4, initializer=setup, initargs=(path,)) as ex:
            results = list(ex.map(work, items, chunksize=16))

    ``max_workers``: how many workers (default: the CPUs this process may use).
    ``initializer(*initargs)``: called in each worker before its first task; if it
    raises, the executor is *broken*: that task and every pending one fail with
    ``BrokenExecutor`` (a ``concurrent.futures.BrokenExecutor``), and so does
    ``submit``. ``max_tasks_per_child``: a worker is replaced by a fresh one (a new
    interpreter, whose modules are imported anew) after that many tasks.
    ``mp_context`` is accepted for compatibility and does not apply: every worker starts
    as a fresh interpreter, as a process does with the ``"spawn"`` start method (nothing
    is inherited from the main program's state).

    ``runtime``: the ``Runtime`` whose actors the workers are (``Runtime.executor``
    passes it). Without one, the executor opens a runtime of its own and closes it when
    it shuts down. ``pin``: pin worker *i* to core *i*.

    Functions travel by reference (module and qualified name; functions of the main
    script work: workers load it without running its ``__main__`` block), other
    callables pickled; arguments and results travel as values (the built-in types
    natively, other objects pickled). A task that raises completes its future with that
    exception (unpickled here; ``RemoteError`` if it cannot be), with the worker's
    traceback chained as its ``__cause__``, as ``ProcessPoolExecutor`` chains it.

    Shutting down: ``shutdown``, or leaving a ``with`` block, as the standard says; at
    interpreter exit, every executor still running finishes its pending tasks first,
    and ``submit`` raises ``RuntimeError`` from then on.

    Modules a worker imports stay imported in that worker, as in a process pool.

    ``placement``: where the workers run. ``"interpreter"`` (the default): own-GIL
    interpreters of this process, strictly: a task that meets an extension module
    refusing such interpreters (numpy, for one) fails with that ``ImportError``, which
    names the module. ``"process"``: child processes (process actors), where every
    extension loads, as in ``ProcessPoolExecutor``. ``"auto"``: interpreters, and, for the
    tasks that need one, a second set of ``max_workers`` process workers, started when the
    first such task comes: a task whose function's module, the function itself, one of
    its arguments or the initializer meets a refusing module is sent to a process worker
    instead of failing (a chunk of ``map`` from its first call that did not complete; the
    calls that did are not run again), and the executor remembers it: later tasks of that
    function (of every function of a module that cannot load; every task, when the
    initializer cannot) go straight to processes. What a task did before it met the
    refusing module (in the interpreter) it does again in the process. Results,
    exceptions, cancellation, ``shutdown`` and ``map`` behave the same wherever a task
    runs; ``ran`` and ``routes`` say where tasks ran and what goes to processes.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        max_tasks_per_child: int | None = None,
        runtime: Runtime | None = None,
        pin: bool = False,
        placement: str = "interpreter",
    ) -> None:
        count = _check_options(max_workers, mp_context, initializer, max_tasks_per_child)
        _check_placement(placement)
        init_ref = None if initializer is None else _fn_ref(initializer)
        authkey = _multiprocessing_authkey()
        worker_args = None
        if init_ref is not None or authkey is not None:
            worker_args = (init_ref, tuple(initargs), authkey)
        owned: Runtime | None = None
        if runtime is None:
            from ._runtime import Runtime

            runtime = owned = Runtime()
        try:
            self._core = runtime._core.executor(
                count, WORKER_PATH, pin, worker_args, max_tasks_per_child, owned, placement
            )
        except BaseException:
            if owned is not None:
                owned.close()
            raise
        self._runtime = runtime
        self._owns_runtime = owned is not None
        self._max_workers = count
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def workers(self) -> list[ActorRef]:
        """The worker actors (a replaced worker's successor once it runs; an ``"auto"``
        executor's process workers once started, and not its interpreter workers once
        stopped because the initializer needs a process)."""
        return self._core.workers

    @property
    def placement(self) -> str:
        """Where the workers run: ``"interpreter"``, ``"process"`` or ``"auto"``."""
        return self._core.placement

    @property
    def ran(self) -> Ran:
        """How many tasks ran in interpreter workers and in process workers so far
        (counted when the worker is done, before the future completes; a chunk of ``map``
        counts as one task; a task an ``"auto"`` executor sent from an interpreter to a
        process counts once, as a process's)."""
        interpreter, process = self._core.ran
        return Ran(interpreter, process)

    @property
    def routes(self) -> Routes:
        """What an ``"auto"`` executor sends straight to process workers, as it learnt
        it (empty for the other placements)."""
        everything, modules, functions = self._core.routed
        return Routes(everything, tuple(modules), tuple(functions))

    @property
    def _broken(self) -> str | Literal[False]:
        """``False``, or why the executor is broken (an initializer raised), as the
        standard executors' attribute of that name."""
        return _BROKEN_MESSAGE if self._core.broken else False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Schedules ``fn(*args, **kwargs)``; returns its future. Never blocks."""
        return self._submit(_fn_ref(fn), args, kwargs)

    def _submit(self, ref: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> _TaskFuture:
        if _interpreter_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = _TaskFuture()
        future._subactor_core = self._core
        future._subactor_ticket = self._core.submit(future, ref, args, kwargs or None)
        return future

    def _submit_chunk(self, ref: Any, chunk: list[tuple[Any, ...]]) -> _TaskFuture:
        if _interpreter_shutdown:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = _TaskFuture()
        future._subactor_core = self._core
        future._subactor_ticket = self._core.submit_chunk(future, ref, chunk)
        return future

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Like the built-in ``map``, in the workers; results in order, as Python 3.14's
        ``Executor.map``, on every Python.

        ``timeout``: seconds from this call after which the iterator raises
        ``TimeoutError`` if the next result is not there. ``chunksize``: items travel in
        chunks of that many (one message each way), which cuts the per-item overhead of
        tiny tasks. ``buffersize``: at most that many tasks (chunks) are submitted ahead
        of the results taken from the iterator, which reads the inputs only that far
        (so they may be endless); ``None`` submits everything at once.

        A task that raised raises its exception when the iterator reaches it; the
        iterator then cancels the tasks not yet started and ends.
        """
        if buffersize is not None and (isinstance(buffersize, bool) or not isinstance(buffersize, int)):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        ref = _fn_ref(fn)
        items = zip(*iterables)
        chunked = chunksize > 1

        def submit_next(executor: Executor) -> _TaskFuture | None:
            if chunked:
                chunk = list(itertools.islice(items, chunksize))
                return executor._submit_chunk(ref, chunk) if chunk else None
            args = next(items, None)
            return None if args is None else executor._submit(ref, args, None)

        pending: collections.deque[_TaskFuture] = collections.deque()
        while buffersize is None or len(pending) < buffersize:
            future = submit_next(self)
            if future is None:
                break
            pending.append(future)
        # Weakly: the iterator does not keep the executor alive.
        executor_ref = weakref.ref(self)
        del future

        def results() -> Iterator[Any]:
            try:
                while pending:
                    if buffersize is not None and (executor := executor_ref()) is not None:
                        more = submit_next(executor)
                        del executor
                        if more is not None:
                            pending.append(more)
                            del more
                    # No local name keeps a result once it is yielded.
                    if not chunked:
                        yield _result_or_cancel(pending.popleft(), end_time)
                        continue
                    chunk = _result_or_cancel(pending.popleft(), end_time)
                    chunk.reverse()
                    while chunk:
                        yield chunk.pop()
            finally:
                for future in pending:
                    future.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Takes no new tasks; with ``cancel_futures``, cancels those still queued; with
        ``wait``, waits for the others to complete and for the workers to stop (Ctrl-C
        interrupts the wait). Without ``wait``, the workers stop in the background once
        the remaining tasks are done. An executor that opened its own runtime closes it
        once its workers have stopped."""
        with self._lock:
            self._shutdown = True
            self._core.close()
        if cancel_futures:
            for future in self._core.cancel_queued():
                concurrent.futures.Future.cancel(future)
        if wait:
            self._core.wait_idle()
            self._core.stop_workers(True)
            if self._owns_runtime:
                self._runtime.close()
        else:
            self._core.stop_workers_when_idle()

    def terminate_workers(self) -> None:
        """Stops the workers at once, as ``ProcessPoolExecutor.terminate_workers`` (3.14)
        does: shuts down without waiting, cancels the queued tasks, and kills the workers
        (a task running Python code is interrupted; its future fails with
        ``ActorFailed``)."""
        self.shutdown(wait=False, cancel_futures=True)
        self._core.kill_workers()

    def kill_workers(self) -> None:
        """The same as ``terminate_workers`` (an interpreter has no gentler way to be
        stopped at once), as ``ProcessPoolExecutor.kill_workers`` (3.14)."""
        self.terminate_workers()

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> Literal[False]:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C (or SystemExit): do not wait for the queue; interrupt the workers.
            self.terminate_workers()
            if self._owns_runtime:
                self._runtime.close()
        else:
            self.shutdown(wait=True)
        return False

    def __repr__(self) -> str:
        return (
            f"<subactor.Executor {self._max_workers} workers ({self.placement}), {self._core.outstanding} outstanding"
            f"{' (shut down)' if self._shutdown else ''}>"
        )


_BROKEN_MESSAGE = "a worker's initializer failed: the executor cannot run tasks any more"


def _result_or_cancel(future: _TaskFuture, end_time: float | None) -> Any:
    """The future's result (waiting until ``end_time`` at most); the future is cancelled
    if that wait ends without it."""
    try:
        if end_time is None:
            return future.result()
        return future.result(end_time - time.monotonic())
    finally:
        if not future.done():
            future.cancel()
        del future


def _task_traceback(text: str) -> BaseException:
    """The cause chained to a task's exception: the worker's traceback, as the object
    ``ProcessPoolExecutor`` chains (code that looks for it finds it)."""
    from concurrent.futures import process

    remote: Any = process._RemoteTraceback  # typeshed has its argument wrong
    return remote(f'\n"""\n{text}"""')  # type: ignore[no-any-return]


_LOGGER = logging.getLogger("concurrent.futures")


def _initializer_failed(exc: BaseException) -> None:
    """Reports a worker's initializer that raised, as the standard executors do."""
    _LOGGER.critical("Exception in initializer:", exc_info=exc)


def _at_exit() -> None:
    """At interpreter exit, before the runtimes close: executors take no task any more,
    run the ones they were given, and stop their workers (as ``concurrent.futures``'
    executors do at exit)."""
    global _interpreter_shutdown
    _interpreter_shutdown = True
    _native._shutdown_executors()


# As concurrent.futures' executors: before `atexit` handlers run (and before the
# runtimes close in theirs); `atexit` where that hook does not exist.
_register_at_exit: Callable[[Callable[[], None]], None] | None = getattr(threading, "_register_atexit", None)
if _register_at_exit is None:
    import atexit

    atexit.register(_at_exit)
else:
    _register_at_exit(_at_exit)
