"""Long-running services from Python: asyncio actors, kept state, upgrades."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import subactor
from sa_services import Sleepy, Tally, TallyTwo


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_an_asyncio_actor_runs_started_and_its_coroutines(rt: subactor.Runtime, placement: str) -> None:
    sleepy = rt.spawn(Sleepy, placement=placement)
    assert sleepy.ask("log") == ["started"]
    assert sleepy.ask(0.01) == 1


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_max_concurrency_handles_that_many_asks_at_once(rt: subactor.Runtime, placement: str) -> None:
    sleepy = rt.spawn(Sleepy, max_concurrency=20, placement=placement)

    async def many() -> list[int]:
        return list(await asyncio.gather(*(sleepy.ask_async(0.2) for _ in range(40))))

    peaks = asyncio.run(many())
    assert max(peaks) == 20
    with pytest.raises(ValueError):
        rt.spawn(Sleepy, max_concurrency=0)


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_a_restart_restores_the_snapshot(rt: subactor.Runtime, placement: str) -> None:
    tally = rt.spawn(Tally, placement=placement, snapshots="message", on_failure="restart")
    tally.ask(5)
    tally.ask(6)
    with pytest.raises(subactor.RemoteError):
        tally.ask("crash")
    assert tally.ask(0) == 11
    assert tally.restarts == 1


def test_a_state_dir_outlives_the_runtime(tmp_path: Path) -> None:
    with subactor.Runtime() as rt:
        tally = rt.spawn(Tally, name="tally", snapshots=2, state_dir=tmp_path)
        tally.ask(1)
        tally.ask(2)
        tally.ask(4)  # not kept: every 2 messages
    with subactor.Runtime() as rt:
        assert rt.spawn(Tally, name="tally", snapshots=2, state_dir=tmp_path).ask(0) == 3
        with pytest.raises(ValueError):
            rt.spawn(Tally, state_dir=tmp_path)


def test_an_upgrade_to_another_class_carries_the_state(rt: subactor.Runtime) -> None:
    tally = rt.spawn(Tally, snapshots="message")
    tally.ask(7)
    rt.upgrade(tally, TallyTwo)
    assert tally.ask(1) == -1008
    assert tally.restarts == 1
    stopped = rt.spawn(Tally)
    stopped.stop()
    stopped.wait()
    with pytest.raises(subactor.ActorStopped):
        rt.upgrade(stopped)


def child_of(sup: subactor.Supervisor, index: int) -> subactor.ActorRef:
    child = sup.child(index)
    assert isinstance(child, subactor.ActorRef)
    return child


VERSION_1 = """
class Versioned:
    def __init__(self):
        self.count = 0

    def receive(self, msg):
        self.count += msg
        return ("v1", self.count)

    def snapshot(self):
        return self.count

    def restore(self, state):
        self.count = state
"""

VERSION_2 = """
class Versioned:
    def __init__(self):
        self.count = 0
        self.upgraded_from = None

    def receive(self, msg):
        self.count += msg
        return ("v2", self.count, self.upgraded_from)

    def upgrade(self, old_state):
        self.count = old_state
        self.upgraded_from = old_state
"""


def test_a_supervisor_upgrades_its_children_from_a_rewritten_module(rt: subactor.Runtime, tmp_path: Path) -> None:
    module = tmp_path / "versioned_children.py"
    module.write_text(VERSION_1)
    target = f"{module}:Versioned"
    spec = subactor.SupervisorSpec(
        [
            subactor.ChildSpec(target, name="v-interpreter", placement="interpreter"),
            subactor.ChildSpec(target, name="v-process", placement="process"),
        ]
    )
    sup = rt.spawn(spec)
    children = [child_of(sup, 0), child_of(sup, 1)]
    replies: dict[int, list[tuple[object, ...]]] = {0: [], 1: []}
    stop = threading.Event()

    def send(i: int) -> None:
        # Messages keep flowing while the module is rewritten and the children upgraded.
        while not stop.is_set():
            children[i].tell(1)
            replies[i].append(children[i].ask(1))

    senders = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for sender in senders:
        sender.start()
    while min(len(r) for r in replies.values()) < 5:
        stop.wait(0.01)
    module.write_text(VERSION_2)
    assert rt.upgrade_children(sup) == 2
    deadline = 30.0
    while any(child.restarts < 1 for child in children) and deadline > 0:
        stop.wait(0.05)
        deadline -= 0.05
    while any(r[-1][0] != "v2" for r in replies.values()):
        stop.wait(0.01)
    stop.set()
    for sender in senders:
        sender.join()
    for i, child in enumerate(children):
        assert child.restarts == 1
        # Each ask follows a tell: the counts run on without a gap, whatever the version.
        counts = [reply[1] for reply in replies[i]]
        assert counts == list(range(2, 2 * len(counts) + 1, 2)), (i, counts)
        versions = [reply[0] for reply in replies[i]]
        first_v2 = versions.index("v2")
        assert set(versions[:first_v2]) == {"v1"} and set(versions[first_v2:]) == {"v2"}
        upgraded_from = replies[i][first_v2][2]
        assert isinstance(upgraded_from, int) and upgraded_from > 0, "upgrade(old_state) got the count"

    # To another class, by name; a supervisor is not an actor for upgrade().
    assert rt.upgrade_children(sup, "sa_services:TallyTwo") == 2
    with pytest.raises(TypeError, match="upgrade_children"):
        rt.upgrade(sup)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Supervisor"):
        rt.upgrade_children(children[0])  # type: ignore[arg-type]
    sup.stop()
    sup.wait()
    with pytest.raises(subactor.ActorStopped):
        rt.upgrade_children(sup)


def test_child_specs_take_the_service_options(rt: subactor.Runtime) -> None:
    spec = subactor.SupervisorSpec(
        [
            subactor.ChildSpec(Tally, snapshots="message", placement="process"),
            subactor.ChildSpec(Sleepy, max_concurrency=10),
        ]
    )
    sup = rt.spawn(spec)
    tally, sleepy = child_of(sup, 0), child_of(sup, 1)
    tally.ask(5)
    with pytest.raises(subactor.RemoteError):
        tally.ask("crash")
    assert tally.ask(0) == 5, "the supervisor's restart restored the snapshot"

    async def many() -> list[int]:
        return list(await asyncio.gather(*(sleepy.ask_async(0.2) for _ in range(20))))

    assert max(asyncio.run(many())) == 10
    sup.stop()
    sup.wait()
    with pytest.raises(ValueError, match="snapshots"):
        subactor.ChildSpec(Tally, snapshots="sometimes")
    with pytest.raises(ValueError, match="needs snapshots"):
        subactor.ChildSpec(Tally, state_store="cluster")
    with pytest.raises(ValueError, match="state_store must be"):
        subactor.ChildSpec(Tally, snapshots="message", state_store="redis")
    with pytest.raises(ValueError, match="two different stores"):
        rt.spawn(Tally, snapshots="message", state_dir="/tmp", state_store="cluster")
    with pytest.raises(TypeError, match="takes its options on the spec"):
        subactor.ChildSpec(spec, snapshots="message")


def test_a_cluster_store_needs_a_cluster(rt: subactor.Runtime) -> None:
    with pytest.raises(subactor.SpawnError, match="joined a cluster"):
        rt.spawn(Tally, name="nowhere", snapshots="message", state_store="cluster")
