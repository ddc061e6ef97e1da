"""Every way spawning fails is a documented exception, with the actor's traceback as its
cause; the runtime and its other actors carry on."""

from __future__ import annotations

import threading

import pytest

import subactor
from sa_actors import BrokenInit, Echo, NoReceive


def test_unimportable_module(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.SpawnError, match="cannot import") as caught:
        rt.spawn("scripts.broken_module:Anything")
    cause = caught.value.__cause__
    assert isinstance(cause, subactor.RemoteTraceback)
    assert "broken on purpose" in cause.traceback


def test_missing_module_and_class(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.SpawnError, match="No module named 'no_such_module'"):
        rt.spawn("no_such_module:Thing")
    with pytest.raises(subactor.SpawnError, match='no usable class "Nope"'):
        rt.spawn("sa_actors:Nope")


def test_raising_constructor_and_no_receive(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.SpawnError, match="constructor fails on purpose") as caught:
        rt.spawn(BrokenInit)
    assert "in __init__" in str(caught.value.__cause__)
    with pytest.raises(subactor.SpawnError, match="no receive"):
        rt.spawn(NoReceive)


def test_an_extension_that_refuses_own_gil_interpreters_is_named(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.IncompatibleExtension) as caught:
        rt.spawn("scripts.refusing_module:Anything", placement="interpreter")
    error = caught.value
    assert isinstance(error, subactor.SpawnError)
    assert error.module == "faulthandler"
    assert "own-GIL" in str(error)
    assert isinstance(error.__cause__, subactor.RemoteTraceback)
    assert rt.spawn(Echo).ask("fine") == "fine"


def test_unsendable_constructor_arguments(rt: subactor.Runtime) -> None:
    with pytest.raises(TypeError, match="pickling it failed"):
        rt.spawn(Echo, threading.Lock())


def test_invalid_options(rt: subactor.Runtime) -> None:
    with pytest.raises(ValueError, match="core"):
        rt.spawn(Echo, core=10_000)
    with pytest.raises(ValueError, match="time_limit"):
        rt.spawn(Echo, time_limit=-1.0)
    with pytest.raises(TypeError, match="class"):
        rt.spawn(42)  # type: ignore[call-overload]
