"""The systems measured from Python, each by a :class:`~harness.runners.base.Runner`.

Each runner runs in a fresh process: ``python -m harness.runners KEY --config JSON
--out PATH`` (the driver does this; see :mod:`harness.runners.__main__`).

To add a system, write a module with a registered runner (see
:mod:`harness.runners.base`) and list it in :data:`MODULES`.
"""

from __future__ import annotations

import importlib

from harness.runners.base import RUNNERS, Config, Runner, register

__all__ = ["MODULES", "RUNNERS", "Config", "Runner", "load", "register"]

# The modules of the registered runners, in the order of their systems in the report.
MODULES = (
    "harness.runners.subactor_py",
    "harness.runners.multiproc",
    "harness.runners.threads",
    "harness.runners.interp",
)


def load() -> dict[str, type[Runner]]:
    """Imports every runner module; returns the runners by key, in registration order."""
    for name in MODULES:
        importlib.import_module(name)
    return RUNNERS
