"""subactor: actors for Python, with real parallelism.

Every actor is a CPython interpreter with its own GIL (PEP 684, Python 3.12+) running
on its own thread, so actors run Python code on every core of one process: no process
per worker, no pickling of plain values.

::

    import subactor

    class Counter:
        def __init__(self, start):
            self.total = start

        def receive(self, n):
            self.total += n
            return self.total

    if __name__ == "__main__":
        with subactor.Runtime() as rt:
            counter = rt.spawn(Counter, 0, name="c")
            counter.tell(5)
            print(counter.ask(1, timeout=1.0))            # 6
            with rt.executor(max_workers=4) as ex:        # a concurrent.futures.Executor
                print(list(ex.map(pow, [2, 3], [10, 10])))
        # On its own, where a ProcessPoolExecutor was (same arguments):
        with subactor.Executor(max_workers=4) as ex:
            print(list(ex.map(pow, [2, 3], [10, 10])))

This package is the main interpreter's side. Inside an actor, ``import subactor``
gives the in-actor module instead (``self_ref``, ``spawn``, ``lookup``, ``send_after``,
``monitor``, ``alloc``; the same ``ActorRef``, ``Buffer``, ``Down`` and exceptions),
which the runtime installs in every actor's interpreter before any actor code runs.
"""

from __future__ import annotations

import sys as _sys
from typing import Any


def _interpreter_id(value: Any) -> int:
    """An interpreter's id, from ``get_current()``/``get_main()`` (a tuple on 3.13)."""
    return int(value[0] if isinstance(value, tuple) else value)


def _in_subinterpreter() -> bool:
    """Whether this code runs in an interpreter other than the main one."""
    try:
        import _interpreters as interpreters  # type: ignore[import-not-found,unused-ignore]  # 3.13+
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters  # type: ignore[import-not-found,no-redef,unused-ignore]  # 3.12
        except ImportError:
            return False
    return _interpreter_id(interpreters.get_current()) != _interpreter_id(interpreters.get_main())


if _in_subinterpreter():
    # Never reached in a subactor actor (the runtime installs its in-actor `subactor`
    # module before any actor code runs), only in interpreters made some other way:
    # the native extension cannot load there, so do not even try.
    raise ImportError(
        "subactor's main-interpreter API cannot be imported in a subinterpreter; inside a "
        "subactor actor, `import subactor` gives the in-actor module",
        name="subactor",
    )

# As multiprocessing does: objects pickled in actors whose classes come from the main
# script (loaded there as `__mp_main__`) unpickle here from `__main__`.
if "__main__" in _sys.modules:
    _sys.modules.setdefault("__mp_main__", _sys.modules["__main__"])

from . import _native  # noqa: E402
from ._errors import BrokenExecutor, IncompatibleExtension  # noqa: E402
from ._executor import Executor, _initializer_failed, _task_traceback  # noqa: E402
from ._native import (  # noqa: E402
    ActorError,
    ActorFailed,
    ActorRef,
    ActorStopped,
    AskTimeout,
    Buffer,
    BufferMut,
    ChildInfo,
    DeadLetter,
    DeadLetterSubscription,
    Down,
    Interrupted,
    Killed,
    MailboxFull,
    NoReply,
    PipelineOutput,
    RemoteError,
    RemoteTraceback,
    SelfAskError,
    Span,
    SpawnError,
    Supervisor,
    TimeLimitExceeded,
)
from ._pipeline import Pipeline, Stage  # noqa: E402
from ._ref import _resolve  # noqa: E402  (also attaches ActorRef's methods)
from ._runtime import ArenaStats, DeadLetters, Runtime  # noqa: E402
from ._supervision import ChildSpec, OnFailure, Restart, Strategy, SupervisorSpec  # noqa: E402

_native._register_hooks(IncompatibleExtension, BrokenExecutor, _resolve, _task_traceback, _initializer_failed)

__version__ = "0.1.0"

__all__ = [
    "ActorError",
    "ActorFailed",
    "ActorRef",
    "ActorStopped",
    "ArenaStats",
    "AskTimeout",
    "BrokenExecutor",
    "Buffer",
    "BufferMut",
    "ChildInfo",
    "ChildSpec",
    "DeadLetter",
    "DeadLetterSubscription",
    "DeadLetters",
    "Down",
    "Executor",
    "IncompatibleExtension",
    "Interrupted",
    "Killed",
    "MailboxFull",
    "NoReply",
    "OnFailure",
    "Pipeline",
    "PipelineOutput",
    "RemoteError",
    "RemoteTraceback",
    "Restart",
    "Runtime",
    "SelfAskError",
    "Span",
    "SpawnError",
    "Stage",
    "Strategy",
    "Supervisor",
    "SupervisorSpec",
    "TimeLimitExceeded",
    "__version__",
]
