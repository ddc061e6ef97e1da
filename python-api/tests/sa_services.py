"""Actor classes for test_services.py (imported by actors from this file's folder)."""

from __future__ import annotations

import asyncio
from typing import Any

import subactor


class Sleepy:
    """An asyncio actor: sleeps as asked, counting how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.log: list[str] = []

    async def started(self) -> None:
        self.log.append("started")

    async def receive(self, msg: Any) -> Any:
        if msg == "log":
            return list(self.log)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(msg)
            return self.peak
        finally:
            self.running -= 1


class Tally:
    """A counter whose state survives restarts."""

    def __init__(self) -> None:
        self.total = 0

    def receive(self, msg: Any) -> Any:
        if msg == "crash":
            raise RuntimeError("crash")
        if msg == "checkpoint":
            return subactor.checkpoint()  # type: ignore[attr-defined]
        self.total += msg
        return self.total

    def snapshot(self) -> int:
        return self.total

    def restore(self, state: int) -> None:
        self.total = state


class TallyTwo(Tally):
    """Version 2: answers negative totals; takes the old state through upgrade()."""

    def receive(self, msg: Any) -> Any:
        return -int(super().receive(msg))

    def upgrade(self, old_state: int) -> None:
        self.total = old_state + 1000
