"""numpy beside subactor: arrays over arena buffers in the main interpreter (no copy),
and a clear error, naming numpy, where numpy cannot go (an actor's own-GIL interpreter)."""

from __future__ import annotations

import gc

import numpy
import pytest

import subactor
from conftest import run_script
from sa_actors import BufferWorker, Echo, NumpyUser


def test_numpy_reads_an_arena_buffer_from_an_actor_without_a_copy(rt: subactor.Runtime) -> None:
    buf = rt.spawn(BufferWorker).ask(None)
    array = numpy.frombuffer(buf, dtype=numpy.uint8)
    assert array.__array_interface__["data"][0] == buf.address, "the same memory"
    assert array.tobytes() == b"actor"
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1


def test_an_array_keeps_the_memory_alive_after_its_producer_stopped(rt: subactor.Runtime) -> None:
    producer = rt.spawn(BufferWorker)
    array = numpy.frombuffer(producer.ask(None), dtype=numpy.uint8)
    producer.stop()
    producer.wait()
    gc.collect()
    assert array.tobytes() == b"actor"


def test_an_array_made_in_main_crosses_to_an_actor_without_a_copy(rt: subactor.Runtime) -> None:
    draft = rt.alloc(8 * 1000)
    numpy.frombuffer(draft, dtype=numpy.float64)[:] = numpy.arange(1000, dtype=numpy.float64)
    frame = draft.freeze()
    address, size, head = rt.spawn(BufferWorker).ask(frame)
    assert (address, size, head) == (frame.address, 8000, bytes(4)), "0.0 begins with four zero bytes"
    assert rt.spawn(Echo).ask(frame).address == frame.address


def test_an_interpreter_actor_that_imports_numpy_fails_to_start_naming_it(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.IncompatibleExtension) as caught:
        rt.spawn(NumpyUser, placement="interpreter")
    assert caught.value.module == "numpy", caught.value.module
    assert "own-GIL" in str(caught.value)
    assert rt.spawn(Echo).ask("still fine") == "still fine"


def test_by_default_an_actor_that_imports_numpy_runs_in_a_process(rt: subactor.Runtime) -> None:
    user = rt.spawn(NumpyUser)
    assert user.placement == "process"
    assert rt.spawn(Echo).placement == "interpreter"


def test_numpy_is_refused_before_it_loads_when_main_never_imported_it() -> None:
    # CPython runs a single-phase module's init inside the importing interpreter before
    # refusing it; for numpy that aborted the process. It must be refused up front.
    result = run_script("numpy_in_actor.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["refused: numpy", "main has numpy True"]
