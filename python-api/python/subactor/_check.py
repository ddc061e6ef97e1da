"""Checks of the public API's arguments, at the call that received them.

A value of the wrong type is a ``TypeError``, one out of range a ``ValueError``, and
both name the argument (``mailbox must be at least 1, got -1``), where the native layer
would say ``OverflowError: can't convert negative int to unsigned``. ``bool`` is not
accepted where a number is meant (``mailbox=True`` is a mistake, not a capacity of 1).
Timeouts of the waiting calls (``ask``, ``wait``, ``recv``, ...) are checked by the
native layer, on the hot path, with the same rules.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "choice",
    "count",
    "flag",
    "index",
    "optional_count",
    "optional_seconds",
    "optional_text",
    "paths",
    "seconds",
    "text",
]

#: The largest count or index (the native side holds them in 64-bit words).
MAX_INT = 2**63 - 1

#: The longest duration, in seconds (about 317 years): beyond it, deadlines stop being
#: representable on the native side.
MAX_SECONDS = 1e10

E = TypeVar("E", bound=StrEnum)


def _type_name(value: object) -> str:
    return type(value).__name__


def index(value: object, name: str, *, minimum: int = 0) -> int:
    """An ``int`` (or an object with ``__index__``, not a ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    number: int = value.__index__()  # type: ignore[attr-defined]
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    if number > MAX_INT:
        raise ValueError(f"{name} must be at most {MAX_INT}, got {number}")
    return number


def count(value: object, name: str, *, minimum: int = 1) -> int:
    """A count: an ``int`` >= ``minimum`` (1 unless said otherwise)."""
    return index(value, name, minimum=minimum)


def optional_count(value: object, name: str, *, minimum: int = 1) -> int | None:
    """``None``, or a count."""
    return None if value is None else count(value, name, minimum=minimum)


def seconds(value: object, name: str) -> float:
    """A duration: a real number (not a ``bool``), finite, between 0 and
    ``MAX_SECONDS``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds (an int or a float), not {_type_name(value)}")
    secs = float(value)
    if not math.isfinite(secs) or secs < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    if secs > MAX_SECONDS:
        raise ValueError(f"{name} must be at most {MAX_SECONDS:.0e} seconds (about 317 years), got {value!r}")
    return secs


def optional_seconds(value: object, name: str) -> float | None:
    """``None``, or a duration."""
    return None if value is None else seconds(value, name)


def flag(value: object, name: str) -> bool:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {_type_name(value)}")
    return value


def optional_text(value: object, name: str) -> str | None:
    """``None``, or a non-empty ``str``."""
    return None if value is None else text(value, name)


def text(value: object, name: str) -> str:
    """A non-empty ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def choice(value: object, name: str, enum: type[E]) -> E:
    """A member of a string enum, given as itself or as its value."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


def paths(value: object, name: str) -> list[str]:
    """An iterable of paths (``str`` or ``os.PathLike``), not a single path."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be an iterable of paths (a list of folders), not a single {_type_name(value)}")
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be an iterable of paths, not {_type_name(value)}")
    found: list[str] = []
    for item in value:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"{name} must hold paths (str or os.PathLike), not {_type_name(item)}")
        path: Any = os.fspath(item)
        if not isinstance(path, str):
            raise TypeError(f"{name} must hold str paths, not {_type_name(path)}")
        found.append(path)
    return found
