"""Another CPython's ``test.test_concurrent_futures``, for a CPython installed without its own.

``test_cpython_futures.py`` runs the concurrent.futures tests that ship in the standard
library of the Python running it. Some CPython installations lack them: 3.12.0 to 3.12.2
installed with ``make install`` leave the package out (python/cpython#115421; pyenv's
3.12.1 is one). For such an interpreter the environment variable
``SUBACTOR_CPYTHON_FUTURES_TESTS`` may name the ``test_concurrent_futures`` directory of
another installed CPython (the wheels lane sets it to its CPython 3.13's). Importing this
module then makes that directory a package named after this module:

- its ``__init__.py`` runs here (its checks: working threads, no ASan/MSan build), and its
  modules (``util``, ``executor``, ``test_*``) load from that directory unchanged, by
  their own relative imports; a worker that unpickles one of their functions imports them
  by the same names (this module is on the workers' ``sys.path`` as the tests are);
- everything else they import is this interpreter's own: ``concurrent.futures``,
  ``multiprocessing``, and the rest of the ``test`` package, ``test.support`` included;
- ``test.support`` gets what of a newer one the package uses and this one lacks, each
  with the meaning the newer one gives it on this interpreter (see ``_SUPPORT``);
- nothing is written into the other installation (no bytecode cache files).

``DIRECTORY`` and ``VERSION`` say whose files these are; the tests report them beside
this interpreter's version.
"""

from __future__ import annotations

import importlib.machinery
import inspect
import importlib.util
import os
import re
import sys
import sysconfig
import unittest
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

from test import support

ENV = "SUBACTOR_CPYTHON_FUTURES_TESTS"


def _directory() -> Path:
    value = os.environ.get(ENV, "")
    if not value:
        raise ImportError(f"{ENV} is not set: no other CPython's concurrent.futures tests to run", name=__name__)
    directory = Path(value).resolve()
    if not (directory / "__init__.py").is_file() or not (directory / "executor.py").is_file():
        raise ImportError(
            f"{ENV}={value!r} is not a test_concurrent_futures package of a CPython's standard library "
            "(no __init__.py and executor.py there)",
            name=__name__,
        )
    return directory


DIRECTORY = _directory()
# The CPython the files ship with, as X.Y: the standard library's folder says it
# (<prefix>/lib/pythonX.Y/test/test_concurrent_futures); None where it does not.
_match = re.fullmatch(r"python(\d+\.\d+t?)", DIRECTORY.parent.parent.name)
VERSION: str | None = _match.group(1) if _match else None


def describe() -> str:
    """Which CPython's test files run here, on which interpreter (for the reports)."""
    whose = f"CPython {VERSION}'s" if VERSION else "another CPython's"
    return (
        f"{whose} test.test_concurrent_futures ({DIRECTORY}, from {ENV}), run on CPython "
        f"{sys.version.split()[0]}, whose standard library lacks its own"
    )


def _requires_gil_enabled(msg: str = "needs the GIL enabled") -> Callable[[Any], Any]:
    return unittest.skipIf(getattr(support, "Py_GIL_DISABLED"), msg)


def _thread_sanitizer() -> bool:
    """Whether this build is ThreadSanitizer's, read from its build flags as 3.13 does."""
    flags = sysconfig.get_config_var("CFLAGS") or ""
    configured = sysconfig.get_config_var("CONFIG_ARGS") or ""
    return "-fsanitize=thread" in flags or "--with-thread-sanitizer" in configured


_own_check_sanitizer: Callable[..., bool] = support.check_sanitizer


def _check_sanitizer(*, thread: bool = False, **kinds: bool) -> bool:
    if thread and not any(kinds.values()):
        return _thread_sanitizer()
    return _own_check_sanitizer(**kinds) or (thread and _thread_sanitizer())


def _skip_if_sanitizer(reason: str | None = None, *, thread: bool = False, **kinds: bool) -> Callable[[Any], Any]:
    return unittest.skipIf(
        _check_sanitizer(thread=thread, **kinds), reason or "not working with sanitizers active"
    )


# What the 3.13 package uses of CPython 3.13's test.support and 3.12's lacks, with the
# meaning 3.13 gives it, evaluated for this interpreter: Py_GIL_DISABLED is whether this
# build is free-threaded (never before 3.13), requires_gil_enabled(msg) skips a test on
# such a build only, and check_sanitizer/skip_if_sanitizer take 3.13's thread=True (a
# ThreadSanitizer build) beside the kinds this interpreter's know, which they still decide.
_SUPPORT: dict[str, Any] = {
    "Py_GIL_DISABLED": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "requires_gil_enabled": _requires_gil_enabled,
}
for _name, _value in _SUPPORT.items():
    if not hasattr(support, _name):
        setattr(support, _name, _value)
if "thread" not in inspect.signature(support.check_sanitizer).parameters:
    support.check_sanitizer = _check_sanitizer
if "thread" not in inspect.signature(support.skip_if_sanitizer).parameters:
    support.skip_if_sanitizer = _skip_if_sanitizer


class _Loader(importlib.machinery.SourceFileLoader):
    """Loads a module of the borrowed package from its file, and writes no bytecode cache
    into the other CPython's installation."""

    def set_data(self, path: str, data: Any, *, _mode: int = 0o666) -> None:
        return None


class _Finder:
    """Finds this package's modules in ``DIRECTORY`` (a meta path finder)."""

    @staticmethod
    def find_spec(fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != __name__:
            return None
        file = DIRECTORY / f"{leaf}.py"
        if not file.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, file, loader=_Loader(fullname, str(file)))


sys.meta_path.insert(0, _Finder())
__path__ = [str(DIRECTORY)]

# The package's own __init__.py, in this module's namespace: a check of it that fails
# raises unittest.SkipTest here, as importing the package would.
_init = DIRECTORY / "__init__.py"
exec(compile(_init.read_text(encoding="utf-8"), str(_init), "exec"), globals())
