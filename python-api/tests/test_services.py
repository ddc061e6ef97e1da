"""Long-running services from Python: asyncio actors, kept state, upgrades."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import subactor
from sa_services import Sleepy, Tally, TallyTwo


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_an_asyncio_actor_runs_started_and_its_coroutines(rt: subactor.Runtime, placement: str) -> None:
    sleepy = rt.spawn(Sleepy, placement=placement)
    assert sleepy.ask("log") == ["started"]
    assert sleepy.ask(0.01) == 1


def test_max_concurrency_handles_that_many_asks_at_once(rt: subactor.Runtime) -> None:
    sleepy = rt.spawn(Sleepy, max_concurrency=20)

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
