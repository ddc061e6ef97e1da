"""Helpers the subactor host runs inside every actor interpreter.

The host executes this file once per interpreter, as the module ``_subactor_host``, and
calls its functions through the C API. It is not an API for actor code.
"""

import _thread
import sys

_LATE_LOADED = False
# Held while bootstrap_late.py runs: threads of the actor's interpreter (its own, an
# asyncio actor's event loop) may need it at once, and running it twice would make a
# second set of its classes beside instances of the first.
_LATE_LOCK = _thread.allocate_lock()


def _late():
    """Runs bootstrap_late.py, the parts of the bootstrap an actor may never need, in
    this module (once). ``_bootstrap_late`` is the host's: it gives that file's code,
    compiled once per process."""
    global _LATE_LOADED
    if not _LATE_LOADED:
        with _LATE_LOCK:
            if not _LATE_LOADED:
                exec(_bootstrap_late(), globals())
                _LATE_LOADED = True


def __getattr__(name):
    """A name of bootstrap_late.py, or one of the exception classes ``_errors`` makes,
    which the host looks up: made on first use."""
    if name in _LAZY_ERRORS:
        _errors()
    else:
        _late()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


_SUBINTERPRETER_REFUSAL = "does not support loading in subinterpreters"

# C accelerators that corrupt memory in own-GIL subinterpreters of these CPython
# versions (measured here; upstream: python/cpython#136423 for _datetime). Refusing
# them makes the standard library fall back to its pure-Python implementations
# (_pydatetime, _pydecimal, zoneinfo._zoneinfo, asyncio's Python tasks and futures,
# hashlib's built-in hashes), which are correct in every interpreter; ssl has no
# fallback, so on 3.12 it is an ImportError in actors.
_UNSAFE_ACCELERATORS = {
    (3, 12): frozenset({"_datetime", "_zoneinfo", "_decimal", "_asyncio", "_hashlib", "_ssl"}),
    (3, 13): frozenset({"_datetime", "_zoneinfo"}),
}


# Packages whose C core uses single-phase initialisation and breaks the process when it
# runs in an own-GIL subinterpreter. CPython calls a single-phase module's init function
# inside the importing interpreter and only then refuses the module
# (Python/importdl.c, finish_single_phase_init), so by the time the ImportError is
# raised, the init has left objects of this interpreter in the extension's C statics:
# importing numpy in an actor aborted the process here ("free(): invalid pointer"). They
# are refused before any of their code runs.
_SINGLE_PHASE_PACKAGES = {
    "numpy": "its C core uses single-phase initialisation, which CPython runs inside the "
    "subinterpreter before refusing it (numpy/numpy#24755)",
}


class _ImportGuard:
    """A meta-path finder that refuses, before they load, the modules that cannot load
    safely in this interpreter: the version's unsafe accelerators, and the packages of
    ``_SINGLE_PHASE_PACKAGES``."""

    def __init__(self, accelerators):
        self.accelerators = accelerators

    def find_spec(self, name, path=None, target=None):
        if name in self.accelerators:
            raise ImportError(
                f"module {name} {_SUBINTERPRETER_REFUSAL} safely on CPython "
                f"{sys.version_info.major}.{sys.version_info.minor} (subactor uses the "
                "pure-Python implementation instead)",
                name=name,
            )
        why = _SINGLE_PHASE_PACKAGES.get(name)
        if why is not None:
            raise ImportError(
                f"module {name} {_SUBINTERPRETER_REFUSAL} with their own GIL: {why}; "
                "import it in the main interpreter only",
                name=name,
            )
        return None


# ---- the exceptions of the in-actor module `subactor` --------------------------------

# Classes take ~10 µs each to make in a new interpreter: only the three the interrupter
# needs (it plants them from another thread, where no class may be made) are made with
# the module; the others, and ``Down``, on first use (``_errors``, through the module's
# ``__getattr__``, and ``subactor``'s, see ``install``). Each stays one object per
# interpreter, printed and pickled as ``subactor.<Name>``.


class Interrupted(BaseException):
    """Raised inside a handler that is being interrupted.

    It derives from ``BaseException`` so that ``except Exception`` lets it through: a
    handler that swallows it cannot be interrupted.
    """


class Killed(Interrupted):
    """The actor was killed while this handler ran."""


class TimeLimitExceeded(Interrupted):
    """The handler ran past its actor's time limit."""


for _exception in (Interrupted, Killed, TimeLimitExceeded):
    # They are used as ``subactor.<Name>``: that is how they print and pickle.
    _exception.__module__ = "subactor"
del _exception

#: The classes ``_errors`` makes, in the order ``subactor`` lists them.
_LAZY_ERRORS = (
    "ActorError",
    "ActorStopped",
    "MailboxFull",
    "AskTimeout",
    "NoReply",
    "SelfAskError",
    "SpawnError",
    "RemoteError",
    "RemoteTraceback",
    "ActorFailed",
    "Down",
)

_ERRORS_MADE = False
# Held while ``_errors`` makes the classes: two threads of the interpreter may need
# them at once, and a second set would not be the classes of the first's instances.
_ERRORS_LOCK = _thread.allocate_lock()


def _errors():
    """Makes this interpreter's exception classes of ``_LAZY_ERRORS`` (and ``Down``)
    in this module, once."""
    global _ERRORS_MADE
    if _ERRORS_MADE:
        return
    with _ERRORS_LOCK:
        if not _ERRORS_MADE:
            _make_errors()
            _ERRORS_MADE = True


def _make_errors():
    global ActorError, ActorStopped, MailboxFull, AskTimeout, NoReply, SelfAskError
    global SpawnError, RemoteError, RemoteTraceback, ActorFailed, Down

    class ActorError(Exception):
        """Base class of the errors subactor raises in actor code."""

    class ActorStopped(ActorError):
        """The actor is stopping or has stopped; the message was not delivered."""

    class MailboxFull(ActorError):
        """The actor's mailbox is full (a tell that cannot wait, or an ask that timed out
        waiting for room); the message was not delivered."""

    class AskTimeout(ActorError, TimeoutError):
        """No reply within the timeout. The message was delivered and may still be handled."""

    class NoReply(ActorError):
        """The actor stopped before replying."""

    class SelfAskError(ActorError):
        """An actor asked itself, which could never be answered."""

    class SpawnError(ActorError):
        """A child actor could not be started."""

    class RemoteError(ActorError):
        """The other actor's handler raised.

        ``type_name``, ``remote_message`` and ``remote_traceback`` describe the exception as
        it was raised in the other actor's interpreter.
        """

        def __init__(self, type_name, message, traceback):
            super().__init__(f"{type_name}: {message}" if message else type_name)
            self.type_name = type_name
            self.remote_message = message
            self.remote_traceback = traceback

        def __str__(self):
            text = super().__str__()
            # Chained as the cause (as the main interpreter's API does), the traceback is
            # printed there already.
            if self.remote_traceback and not isinstance(self.__cause__, RemoteTraceback):
                text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
            return text

    class RemoteTraceback(Exception):
        """The traceback of an exception raised in another interpreter, as text.

        subactor's main-interpreter API chains it as the ``__cause__`` of the exception it
        raises for a failure in an actor, so that Python prints the actor's traceback first
        (as ``concurrent.futures.ProcessPoolExecutor`` does).
        """

        def __init__(self, traceback):
            super().__init__(traceback)
            self.traceback = traceback

        def __str__(self):
            return '\n"""\n' + self.traceback.rstrip() + '\n"""'

    class ActorFailed(ActorError):
        """The other actor failed while it handled the message: it panicked (a Rust actor),
        was killed, or its handler ran past its time limit.

        ``kind`` is ``"panicked"``, ``"killed"``, ``"time_limit"`` or ``"died"`` (a
        process actor's process died: the message says how).
        """

        def __init__(self, kind, message):
            super().__init__(message)
            self.kind = kind

    class Down:
        """A monitored actor has stopped for good (see ``subactor.monitor``).

        ``id`` and ``name`` identify the actor (compare ``id`` with ``ActorRef.id``);
        ``kind`` is ``"normal"``, ``"killed"``, ``"start_failed"``, ``"panicked"`` or
        ``"failed"``; ``detail`` says more for the last three.
        """

        __slots__ = ("id", "name", "kind", "detail")

        def __init__(self, id, name, kind, detail=None):
            for slot, value in zip(self.__slots__, (id, name, kind, detail)):
                object.__setattr__(self, slot, value)

        def __setattr__(self, name, value):
            raise AttributeError("Down is immutable")

        @property
        def abnormal(self):
            """Whether the actor ended any other way than a graceful stop."""
            return self.kind != "normal"

        @property
        def reason(self):
            """Why the actor stopped, in words."""
            return f"{self.kind}: {self.detail}" if self.detail else self.kind

        def __eq__(self, other):
            if type(other) is not Down:
                return NotImplemented
            return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

        def __hash__(self):
            return hash((self.id, self.kind))

        def __repr__(self):
            who = f"{self.id} {self.name!r}" if self.name is not None else f"{self.id}"
            return f"<Down {who} {self.reason}>"

    for name in _LAZY_ERRORS:
        # They are used as ``subactor.<Name>``: that is how they print and pickle.
        globals()[name].__module__ = "subactor"


#: Those of them the in-actor module ``subactor`` has (not ``RemoteTraceback``).
_SUBACTOR_ERRORS = tuple(name for name in _LAZY_ERRORS if name != "RemoteTraceback")


def subactor_getattr(name):
    """``subactor.<name>`` for the names made on first use (the module's
    ``__getattr__``)."""
    if name in _SUBACTOR_ERRORS:
        _errors()
        return globals()[name]
    raise AttributeError(f"module 'subactor' has no attribute {name!r}")


def down_parts(obj):
    """(id, name, kind, detail) of a ``Down``."""
    return (obj.id, obj.name, obj.kind, obj.detail)


def module_spec(name):
    """The spec of a module the host builds (the in-actor ``subactor``).

    ``importlib.machinery.ModuleSpec`` is the import system's own class, which the
    frozen ``_frozen_importlib`` always has: taken from there, a new interpreter does
    not import the ``importlib`` package (150-350 µs) for it."""
    return sys.modules["_frozen_importlib"].ModuleSpec(name, None, origin="built by subactor-host")


def install(name, module):
    """Makes ``import <name>`` give ``module`` in this interpreter, with the functions
    of it written in Python, and sends this actor's ``logging`` records to the
    runtime's ``tracing`` (see ``_LoggingHook``)."""
    module.checkpoint = checkpoint
    # The exception classes and Down are made on first use (see ``_errors``); the
    # module lists them as if they were there all along.
    module.__getattr__ = subactor_getattr
    public = {key for key in vars(module) if not key.startswith("_")} | set(_SUBACTOR_ERRORS)
    module.__all__ = sorted(public)
    module.__dir__ = lambda: sorted(set(vars(module)) | public)
    sys.modules[name] = module
    if "logging" in sys.modules:
        _add_tracing_handler(sys.modules["logging"], module)
    elif not any(isinstance(finder, _LoggingHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LoggingHook(module))


def _add_tracing_handler(logging, module):
    """Puts a handler on ``logging``'s root logger that passes each record, formatted
    (message and exception), to ``module._log``: a ``tracing`` event of target
    ``subactor::python`` with the actor's id and name. The levels are ``logging``'s
    (the root logger's default is WARNING; an actor lowers it as usual). Where the
    process has no ``tracing`` subscriber, records go where Python would send them
    without a handler: ``logging.lastResort`` (stderr, WARNING and up)."""
    if any(getattr(h, "_subactor_tracing", False) for h in logging.root.handlers):
        return
    log = module._log

    class TracingHandler(logging.Handler):
        _subactor_tracing = True

        def emit(self, record):
            try:
                if not log(record.levelno, record.name, self.format(record)):
                    last = logging.lastResort
                    if last is not None and record.levelno >= last.level:
                        last.handle(record)
            except Exception:
                self.handleError(record)

    logging.root.addHandler(TracingHandler())


class _LoggingHook:
    """Adds the tracing handler when the actor first imports ``logging``, so that an
    actor that never logs does not pay for importing it."""

    def __init__(self, module):
        self.module = module

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        import importlib.machinery

        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader, module = spec.loader, self.module

        class Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, logging):
                loader.exec_module(logging)
                _add_tracing_handler(logging, module)

        spec.loader = Loader()
        return spec


def setup(paths, main_path=None, main_name=None, guard=True):
    """Puts the runtime's folders first on ``sys.path`` and, in a subinterpreter
    (``guard``), installs the import guard.

    ``main_path`` (a script) or ``main_name`` (a module run with ``python -m``) is the
    main program of the process that drives the runtime from Python: see
    ``_LazyMain``.
    """
    global _IN_ACTOR
    _IN_ACTOR = True
    for path in reversed(paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    if guard:
        sys.meta_path.insert(0, _ImportGuard(_UNSAFE_ACCELERATORS.get(sys.version_info[:2], frozenset())))
        _use_code_cache()
        _settle_startup()
    if main_path is not None or main_name is not None:
        sys.modules["__main__"] = _lazy_main(main_path, main_name)
        # A process actor's template is a Python process of its own, whose package
        # import aliased its own main (``python -c``) as ``__mp_main__``: not the
        # program's, which is loaded under that name on first use.
        sys.modules.pop(_MAIN_NAME, None)


#: ``_settle_startup`` froze this interpreter's start-up objects (``teardown`` unfreezes).
_FROZE = False


def _settle_startup():
    """In a subinterpreter the host made (which created it with cyclic collection off):
    moves every object that exists by now (the modules ``site`` loaded, this module) to
    the collector's permanent generation and turns collection on. They live as long as
    the interpreter, so no collection needs to look at them: not the young one that the
    bootstrap's loading would have set off (~0.25 ms of a spawn), nor any full one later.
    The actor's own module and instance are collected as usual. ``teardown`` unfreezes
    them, so that the interpreter's final collections still see everything."""
    global _FROZE
    import gc

    gc.freeze()
    _FROZE = True
    gc.enable()


# ---- compiled source, shared by the process's interpreters ----------------------------

#: The source loader that consults the process's code cache, once ``setup`` made it.
_SOURCE_LOADER = None


def _use_code_cache():
    """Makes this interpreter's imports of Python source files compile through the
    process's code cache (``_code_cache_get``/``_code_cache_put``, put in this module by
    the host; see ``ffi/codecache.rs``): the first interpreter that imports a source
    compiles it, the next ones load the code the first one compiled. It matters where
    no ``.pyc`` is read (``PYTHONDONTWRITEBYTECODE``, read-only folders): there, every
    spawn compiled its actor's module (~1 ms for a small one).

    The standard path hook for folders is replaced by the same hook whose source
    loader is ``SourceFileLoader`` with a cached ``source_to_code``: everything else
    (``.pyc`` files read and written, extension modules, the loader's other methods)
    is unchanged. Folders this interpreter looked into before (at its start) keep the
    standard loader. Where the hook is not the standard one (changed by ``site``),
    nothing is replaced."""
    global _SOURCE_LOADER
    external = sys.modules["_frozen_importlib_external"]
    supported = getattr(external, "_get_supported_file_loaders", None)
    hooks = sys.path_hooks
    standard = "FileFinder.path_hook.<locals>.path_hook_for_FileFinder"
    at = next((i for i, hook in enumerate(hooks) if getattr(hook, "__qualname__", None) == standard), None)
    if supported is None or at is None:
        return
    get, put = _code_cache_get, _code_cache_put

    class _CachedSourceFileLoader(external.SourceFileLoader):
        def source_to_code(self, data, path, *more, **options):
            # Only the call get_code makes in 3.12 and 3.13 (default flags) is cached;
            # any other (an optimisation level, arguments of later versions) compiles.
            if more or options or type(data) is not bytes or type(path) is not str:
                return super().source_to_code(data, path, *more, **options)
            code = get(path, data)
            if code is None:
                code = super().source_to_code(data, path)
                put(path, data, code)
            return code

    loaders = [
        (_CachedSourceFileLoader if loader is external.SourceFileLoader else loader, suffixes)
        for loader, suffixes in supported()
    ]
    hooks[at] = external.FileFinder.path_hook(*loaders)
    _SOURCE_LOADER = _CachedSourceFileLoader


# ---- pickling: by reference when the receiver can import it, by value otherwise ------

#: Whether this interpreter is an actor's (``setup`` ran), not the main one.
_IN_ACTOR = False


#: ``(the __main__ module, main_importable() for it)``: asked on every pickling, it
#: only changes when ``__main__`` is replaced.
_MAIN_IMPORTABLE = (None, False)


def main_importable():
    """Whether another interpreter of this process can import what this one's
    ``__main__`` defines: the main program is a script or a module run with ``-m``
    (actors load it as ``__mp_main__``), not an interactive session, ``python -c`` or a
    notebook's kernel."""
    global _MAIN_IMPORTABLE
    main = sys.modules.get("__main__")
    known, importable = _MAIN_IMPORTABLE
    if known is main and main is not None:
        return importable
    importable = _main_importable(main)
    _MAIN_IMPORTABLE = (main, importable)
    return importable


def _main_importable(main):
    if _LazyMain is not None and isinstance(main, _LazyMain):
        path, name = main._subactor_main
        return path is not None or name is not None
    if _IN_ACTOR and main is not None and main is sys.modules.get(_MAIN_NAME):
        return True  # an actor that has loaded the main program
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name not in ("__main__", _MAIN_NAME):
        return True
    path = getattr(main, "__file__", None)
    if not isinstance(path, str):
        return False
    import os

    return os.path.isfile(path)


def reference_of(obj):
    """``(module, qualified name)`` under which every interpreter of this process can
    import ``obj`` (a class or a function), or None: defined in an interactive main
    program, inside a function (``<locals>``), as a lambda, or not found under its name.
    What has no reference travels by value (``dumps``)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    holder = sys.modules.get(module)
    if module in ("__main__", _MAIN_NAME):
        if not main_importable():
            return None
        if _LazyMain is not None and isinstance(holder, _LazyMain):
            return (module, qualname)  # found once the main program loads
    if holder is None:
        return None
    found = holder
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module, qualname) if found is obj else None


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


_BY_VALUE_PICKLER = None


def _by_value_pickler():
    """A ``pickle.Pickler`` that writes classes and functions without a reference
    (``reference_of``) by value, with cloudpickle, and everything else as pickle does."""
    global _BY_VALUE_PICKLER
    if _BY_VALUE_PICKLER is None:
        import pickle
        import types

        class ByValuePickler(pickle.Pickler):
            def __init__(self, file, protocol, cloudpickle):
                super().__init__(file, protocol)
                self._protocol = protocol
                self._cloudpickle = cloudpickle

            def reducer_override(self, obj):
                if isinstance(obj, (type, types.FunctionType)) and reference_of(obj) is None:
                    if self._cloudpickle is None:
                        raise pickle.PicklingError(
                            f"{getattr(obj, '__qualname__', obj)!s} cannot be imported by other "
                            "interpreters (it is defined in an interactive session, a notebook or a "
                            "function), and cloudpickle, which sends it by value, is not installed"
                        )
                    # A payload of its own, which plain pickle.loads reads (cloudpickle
                    # must be importable where it is read).
                    return (pickle.loads, (self._cloudpickle.dumps(obj, protocol=self._protocol),))
                return NotImplemented

        _BY_VALUE_PICKLER = ByValuePickler
    return _BY_VALUE_PICKLER


_PICKLE_DUMPS = None


def dumps(obj, protocol):
    """``pickle.dumps``, except that classes and functions another interpreter could not
    import by reference (``reference_of``) travel by value, with cloudpickle: what a
    REPL, ``python -c`` or a notebook defines, what a function defines, lambdas.
    Everything importable still travels by reference."""
    global _PICKLE_DUMPS
    if _PICKLE_DUMPS is None:
        import pickle

        _PICKLE_DUMPS = pickle.dumps
    first = None
    if _IN_ACTOR or main_importable():
        # Here a reference that the receiver cannot resolve fails to pickle already (the
        # name is not found under it), so plain pickle is right whenever it succeeds.
        try:
            return _PICKLE_DUMPS(obj, protocol)
        except Exception as error:
            first = error
    import pickle

    cloudpickle = _cloudpickle()
    if cloudpickle is None and first is not None:
        raise first
    import io

    buffer = io.BytesIO()
    try:
        _by_value_pickler()(buffer, protocol, cloudpickle).dump(obj)
    except Exception:
        if first is not None:
            raise first from None
        raise
    return buffer.getvalue()


# ---- the main program's module ------------------------------------------------------

_MAIN_NAME = "__mp_main__"


def _lazy_main(path, name):
    """A ``_LazyMain`` placeholder for the main program at ``path`` or of module
    ``name``. The class is made on first use: an actor of a runtime driven from Rust
    never needs it, and a class takes ~10 µs to make in a new interpreter."""
    global _LazyMain
    if _LazyMain is None:
        _LazyMain = _make_lazy_main()
    return _LazyMain(path, name)


#: The class of the ``__main__`` placeholder, once ``_lazy_main`` made it.
_LazyMain = None


def _make_lazy_main():
    class _LazyMain(type(sys)):
        """Stands for ``__main__`` in an actor of a runtime driven from a Python program.

        Classes and functions that program defines in its main script have ``__module__``
        ``"__main__"``, and objects of them pickle as ``__main__.<name>``. The first time
        such a name is looked up here, the main program is loaded as the module
        ``__mp_main__`` (so its ``if __name__ == "__main__":`` block does not run) and
        replaces this placeholder as ``sys.modules["__main__"]``, as multiprocessing's
        spawn start method does. Actors that never need it never load it.
        """

        def __init__(self, path, name):
            super().__init__("__main__")
            object.__setattr__(self, "_subactor_main", (path, name))

        def __getattr__(self, attr):
            if attr.startswith("__") and attr.endswith("__"):
                raise AttributeError(attr)
            return getattr(load_main(), attr)

    return _LazyMain


def load_main():
    """The main program's module, loaded as ``__mp_main__`` on first use."""
    loaded = sys.modules.get(_MAIN_NAME)
    if loaded is not None:
        return loaded
    placeholder = sys.modules.get("__main__")
    path, name = getattr(placeholder, "_subactor_main", (None, None))
    if path is None and name is None:
        raise ImportError(
            "the main program has no file to load (an interactive session or python -c): "
            "define actor classes and task functions in a module instead",
            name="__main__",
        )
    import importlib.util

    if path is not None:
        spec = importlib.util.spec_from_file_location(_MAIN_NAME, path)
    else:
        spec = importlib.util.find_spec(name)
    code = None
    if spec is not None and spec.loader is not None and hasattr(spec.loader, "get_code"):
        code = spec.loader.get_code(spec.name)
    if code is None:
        raise ImportError(f"cannot load the main program ({path or name})", name="__main__")
    # As runpy runs a main program: the module's own code, under another name (a
    # module run with -m keeps its spec, hence its package for relative imports).
    module = importlib.util.module_from_spec(spec)
    module.__name__ = _MAIN_NAME
    sys.modules[_MAIN_NAME] = module
    sys.modules["__main__"] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(_MAIN_NAME, None)
        sys.modules["__main__"] = placeholder
        raise
    return module


def teardown():
    """Runs just before the interpreter ends, while module globals are intact.

    Ends the actor's shell if it still runs.

    ``threading`` (3.13) tracks threads it did not start, such as the actor's, with an
    object whose ``__del__`` needs the module's globals; it would otherwise be collected
    after they are cleared and print an ignored exception.
    """
    close_shell()
    if _FROZE:
        import gc

        gc.unfreeze()
    threading = sys.modules.get("threading")
    local = getattr(threading, "_thread_local_info", None)
    if local is not None and hasattr(local, "_track_dummy_thread_ref"):
        del local._track_dummy_thread_ref


def load_module(target):
    """Imports ``target``: a dotted module name, or the path of a ``.py`` file.

    ``"__main__"`` is the main program of the Python process that drives the runtime,
    loaded as ``__mp_main__`` (see ``_LazyMain``).
    """
    import os

    if target in ("__main__", _MAIN_NAME):
        return load_main()

    if target.endswith(".py") or os.sep in target or (os.altsep and os.altsep in target):
        import importlib.util

        path = os.path.abspath(target)
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no Python file at {path!r}")
        cached = sys.modules.get(name)
        if cached is not None and getattr(cached, "__file__", None) == path:
            # Loaded already (an actor restarted in the interpreter it kept).
            return cached
        loader = _SOURCE_LOADER(name, path) if _SOURCE_LOADER is not None and path.endswith(".py") else None
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load a module from {path!r}", path=path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    # What importlib.import_module does for an absolute name, without importing the
    # importlib package (150-350 µs in a new interpreter) for it.
    __import__(target)
    module = sys.modules.get(target)
    if module is None:  # it took itself out of sys.modules: as import_module would see
        import importlib

        module = importlib.import_module(target)
    return module


def get_class(module, name):
    """The callable ``name`` of ``module``; a dotted name (a qualified name such as
    ``"Outer.Inner"``) is looked up attribute by attribute."""
    cls = module
    try:
        for part in name.split("."):
            cls = getattr(cls, part)
    except AttributeError:
        where = getattr(module, "__file__", None) or module.__name__
        raise AttributeError(f"module {module.__name__!r} ({where}) has no attribute {name!r}") from None
    if not callable(cls):
        raise TypeError(f"{module.__name__}.{name} is a {type(cls).__name__}, not a class")
    return cls


def receive_of(instance):
    """The bound ``receive`` method of an actor instance, or None."""
    receive = getattr(instance, "receive", None)
    return receive if callable(receive) else None


# ---- the actor's shell: hooks, asyncio actors, snapshots -----------------------------

# The shell itself (``_Shell``), and what only asyncio actors use, is in
# bootstrap_late.py (see ``_late``): a plain actor never loads it.

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect

_shell = None  # the shell of this interpreter's actor, if it needs one
_instance = None  # this interpreter's actor instance


def _is_async(func):
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


def prepare(instance, snapshot_every, state, has_state, upgrading, max_concurrency=1, time_limit=None):
    """Makes a new actor instance ready for its first message and returns the callable
    that handles one: restores ``state`` (``upgrade(old_state)`` when the actor is being
    upgraded and defines it, else ``restore(state)``), starts the event loop of an
    asyncio actor, and runs ``started``.

    ``snapshot_every``: None when the actor keeps no snapshots, 0 to snapshot only on
    ``subactor.checkpoint()``, N to snapshot after every N messages. With
    ``max_concurrency`` above 1 the host begins messages with ``begin`` instead, and
    ``time_limit`` (seconds) applies to each.
    """
    global _shell
    receive = receive_of(instance)
    if receive is None:
        return None
    if max_concurrency > 1 and not _is_async(receive):
        raise TypeError(
            f"max_concurrency={max_concurrency} needs an asyncio actor: "
            f"{type_name(instance)}.receive is not an async def"
        )
    if has_state:
        hook = getattr(instance, "upgrade", None) if upgrading else None
        if not callable(hook):
            hook = getattr(instance, "restore", None)
        if not callable(hook):
            raise TypeError(
                f"{type_name(instance)} has no restore(self, state) method, but a state was kept "
                "for its actor"
            )
        hook(state)
    started = getattr(instance, "started", None)
    plain = (
        snapshot_every is None
        and not _is_async(receive)
        and not callable(started)
        and not callable(getattr(instance, "stopped", None))
    )
    global _instance
    _instance = instance
    if plain:
        return receive
    _late()
    shell = _Shell(instance, snapshot_every, None)
    shell.time_limit = time_limit
    try:
        if callable(started):
            if _is_async(started):
                shell._run(started())
            else:
                started()
    except BaseException:
        shell.close()
        raise
    _shell = shell
    return shell.receive


def cancel_all(kill):
    """Cancels every message in hand (a kill, when ``kill``)."""
    shell = _shell
    if shell is not None and shell.loop is not None:
        shell.loop.call_soon_threadsafe(shell.cancel_tasks, 2)


def close_shell():
    """Ends the actor's shell, if it has one (its ``stopped`` hook, its event loop)."""
    global _instance
    _instance = None
    shell = _shell
    if shell is not None:
        shell.close()


def take_snapshot():
    """The due snapshot of this interpreter's actor: ``(state,)``, or None."""
    shell = _shell
    return None if shell is None else shell.take_snapshot()


def snapshot_now():
    """A snapshot of this interpreter's actor taken now (before an upgrade):
    ``(state,)``, or None when its class has no ``snapshot`` method."""
    shell = _shell
    instance = _instance if shell is None else shell.instance
    snapshot = getattr(instance, "snapshot", None)
    return (snapshot(),) if callable(snapshot) else None


def checkpoint():
    """Asks for a snapshot of this actor's state as soon as the running handler returns
    (for an actor that keeps snapshots; elsewhere it does nothing)."""
    shell = _shell
    if shell is not None:
        shell.checkpoint_requested = True
        return shell.snapshots
    return False


# The replies of asyncio asks, per event loop (bootstrap_late.py's ``_replies_for``).
_REPLIES = None


def type_name(obj):
    """The qualified name of an object's type, as users write it."""
    kind = type(obj)
    module = getattr(kind, "__module__", None)
    if module in (None, "builtins"):
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def describe(exc):
    """(type name, message, formatted traceback, refusing extension module or None)."""
    try:
        message = str(exc)
    except BaseException as err:  # a broken __str__ must not hide the exception
        message = f"<str() failed: {type(err).__name__}>"
    try:
        _late()
        text = format_exception(exc)
    except BaseException:
        text = f"{type_name(exc)}: {message}\n"
    return (type_name(exc), message, text, refusing_module(exc))


def refusing_module(exc):
    """The extension module that refused to load in this subinterpreter, if the
    exception (or one it was raised from) says so."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            text = str(exc)
            if _SUBINTERPRETER_REFUSAL in text:
                if text.startswith("module "):
                    return text.split()[1]
                return exc.name or "an extension module"
        exc = exc.__cause__ or exc.__context__
    return None


def flush_std():
    """Flushes ``sys.stdout`` and ``sys.stderr`` (before a fork, so that buffered text
    is not written twice)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
