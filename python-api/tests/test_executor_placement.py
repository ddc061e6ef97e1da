"""The executor's placement: interpreters (strict), processes, or ``auto`` (interpreters,
and process workers for the tasks that meet a module refusing own-GIL interpreters)."""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import os
import pathlib
import time

import numpy
import pytest

import subactor
import sa_numpy
from sa_actors import TaskError, add, interpreter_id, pid_then_numpy, sleep, square


@pytest.mark.parametrize(
    ("placement", "error"), [("thread", ValueError), ("Auto", ValueError), (1, TypeError), (None, TypeError)]
)
def test_a_bad_placement_is_refused(rt: subactor.Runtime, placement: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="placement"):
        rt.executor(1, placement=placement)  # type: ignore[arg-type]
    with pytest.raises(error, match="placement"):
        subactor.Executor(1, placement=placement)  # type: ignore[arg-type]


def test_interpreter_placement_is_strict_and_names_the_module(rt: subactor.Runtime) -> None:
    with rt.executor(1) as ex:
        assert ex.placement == "interpreter"
        with pytest.raises(ImportError, match="numpy"):
            ex.submit(sa_numpy.norm, 3).result(timeout=30)
        with pytest.raises(ImportError, match="numpy"):
            list(ex.map(pid_then_numpy, range(4), [2] * 4, chunksize=4))
        assert ex.submit(square, 4).result(timeout=30) == 16
        assert ex.routes == (False, (), ())
        assert ex.ran == (3, 0)


def test_process_placement_runs_every_task_in_a_child_process(rt: subactor.Runtime) -> None:
    with rt.executor(2, placement="process") as ex:
        assert ex.placement == "process"
        pids = {ex.submit(os.getpid).result(timeout=60) for _ in range(4)}
        assert os.getpid() not in pids
        assert ex.submit(sa_numpy.norm, 3).result(timeout=60) == pytest.approx(5**0.5)
        # The main interpreter of its process.
        assert ex.submit(interpreter_id).result(timeout=60) == 0
        assert list(ex.map(square, range(10), chunksize=3)) == [x * x for x in range(10)]
        assert ex.ran == (0, 10)
        assert ex.routes == (False, (), ())


def test_auto_runs_pure_python_in_interpreters_and_starts_no_process(rt: subactor.Runtime) -> None:
    with rt.executor(2, placement="auto") as ex:
        assert list(ex.map(square, range(8))) == [x * x for x in range(8)]
        assert ex.submit(os.getpid).result(timeout=30) == os.getpid()
        assert ex.ran == (9, 0)
        assert len(ex.workers) == 2  # the process workers start on first use
        assert ex.routes == (False, (), ())


def test_auto_sends_a_module_that_cannot_load_to_processes_and_remembers_it(rt: subactor.Runtime) -> None:
    with rt.executor(2, placement="auto") as ex:
        pid, total = ex.submit(sa_numpy.pid_and_sum, 10).result(timeout=60)
        assert pid != os.getpid() and total == 45
        assert ex.ran == (0, 1)
        assert ex.routes.modules == ("sa_numpy",)
        # Another function of that module goes straight to a process: no interpreter
        # attempt is counted.
        assert ex.submit(sa_numpy.norm, 3).result(timeout=60) == pytest.approx(5**0.5)
        assert ex.ran == (0, 2)
        # The same pool: the process workers joined the interpreter ones.
        assert len(ex.workers) == 4
        # Pure Python still runs in interpreters.
        assert ex.submit(square, 5).result(timeout=30) == 25
        assert ex.ran == (1, 2)
        assert list(ex.map(sa_numpy.norm, range(12), chunksize=5)) == pytest.approx(
            [float(numpy.linalg.norm(numpy.arange(n, dtype=float))) for n in range(12)]
        )
        assert ex.ran == (1, 5)


def test_auto_keeps_a_process_tasks_exception_and_traceback(rt: subactor.Runtime) -> None:
    with rt.executor(1, placement="auto") as ex:
        with pytest.raises(TaskError) as caught:
            ex.submit(sa_numpy.fail_in_numpy, 7).result(timeout=60)
        assert caught.value.code == 7
        cause = caught.value.__cause__
        assert type(cause) is concurrent.futures.process._RemoteTraceback
        assert "in fail_in_numpy" in cause.tb
        # The refusal that sent it there is not what the task raised.
        assert "subinterpreters" not in cause.tb
        with pytest.raises(TaskError):
            list(ex.map(sa_numpy.fail_in_numpy, [1, 2], chunksize=2))
        assert ex.submit(square, 3).result(timeout=30) == 9


def test_auto_sends_a_function_that_imports_numpy_when_called(rt: subactor.Runtime) -> None:
    with rt.executor(1, placement="auto") as ex:
        # pid_then_numpy imports numpy from x >= 3 on: the chunk's first calls complete in
        # the interpreter (this process) and are not run again; the rest run in a process.
        results = list(ex.map(pid_then_numpy, range(8), [3] * 8, chunksize=8))
        assert [x for x, _ in results] == list(range(8))
        pids = [pid for _, pid in results]
        assert pids[:3] == [os.getpid()] * 3
        assert len(set(pids[3:])) == 1 and pids[3] != os.getpid()
        assert ex.routes.functions == ("sa_actors.pid_then_numpy",)
        assert ex.routes.modules == ()
        # Known now: the next task of that function goes straight to a process, even the
        # calls that would not need one.
        assert ex.submit(pid_then_numpy, 0, 3).result(timeout=60)[1] != os.getpid()
        assert ex.submit(square, 2).result(timeout=30) == 4
        assert ex.ran == (1, 2)


def test_auto_sends_a_task_whose_arguments_need_numpy(rt: subactor.Runtime) -> None:
    with rt.executor(1, placement="auto") as ex:
        total = ex.submit(add, numpy.arange(3), 1).result(timeout=60)
        assert isinstance(total, numpy.ndarray) and total.tolist() == [1, 2, 3]
        assert ex.routes.functions == ("sa_actors.add",)
        assert ex.ran == (0, 1)


def test_auto_with_an_initializer_that_needs_numpy_runs_everything_in_processes(rt: subactor.Runtime) -> None:
    with rt.executor(2, placement="auto", initializer=sa_numpy.init_numpy, initargs=(5,)) as ex:
        futures = [ex.submit(sa_numpy.init_value) for _ in range(6)]
        assert [f.result(timeout=60) for f in futures] == [5] * 6
        assert ex.routes.everything
        assert ex.submit(os.getpid).result(timeout=60) != os.getpid()
        assert ex.ran.interpreter <= 2 and ex.ran.process >= 5
        assert len(ex.workers) == 2  # the interpreter workers stopped


def test_auto_tasks_in_processes_are_cancelled_and_shut_down_like_any(
    rt: subactor.Runtime, tmp_path: pathlib.Path
) -> None:
    ex = rt.executor(1, placement="auto")
    started = tmp_path / "started"
    first = ex.submit(sa_numpy.slow_norm, 1.0, str(started))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists() and ex.routes.modules == ("sa_numpy",)
    # The process worker is busy: these wait in the process lane's queue.
    queued = [ex.submit(sa_numpy.slow_norm, 0.0) for _ in range(5)]
    assert ex._core.queued == 5
    assert queued[-1].cancel()
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result(timeout=0) != os.getpid()
    assert all(f.cancelled() for f in queued)
    assert ex.ran == (0, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)


def test_auto_replaces_process_workers_after_max_tasks(rt: subactor.Runtime) -> None:
    with rt.executor(1, placement="auto", max_tasks_per_child=1) as ex:
        pids = [ex.submit(sa_numpy.pid_and_sum, 3).result(timeout=60)[0] for _ in range(3)]
        assert len(set(pids)) == 3 and os.getpid() not in pids
        assert [ex.submit(square, x).result(timeout=30) for x in range(3)] == [0, 1, 4]
        assert ex.ran == (3, 3)


def test_auto_shutdown_without_wait_finishes_rerouted_tasks(rt: subactor.Runtime) -> None:
    ex = rt.executor(2, placement="auto")
    futures = [ex.submit(sa_numpy.pid_and_sum, n) for n in range(6)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=60)[1] for f in futures] == [n * (n - 1) // 2 for n in range(6)]
    assert ex._core.wait_idle(60)


def test_an_auto_executor_of_its_own_runtime_maps_numpy(rt: subactor.Runtime) -> None:
    del rt
    with subactor.Executor(2, placement="auto") as ex:
        assert sum(ex.map(sa_numpy.norm, [4] * 6)) == pytest.approx(6 * 14**0.5)
        assert ex.ran.process == 6
    assert "auto" in repr(ex)


def test_auto_with_sleeping_tasks_keeps_them_in_interpreters(rt: subactor.Runtime) -> None:
    with rt.executor(2, placement="auto") as ex:
        assert list(ex.map(sleep, [0.01] * 4)) == [0.01] * 4
        assert ex.ran == (4, 0)
