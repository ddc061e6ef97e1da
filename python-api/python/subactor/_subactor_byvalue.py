"""Builds an actor whose class travelled by value. Runs inside actors only.

A class that actors cannot import (defined in an interactive session, ``python -c``, a
notebook, or inside a function) is spawned as this file's ``make`` (by path, so the
module is ``_subactor_byvalue`` there), with the class itself as the first argument: it
arrives unpickled (cloudpickle wrote it), and ``make`` instantiates it.
"""

from typing import Any


def make(cls: Any, *args: Any) -> Any:
    """The actor: ``cls(*args)``."""
    return cls(*args)
