"""The executor's worker actor. Runs inside actor interpreters only.

The executor spawns this file's ``Worker`` by path (so the module is
``_subactor_worker`` there, whatever the package is called). A task message is
``(0, fn_ref, args, kwargs)`` for one call or ``(1, fn_ref, chunk, None)`` for a chunk
of calls (``Executor.map`` with ``chunksize``); ``fn_ref`` is a ``(module, qualname)``
pair or the callable itself (unpickled on arrival). The reply is ``(True, result)``, or
``(False, pickled_exception_or_None, type_name, message, traceback)`` when the task
raised: a raising task is a result, not a failure of the worker.
"""

import sys
from typing import Any

# Imports cost start-up time in every worker (pickle alone takes ~6 ms in a fresh
# interpreter): only what a task needs is imported, when it needs it.

_cache: dict[tuple[str, str], Any] = {}


def _resolve(ref: Any) -> Any:
    if type(ref) is not tuple:
        return ref
    fn = _cache.get(ref)
    if fn is None:
        module_name, qualname = ref
        # "__main__" is the main program, loaded on first use (see the host's bootstrap).
        obj = sys.modules.get(module_name)
        if obj is None:
            __import__(module_name)
            obj = sys.modules[module_name]
        for part in qualname.split("."):
            obj = getattr(obj, part)
        fn = _cache[ref] = obj
    return fn


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = getattr(kind, "__module__", None)
    return kind.__qualname__ if module in (None, "builtins") else f"{module}.{kind.__qualname__}"


def _failure(exc: BaseException) -> tuple[bool, bytes | None, str, str, str]:
    import pickle
    import traceback

    text = "".join(traceback.format_exception(exc))
    try:
        data: bytes | None = pickle.dumps(exc, 5)
    except Exception:
        data = None
    try:
        message = str(exc)
    except Exception:
        message = "<str() failed>"
    return (False, data, _type_name(exc), message, text)


class Worker:
    """Runs the functions it is sent."""

    def receive(self, msg: tuple[int, Any, Any, Any]) -> tuple[Any, ...]:
        kind, ref, payload, kwargs = msg
        try:
            fn = _resolve(ref)
            if kind == 0:
                return (True, fn(*payload, **kwargs) if kwargs else fn(*payload))
            return (True, [fn(*args) for args in payload])
        except Exception as exc:
            return _failure(exc)
