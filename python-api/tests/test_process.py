"""Process actors from Python: `placement="process"` runs an actor in the main
interpreter of a child process, where numpy works and a crash is that actor's alone."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from conftest import run_script

import subactor
from sa_actors import Sleeper
from sa_process import AtExit, Collector, Forwarder, Fragile, Numeric


def test_numpy_runs_in_a_process_actor_and_not_in_an_interpreter(rt: subactor.Runtime) -> None:
    numeric = rt.spawn(Numeric, placement="process")
    assert numeric.placement == "process"
    assert numeric.ask(1000) == sum(i * i for i in range(1000))
    assert numeric.ask("pid") != os.getpid()
    interp = rt.spawn(Numeric)
    assert interp.placement == "interpreter"
    with pytest.raises(subactor.RemoteError) as raised:
        interp.ask(10)
    assert raised.value.type_name == "ImportError"


def test_a_crash_is_the_askers_failure_and_the_runtime_carries_on(rt: subactor.Runtime) -> None:
    fragile = rt.spawn(Fragile, placement="process", on_failure="restart")
    first = fragile.ask("pid")
    with pytest.raises(subactor.ActorFailed) as raised:
        fragile.ask("crash")
    assert raised.value.kind == "died"
    assert "SIGSEGV" in str(raised.value)
    assert fragile.ask(0) == 1, "a fresh instance in a new process"
    assert fragile.ask("pid") != first
    assert fragile.restarts == 1


def test_an_ask_that_times_out_is_finished_by_the_actor_and_the_next_gets_its_own_answer(
    rt: subactor.Runtime,
) -> None:
    # An ask to an idle process actor runs on the asking thread, which talks to the
    # child itself; at its timeout the actor's thread takes the ask over.
    sleeper = rt.spawn(Sleeper, placement="process")
    assert sleeper.ask(0) == 0
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(subactor.AskTimeout):
            sleeper.ask(0.3, timeout=0.05)
        assert time.monotonic() - started < 0.25
        assert sleeper.ask(0.01) == 0.01, "the answer to this ask, not the late one"
    assert sleeper.restarts == 0


def test_a_supervised_process_actor_restarts_after_a_crash(rt: subactor.Runtime) -> None:
    sup = rt.spawn(subactor.SupervisorSpec([subactor.ChildSpec(Fragile, placement="process")]))
    child = sup.child(0)
    assert isinstance(child, subactor.ActorRef)
    assert child.placement == "process"
    with pytest.raises(subactor.ActorFailed):
        child.ask("crash")
    assert child.ask(0) == 1
    assert child.restarts == 1


def test_a_memory_limit_turns_a_runaway_allocation_into_memory_error(rt: subactor.Runtime) -> None:
    fragile = rt.spawn(Fragile, placement="process", memory_limit=512 << 20)
    assert fragile.ask(1 << 20) == 1
    with pytest.raises(subactor.RemoteError) as raised:
        fragile.ask(4 << 30)
    assert raised.value.type_name == "MemoryError"
    assert fragile.ask(1 << 20) == 2


def test_process_and_interpreter_actors_ask_each_other(rt: subactor.Runtime) -> None:
    numeric = rt.spawn(Numeric, placement="process")
    in_process = rt.spawn(Forwarder, placement="process")
    in_interp = rt.spawn(Forwarder)
    assert in_process.ask((in_interp, (numeric, 3))) == ("process", ("interpreter", 5))


def test_a_process_actors_atexit_callbacks_run_when_it_stops(rt: subactor.Runtime, tmp_path: Any) -> None:
    marker = tmp_path / "atexit"
    actor = rt.spawn(AtExit, str(marker), placement="process")
    pid = actor.ask(None)
    assert pid != os.getpid()
    actor.stop()
    actor.wait(30)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == f"ran in {pid}"


def test_bad_placements_are_value_errors(rt: subactor.Runtime) -> None:
    with pytest.raises(ValueError, match="placement"):
        rt.spawn(Fragile, placement="gpu")
    with pytest.raises(ValueError, match="memory_limit"):
        rt.spawn(Fragile, memory_limit=1 << 30)


def test_a_main_script_class_runs_as_a_process_actor() -> None:
    code = (
        "import os, subactor\n"
        "class Here:\n"
        "    def receive(self, m): return (m, os.getpid() != PARENT)\n"
        "PARENT = int(os.environ.get('PARENT_PID', '0'))\n"
        "if __name__ == '__main__':\n"
        "    os.environ['PARENT_PID'] = str(os.getpid())\n"
        "    with subactor.Runtime() as rt:\n"
        "        print('answer:', rt.spawn(Here, placement='process').ask('hi'))\n"
    )
    script = "process_main.py"
    path = os.path.join(os.path.dirname(__file__), "scripts", script)
    with open(path, "w", encoding="utf-8") as f:
        f.write(code)
    try:
        result = run_script(script)
    finally:
        os.remove(path)
    assert result.returncode == 0, result.stderr
    assert "answer: ('hi', True)" in result.stdout, result.stdout


def test_preloaded_modules_are_loaded_in_every_process_actor() -> None:
    with subactor.Runtime(preload=["numpy"]) as rt:
        numeric = rt.spawn(Numeric, placement="process")
        assert numeric.ask(4) == 14
    with pytest.raises(subactor.SpawnError, match="no_such_module_here"), subactor.Runtime(
        preload=["no_such_module_here"]
    ) as rt:
        rt.spawn(Numeric, placement="process")


def test_a_full_collection_in_a_process_actor_leaves_the_templates_pages_shared() -> None:
    # The template freezes what it made (gc.freeze) before it forks: a collection in a
    # child does not write to the objects it inherited (numpy's among them here), each
    # write a private copy of a page. Without the freeze, a first gc.collect() in a
    # process actor made ~4.4 MB of its memory private (no preload; more with numpy).
    with subactor.Runtime(preload=["numpy"]) as rt:
        for _ in range(2):
            collector = rt.spawn(Collector, placement="process")
            before, after, frozen = collector.ask(None)
            assert after - before < 1024, (before, after)
            assert frozen > 10_000, frozen
            collector.stop()
