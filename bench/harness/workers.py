"""What the peers' workers run: loops that answer, count and measure payloads.

This module runs in child processes (multiprocessing), in threads, and inside PEP 734
subinterpreters, so it imports nothing but the standard library at module level, and
nothing that refuses subinterpreters.

Every loop first signals that it is ready (so that start-up can be timed to the moment a
worker can take work), and ends on ``None``.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Connection(Protocol):
    """The part of multiprocessing.connection.Connection the loops use."""

    def send(self, obj: Any) -> None: ...
    def recv(self) -> Any: ...
    def recv_bytes(self) -> bytes: ...


READY = "ready"
# What makes a worker run a full collection (pipe_collect, ActorCollect).
COLLECT = "collect"


# ---- multiprocessing: over a Pipe ------------------------------------------------


def pipe_echo(conn: Connection) -> None:
    """Answers every message with itself."""
    conn.send(READY)
    while (msg := conn.recv()) is not None:
        conn.send(msg)


def pipe_collect(conn: Connection) -> None:
    """Answers every message with itself; on ``"collect"`` first runs a full
    ``gc.collect()``, as a long-running worker's collector does sooner or later."""
    import gc

    conn.send(READY)
    while (msg := conn.recv()) is not None:
        if msg == COLLECT:
            gc.collect()
        conn.send(msg)


def pipe_count(conn: Connection) -> None:
    """Counts messages; on ``None`` answers the count and starts again. Ends on
    ``"stop"``."""
    conn.send(READY)
    count = 0
    while (msg := conn.recv()) != "stop":
        if msg is None:
            conn.send(count)
            count = 0
        else:
            count += 1


def pipe_length(conn: Connection) -> None:
    """Receives raw byte payloads and answers their length. An empty payload ends it."""
    conn.send(READY)
    while data := conn.recv_bytes():
        conn.send(len(data))


def pipe_shared_memory(conn: Connection) -> None:
    """Receives the names of shared memory blocks, attaches each, reads its first and
    last byte (as a process actor does with a buffer it is handed) and answers its
    length."""
    from multiprocessing import shared_memory

    conn.send(READY)
    while (name := conn.recv()) is not None:
        try:  # Python 3.13+: not registered with the resource tracker
            block = shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg]
        except TypeError:
            block = shared_memory.SharedMemory(name)
        size = block.size
        view = block.buf
        if size and view is not None:
            view[0]
            view[size - 1]
        del view
        block.close()
        conn.send(size)


# ---- threads: over queue.Queue -----------------------------------------------------


def queue_echo(inbox: Any, outbox: Any) -> None:
    """Answers every message with itself (queue.Queue in, queue.Queue out)."""
    outbox.put(READY)
    while (msg := inbox.get()) is not None:
        outbox.put(msg)


def queue_count(inbox: Any, outbox: Any) -> None:
    """Counts messages; on ``None`` answers the count and ends."""
    outbox.put(READY)
    count = 0
    while inbox.get() is not None:
        count += 1
    outbox.put(count)


def queue_length(inbox: Any, outbox: Any) -> None:
    """Answers the length of every payload."""
    outbox.put(READY)
    while (data := inbox.get()) is not None:
        outbox.put(len(data))


# ---- PEP 734 interpreters: over interpreters queues ---------------------------------


def get_spinning(queue: Any) -> Any:
    """Takes the next item of an interpreters queue, polling without sleeping.

    The queue's own ``get()`` sleeps 10 ms between polls; this shows what the
    transport itself costs, on a machine with a core to spare.
    """
    empty = sys.modules[type(queue).__module__].QueueEmpty
    while True:
        try:
            return queue.get_nowait()
        except empty:
            pass


def interp_echo(inbox: Any, outbox: Any, spin: bool) -> None:
    """Answers every message with itself, inside a subinterpreter."""
    get = get_spinning if spin else type(inbox).get
    outbox.put(READY)
    while (msg := get(inbox)) is not None:
        outbox.put(msg)


def interp_count(inbox: Any, outbox: Any) -> None:
    """Counts messages until ``None`` (queue ``get()``), then answers the count."""
    outbox.put(READY)
    count = 0
    while inbox.get() is not None:
        count += 1
    outbox.put(count)


def interp_length(inbox: Any, outbox: Any) -> None:
    """Answers the length of every payload (polling without sleeping)."""
    outbox.put(READY)
    while (data := get_spinning(inbox)) is not None:
        outbox.put(len(data))


# ---- executors ---------------------------------------------------------------------


def identity(x: Any) -> Any:
    """A task that does nothing: its cost is the executor's."""
    return x


def length(data: Any) -> int:
    """A task that answers the length of its argument."""
    return len(data)


# ---- subactor's Python package: actor classes ----------------------------------------


class ActorEcho:
    """Answers every message with itself."""

    def receive(self, msg: Any) -> Any:
        return msg


class ActorCollect:
    """Answers the pid of its process; on ``"collect"`` first runs a full
    ``gc.collect()`` (as pipe_collect does)."""

    def receive(self, msg: Any) -> int:
        import gc
        import os

        if msg == COLLECT:
            gc.collect()
        return os.getpid()


class ActorCount:
    """Counts messages; answers ``None`` with the count so far."""

    def __init__(self) -> None:
        self.count = 0

    def receive(self, msg: Any) -> Any:
        if msg is None:
            return self.count
        self.count += 1
        return None


class ActorTouch:
    """Reads the first and last byte of what it receives, answers its length (as
    examples/python/bench.py's Touch, for buffers handed to process actors)."""

    def receive(self, data: Any) -> int:
        if len(data):
            data[0]
            data[-1]
        return len(data)


class ActorLength:
    """Answers the length of what it receives (touching none of its bytes)."""

    def receive(self, data: Any) -> int:
        return len(data)


class ActorAsyncSleep:
    """An asyncio actor: each message is a number of seconds to ``await asyncio.sleep``,
    answered with itself."""

    async def receive(self, seconds: float) -> float:
        import asyncio

        await asyncio.sleep(seconds)
        return seconds
