"""Helpers the subactor host runs inside every actor interpreter.

The host executes this file once per interpreter, as the module ``_subactor_host``, and
calls its functions through the C API. It is not an API for actor code.
"""

import sys

# Importing these modules crashed CPython 3.12 (3.12.1 here) in an own-GIL
# subinterpreter instead of raising; on 3.12 they are refused with an ImportError.
_CRASHES_ON_312 = frozenset(
    {"_decimal", "decimal", "_datetime", "datetime", "_zoneinfo", "zoneinfo", "_asyncio", "asyncio"}
)

_SUBINTERPRETER_REFUSAL = "does not support loading in subinterpreters"


class _Guard312:
    """Refuses the modules that crash CPython 3.12 in own-GIL subinterpreters."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in _CRASHES_ON_312:
            raise ImportError(
                f"module {name} {_SUBINTERPRETER_REFUSAL}: importing it crashes CPython "
                f"{sys.version_info.major}.{sys.version_info.minor} in an own-GIL "
                "subinterpreter (use Python 3.13)",
                name=name,
            )
        return None


def setup(paths, guard_312):
    """Puts the runtime's folders first on ``sys.path``; installs the 3.12 guard."""
    for path in reversed(paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    if guard_312:
        sys.meta_path.insert(0, _Guard312)


def load_module(target):
    """Imports ``target``: a dotted module name, or the path of a ``.py`` file."""
    import os

    if target.endswith(".py") or os.sep in target or (os.altsep and os.altsep in target):
        import importlib.util

        path = os.path.abspath(target)
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no Python file at {path!r}")
        spec = importlib.util.spec_from_file_location(name, path)
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
    import importlib

    return importlib.import_module(target)


def get_class(module, name):
    """The callable ``name`` of ``module``."""
    try:
        cls = getattr(module, name)
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


def type_name(obj):
    """The qualified name of an object's type, as users write it."""
    kind = type(obj)
    module = getattr(kind, "__module__", None)
    if module in (None, "builtins"):
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def describe(exc):
    """(type name, message, formatted traceback, refusing extension module or None)."""
    import traceback

    try:
        message = str(exc)
    except BaseException as err:  # a broken __str__ must not hide the exception
        message = f"<str() failed: {type(err).__name__}>"
    try:
        text = "".join(traceback.format_exception(exc))
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
