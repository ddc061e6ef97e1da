"""Arena buffers between the main interpreter and actors: the same memory, no copy."""

from __future__ import annotations

import pytest

import subactor
from sa_actors import BufferWorker, Echo


def test_a_buffer_from_main_reaches_an_actor_without_a_copy(rt: subactor.Runtime) -> None:
    draft = rt.alloc(64)
    assert isinstance(draft, subactor.BufferMut) and len(draft) == 64
    view = memoryview(draft)
    view[:4] = b"main"
    with pytest.raises(BufferError):
        draft.freeze()  # a view is alive
    view.release()
    frame = draft.freeze()
    assert isinstance(frame, subactor.Buffer)
    address, size, head = rt.spawn(BufferWorker).ask(frame)
    assert (address, size, head) == (frame.address, 64, b"main")
    with pytest.raises(TypeError):
        memoryview(frame)[0] = 1  # read-only


def test_a_buffer_from_an_actor_is_readable_here(rt: subactor.Runtime) -> None:
    buf = rt.spawn(BufferWorker).ask(None)
    assert isinstance(buf, subactor.Buffer)
    assert bytes(buf) == b"actor"
    assert bytes(buf[1:3]) == b"ct"
    assert buf[1:3].address == buf.address + 1


def test_buffer_copies_bytes_like_objects(rt: subactor.Runtime) -> None:
    buf = rt.buffer(bytearray(b"copied"))
    assert bytes(buf) == b"copied"
    assert rt.spawn(Echo).ask(buf).address == buf.address
    with pytest.raises(TypeError, match="freeze"):
        rt.spawn(Echo).tell(rt.alloc(1))


def test_the_arena_limit_is_a_memory_error() -> None:
    with subactor.Runtime(arena_max_bytes=1 << 20) as rt:
        with pytest.raises(MemoryError):
            rt.alloc(2 << 20)
