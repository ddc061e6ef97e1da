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
