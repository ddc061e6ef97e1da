"""The executor: a concurrent.futures.Executor whose workers are actors."""

from __future__ import annotations

import concurrent.futures
import functools
import time

import pytest

import subactor
from sa_actors import (
    Point,
    Scaler,
    TaskError,
    add,
    fail,
    fail_unpicklable,
    import_refusing,
    interpreter_id,
    make_point,
    sleep,
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
        with pytest.raises(TypeError, match="pickling it failed"):
            ex.submit(lambda: 1)


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
        # A worker holds at most two tasks, so one of these runs on the other worker.
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
        cause = caught.value.__cause__
        assert isinstance(cause, subactor.RemoteTraceback)
        assert "in fail" in cause.traceback
        with pytest.raises(subactor.RemoteError) as unpicklable:
            ex.submit(fail_unpicklable).result(timeout=10)
        assert unpicklable.value.type_name == "sa_actors.Unpicklable"
        assert isinstance(unpicklable.value.__cause__, subactor.RemoteTraceback)
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
