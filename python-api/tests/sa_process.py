"""Actor classes for the process-actor tests (test_process.py)."""

from __future__ import annotations

import os
from typing import Any

import subactor


class Numeric:
    """Computes with numpy, which cannot load in an own-GIL interpreter."""

    def receive(self, msg: Any) -> Any:
        import numpy as np

        if msg == "pid":
            return os.getpid()
        a = np.arange(msg, dtype=np.int64)
        return int((a * a).sum())


class Fragile:
    """Segfaults on "crash"; counts what it handled since it started."""

    def __init__(self) -> None:
        self.handled = 0

    def receive(self, msg: Any) -> Any:
        if msg == "crash":
            __import__("ctypes").string_at(0)
        if msg == "pid":
            return os.getpid()
        if isinstance(msg, int):
            bytearray(msg)
        self.handled += 1
        return self.handled


class Forwarder:
    """Asks the reference it is given, from wherever it runs."""

    def receive(self, msg: Any) -> Any:
        target, payload = msg
        me = subactor.self_ref()  # type: ignore[attr-defined]  # the in-actor module (subactor.pyi)
        return (me.placement, target.ask(payload, timeout=10.0))


class AtExit:
    """Registers an ``atexit`` callback that writes "ran" to ``path``."""

    def __init__(self, path: str) -> None:
        import atexit

        def write() -> None:
            with open(path, "w") as f:
                f.write(f"ran in {os.getpid()}")

        atexit.register(write)

    def receive(self, _msg: Any) -> int:
        return os.getpid()


class Collector:
    """Answers its process's private dirty memory (kB) before and after a full
    ``gc.collect()``, and how many objects the collector holds frozen."""

    def receive(self, _msg: Any) -> tuple[int, int, int]:
        import gc

        def private_dirty_kb() -> int:
            with open("/proc/self/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Private_Dirty:"):
                        return int(line.split()[1])
            raise RuntimeError("no Private_Dirty in /proc/self/smaps_rollup")

        before = private_dirty_kb()
        gc.collect()
        return before, private_dirty_kb(), gc.get_freeze_count()


class BufferHolder:
    """Reads, slices, holds and makes arena buffers in a process actor; answers an error
    it met as ``("error", type name, message)`` (the actor goes on)."""

    def __init__(self) -> None:
        self.held: list[memoryview] = []

    def receive(self, msg: Any) -> Any:
        try:
            return self.handle(msg)
        except Exception as error:  # noqa: BLE001 - the test reads what was raised
            return ("error", type(error).__name__, str(error))

    def handle(self, msg: Any) -> Any:
        kind = msg[0]
        if kind == "pid":
            return os.getpid()
        if kind == "hold":
            self.held.append(memoryview(msg[1]))
            return len(self.held)
        if kind == "drop":
            for view in self.held:
                view.release()
            self.held.clear()
            return 0
        if kind == "read":
            _, buf, key = msg
            part = buf[key]
            return part if isinstance(part, int) else bytes(part)
        if kind == "write":
            memoryview(msg[1])[0] = 1
            return "written"
        if kind == "alloc":
            _, size, head = msg
            draft = subactor.alloc(size)  # type: ignore[attr-defined]  # the in-actor module
            memoryview(draft)[: len(head)] = head
            return draft.freeze()
        if kind == "send":
            _, target, what = msg
            if what == "unfrozen":
                target.tell(subactor.alloc(8))  # type: ignore[attr-defined]
            elif what == "frozen away":
                draft = subactor.alloc(8)  # type: ignore[attr-defined]
                draft.freeze()
                target.tell(draft)
            return "sent"
        raise ValueError(kind)
