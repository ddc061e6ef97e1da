"""asyncio: asks that never block the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import subactor
from sa_actors import Counter, Echo, Raiser, Sleeper
from sa_process import Fragile
from subactor import _ref

#: Where the asked actors run: an ask to an idle process actor is begun on the loop's
#: thread (its message written to the child there), others go through the mailbox.
PLACEMENTS = ["interpreter", "process"]


@pytest.fixture
def runtime() -> Iterator[subactor.Runtime]:
    with subactor.Runtime() as rt:
        yield rt


@pytest.mark.asyncio
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_ask_async(runtime: subactor.Runtime, placement: str) -> None:
    counter = runtime.spawn(Counter, 0, placement=placement)
    counter.tell(5)
    assert await counter.ask_async(1) == 6


@pytest.mark.asyncio
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_an_ask_async_never_overtakes_a_tell_sent_before_it(runtime: subactor.Runtime, placement: str) -> None:
    counter = runtime.spawn(Counter, 0, placement=placement)
    for i in range(1, 301):
        counter.tell(1)
        assert await counter.ask_async(1) == 2 * i
        if i % 3 == 0:
            await asyncio.sleep(0)  # now and then the actor goes idle between the two


@pytest.mark.asyncio
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_many_concurrent_asks(runtime: subactor.Runtime, placement: str) -> None:
    echoes = [runtime.spawn(Echo, placement=placement) for _ in range(2)]
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
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_ask_async_timeout_and_errors(runtime: subactor.Runtime, placement: str) -> None:
    slow = runtime.spawn(Sleeper, placement=placement)
    with pytest.raises(subactor.AskTimeout):
        await slow.ask_async(1.0, timeout=0.05)
    assert await slow.ask_async(0.01) == 0.01, "the answer to this ask, not the late one"
    raiser = runtime.spawn(Raiser, placement=placement)
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
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_a_cancelled_ask_abandons_the_reply(runtime: subactor.Runtime, placement: str) -> None:
    slow = runtime.spawn(Sleeper, placement=placement)
    task = asyncio.create_task(slow.ask_async(0.2))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await slow.ask_async(0.0) == 0.0


@pytest.mark.asyncio
@pytest.mark.parametrize("placement", PLACEMENTS)
async def test_abandoned_asks_leave_no_future_behind(runtime: subactor.Runtime, placement: str) -> None:
    slow = runtime.spawn(Sleeper, placement=placement)
    cancelled = [asyncio.create_task(slow.ask_async(0.02)) for _ in range(5)]
    await asyncio.sleep(0.01)
    for task in cancelled:
        task.cancel()
    for _ in range(5):
        with pytest.raises(subactor.AskTimeout):
            await slow.ask_async(0.05, timeout=0.01)
    assert await slow.ask_async(0.0, timeout=10) == 0.0, "after every late reply"
    replies = _ref._REPLIES[asyncio.get_running_loop()]
    assert replies is not None and replies.futures == {}


@pytest.mark.asyncio
async def test_a_crash_fails_the_awaiting_ask_and_the_next_goes_to_the_new_process(
    runtime: subactor.Runtime,
) -> None:
    fragile = runtime.spawn(Fragile, placement="process", on_failure="restart")
    first = await fragile.ask_async("pid")
    with pytest.raises(subactor.ActorFailed) as raised:
        await fragile.ask_async("crash")
    assert raised.value.kind == "died"
    assert await fragile.ask_async(0) == 1
    assert await fragile.ask_async("pid") != first


class _NoReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch file descriptors (as some third-party loops)."""

    def add_reader(self, *args: object) -> None:
        raise NotImplementedError


def test_a_loop_that_cannot_watch_descriptors_gets_replies_from_the_dispatcher() -> None:
    loop = _NoReaders()
    try:
        with subactor.Runtime() as rt:
            actors = [rt.spawn(Counter, 0, placement=placement) for placement in PLACEMENTS]

            async def main() -> list[int]:
                return list(await asyncio.gather(*(a.ask_async(1) for a in actors for _ in range(50))))

            assert loop.run_until_complete(main()) == list(range(1, 51)) * 2
            assert _ref._REPLIES[loop] is None
    finally:
        loop.close()


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_a_loop_closed_with_an_ask_in_flight_leaves_asks_working(placement: str) -> None:
    with subactor.Runtime() as rt:
        slow = rt.spawn(Sleeper, placement=placement)

        async def abandon() -> None:
            asyncio.get_running_loop().create_task(slow.ask_async(0.2))
            await asyncio.sleep(0.02)

        asyncio.run(abandon())  # cancels the asking task, closes the loop
        time.sleep(0.3)  # the late reply comes for a closed loop

        async def again() -> float:
            return float(await slow.ask_async(0.0))

        assert asyncio.run(again()) == 0.0


def test_loops_in_two_threads_each_get_their_own_replies() -> None:
    with subactor.Runtime() as rt:
        actors = [rt.spawn(Echo, placement=placement) for placement in PLACEMENTS]
        found: dict[int, list[object]] = {}

        def run(base: int) -> None:
            async def main() -> list[object]:
                return list(await asyncio.gather(*(actors[i % 2].ask_async(base + i) for i in range(300))))

            found[base] = asyncio.run(main())

        threads = [threading.Thread(target=run, args=(base,)) for base in (0, 1000)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert found == {base: list(range(base, base + 300)) for base in (0, 1000)}


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
