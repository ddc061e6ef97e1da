"""CPython's own tests of executors, run against ``subactor.Executor``.

The standard library specifies an executor in ``test.test_concurrent_futures``: test
mixins written over an executor type (``ExecutorTest``, ``ProcessPoolExecutorTest``,
``AsCompletedTests``, ``WaitTests``, ``ExecutorShutdownTest``, and the initializer mixins
of ``test_init``), which CPython combines with its thread and process pools. Here they
are combined with subactor's executor, exactly as CPython combines them with its own:
each test gets ``subactor.Executor(max_workers=5)`` (its own runtime included), and the
tests run unchanged. ``ExecutorTest``/``ProcessPoolExecutorTest`` and the initializer
tests run again with ``placement="process"`` and ``placement="auto"``.

The mixins come from the standard library of the Python running the tests, so each
CPython of the CI runs its own version of them (3.12, 3.13 and 3.14 differ: 3.14 adds
``map``'s ``buffersize``, events from a ``multiprocessing`` manager, and more process
pool tests). A CPython installed without them (pyenv's 3.12.1: python/cpython#115421)
runs another CPython's when ``SUBACTOR_CPYTHON_FUTURES_TESTS`` names their directory
(the wheels lane gives its 3.12 the files of its 3.13; ``cpython_futures_borrowed`` says
how they load), and skips this module, saying why, when it does not. pytest's header and
``test_which_cpython_tests_run`` say which CPython's files ran on which interpreter.

A test that does not apply to an executor whose workers are interpreters of this
process (it counts or signals worker *processes*, or patches a private part of
``ProcessPoolExecutor``) is skipped below by name, with the reason; every other test
must pass. The three shutdown tests that run a script in a child process import the
executor class by name (``from concurrent.futures import <name>``): for them the script
imports it from ``subactor`` instead (the one-line swap a user makes), and nothing else
of the script changes (but, where the tests are another CPython's, the name their own
modules are imported by: see ``_scripts_import_from_subactor``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import sys
import unittest
import unittest.mock
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import subactor

# Names another CPython's test_concurrent_futures directory, for a CPython without its own.
BORROWED_ENV = "SUBACTOR_CPYTHON_FUTURES_TESTS"


def _stdlib_tests() -> tuple[dict[str, ModuleType], str]:
    """The modules of ``test.test_concurrent_futures`` that hold the mixins, by role (a
    package of modules since 3.12.x, or one module holding everything in older
    layouts), and which CPython's files they are, run on which interpreter.

    A CPython whose standard library lacks the package runs another CPython's when
    ``SUBACTOR_CPYTHON_FUTURES_TESTS`` names it (``cpython_futures_borrowed``), and
    skips this module otherwise."""
    this = f"CPython {sys.version.split()[0]}"
    try:
        package = importlib.import_module("test.test_concurrent_futures")
        source = f"{this}'s own test.test_concurrent_futures ({Path(package.__file__ or '').parent}), run on it"
    except unittest.SkipTest as skip:
        pytest.skip(f"CPython's concurrent.futures tests skip themselves here: {skip}", allow_module_level=True)
    except ImportError as error:
        if error.name not in ("test", "test.test_concurrent_futures"):
            raise
        if os.environ.get(BORROWED_ENV):
            try:
                package = importlib.import_module("cpython_futures_borrowed")
            except unittest.SkipTest as skip:
                pytest.skip(f"CPython's concurrent.futures tests skip themselves here: {skip}", allow_module_level=True)
            source = package.describe()
        else:
            found = importlib.util.find_spec("test")
            where = "no `test` package" if found is None else f"its `test` package ({found.origin}) lacks it"
            pytest.skip(
                f"{this} does not ship test.test_concurrent_futures ({where}; {error}): its standard "
                "library's test suite is not installed (Debian: libpython3.X-testsuite), or its `make install` "
                f"left the package out (python/cpython#115421); {BORROWED_ENV} may name another CPython's",
                allow_module_level=True,
            )
    if not hasattr(package, "__path__"):
        roles = ("util", "executor", "process_pool", "as_completed", "wait", "shutdown", "init")
        return dict.fromkeys(roles, package), source
    modules = {}
    for role, name in (
        ("util", "util"),
        ("executor", "executor"),
        ("process_pool", "test_process_pool"),
        ("as_completed", "test_as_completed"),
        ("wait", "test_wait"),
        ("shutdown", "test_shutdown"),
        ("init", "test_init"),
    ):
        modules[role] = importlib.import_module(f"{package.__name__}.{name}")
    return modules, source


_MODULES, SOURCE = _stdlib_tests()
# The standard library's classes (untyped: the test package has no stubs).
_ExecutorMixin: Any = _MODULES["util"].ExecutorMixin
_BaseTestCase: Any = _MODULES["util"].BaseTestCase
_ProcessPoolExecutorTest: Any = _MODULES["process_pool"].ProcessPoolExecutorTest
_AsCompletedTests: Any = _MODULES["as_completed"].AsCompletedTests
_WaitTests: Any = _MODULES["wait"].WaitTests
_ExecutorShutdownTest: Any = _MODULES["shutdown"].ExecutorShutdownTest
_InitializerMixin: Any = _MODULES["init"].InitializerMixin
_FailingInitializerMixin: Any = _MODULES["init"].FailingInitializerMixin

# Tests that do not apply to workers that are interpreters of this process, by name
# (a name a version does not have is ignored), with the reason.
_NOT_PROCESSES = "subactor's workers are interpreters of this process, not processes"
SKIPPED: dict[str, str] = {
    # ProcessPoolExecutorTest
    "test_killed_child": (
        f"terminates a worker process (ProcessPoolExecutor._processes) to break the pool; {_NOT_PROCESSES} "
        "(a killed worker actor is tested in test_executor.py)"
    ),
    "test_broken_process_pool_traceback": (
        f"terminates a worker process (ProcessPoolExecutor._processes) to break the pool; {_NOT_PROCESSES}"
    ),
    "test_saturation": (
        "counts the worker processes ProcessPoolExecutor starts on demand (_processes) and shares a "
        "multiprocessing semaphore, which only a child process inherits; subactor starts its max_workers "
        "interpreters with the executor"
    ),
    "test_idle_process_reuse_one": (
        f"counts the worker processes ProcessPoolExecutor starts on demand (_processes); {_NOT_PROCESSES}, "
        "all started with the executor"
    ),
    "test_idle_process_reuse_multiple": (
        f"counts the worker processes ProcessPoolExecutor starts on demand (_processes); {_NOT_PROCESSES}, "
        "all started with the executor"
    ),
    "test_max_tasks_per_child": (
        "tells workers apart by process id (os.getpid()), which every interpreter of this process shares; "
        "test_executor.py checks the replacement by interpreter id"
    ),
    "test_max_tasks_per_child_defaults_to_spawn_context": (
        "checks the multiprocessing start method ProcessPoolExecutor picks (_mp_context); subactor starts no "
        "process (a worker is a fresh interpreter, as with 'spawn')"
    ),
    "test_python_finalization_error": (
        "patches the start of ProcessPoolExecutor's management threads (gh-109047); subactor's executor "
        "starts no Python thread of its own"
    ),
    "test_shutdown_no_wait_max_tasks_gh119592": (
        "joins ProcessPoolExecutor's manager thread (_executor_manager_thread) and expects the "
        "BrokenProcessPool it raises when a garbage-collected pool cannot replace a worker; subactor's pool "
        "replaces its workers whether or not the executor object is alive (tested in test_executor.py)"
    ),
    "test_gc_during_max_tasks_worker_exit_gh152967": (
        "joins ProcessPoolExecutor's manager thread (_executor_manager_thread) and expects the "
        "BrokenProcessPool it raises when a garbage-collected pool cannot replace a worker; subactor's pool "
        "replaces its workers whether or not the executor object is alive (tested in test_executor.py)"
    ),
    "test_force_shutdown_during_max_tasks_worker_exit": (
        "sets ProcessPoolExecutor's private _force_shutting_down under its _shutdown_lock"
    ),
    "test_failed_worker_replacement_breaks_pool": (
        "patches ProcessPoolExecutor's private _spawn_worker (a replacement that cannot start is tested in "
        "test_executor.py)"
    ),
    "test_terminate_workers": "mocks ProcessPoolExecutor's private _force_shutdown",
    "test_kill_workers": "mocks ProcessPoolExecutor's private _force_shutdown",
    "test_force_shutdown_workers_invalid_op": "calls ProcessPoolExecutor's private _force_shutdown",
    "test_force_shutdown_workers": (
        f"wraps the terminate()/kill() of a worker process (_processes); {_NOT_PROCESSES} "
        "(terminate_workers and kill_workers are tested in test_executor.py)"
    ),
    "test_force_shutdown_workers_dead_workers": (
        "ends a worker with os._exit(1), which ends a worker process; here it would end this whole process, "
        "the test run included"
    ),
    "test_force_shutdown_workers_not_started_yet": (
        "patches the multiprocessing context's Process class, which subactor never uses"
    ),
    "test_force_shutdown_workers_stops_pool": (
        f"joins a worker process (_processes); {_NOT_PROCESSES} (the pool refusing tasks after "
        "terminate_workers is tested in test_executor.py)"
    ),
}


class SubactorMixin(_ExecutorMixin):
    """Runs a mixin's tests against ``subactor.Executor``, as CPython's
    ``ThreadPoolMixin`` and ``ProcessPool*Mixin`` run them against its pools."""

    # A task that is a method of a test class (test_traceback's) makes the worker import
    # this module, where `subactor` is the in-actor module: the classes are only
    # unpickled there, never run.
    executor_type = getattr(subactor, "Executor", None)

    def get_context(self) -> Any:
        # For the tests that make a multiprocessing manager (a process of its own) to
        # share objects with the workers, and hand the context to the executor (which
        # accepts it and starts no process).
        return multiprocessing.get_context("spawn")

    def create_event(self) -> Any:
        # 3.14's tests wait on an event that crosses to the workers: a threading.Event
        # cannot leave this interpreter, a manager's can (as for a process pool).
        manager = getattr(self, "_subactor_manager", None)
        if manager is None:
            manager = self._subactor_manager = self.get_context().Manager()
            self.addCleanup(manager.shutdown)
        return manager.Event()


def _with_skips(cls: type) -> type:
    for name, reason in SKIPPED.items():
        if callable(getattr(cls, name, None)):
            setattr(cls, name, unittest.skip(reason)(getattr(cls, name)))
    return cls


@contextlib.contextmanager
def _scripts_import_from_subactor(module: ModuleType) -> Any:
    """Makes the scripts a shutdown test runs in a child process import the executor from
    ``subactor`` instead of ``concurrent.futures`` (and checks that each did).

    Where the tests are another CPython's (``cpython_futures_borrowed``), the script's
    imports of their modules (``from test.test_concurrent_futures.test_shutdown import
    ...``) name them as they are loaded here, and the script's first line puts their
    loader's folder on the path (the child runs isolated, ``-I``: no PYTHONPATH)."""
    original = module.assert_python_ok
    name = subactor.Executor.__name__
    standard, swapped = f"from concurrent.futures import {name}\n", f"from subactor import {name}\n"
    package = module.__name__.rpartition(".")[0]

    def rewrite(script: str) -> str:
        script = script.replace(standard, swapped)
        if package != "test.test_concurrent_futures" and "test.test_concurrent_futures." in script:
            where = str(Path(sys.modules[package].__file__ or "").parent)
            script = f"import sys; sys.path.insert(0, {where!r})\n" + script.replace(
                "from test.test_concurrent_futures.", f"from {package}."
            )
        return script

    def assert_python_ok(*args: Any, **env: Any) -> Any:
        scripts = [arg for arg in args if isinstance(arg, str) and standard in arg]
        if not scripts:
            raise AssertionError(f"a shutdown test's script no longer imports {name} from concurrent.futures: {args}")
        return original(*(rewrite(arg) if arg in scripts else arg for arg in args), **env)

    with unittest.mock.patch.object(module, "assert_python_ok", assert_python_ok):
        yield


@_with_skips
class SubactorProcessPoolExecutorTest(SubactorMixin, _ProcessPoolExecutorTest, _BaseTestCase):
    """``ExecutorTest`` and ``ProcessPoolExecutorTest`` (which extends it)."""


class SubactorAsCompletedTest(SubactorMixin, _AsCompletedTests, _BaseTestCase):
    pass


class SubactorWaitTest(SubactorMixin, _WaitTests, _BaseTestCase):
    pass


@_with_skips
class SubactorShutdownTest(SubactorMixin, _ExecutorShutdownTest, _BaseTestCase):
    def setUp(self) -> None:
        self.enterContext(_scripts_import_from_subactor(_MODULES["shutdown"]))
        super().setUp()


class SubactorInitializerTest(SubactorMixin, _InitializerMixin, _BaseTestCase):
    pass


class SubactorFailingInitializerTest(SubactorMixin, _FailingInitializerMixin, _BaseTestCase):
    pass


# The same tests with the workers placed elsewhere: process actors, and "auto" (whose
# pure-Python tasks run in interpreters, each kept until its worker answered). In the
# in-actor module (a worker importing this one to unpickle a test's method), `subactor`
# has no Executor: the classes exist there, never run.
_ProcessExecutor: Any = None
_AutoExecutor: Any = None
if hasattr(subactor, "Executor"):

    class _ProcessExecutor(subactor.Executor):  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, placement="process", **kwargs)

    class _AutoExecutor(subactor.Executor):  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, placement="auto", **kwargs)


@_with_skips
class SubactorProcessPlacementTest(SubactorMixin, _ProcessPoolExecutorTest, _BaseTestCase):
    """``ExecutorTest`` and ``ProcessPoolExecutorTest`` with process workers."""

    executor_type = _ProcessExecutor


@_with_skips
class SubactorAutoPlacementTest(SubactorMixin, _ProcessPoolExecutorTest, _BaseTestCase):
    """``ExecutorTest`` and ``ProcessPoolExecutorTest`` with ``placement="auto"``."""

    executor_type = _AutoExecutor


class SubactorProcessInitializerTest(SubactorMixin, _InitializerMixin, _BaseTestCase):
    executor_type = _ProcessExecutor


class SubactorProcessFailingInitializerTest(SubactorMixin, _FailingInitializerMixin, _BaseTestCase):
    executor_type = _ProcessExecutor


class SubactorAutoFailingInitializerTest(SubactorMixin, _FailingInitializerMixin, _BaseTestCase):
    executor_type = _AutoExecutor


def test_every_skip_names_a_test_of_this_python() -> None:
    """A skip whose test no version has is a typo, and would skip nothing."""
    everywhere = set()
    for cls in (SubactorProcessPoolExecutorTest, SubactorShutdownTest):
        everywhere |= {name for name in dir(cls) if name.startswith("test_")}
    known_elsewhere = {
        # Tests of other CPython versions than this one (3.14 added these).
        "test_broken_process_pool_traceback",
        "test_shutdown_no_wait_max_tasks_gh119592",
        "test_gc_during_max_tasks_worker_exit_gh152967",
        "test_force_shutdown_during_max_tasks_worker_exit",
        "test_failed_worker_replacement_breaks_pool",
        "test_terminate_workers",
        "test_kill_workers",
        "test_force_shutdown_workers_invalid_op",
        "test_force_shutdown_workers",
        "test_force_shutdown_workers_dead_workers",
        "test_force_shutdown_workers_not_started_yet",
        "test_force_shutdown_workers_stops_pool",
    }
    assert set(SKIPPED) - everywhere <= known_elsewhere


def test_which_cpython_tests_run(record_testsuite_property: Any) -> None:
    """Says which CPython's test files this module runs, on which interpreter (in the
    report: the test's output and the JUnit test suite's property
    ``cpython_futures_tests``), and
    checks that another CPython's run only where this one has none of its own."""
    print(f"CPython's concurrent.futures tests: {SOURCE}")
    record_testsuite_property("cpython_futures_tests", SOURCE)
    own = _MODULES["util"].__name__.startswith("test.")
    assert own == (importlib.util.find_spec("test.test_concurrent_futures") is not None), SOURCE
    if not own:
        borrowed = sys.modules["cpython_futures_borrowed"]
        assert Path(_MODULES["util"].__file__).parent == borrowed.DIRECTORY == Path(os.environ[BORROWED_ENV]).resolve()
        assert borrowed.VERSION != "%d.%d" % sys.version_info[:2], SOURCE
