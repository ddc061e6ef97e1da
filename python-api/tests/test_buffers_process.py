"""Arena buffers and process actors, with bad input: wrong types, drafts not frozen or
frozen away, reads out of range, sizes over the arena's limit, a child that dies while it
holds buffers, a buffer whose runtime has closed. Each gets a clear error (or works), and
nothing else is lost: the other buffers keep their bytes, the actor keeps answering, the
arena's counters come back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

import subactor
from sa_process import BufferHolder


def eventually(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def holder(rt: subactor.Runtime) -> subactor.ActorRef:
    return rt.spawn(BufferHolder, placement="process")


def test_wrong_types_and_unfrozen_drafts_are_refused_and_lose_nothing(rt: subactor.Runtime) -> None:
    actor = holder(rt)
    with pytest.raises(TypeError, match="bytes-like"):
        rt.buffer(123)
    with pytest.raises(TypeError, match="bytes-like"):
        rt.buffer("text")
    with pytest.raises(ValueError, match="contiguous"):
        rt.buffer(memoryview(b"abcdef")[::2])
    with pytest.raises(ValueError, match="at least 0"):
        rt.alloc(-1)
    with pytest.raises(TypeError, match="int"):
        rt.alloc("8")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        subactor.Buffer()  # type: ignore[call-arg]
    assert rt.arena_stats().buffers_live == 0

    draft = rt.alloc(16)
    memoryview(draft)[:4] = b"kept"
    with pytest.raises(TypeError, match=r"freeze\(\) it into a Buffer first"):
        actor.ask(("hold", draft), timeout=30)
    # The draft is untouched and still the sender's: frozen, it goes.
    frame = draft.freeze()
    with pytest.raises(TypeError, match=r"was frozen: send the Buffer freeze\(\) returned"):
        actor.ask(("hold", draft), timeout=30)
    assert actor.ask(("read", frame, slice(0, 4)), timeout=30) == b"kept"
    # The same mistakes made in the child are its errors, and it carries on.
    for what, message in (("unfrozen", "freeze() it into"), ("frozen away", "was frozen")):
        kind, type_name, text = actor.ask(("send", actor, what), timeout=30)
        assert (kind, type_name) == ("error", "TypeError") and message in text
    assert actor.ask(("read", frame, 0), timeout=30) == ord("k")
    assert rt.arena_stats().buffers_live == 1


def test_reads_out_of_range_in_a_process_actor_are_its_errors(rt: subactor.Runtime) -> None:
    actor = holder(rt)
    frame = rt.buffer(bytes(range(64)))
    assert actor.ask(("read", frame, 63), timeout=30) == 63
    assert actor.ask(("read", frame, -64), timeout=30) == 0
    for index in (64, -65, 1 << 62):
        assert actor.ask(("read", frame, index), timeout=30) == ("error", "IndexError", "Buffer index out of range")
    kind, type_name, _ = actor.ask(("read", frame, "x"), timeout=30)
    assert (kind, type_name) == ("error", "TypeError")
    # Slices clamp, as a bytes object's do.
    assert actor.ask(("read", frame, slice(100, 200)), timeout=30) == b""
    assert actor.ask(("read", frame, slice(60, 70)), timeout=30) == bytes(range(60, 64))
    assert actor.ask(("read", frame, slice(10, 4)), timeout=30) == b""
    assert actor.ask(("read", frame, slice(0, 8, 3)), timeout=30) == bytes([0, 3, 6])
    # Read-only in the child: the memory is shared with this process.
    kind, type_name, _ = actor.ask(("write", frame), timeout=30)
    assert (kind, type_name) == ("error", "TypeError")
    assert frame[0] == 0 and bytes(frame) == bytes(range(64))
    # Out-of-range reads here are errors too.
    with pytest.raises(IndexError):
        frame[64]
    assert bytes(frame[100:200]) == b""


def test_sizes_over_the_arena_limit_are_memory_errors_here_and_in_a_child() -> None:
    with subactor.Runtime(arena_max_bytes=4 << 20) as rt:
        actor = holder(rt)
        with pytest.raises(MemoryError, match="limit"):
            rt.alloc(8 << 20)
        with pytest.raises(MemoryError, match="limit"):
            rt.buffer(bytes(8 << 20))
        kind, type_name, message = actor.ask(("alloc", 64 << 30, b""), timeout=60)
        assert (kind, type_name) == ("error", "MemoryError"), message
        kind, type_name, _ = actor.ask(("alloc", -1, b""), timeout=60)
        assert (kind, type_name) == ("error", "ValueError")
        # Nothing was taken: a buffer within the limit still fits, here and there.
        made = actor.ask(("alloc", 1 << 20, b"made"), timeout=60)
        assert isinstance(made, subactor.Buffer) and bytes(made[:4]) == b"made"
        frame = rt.buffer(bytes(1 << 20))
        assert actor.ask(("read", frame, slice(0, 2)), timeout=30) == b"\0\0"
        del frame, made
        eventually("this arena's buffers are gone", lambda: rt.arena_stats().buffers_live == 0)


def test_a_child_killed_while_holding_buffers_gives_them_back_and_loses_nothing_else(
    rt: subactor.Runtime,
) -> None:
    kept = rt.buffer(b"kept" * 1000)
    actor = holder(rt)
    for n in range(3):
        assert actor.ask(("hold", rt.buffer(bytes([n]) * 100_000)), timeout=30) == n + 1
    # Also one this process keeps a handle on, and one the child made.
    shared = rt.buffer(b"shared" * 100)
    assert actor.ask(("hold", shared), timeout=30) == 4
    made = actor.ask(("alloc", 1 << 16, b"made"), timeout=30)
    stats = rt.arena_stats()
    assert stats.buffers_live == 5, stats  # kept, shared, and three held only by the child
    pid = actor.ask(("pid",), timeout=30)
    os.kill(pid, signal.SIGKILL)
    eventually(
        "the child's holds are dropped",
        lambda: rt.arena_stats()[:2] == (len(kept) + len(shared), 2),
    )
    # The actor died with its child (it was not supervised).
    down = actor.wait(timeout=30)
    assert down is not None and down.abnormal
    with pytest.raises(subactor.ActorStopped):
        actor.ask(("pid",), timeout=30)
    # Nothing else was lost: the buffers this process holds keep their bytes, and so
    # does the one the dead child made.
    assert bytes(kept) == b"kept" * 1000 and bytes(shared) == b"shared" * 100
    assert bytes(made[:4]) == b"made" and len(made) == 1 << 16
    other = holder(rt)
    assert other.ask(("read", kept, slice(0, 4)), timeout=30) == b"kept"
    del kept, shared
    eventually("the arena is back at zero", lambda: rt.arena_stats()[:2] == (0, 0))


def test_a_child_that_released_its_views_gives_the_buffers_back(rt: subactor.Runtime) -> None:
    actor = holder(rt)
    for n in range(2):
        actor.ask(("hold", rt.buffer(bytes(1000))), timeout=30)
    assert rt.arena_stats().buffers_live == 2
    assert actor.ask(("drop",), timeout=30) == 0
    eventually("the buffers are returned", lambda: rt.arena_stats().buffers_live == 0)


def test_a_buffer_outlives_its_closed_runtime_and_still_crosses(rt: subactor.Runtime) -> None:
    other = subactor.Runtime()
    frame = other.buffer(b"other runtime")
    other.close()
    with pytest.raises(subactor.ActorStopped, match="closed"):
        other.alloc(8)
    with pytest.raises(subactor.ActorStopped, match="closed"):
        other.arena_stats()
    # Its handle keeps the memory: readable here, and sent to a process actor of a
    # running runtime, the same bytes there.
    assert bytes(frame) == b"other runtime"
    actor = holder(rt)
    assert actor.ask(("read", frame, slice(0, 5)), timeout=30) == b"other"
    assert bytes(frame) == b"other runtime"
