"""Exceptions of the main-interpreter API that actors never see.

Every other exception class (``ActorError`` and its subclasses, ``RemoteTraceback``) is
shared with actors: it comes from the runtime's bootstrap module, through ``_native``.
"""

from __future__ import annotations

import concurrent.futures

from ._native import ActorError, SpawnError

__all__ = ["BrokenExecutor", "IncompatibleExtension"]


class IncompatibleExtension(SpawnError):
    """An extension module refused the actor's own-GIL interpreter (numpy is one).

    ``module`` names it. Such modules work in the main interpreter; keep them out of
    actor code (an actor's module, and what it imports at the top level).
    """

    module: str

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message)
        self.module = module


class BrokenExecutor(ActorError, concurrent.futures.BrokenExecutor):
    """A worker of the executor stopped before it ran the task (the runtime was closed,
    or the worker was killed)."""


for _cls in (IncompatibleExtension, BrokenExecutor):
    _cls.__module__ = "subactor"
del _cls
