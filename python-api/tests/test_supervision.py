"""Supervisors from Python, with the core's semantics."""

from __future__ import annotations

import time

import pytest

import subactor
from sa_actors import BrokenInit, Echo, Stateful


def eventually(what: str, cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.01)


def test_a_failing_child_restarts_in_place(rt: subactor.Runtime) -> None:
    sup = rt.spawn(subactor.SupervisorSpec([subactor.ChildSpec(Stateful, name="s")], name="sup"))
    assert isinstance(sup, subactor.Supervisor)
    assert sup.name == "sup" and sup.state == "running"
    child = sup.child(0)
    assert isinstance(child, subactor.ActorRef)
    assert child.ask("x") == 1
    with pytest.raises(subactor.RemoteError):
        child.ask("fail")
    # Same reference, fresh instance (its count starts again).
    assert child.ask("x") == 1
    assert child.restarts == 1
    (info,) = sup.children()
    assert (info.index, info.name, info.id, info.restarts) == (0, "s", child.id, 1)
    assert info.actor == child


def test_one_for_all_restarts_the_siblings(rt: subactor.Runtime) -> None:
    spec = subactor.SupervisorSpec(
        [subactor.ChildSpec(Stateful), subactor.ChildSpec(Stateful)],
        strategy=subactor.Strategy.ONE_FOR_ALL,
    )
    sup = rt.spawn(spec)
    first, second = sup.child(0), sup.child(1)
    assert isinstance(first, subactor.ActorRef) and isinstance(second, subactor.ActorRef)
    assert second.ask("x") == 1
    assert second.ask("x") == 2
    with pytest.raises(subactor.RemoteError):
        first.ask("fail")
    eventually("the sibling restarts", lambda: second.restarts == 1)
    assert second.ask("x") == 1


def test_restart_types(rt: subactor.Runtime) -> None:
    spec = subactor.SupervisorSpec(
        [
            subactor.ChildSpec(Echo, name="permanent"),
            subactor.ChildSpec(Echo, name="transient", restart="transient"),
            subactor.ChildSpec(Echo, name="temporary", restart=subactor.Restart.TEMPORARY),
        ]
    )
    sup = rt.spawn(spec)
    refs = [sup.child(i) for i in range(3)]
    for ref in refs:
        assert isinstance(ref, subactor.ActorRef)
        ref.stop()
    # The permanent child comes back (under a new id); the others stay stopped. Until the
    # stopped permanent child is replaced, children() can list it under its old id.
    assert refs[0] is not None
    old_id = refs[0].id
    eventually(
        "the permanent child respawns",
        lambda: [(c.name, c.id != old_id) for c in sup.children()] == [("permanent", True)],
    )
    (info,) = sup.children()
    assert info.id != old_id
    assert isinstance(info.actor, subactor.ActorRef) and info.actor.ask("back") == "back"


def test_intensity_exceeded_stops_the_supervisor(rt: subactor.Runtime) -> None:
    sup = rt.spawn(subactor.SupervisorSpec([Stateful], max_restarts=2, within=10.0))
    child = sup.child(0)
    assert isinstance(child, subactor.ActorRef)
    for _ in range(3):
        with pytest.raises((subactor.RemoteError, subactor.ActorStopped, subactor.NoReply)):
            child.ask("fail", timeout=10)
    down = sup.wait(timeout=10)
    assert down is not None and down.abnormal
    assert "restarts" in (down.detail or "")
    assert child.wait(10) is not None


def test_nested_supervisors_and_backoff(rt: subactor.Runtime) -> None:
    inner = subactor.SupervisorSpec([subactor.ChildSpec(Stateful, name="leaf")], name="inner", backoff=(0.05, 0.2))
    sup = rt.spawn(subactor.SupervisorSpec([subactor.ChildSpec(inner), Echo], name="root"))
    nested = sup.child(0)
    assert isinstance(nested, subactor.Supervisor)
    assert nested.name == "inner"
    leaf = nested.child(0)
    assert isinstance(leaf, subactor.ActorRef) and leaf.name == "leaf"
    with pytest.raises(subactor.RemoteError):
        leaf.ask("fail")
    started = time.monotonic()
    assert leaf.ask("x", timeout=10) == 1
    assert time.monotonic() - started >= 0.04  # waited out the backoff
    sup.stop()
    assert sup.wait(10) is not None
    assert leaf.wait(10) is not None


def test_a_child_that_cannot_start_fails_the_spawn(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.SpawnError, match="constructor fails on purpose"):
        rt.spawn(subactor.SupervisorSpec([Echo, BrokenInit]))
    assert rt.actor_count == 0


def test_spec_validation() -> None:
    with pytest.raises(ValueError):
        subactor.SupervisorSpec([Echo], strategy="one_for_none")
    with pytest.raises(ValueError):
        subactor.ChildSpec(Echo, restart="sometimes")
    with pytest.raises(TypeError):
        subactor.ChildSpec(subactor.SupervisorSpec([Echo]), name="x")
