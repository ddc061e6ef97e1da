"""asyncio: asks that never block the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import subactor
from sa_actors import Counter, Echo, Raiser, Sleeper


@pytest.fixture
def runtime() -> Iterator[subactor.Runtime]:
    with subactor.Runtime() as rt:
        yield rt


@pytest.mark.asyncio
async def test_ask_async(runtime: subactor.Runtime) -> None:
    counter = runtime.spawn(Counter, 0)
    counter.tell(5)
    assert await counter.ask_async(1) == 6


@pytest.mark.asyncio
async def test_many_concurrent_asks(runtime: subactor.Runtime) -> None:
    echoes = [runtime.spawn(Echo) for _ in range(2)]
    replies = await asyncio.gather(*(echoes[i % 2].ask_async(i) for i in range(500)))
    assert replies == list(range(500))


@pytest.mark.asyncio
async def test_the_loop_keeps_running_during_an_ask(runtime: subactor.Runtime) -> None:
    slow = runtime.spawn(Sleeper)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    assert await slow.ask_async(0.4) == 0.4
    elapsed = time.monotonic() - started
    task.cancel()
    assert elapsed >= 0.4
    # A blocked loop would have ticked at most once.
    assert ticks >= 10


@pytest.mark.asyncio
async def test_ask_async_timeout_and_errors(runtime: subactor.Runtime) -> None:
    slow = runtime.spawn(Sleeper)
    with pytest.raises(subactor.AskTimeout):
        await slow.ask_async(1.0, timeout=0.05)
    raiser = runtime.spawn(Raiser)
    with pytest.raises(subactor.RemoteError) as caught:
        await raiser.ask_async("raise")
    assert caught.value.type_name == "ValueError"
    assert isinstance(caught.value.__cause__, subactor.RemoteTraceback)
    stopped = runtime.spawn(Echo)
    stopped.stop()
    await stopped.wait_async(10)
    with pytest.raises(subactor.ActorStopped):
        await stopped.ask_async(1)


@pytest.mark.asyncio
async def test_a_cancelled_ask_abandons_the_reply(runtime: subactor.Runtime) -> None:
    slow = runtime.spawn(Sleeper)
    task = asyncio.create_task(slow.ask_async(0.2))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await slow.ask_async(0.0) == 0.0


@pytest.mark.asyncio
async def test_tell_async_waits_for_room(runtime: subactor.Runtime) -> None:
    slow = runtime.spawn(Sleeper, mailbox=1)
    slow.tell(0.2)
    await asyncio.sleep(0.05)
    slow.tell(0.0)  # fills the mailbox
    started = time.monotonic()
    await slow.tell_async(0.0)
    assert time.monotonic() - started > 0.05
    with pytest.raises(subactor.MailboxFull):
        slow.tell(0.5)
        slow.tell(0.0)
        await slow.tell_async(0.0, timeout=0.05)


@pytest.mark.asyncio
async def test_wait_async(runtime: subactor.Runtime) -> None:
    actor = runtime.spawn(Echo)
    assert await actor.wait_async(0.05) is None
    runtime.send_after(0.05, actor, "hello")
    actor.stop()
    down = await actor.wait_async(10)
    assert down is not None and down.id == actor.id


def test_asyncio_run_without_pytest_asyncio() -> None:
    async def main() -> list[int]:
        with subactor.Runtime() as rt:
            counters = [rt.spawn(Counter, i) for i in range(3)]
            return list(await asyncio.gather(*(c.ask_async(10) for c in counters)))

    assert asyncio.run(main()) == [10, 11, 12]
