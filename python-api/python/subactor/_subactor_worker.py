"""The executor's worker actor. Runs inside actor interpreters only.

The executor spawns this file's ``Worker`` by path (so the module is
``_subactor_worker`` there, whatever the package is called). A task message is
``(0, fn_ref, args, kwargs)`` for one call or ``(1, fn_ref, chunk, None)`` for a chunk
of calls (``Executor.map`` with ``chunksize``); ``fn_ref`` is a ``(module, qualname)``
pair or the callable itself (unpickled on arrival). The reply is ``(True, result)``, or
``(False, pickled_exception_or_None, type_name, message, traceback)`` when the task
raised: a raising task is a result, not a failure of the worker.

When what raised is a module that refuses to load in this interpreter (an own-GIL
subinterpreter: numpy, for one), the failure reply has a sixth item,
``(module, stage, done)``: the refusing module, where it happened (``"init"``: the
initializer; ``"resolve"``: finding the function, i.e. importing its module; ``"call"``:
the function itself) and, for a chunk, the results of the calls that completed before the
refusal. An executor placed ``"auto"`` sends such a task to a process worker instead, from
the first call that did not complete (the ones in ``done`` are not run again); one placed
``"interpreter"`` fails it with the exception, which names the module.

A worker made with an initializer (``Worker(initializer_ref, initargs, authkey)``) calls it
before its first task; if it raises, that task does not run and the reply is
``(None, pickled_exception_or_None, type_name, message, traceback)``: the executor is
broken (it runs no task any more), and this worker answers every later task with the same
reply (a task it is given anyway never runs without the initializer). ``authkey``, when
given, is the main program's ``multiprocessing`` authentication key: ``multiprocessing``,
once imported here, gets it, so that manager proxies passed to tasks connect to the main
program's managers (as they do in the child processes of a process pool).
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


#: What CPython (and the host's import guard) says of a module that refuses to load in an
#: own-GIL subinterpreter.
_REFUSAL = "does not support loading in subinterpreters"


def _refusing_module(exc: BaseException) -> str | None:
    """The module named by a refusal to load in this interpreter, if ``exc`` is one or was
    raised while handling one (the host's ``refusing_module``, on the worker's side)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError):
            try:
                text = str(current)
            except Exception:
                text = ""
            if _REFUSAL in text:
                if text.startswith("module "):
                    return text.split()[1]
                return current.name or "an extension module"
        current = current.__cause__ or current.__context__
    return None


def _failure(exc: BaseException, stage: str = "call", done: list[Any] | None = None) -> tuple[Any, ...]:
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
    refusing = _refusing_module(exc)
    if refusing is not None:
        return (False, data, _type_name(exc), message, text, (refusing, stage, done or []))
    return (False, data, _type_name(exc), message, text)


class _AuthkeyOnImport:
    """A meta path finder that gives ``multiprocessing.process``, when it is imported,
    the main program's authkey (then leaves ``sys.meta_path``). Importing
    ``multiprocessing`` costs ~11 ms, so a worker does not do it unless a task needs it."""

    def __init__(self, authkey: bytes) -> None:
        self.authkey = authkey

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "multiprocessing.process":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None:
            return spec
        run = loader.exec_module
        authkey = self.authkey

        def exec_module(module: Any) -> None:
            run(module)
            module.current_process().authkey = authkey

        loader.exec_module = exec_module
        return spec


def _share_authkey(authkey: bytes) -> None:
    module = sys.modules.get("multiprocessing.process")
    if module is not None:
        module.current_process().authkey = authkey
    else:
        sys.meta_path.insert(0, _AuthkeyOnImport(authkey))


class Worker:
    """Runs the functions it is sent (after the initializer, if it has one)."""

    def __init__(self, initializer: Any = None, initargs: tuple[Any, ...] = (), authkey: bytes | None = None) -> None:
        self._init: tuple[Any, tuple[Any, ...]] | None = (
            (initializer, initargs) if initializer is not None else None
        )
        #: The reply of an initializer that raised, given to every later task.
        self._init_failed: tuple[Any, ...] | None = None
        if authkey is not None:
            _share_authkey(authkey)

    def receive(self, msg: tuple[int, Any, Any, Any]) -> tuple[Any, ...]:
        if self._init is not None:
            ref, initargs = self._init
            self._init = None
            try:
                _resolve(ref)(*initargs)
            except Exception as exc:
                self._init_failed = (None, *_failure(exc, "init")[1:])
        if self._init_failed is not None:
            return self._init_failed
        kind, ref, payload, kwargs = msg
        try:
            fn = _resolve(ref)
        except Exception as exc:
            return _failure(exc, "resolve")
        if kind == 0:
            try:
                return (True, fn(*payload, **kwargs) if kwargs else fn(*payload))
            except Exception as exc:
                return _failure(exc)
        done: list[Any] = []
        try:
            for args in payload:
                done.append(fn(*args))
        except Exception as exc:
            return _failure(exc, "call", done)
        return (True, done)
