"""How classes and functions reach actors: by reference (module and qualified name)
when every interpreter of the process can import them, by value otherwise.

By value means pickled with cloudpickle (as Ray and Dask ship them): classes and
functions of an interactive session, ``python -c`` or a notebook, classes and
functions defined inside a function, lambdas. Everything importable keeps travelling
by reference, which is cheaper and keeps one class per interpreter. The rule is the
host's own (``reference_of`` in ``subactor-host``'s ``bootstrap.py``), which every
interpreter also applies when it pickles a message: an instance of a class defined in
a notebook can be sent, and comes back as an instance of that same class.
"""

from __future__ import annotations

import os
from typing import Any

from . import _native

__all__ = ["BY_VALUE_PATH", "reference", "spawn_target"]

#: The module, spawned by file path, that builds an actor of a class sent by value.
BY_VALUE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_subactor_byvalue.py")

_reference_of: Any = _native._bootstrap("reference_of")


def reference(obj: object) -> tuple[str, str] | None:
    """``(module, qualified name)`` under which actors import ``obj``, or ``None`` if
    they cannot (then it travels by value)."""
    found: tuple[str, str] | None = _reference_of(obj)
    return found


def spawn_target(actor: object) -> tuple[str, str, tuple[Any, ...]]:
    """``(module, name, leading constructor arguments)`` for spawning ``actor`` (a
    class): itself by reference, or ``_subactor_byvalue.make`` with the class, which
    travels by value as its first argument."""
    found = reference(actor)
    if found is not None:
        return found[0], found[1], ()
    return BY_VALUE_PATH, "make", (actor,)
