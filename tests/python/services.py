"""Actors for long-running services: asyncio actors, kept state, upgrades."""

import asyncio
import os
import time

import subactor


class EchoServer:
    """An asyncio actor that talks to a TCP echo server on loopback (the test's port)
    and runs its own echo server between messages."""

    def __init__(self, port):
        self.port = port
        self.events = []
        self.server = None

    async def started(self):
        self.events.append("started")
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader, writer):
        data = await reader.readline()
        writer.write(b"own:" + data)
        await writer.drain()
        writer.close()

    async def receive(self, msg):
        kind = msg[0]
        if kind == "echo":
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(msg[1].encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return line.decode().strip()
        if kind == "own_port":
            return self.server.sockets[0].getsockname()[1]
        if kind == "sleep":
            await asyncio.sleep(msg[1])
            return "slept"
        if kind == "sleep_report":
            # Sleeps, and records a cancellation, if any, for the next actor to read.
            try:
                await asyncio.sleep(msg[1])
            except asyncio.CancelledError:
                with open(msg[2], "w") as f:
                    f.write("cancelled")
                raise
            return "slept"
        if kind == "subprocess":
            proc = await asyncio.create_subprocess_exec(
                "echo", msg[1], stdout=asyncio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
            return out.decode().strip()
        if kind == "ask":
            return await msg[1].ask_async(msg[2], timeout=10.0)
        if kind == "tell":
            await msg[1].tell_async(msg[2])
            return "told"
        if kind == "events":
            return list(self.events)
        if kind == "pid":
            return os.getpid()
        if kind == "raise":
            raise ValueError(msg[1])
        raise ValueError(f"unknown message {msg!r}")

    async def stopped(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Stateful:
    """A counter whose state survives restarts: ("add", n) adds, ("crash",) raises
    after adding, ("checkpoint",) asks for a snapshot, "total" answers."""

    def __init__(self):
        self.total = 0
        self.seen = []
        self.restored = None

    def receive(self, msg):
        if msg == "total":
            return self.total
        if msg == "restored":
            return self.restored
        if msg == "pid":
            return os.getpid()
        kind = msg[0]
        if kind == "add":
            self.total += msg[1]
            self.seen.append(msg[1])
            return self.total
        if kind == "checkpoint":
            return subactor.checkpoint()
        if kind == "crash":
            self.total += 1000
            raise RuntimeError("crash after changing the state")
        if kind == "exit":
            os._exit(7)
        raise ValueError(f"unknown message {msg!r}")

    def snapshot(self):
        return {"total": self.total, "seen": list(self.seen)}

    def restore(self, state):
        self.total = state["total"]
        self.seen = list(state["seen"])
        self.restored = state["total"]


class SlowToStop:
    """Answers "ping" with its pid; ("raise",) fails the handler; its stopped hook takes
    1 s (so the actor is still ending, its name still held, after its failure is known)."""

    def receive(self, msg):
        if msg == "ping":
            return os.getpid()
        if msg == ("raise",):
            raise RuntimeError("asked to fail")
        raise ValueError(f"unknown message {msg!r}")

    def stopped(self):
        time.sleep(1.0)


class AsyncStateful(Stateful):
    """The same, with an async receive."""

    async def receive(self, msg):
        await asyncio.sleep(0)
        return Stateful.receive(self, msg)


class Concurrent:
    """An asyncio actor for max_concurrency: ("sleep", seconds) sleeps and answers the
    number of tasks running at once it has seen at most; ("mark", seconds, path) writes
    "cancelled" to path when cancelled."""

    def __init__(self):
        self.running = 0
        self.peak = 0

    async def receive(self, msg):
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if msg[0] == "sleep":
                await asyncio.sleep(msg[1])
                return self.peak
            if msg[0] == "mark":
                try:
                    await asyncio.sleep(msg[1])
                except asyncio.CancelledError:
                    with open(msg[2], "a") as f:
                        f.write("cancelled\n")
                    raise
                return "slept"
            if msg[0] == "peak":
                return self.peak
            if msg[0] == "ask":
                # ("ask", ref, m): awaits ref's answer to m while other tasks run.
                return await msg[1].ask_async(msg[2])
            if msg[0] == "pid":
                return os.getpid()
            if msg[0] == "fan_out":
                # ("fan_out", ref, n, m): n asks of m awaited at once; answers the
                # replies and the interpreter's thread count before and while they wait.
                import threading

                before = threading.active_count()
                asks = asyncio.gather(*(msg[1].ask_async(msg[3]) for _ in range(msg[2])))
                await asyncio.sleep(0.02)
                during = threading.active_count()
                return [list(await asks), before, during]
            if msg[0] == "abandon":
                # ("abandon", ref, slow_m, quick_m): an ask cancelled while it waits and
                # one past its timeout, then an ask that must get its own reply.
                task = asyncio.create_task(msg[1].ask_async(msg[2]))
                await asyncio.sleep(0.02)
                task.cancel()
                try:
                    await task
                    cancelled = False
                except asyncio.CancelledError:
                    cancelled = True
                try:
                    await msg[1].ask_async(msg[2], timeout=0.02)
                    timed_out = False
                except subactor.AskTimeout:
                    timed_out = True
                await asyncio.sleep(0.3)  # the abandoned replies come meanwhile
                return [cancelled, timed_out, await msg[1].ask_async(msg[3])]
            if msg[0] == "to_thread":
                # A thread of the loop's default executor (a ThreadPoolExecutor).
                return await asyncio.to_thread(sum, msg[1])
            if msg[0] == "block":
                # Blocks the event loop: cancellation cannot reach it.
                import time

                time.sleep(msg[1])
                return "blocked"
            raise ValueError(msg)
        finally:
            self.running -= 1


class ConcurrentStateful:
    """An asyncio actor handling several messages at once whose state survives
    restarts: ("add", n, seconds) adds n after sleeping, ("crash",) raises after
    changing the state, "total" answers."""

    def __init__(self):
        self.total = 0

    async def receive(self, msg):
        if msg == "total":
            return self.total
        if msg == "pid":
            return os.getpid()
        if msg[0] == "add":
            await asyncio.sleep(msg[2])
            self.total += msg[1]
            return self.total
        if msg[0] == "crash":
            self.total += 1000
            raise RuntimeError("crash after changing the state")
        raise ValueError(msg)

    def snapshot(self):
        return self.total

    def restore(self, state):
        self.total = state


class Blob:
    """A value kept across restarts, whatever its size: ("set", value) keeps it,
    "get" answers it."""

    def __init__(self):
        self.value = None

    def receive(self, msg):
        if msg == "get":
            return self.value
        if msg[0] == "set":
            self.value = msg[1]
            return len(msg[1]) if isinstance(msg[1], (bytes, str)) else None
        if msg[0] == "fraction":
            import fractions

            # Not a plain value: it travels (and is kept) pickled.
            self.value = fractions.Fraction(1, 3)
            return None
        raise ValueError(msg)

    def snapshot(self):
        return self.value

    def restore(self, state):
        self.value = state
