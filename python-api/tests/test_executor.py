"""The executor: a concurrent.futures.Executor whose workers are actors."""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import functools
import gc
import itertools
import logging
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import subactor
from conftest import run_script
from subactor._executor import _fn_ref
from sa_actors import (
    InitError,
    Point,
    Scaler,
    TaskError,
    Tracked,
    add,
    fail,
    fail_unpicklable,
    ignore,
    import_refusing,
    init_fails,
    init_state,
    init_worker,
    interpreter_id,
    make_point,
    put,
    sleep,
    spin,
    spin_holding_gil,
    square,
    stamp_after,
)


def test_submit_and_map(rt: subactor.Runtime) -> None:
    with rt.executor(workers=2) as ex:
        assert isinstance(ex, concurrent.futures.Executor)
        assert ex.submit(square, 7).result(timeout=10) == 49
        assert ex.submit(add, 1, 2, c=3).result(timeout=10) == 6
        assert list(ex.map(square, range(50))) == [x * x for x in range(50)]
        assert list(ex.map(add, range(5), range(5))) == [0, 2, 4, 6, 8]
        assert list(ex.map(square, range(103), chunksize=10)) == [x * x for x in range(103)]
        assert list(ex.map(square, [], chunksize=4)) == []
        with pytest.raises(ValueError, match="chunksize"):
            ex.map(square, [1], chunksize=0)


def test_callables_that_travel_by_value(rt: subactor.Runtime) -> None:
    with rt.executor(workers=1) as ex:
        assert ex.submit(functools.partial(add, 10), 5).result(timeout=10) == 15
        assert ex.submit(Scaler(3).scale, 4).result(timeout=10) == 12
        assert ex.submit(len, "four").result(timeout=10) == 4  # a builtin, by name
        assert ex.submit(make_point, 1, 2).result(timeout=10) == Point(1, 2)
        assert ex.submit(lambda: 1).result(timeout=10) == 1  # by value (cloudpickle)
        with pytest.raises(TypeError, match="pickling it failed"):
            ex.submit(functools.partial(add, threading.Lock()))


def test_workers_are_separate_interpreters(rt: subactor.Runtime) -> None:
    with rt.executor(workers=2) as ex:
        assert len(ex.workers) == 2
        found: set[int] = set()
        deadline = time.monotonic() + 20
        while len(found) < 2 and time.monotonic() < deadline:
            found |= set(ex.map(interpreter_id, range(20)))
        assert len(found) == 2
        assert interpreter_id() not in found


def test_workers_do_not_share_a_gil(rt: subactor.Runtime) -> None:
    with rt.executor(workers=2) as ex:
        hog = ex.submit(spin_holding_gil, 1.5)
        # Only an idle worker takes a task, so these run on the other worker.
        stamps = [ex.submit(stamp_after, 0.3) for _ in range(3)]
        start, end = hog.result(timeout=30)
        times = [f.result(timeout=30) for f in stamps]
    # Sharing the hog's GIL (which it does not hand over for 100 s), none could have
    # taken it back before the hog's loop ended.
    assert any(start < t < end for t in times), (start, end, times)


def test_a_task_exception_keeps_its_type_and_remote_traceback(rt: subactor.Runtime) -> None:
    with rt.executor(workers=1) as ex:
        future = ex.submit(fail, 7)
        with pytest.raises(TaskError) as caught:
            future.result(timeout=10)
        assert caught.value.code == 7
        # The worker's traceback is the cause, as ProcessPoolExecutor chains it.
        cause = caught.value.__cause__
        assert type(cause) is concurrent.futures.process._RemoteTraceback
        assert "in fail" in cause.tb
        with pytest.raises(subactor.RemoteError) as unpicklable:
            ex.submit(fail_unpicklable).result(timeout=10)
        assert unpicklable.value.type_name == "sa_actors.Unpicklable"
        assert "Unpicklable: cannot cross" in str(unpicklable.value.__cause__)
        with pytest.raises(ImportError, match="faulthandler"):
            ex.submit(import_refusing).result(timeout=10)
        # map raises when it reaches the failed item; the workers keep going.
        results = ex.map(fail, [1], chunksize=2)
        with pytest.raises(TaskError):
            list(results)
        assert ex.submit(square, 3).result(timeout=10) == 9


def test_futures_work_with_wait_and_as_completed(rt: subactor.Runtime) -> None:
    with rt.executor(workers=2) as ex:
        futures = [ex.submit(sleep, 0.01 * (i % 3)) for i in range(12)]
        done, pending = concurrent.futures.wait(futures, timeout=20)
        assert not pending and len(done) == 12
        seen = []
        callbacks: list[concurrent.futures.Future[float]] = []
        more = [ex.submit(square, i) for i in range(10)]
        for future in more:
            future.add_done_callback(callbacks.append)
        for future in concurrent.futures.as_completed(more, timeout=20):
            seen.append(future.result())
        assert sorted(seen) == [i * i for i in range(10)]
        deadline = time.monotonic() + 5
        while len(callbacks) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(callbacks) == 10


def test_cancel_a_queued_task(rt: subactor.Runtime) -> None:
    with rt.executor(workers=1) as ex:
        blocker = ex.submit(sleep, 0.3)  # the worker has it
        queued = ex.submit(square, 5)
        assert queued.cancel() is True
        assert queued.cancelled()
        assert blocker.cancel() is False  # a worker has it
        assert blocker.result(timeout=10) == 0.3
        with pytest.raises(concurrent.futures.CancelledError):
            queued.result()


def test_shutdown_semantics(rt: subactor.Runtime) -> None:
    ex = rt.executor(workers=1)
    futures = [ex.submit(sleep, 0.05) for _ in range(6)]
    ex.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    completed = [f for f in futures if not f.cancelled()]
    assert cancelled and len(completed) >= 1  # the one the worker held ran
    assert all(f.result() == 0.05 for f in completed)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    assert all(w.wait(10) is not None for w in ex.workers)

    ex = rt.executor(workers=1)
    futures = [ex.submit(square, i) for i in range(20)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=20) for f in futures] == [i * i for i in range(20)]
    assert all(w.wait(20) is not None for w in ex.workers)


def test_closing_the_runtime_fails_outstanding_tasks(rt: subactor.Runtime) -> None:
    ex = rt.executor(workers=1)
    futures = [ex.submit(sleep, 0.2) for _ in range(5)]
    time.sleep(0.05)
    rt.close()
    done, pending = concurrent.futures.wait(futures, timeout=20)
    assert not pending
    errors = [f.exception() for f in futures]
    assert any(isinstance(e, subactor.BrokenExecutor) for e in errors)
    assert all(e is None or isinstance(e, (subactor.BrokenExecutor, subactor.ActorFailed)) for e in errors)
    assert isinstance(subactor.BrokenExecutor("x"), concurrent.futures.BrokenExecutor)


def test_many_tiny_tasks(rt: subactor.Runtime) -> None:
    with rt.executor(workers=2) as ex:
        futures = [ex.submit(square, i) for i in range(5000)]
        assert sum(f.result(timeout=60) for f in futures) == sum(i * i for i in range(5000))
        assert "outstanding" in repr(ex)


def test_an_abandoned_executor_finishes_its_tasks_then_stops_its_workers(rt: subactor.Runtime) -> None:
    import gc

    ex = rt.executor(workers=1)
    workers = ex.workers
    ex.submit(sleep, 0.1)
    del ex
    gc.collect()
    assert all(w.wait(10) is not None for w in workers)


def test_quick_tasks_do_not_queue_behind_a_long_one_while_a_worker_is_free(rt: subactor.Runtime) -> None:
    # A task goes only to an idle worker, never into the mailbox of a busy one: so while
    # one worker sleeps, every quick task goes to the other and all of them finish
    # before the long one.
    with rt.executor(workers=2) as ex:
        assert ex.submit(square, 2).result(timeout=10) == 4  # both workers up
        long = ex.submit(sleep, 8.0)
        for batch in (1, 2, 3, 1, 3, 2):
            quick = [ex.submit(square, i) for i in range(batch)]
            assert [f.result(timeout=30) for f in quick] == [i * i for i in range(batch)]
            assert not long.done(), "a quick task waited behind the long one"
        assert long.result(timeout=30) == 8.0


# ---- subactor.Executor on its own, as ProcessPoolExecutor -----------------------------------


def open_runtimes() -> int:
    return sum(1 for rt in list(subactor._runtime._live) if not rt.closed)


def test_an_executor_on_its_own_opens_and_closes_its_runtime() -> None:
    before = open_runtimes()
    ex = subactor.Executor()
    try:
        assert len(ex.workers) == len(os.sched_getaffinity(0))  # the usable cores
        assert open_runtimes() == before + 1
        assert ex.submit(square, 9).result(timeout=10) == 81
    finally:
        ex.shutdown()
    assert open_runtimes() == before
    assert all(w.wait(10) is not None for w in ex.workers)
    with subactor.Executor(2) as ex:  # max_workers positionally, as ProcessPoolExecutor(2)
        assert len(ex.workers) == 2
        assert list(ex.map(square, range(4))) == [0, 1, 4, 9]
    assert open_runtimes() == before


def test_the_standard_argument_errors_open_nothing() -> None:
    before = open_runtimes()
    for number in (0, -1):
        with pytest.raises(ValueError, match="^max_workers must be greater than 0$"):
            subactor.Executor(max_workers=number)
    with pytest.raises(TypeError, match="max_workers must be an integer or None"):
        subactor.Executor(max_workers="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^initializer must be a callable$"):
        subactor.Executor(1, initializer=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^max_tasks_per_child must be >= 1$"):
        subactor.Executor(1, max_tasks_per_child=0)
    with pytest.raises(TypeError, match="^max_tasks_per_child must be an integer$"):
        subactor.Executor(1, max_tasks_per_child=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mp_context must be a multiprocessing context"):
        subactor.Executor(1, mp_context="spawn")
    with pytest.raises(TypeError, match="pickling it failed"):  # initargs that cannot travel
        subactor.Executor(1, initializer=init_worker, initargs=(threading.Lock(),))
    assert open_runtimes() == before


def test_mp_context_is_accepted_and_starts_no_process() -> None:
    children = multiprocessing.active_children()
    with subactor.Executor(2, multiprocessing.get_context("spawn"), max_tasks_per_child=3) as ex:
        assert list(ex.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
    assert multiprocessing.active_children() == children


def test_rt_executor_is_the_same_executor_on_an_existing_runtime(rt: subactor.Runtime) -> None:
    before = open_runtimes()
    with rt.executor(2, initializer=init_worker, initargs=("rt",)) as ex:
        assert isinstance(ex, subactor.Executor)
        assert open_runtimes() == before  # no runtime of its own
        assert ex.submit(init_state).result(timeout=10)[1:] == (1, "rt")
    assert not rt.closed  # the executor leaves the runtime it was given open
    with rt.executor(workers=1) as ex:  # the older name of max_workers
        assert len(ex.workers) == 1
    with pytest.raises(TypeError, match="not both"):
        rt.executor(1, workers=1)
    with subactor.Executor(1, runtime=rt) as ex:
        assert ex.submit(square, 3).result(timeout=10) == 9
    assert not rt.closed


def test_the_initializer_runs_once_in_each_worker_before_its_first_task() -> None:
    with subactor.Executor(2, initializer=init_worker, initargs=["ready"]) as ex:
        states = [f.result(timeout=20) for f in [ex.submit(init_state) for _ in range(40)]]
    assert {calls for _, calls, _ in states} == {1}
    assert {value for _, _, value in states} == {"ready"}
    assert len({interp for interp, _, _ in states}) <= 2


def test_a_failing_initializer_breaks_the_executor(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        with subactor.Executor(1, initializer=init_fails, initargs=("no setup",)) as ex:
            assert ex._broken is False
            futures = [ex.submit(square, i) for i in range(5)]
            for future in futures:
                with pytest.raises(subactor.BrokenExecutor) as broken:
                    future.result(timeout=20)
                assert isinstance(broken.value, concurrent.futures.BrokenExecutor)
                # The first task's failure carries the initializer's exception.
                assert isinstance(broken.value.__cause__, InitError)
            assert ex._broken
            with pytest.raises(subactor.BrokenExecutor, match="initializer failed"):
                ex.submit(square, 1)
    logged = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert logged and logged[0].getMessage() == "Exception in initializer:"
    assert isinstance(logged[0].exc_info and logged[0].exc_info[1], InitError)


def test_max_tasks_per_child_replaces_a_worker_with_a_fresh_interpreter() -> None:
    with subactor.Executor(1, initializer=init_worker, initargs=(7,), max_tasks_per_child=2) as ex:
        first = ex.workers[0]
        states = [ex.submit(init_state).result(timeout=20) for _ in range(6)]
        # Two tasks per interpreter, each fresh: its initializer ran once there.
        ids = [interp for interp, _, _ in states]
        assert ids[0] == ids[1] != ids[2] == ids[3] != ids[4] == ids[5]
        assert len(set(ids)) == 3
        assert {(calls, value) for _, calls, value in states} == {(1, 7)}
        assert ex.workers[0] != first
        assert first.wait(10) is not None  # the retired worker has stopped
        # Many tasks at once: every one runs, each worker replaced as it goes.
        assert list(ex.map(square, range(30))) == [i * i for i in range(30)]


def test_an_executor_shut_down_without_waiting_and_dropped_still_runs_its_tasks() -> None:
    # With worker replacement in the middle (ProcessPoolExecutor gh-119592, gh-152967).
    ex = subactor.Executor(1, max_tasks_per_child=1)
    futures = [ex.submit(sleep, 0.05) for _ in range(4)]
    ex.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    executor = weakref.ref(ex)
    del ex
    gc.collect()
    assert executor() is None
    assert [f.result(timeout=30) for f in futures] == [0.05] * 4


def test_tasks_fail_with_broken_executor_when_no_worker_can_be_started(rt: subactor.Runtime) -> None:
    ex = rt.executor(1, max_tasks_per_child=1)
    running = ex.submit(sleep, 0.3)
    queued = [ex.submit(square, i) for i in range(3)]
    time.sleep(0.1)
    rt.close()  # the running task is interrupted; its worker cannot be replaced
    done, pending = concurrent.futures.wait([running, *queued], timeout=20)
    assert not pending
    assert isinstance(running.exception(), (subactor.ActorFailed, subactor.BrokenExecutor))
    assert all(isinstance(f.exception(), subactor.BrokenExecutor) for f in queued)


def test_terminate_workers_and_kill_workers_stop_at_once() -> None:
    for stop in ("terminate_workers", "kill_workers"):
        with subactor.Executor(1) as ex:
            running = ex.submit(spin, 60.0)
            queued = ex.submit(square, 2)
            time.sleep(0.2)
            started = time.monotonic()
            getattr(ex, stop)()
            with pytest.raises(subactor.ActorFailed):
                running.result(timeout=20)
            assert time.monotonic() - started < 20
            assert queued.cancelled()
            with pytest.raises(RuntimeError, match="after shutdown"):
                ex.submit(square, 1)


def test_no_stale_references_once_a_task_is_done() -> None:
    # Once a task's future is done, nothing of the task (callable, arguments, result) is
    # held anywhere but in that future (CPython's test_no_stale_references, generalised).
    with subactor.Executor(1) as ex:
        cases: dict[str, Callable[[Tracked], concurrent.futures.Future[Any]]] = {
            "a bound method": lambda obj: ex.submit(obj.method),
            "a callable object": lambda obj: ex.submit(obj, 5),
            "an argument": lambda obj: ex.submit(ignore, obj),
            "a keyword argument": lambda obj: ex.submit(ignore, x=obj),
            "an item of a chunk": lambda obj: ex._submit_chunk(_fn_ref(ignore), [(obj,)]),
        }
        for what, submit in cases.items():
            obj = Tracked()
            gone = threading.Event()
            watch = weakref.ref(obj, lambda _: gone.set())
            submit(obj).result(timeout=10)  # the future is dropped at once
            del obj
            assert gone.wait(10), f"the executor still holds {what} of a finished task"
            assert watch() is None
        future = ex.submit(Tracked)
        result = weakref.ref(future.result(timeout=10))
        del future
        gc.collect()
        assert result() is None, "the executor still holds a finished task's result"


def test_map_with_buffersize_reads_its_input_only_so_far(rt: subactor.Runtime) -> None:
    with rt.executor(2) as ex:
        with pytest.raises(TypeError, match="^buffersize must be an integer or None$"):
            ex.map(square, [1], buffersize=2.0)  # type: ignore[arg-type]
        for size in (0, -1):
            with pytest.raises(ValueError, match=r"^buffersize must be None or > 0$"):
                ex.map(square, [1], buffersize=size)
        consumed = []

        def numbers():
            for i in itertools.count():
                consumed.append(i)
                yield i

        results = ex.map(square, numbers(), buffersize=3)
        assert len(consumed) == 3  # submitted at once, no further
        assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
        assert len(consumed) <= 5 + 3
        del results
        consumed.clear()
        results = ex.map(add, numbers(), itertools.count(), chunksize=4, buffersize=2)
        assert len(consumed) == 8  # two chunks of four
        assert list(itertools.islice(results, 10)) == [2 * i for i in range(10)]
        assert list(ex.map(square, range(7), buffersize=2)) == [i * i for i in range(7)]
        assert list(ex.map(square, [], buffersize=2)) == []
        assert list(ex.map(square, buffersize=2)) == []


def test_map_timeout_cancels_the_rest(rt: subactor.Runtime) -> None:
    with rt.executor(1) as ex:
        results = ex.map(sleep, [0.0, 2.0, 0.0, 0.0], timeout=0.5)
        assert next(results) == 0.0
        with pytest.raises(TimeoutError):
            next(results)
        with pytest.raises(StopIteration):
            next(results)
        assert ex._core.outstanding <= 1  # the rest were cancelled; the running one finishes


def test_manager_proxies_reach_the_workers() -> None:
    # The workers share this program's multiprocessing authkey, as a process pool's
    # children do, so a manager's proxies passed to tasks connect.
    with multiprocessing.get_context("spawn").Manager() as manager:
        queue = manager.Queue()
        with subactor.Executor(2) as ex:
            assert sorted(ex.map(put, [queue] * 4, range(4))) == [0, 1, 2, 3]
        assert sorted(queue.get(timeout=10) for _ in range(4)) == [0, 1, 2, 3]


def test_at_interpreter_exit_pending_tasks_run_then_submit_refuses() -> None:
    result = run_script("executor_at_exit.py")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["done-0", "done-1", "done-2", "done-3", "refused"]
    assert "RuntimeError: cannot schedule new futures after interpreter shutdown" in result.stderr


def test_the_one_line_swap() -> None:
    # The same program with ProcessPoolExecutor and with subactor.Executor.
    outputs = [run_script("executor_swap.py", which) for which in ("process", "subactor")]
    for result in outputs:
        assert result.returncode == 0, result.stderr
    assert outputs[0].stdout == outputs[1].stdout
    assert "results [0, 1, 4, 9, 16, 25, 36, 49]" in outputs[1].stdout
