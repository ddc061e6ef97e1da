"""Supervisors from Python: specs of supervision trees, with the same semantics as the
core's (``subactor_core::supervisor``: strategies, restart types, intensity, backoff)."""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import Any

from . import _check
from ._native import ChildInfo, Supervisor
from ._runtime import actor_options, actor_target, service_options

__all__ = ["ChildInfo", "ChildSpec", "OnFailure", "Restart", "Strategy", "Supervisor", "SupervisorSpec"]


class Strategy(enum.StrEnum):
    """Who restarts when a child fails."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that failed."""
    ONE_FOR_ALL = "one_for_all"
    """Every child."""
    REST_FOR_ONE = "rest_for_one"
    """The child that failed and those started after it."""


class Restart(enum.StrEnum):
    """Whether a child is started again when it exits."""

    PERMANENT = "permanent"
    """Always."""
    TRANSIENT = "transient"
    """Only after an abnormal end (a failure, a kill), not after a graceful stop."""
    TEMPORARY = "temporary"
    """Never."""


class OnFailure(enum.StrEnum):
    """What an actor does when its ``receive`` raises."""

    RESUME = "resume"
    """Keep the instance (the default without a supervisor)."""
    RESTART = "restart"
    """A fresh instance in a fresh interpreter, same reference and mailbox (the default
    under a supervisor, which decides)."""
    STOP = "stop"
    """Stop; queued messages become dead letters."""


class ChildSpec:
    """How to start (and start again) one child of a supervisor: an actor class (or
    ``"module:Class"``) with its constructor arguments and options, or a nested
    ``SupervisorSpec``.

    ``restart``: when it is started again after it exits (``Restart``). ``shutdown``:
    seconds a graceful stop may take before the child is killed. The other options are
    ``Runtime.spawn``'s (``max_concurrency``, ``snapshots``, ``state_dir`` and
    ``state_store`` included); ``on_failure`` defaults to ``"restart"`` under a
    supervisor. The child's snapshots outlive its incarnations: a restart, and the
    supervisor's respawn of a child that stopped, restore the latest one.
    """

    def __init__(
        self,
        actor: type | str | SupervisorSpec,
        /,
        *args: Any,
        name: str | None = None,
        mailbox: int | None = None,
        core: int | None = None,
        on_failure: OnFailure | str | None = None,
        time_limit: float | None = None,
        placement: str | None = None,
        memory_limit: int | None = None,
        max_concurrency: int | None = None,
        snapshots: str | int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        state_store: str | None = None,
        restart: Restart | str = Restart.PERMANENT,
        shutdown: float = 5.0,
    ) -> None:
        if isinstance(actor, SupervisorSpec):
            given = (name, mailbox, core, on_failure, time_limit, placement, memory_limit)
            given_services = (max_concurrency, snapshots, state_dir, state_store)
            if args or any(option is not None for option in given + given_services):
                raise TypeError("a nested SupervisorSpec takes its options on the spec")
        elif not isinstance(actor, (type, str)):
            raise TypeError(
                f"actor must be a class, a 'module:Class' string or a SupervisorSpec, not {type(actor).__name__}"
            )
        options = actor_options(name, mailbox, core, on_failure, time_limit, placement, memory_limit)
        self.actor = actor
        self.args = args
        self.name, self.mailbox, self.core = options[0], options[1], options[2]
        self.on_failure = None if options[3] is None else OnFailure(options[3])
        self.time_limit = options[4]
        self.placement, self.memory_limit = options[5], options[6]
        services = service_options(max_concurrency, snapshots, state_dir, state_store)
        self.max_concurrency, self.snapshots, self.state_dir, self.state_store = services
        self.restart = _check.choice(restart, "restart", Restart)
        self.shutdown = _check.seconds(shutdown, "shutdown")

    def _flatten(self) -> tuple[Any, ...]:
        if isinstance(self.actor, SupervisorSpec):
            what = self.actor._flatten()
        else:
            module, qualname, leading = actor_target(self.actor)
            what = (
                "actor",
                module,
                qualname,
                leading + self.args,
                self.name,
                self.mailbox,
                self.core,
                None if self.on_failure is None else str(self.on_failure),
                self.time_limit,
                self.placement,
                self.memory_limit,
                (self.max_concurrency, self.snapshots, self.state_dir, self.state_store),
            )
        return (what, str(self.restart), float(self.shutdown))

    def __repr__(self) -> str:
        return f"ChildSpec({self.actor!r}, name={self.name!r}, restart={str(self.restart)!r})"


class SupervisorSpec:
    """The recipe of a supervisor: its children (started in order), its ``strategy``,
    its restart intensity (at most ``max_restarts`` within ``within`` seconds; one more
    and it stops its children and fails, which its own supervisor handles), an optional
    ``backoff`` ``(initial, max)`` in seconds between repeated restarts of a child, and
    a ``name``. Start it with ``Runtime.spawn(spec)``; nest it in a ``ChildSpec`` to
    build trees.

    A child whose ``receive`` raises is restarted in place (same reference, same
    mailbox: queued messages survive); one that exits is restarted per its ``restart``
    type, under a new id.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec | type | str],
        *,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: tuple[float, float] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(children, (str, bytes)) or not isinstance(children, Sequence):
            raise TypeError(f"children must be a sequence of ChildSpecs or classes, not {type(children).__name__}")
        self.children = [c if isinstance(c, ChildSpec) else ChildSpec(c) for c in children]
        self.strategy = _check.choice(strategy, "strategy", Strategy)
        self.max_restarts = _check.count(max_restarts, "max_restarts", minimum=0)
        if self.max_restarts > 2**32 - 1:
            raise ValueError(f"max_restarts must be at most {2**32 - 1}, got {self.max_restarts}")
        self.within = _check.seconds(within, "within")
        self.backoff: tuple[float, float] | None = None
        if backoff is not None:
            if not isinstance(backoff, tuple) or len(backoff) != 2:
                raise TypeError(f"backoff must be None or an (initial, max) pair of seconds, not {backoff!r}")
            initial, most = _check.seconds(backoff[0], "backoff's initial"), _check.seconds(backoff[1], "backoff's max")
            if initial > most:
                raise ValueError(f"backoff's initial delay must not exceed its max, got {backoff!r}")
            self.backoff = (initial, most)
        self.name = _check.optional_text(name, "name")

    def _flatten(self) -> tuple[Any, ...]:
        backoff = None if self.backoff is None else (float(self.backoff[0]), float(self.backoff[1]))
        return (
            "supervisor",
            str(self.strategy),
            int(self.max_restarts),
            float(self.within),
            backoff,
            self.name,
            [child._flatten() for child in self.children],
        )

    def __repr__(self) -> str:
        return f"SupervisorSpec({len(self.children)} children, strategy={str(self.strategy)!r}, name={self.name!r})"
