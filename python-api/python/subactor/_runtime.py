"""``Runtime``: the actor runtime, driven from the main interpreter."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from . import _check, _native, _shipping
from ._native import ActorRef, Buffer, BufferMut, DeadLetterSubscription

if TYPE_CHECKING:
    from ._executor import Executor
    from ._pipeline import Pipeline, Stage
    from ._supervision import Supervisor, SupervisorSpec

__all__ = ["DeadLetters", "Runtime"]


def _main_program() -> tuple[str | None, str | None]:
    """The main program, as actors load it: ``(script path, None)`` for
    ``python script.py``, ``(None, module name)`` for ``python -m module``, and
    ``(None, None)`` when there is no file (an interactive session, ``python -c``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name: object = getattr(spec, "name", None)
    if isinstance(name, str) and name not in ("__main__", "__mp_main__"):
        return None, name
    path: object = getattr(main, "__file__", None)
    if isinstance(path, str) and os.path.isfile(path):
        return os.path.abspath(path), None
    return None, None


def _cluster_options(
    cluster: object,
    node: object,
    cluster_name: object,
    user: object,
    password: object,
    token: object,
    trusted: object,
) -> tuple[list[str], str, str | None, str | None, str | None, str | None, bool] | None:
    """The cluster options of ``Runtime``, checked (``None`` without a cluster)."""
    if cluster is None:
        if any(option is not None for option in (node, cluster_name, user, password, token)) or trusted:
            raise ValueError("node, cluster_name, user, password, token and trusted need cluster=")
        return None
    urls = [cluster] if isinstance(cluster, str) else list(cluster)  # type: ignore[call-overload]
    if not urls or not all(isinstance(url, str) and url for url in urls):
        raise TypeError("cluster must be a NATS URL (str) or an iterable of them")
    node = _check.text(node, "node")
    if (user is None) != (password is None):
        raise ValueError("user and password go together")
    if token is not None and user is not None:
        raise ValueError("give user and password, or a token, not both")
    if not isinstance(trusted, bool):
        raise TypeError(f"trusted must be a bool, not {type(trusted).__name__}")
    return (
        urls,
        node,
        _check.optional_text(cluster_name, "cluster_name"),
        _check.optional_text(user, "user"),
        _check.optional_text(password, "password"),
        _check.optional_text(token, "token"),
        trusted,
    )


def actor_options(
    name: object,
    mailbox: object,
    core: object,
    on_failure: object,
    time_limit: object,
    placement: object = None,
    memory_limit: object = None,
) -> tuple[str | None, int | None, int | None, str | None, float | None, str | None, int | None]:
    """The options of ``spawn`` (and ``ChildSpec``), checked: ``(name, mailbox, core,
    on_failure, time_limit, placement, memory_limit)``."""
    from ._supervision import OnFailure

    if placement is not None:
        if not isinstance(placement, str):
            raise TypeError(f"placement must be a str, not {type(placement).__name__}")
        if placement not in ("auto", "interpreter", "process"):
            raise ValueError(f"placement must be 'auto', 'interpreter' or 'process', got {placement!r}")
    return (
        _check.optional_text(name, "name"),
        _check.optional_count(mailbox, "mailbox"),
        None if core is None else _check.index(core, "core"),
        None if on_failure is None else str(_check.choice(on_failure, "on_failure", OnFailure)),
        _check.optional_seconds(time_limit, "time_limit"),
        placement,
        _check.optional_count(memory_limit, "memory_limit"),
    )


#: ``(max_concurrency, snapshots, state_dir, state_store)``, checked.
ServiceOptions = tuple[int | None, str | int | None, str | None, str | None]


def service_options(
    max_concurrency: object, snapshots: object, state_dir: object, state_store: object
) -> ServiceOptions:
    """The long-running service options of ``spawn`` (and ``ChildSpec``), checked:
    ``(max_concurrency, snapshots, state_dir, state_store)``."""
    if snapshots is not None:
        if isinstance(snapshots, str):
            if snapshots not in ("message", "checkpoint"):
                raise ValueError(
                    f"snapshots must be 'message', 'checkpoint' or a positive number of messages, got {snapshots!r}"
                )
        else:
            snapshots = _check.count(snapshots, "snapshots")
            if snapshots > 2**32 - 1:
                raise ValueError(f"snapshots must be at most {2**32 - 1} messages, got {snapshots}")
    if state_dir is not None:
        if not isinstance(state_dir, (str, os.PathLike)):
            raise TypeError(f"state_dir must be a path (str or os.PathLike), not {type(state_dir).__name__}")
        state_dir = os.fspath(state_dir)
        if not isinstance(state_dir, str):
            raise TypeError(f"state_dir must be a str path, not {type(state_dir).__name__}")
    if state_store is not None:
        if not isinstance(state_store, str):
            raise TypeError(f"state_store must be a str, not {type(state_store).__name__}")
        if state_store not in ("memory", "cluster"):
            raise ValueError(f"state_store must be 'memory' or 'cluster', got {state_store!r}")
        if state_dir is not None:
            raise ValueError("state_dir and state_store name two different stores: give one of them")
    if (state_dir is not None or state_store is not None) and snapshots is None:
        which = "state_dir" if state_dir is not None else "state_store"
        raise ValueError(f"{which} needs snapshots= (when to take them)")
    return (_check.optional_count(max_concurrency, "max_concurrency"), snapshots, state_dir, state_store)


def actor_target(actor: type | str) -> tuple[str, str, tuple[Any, ...]]:
    """``(module, name, leading constructor arguments)`` of an actor class or a
    ``"pkg.mod:Class"`` string (the module may also be the path of a ``.py`` file).

    A class that actors can import travels by reference; one they cannot (defined in an
    interactive session, ``python -c``, a notebook, or inside a function) travels by
    value (see ``_shipping``)."""
    if isinstance(actor, str):
        module, sep, name = actor.rpartition(":")
        if not sep or not module or not name:
            raise ValueError(f"expected 'module:Class' or 'path/to/file.py:Class', got {actor!r}")
        return module, name, ()
    found: object = getattr(actor, "__module__", None)
    qualname: object = getattr(actor, "__qualname__", None)
    if not isinstance(found, str) or not isinstance(qualname, str) or not callable(actor):
        raise TypeError(f"cannot spawn {actor!r}: expected a class or a 'module:Class' string")
    return _shipping.spawn_target(actor)


class DeadLetters:
    """The runtime's dead letters: messages that could not be delivered (sent to a
    stopped actor, still queued when one was killed, ...)."""

    def __init__(self, core: _native.RuntimeCore) -> None:
        self._core = core

    @property
    def count(self) -> int:
        """How many messages have become dead letters so far."""
        return self._core.dead_letter_count()

    def subscribe(self) -> DeadLetterSubscription:
        """A queue of the dead letters from now on (``get``, ``get_nowait``, ``drain``).
        A subscriber that falls more than 4096 behind misses newer ones."""
        return self._core.subscribe_dead_letters()


def _observe_address(observe: str | bool | None) -> str | None:
    if observe is None or observe is False:
        return None
    if observe is True:
        return "127.0.0.1:9464"
    if not isinstance(observe, str):
        raise TypeError(f"observe must be a 'host:port' str or a bool, not {type(observe).__name__}")
    return observe


def _warm_imports(imports: str | Iterable[type | str] | None) -> list[str] | None:
    """The native form of ``Runtime(warm_imports=...)``: ``None`` for ``"recent"``, the
    module targets of a list (of classes or module names; empty: nothing)."""
    if imports == "recent":
        return None
    if imports is None:
        return []
    if isinstance(imports, str):
        raise ValueError(f"warm_imports must be 'recent', None or a list of classes or modules, got {imports!r}")
    modules: list[str] = []
    for item in imports:
        if isinstance(item, str):
            if not item:
                raise ValueError("warm_imports: a module name cannot be empty")
            module = item
        elif isinstance(item, type):
            module = actor_target(item)[0]
        else:
            raise TypeError(f"warm_imports lists actor classes or module names, not {type(item).__name__}")
        if module not in modules:
            modules.append(module)
    return modules


DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4318"
"""Where ``otel=True`` exports spans unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` says."""


def _otel_endpoint(otel: str | bool | None) -> str | None:
    if otel is None or otel is False:
        return None
    if otel is True:
        return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_OTLP_ENDPOINT
    if not isinstance(otel, str):
        raise TypeError(f"otel must be a collector's URL (str) or a bool, not {type(otel).__name__}")
    return otel


_live: weakref.WeakSet[Runtime] = weakref.WeakSet()
_live_lock = threading.Lock()


MAX_WARM_INTERPRETERS = 1024
"""The most interpreters a warm pool may keep ready (each holds ~2.4 MiB and a thread)."""


class WarmPool(NamedTuple):
    """How a runtime's warm pool of interpreters has served spawns (``Runtime.warm_pool``)."""

    size: int
    """How many ready interpreters it keeps (0: no pool)."""
    ready: int
    """How many are ready now."""
    hits: int
    """Spawns of interpreter actors that found one ready."""
    misses: int
    """Spawns of interpreter actors that found none (the pool was still filling, or every
    ready one had imported another actor's module)."""
    imported: int
    """Of the hits, those whose interpreter had imported the actor's module already."""


class Runtime:
    """The actor runtime: every actor a CPython interpreter with its own GIL, on its own
    thread, in this process.

    Use it as a context manager (or call ``close``)::

        with subactor.Runtime() as rt:
            counter = rt.spawn(Counter, 0, name="c")
            counter.tell(5)
            print(counter.ask(1))

    ``python_path``: folders put first on every actor's ``sys.path`` (this process's
    ``sys.path`` follows, so what the main program imports, actors import too).
    ``mailbox_capacity``: of actors that set none (1024). ``spin``: seconds an idle
    actor spins before sleeping (50 µs; 0 disables). ``arena_max_bytes``: the limit of
    the shared-memory arena of ``alloc``/``buffer`` (1 GiB). ``preload``: modules the
    template process of process actors imports once, so that every process actor
    starts with them loaded (``preload=["numpy"]``). ``warm_interpreters``: how many
    interpreters the runtime keeps created in advance for spawns of interpreter actors,
    refilled in the background (0: none); a spawn that finds one costs the actor's
    import and constructor only, and each ready one holds an idle actor's memory
    (~2.4 MiB) and a parked thread (see ``warm_pool``). ``warm_imports``: what those
    interpreters import while they wait: ``"recent"`` (the default), the module of the
    actor that took the interpreter each one replaces; a list of actor classes or module
    names, kept ready in turn; ``None``, nothing. An interpreter that imported a module
    goes only to an actor of that module (one that imported nothing, to any actor), and
    an import that fails in advance is only logged (the actor's own import at spawn
    raises it).

    ``cluster``: the URL(s) of NATS servers (``"nats://host:4222"``): the runtime joins
    the cluster there as the node ``node`` (required then), of the cluster named
    ``cluster_name`` (``"subactor"``), authenticating with ``user``/``password`` or a
    ``token``. Its actors then reach actors on every node, ``spawn(..., node="b")``
    starts one on another node, and ``lookup`` finds names on any node. ``trusted``:
    accept pickled objects from other nodes (unpickling runs code: only where every node
    is trusted; plain values only otherwise).

    ``metrics``: collect every actor's metrics (messages handled and failed, handler
    times, restarts, dead letters, interrupts, spawn times), read with ``metrics()``;
    off by default (on, a few nanoseconds a message). ``observe``: serve them at
    ``"host:port"`` (``True``: ``"127.0.0.1:9464"``; port 0 picks a free one, see
    ``observe_url``): Prometheus text at ``/metrics``, the live view at ``/``, the
    JSON that ``python -m subactor top`` reads; implies ``metrics``.

    ``otel``: export traces over OTLP/HTTP (protobuf) to the OpenTelemetry collector at
    this base URL (spans go to ``<url>/v1/traces``; ``True``: ``$OTEL_EXPORTER_OTLP_ENDPOINT``,
    else ``"http://127.0.0.1:4318"``), under the service name ``$OTEL_SERVICE_NAME``
    (``"subactor"``). Every handler runs in a ``subactor.receive`` span, the child of the
    span its message was sent from (a ``subactor.Span`` here, or another actor's
    handler), across interpreters, process actors and nodes. The export is once per
    process: the first runtime with ``otel`` starts it and it lasts until the process
    exits (a later runtime may name the same URL, not another one); each runtime's
    ``close`` sends the spans still batched. It installs a ``tracing`` subscriber that
    prints warnings and errors (actors' ``logging`` records among them) to stderr;
    ``RUST_LOG`` sets that filter.

    Runtimes still open when the interpreter exits are closed then.
    """

    def __init__(
        self,
        *,
        python_path: Iterable[str | os.PathLike[str]] = (),
        mailbox_capacity: int | None = None,
        spin: float | None = None,
        arena_max_bytes: int | None = None,
        preload: Iterable[str] = (),
        cluster: str | Iterable[str] | None = None,
        node: str | None = None,
        cluster_name: str | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        trusted: bool = False,
        warm_interpreters: int = 0,
        warm_imports: str | Iterable[type | str] | None = "recent",
        metrics: bool = False,
        observe: str | bool | None = None,
        otel: str | bool | None = None,
    ) -> None:
        warm = _check.count(warm_interpreters, "warm_interpreters", minimum=0)
        imports = _warm_imports(warm_imports)
        if warm > MAX_WARM_INTERPRETERS:
            raise ValueError(f"warm_interpreters must be at most {MAX_WARM_INTERPRETERS}, got {warm}")
        paths = _check.paths(python_path, "python_path")
        paths += [p for p in sys.path if isinstance(p, str) and p not in paths]
        main_path, main_name = _main_program()
        preloaded = [preload] if isinstance(preload, str) else list(preload)
        if not all(isinstance(name, str) for name in preloaded):
            raise TypeError("preload must be an iterable of module names (str)")
        endpoint = _otel_endpoint(otel)
        self._otel = endpoint is not None
        if endpoint is not None:
            _native.otel_start(endpoint, os.environ.get("OTEL_SERVICE_NAME") or "subactor")
        self._core = _native.RuntimeCore(
            paths,
            main_path,
            main_name,
            _check.optional_count(mailbox_capacity, "mailbox_capacity"),
            _check.optional_seconds(spin, "spin"),
            _check.optional_count(arena_max_bytes, "arena_max_bytes"),
            preloaded,
            sys.executable,
            _cluster_options(cluster, node, cluster_name, user, password, token, trusted),
            warm,
            _check.flag(metrics, "metrics"),
            _observe_address(observe),
            warm_imports=imports,
        )
        with _live_lock:
            _live.add(self)

    # ---- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Shuts the runtime down: kills every actor (each finishes the message in hand;
        a handler running Python code is interrupted; queued messages become dead
        letters), ends every interpreter, and waits for all of it. Calling it again does
        nothing. Afterwards spawning raises ``SpawnError`` and references raise
        ``ActorStopped``."""
        self._core.close()
        if getattr(self, "_otel", False):
            # The spans of its last messages are still batched: send them now.
            self._otel = False
            _native.otel_flush()

    @property
    def closed(self) -> bool:
        """Whether ``close`` has run."""
        return self._core.closed

    def warm_pool(self) -> WarmPool:
        """How the warm pool (``warm_interpreters``) has served spawns so far."""
        return WarmPool(*self._core.warm_pool())

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        core = getattr(self, "_core", None)
        if core is not None:
            core.close()

    # ---- actors -----------------------------------------------------------------------

    @overload
    def spawn(
        self,
        actor: type | str,
        /,
        *args: Any,
        name: str | None = None,
        mailbox: int | None = None,
        core: int | None = None,
        on_failure: str | None = None,
        time_limit: float | None = None,
        placement: str | None = None,
        memory_limit: int | None = None,
        node: str | None = None,
        max_concurrency: int | None = None,
        snapshots: str | int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        state_store: str | None = None,
    ) -> ActorRef: ...

    @overload
    def spawn(self, actor: SupervisorSpec, /) -> Supervisor: ...

    def spawn(
        self,
        actor: type | str | SupervisorSpec,
        /,
        *args: Any,
        name: str | None = None,
        mailbox: int | None = None,
        core: int | None = None,
        on_failure: str | None = None,
        time_limit: float | None = None,
        placement: str | None = None,
        memory_limit: int | None = None,
        node: str | None = None,
        max_concurrency: int | None = None,
        snapshots: str | int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        state_store: str | None = None,
    ) -> ActorRef | Supervisor:
        """Starts an actor and returns its reference once its constructor has returned.

        ``actor`` is a class (with a ``receive(self, msg)`` method) or a
        ``"package.module:Class"`` string (the module may be a ``.py`` path); the actor
        is ``actor(*args)`` in a new interpreter. A class defined in the main script
        works: actors load the script as the module ``__mp_main__``, without running its
        ``if __name__ == "__main__":`` block. A class actors cannot import (defined in
        an interactive session, ``python -c``, a notebook or a function) is sent to the
        actor by value (cloudpickle).

        ``name``: unique, for ``lookup``. ``mailbox``: its capacity. ``core``: pin the
        actor's thread to this CPU core. ``on_failure``: when ``receive`` raises,
        ``"resume"`` (keep the instance; the default), ``"restart"`` (a fresh instance in
        a fresh interpreter, same reference and mailbox) or ``"stop"``.
        ``time_limit``: seconds one ``receive`` may run before it is interrupted.
        ``placement``: where the actor runs: ``"interpreter"`` (a subinterpreter with
        its own GIL, in this process), ``"process"`` (the main interpreter of a child
        process, forked from a template: numpy, pandas and every other extension work
        there, and a crash ends only that process, which is a failure of this actor,
        raised to its asker as ``ActorFailed`` with kind ``"died"``), or ``"auto"`` (the
        default): an interpreter, unless the class's module imports an extension that
        refuses own-GIL interpreters (numpy...), in which case a process (logged, and
        remembered for that class). ``"interpreter"`` is strict: such a module raises
        ``IncompatibleExtension``. ``node``: in a cluster, the node to start the actor
        on (its mailbox lives there; the reference works from anywhere).
        ``memory_limit``: bytes a process actor's process may allocate (an allocation
        past it raises ``MemoryError`` in the handler).

        An asyncio actor (``async def receive``) runs an event loop of its own for its
        whole life; ``max_concurrency`` is how many messages it handles at once, each a
        task (1 by default; in both placements). ``snapshots`` keeps the actor's
        state across restarts (its class defines ``snapshot(self)`` and
        ``restore(self, state)``): taken after every message (``"message"``), every N
        messages (an int), or on ``subactor.checkpoint()`` only (``"checkpoint"``); kept
        in memory (``state_store="memory"``, the default), in ``state_dir`` (a file
        ``<name>.state``, the actor needs a name), or with ``state_store="cluster"`` in
        the cluster's NATS key-value store under the actor's name (the runtime joined a
        cluster; the actor restarted on any node, or by a new runtime, restores it). A
        restart loses what the messages since the latest snapshot did.

        A ``SupervisorSpec`` starts a supervisor and returns a ``Supervisor``.

        Raises ``SpawnError`` (with the actor's traceback as the cause), its subclass
        ``IncompatibleExtension`` when an extension module refuses own-GIL interpreters,
        or ``TypeError``/``ValueError`` for unusable options.
        """
        from ._supervision import SupervisorSpec

        if isinstance(actor, SupervisorSpec):
            given = (name, mailbox, core, on_failure, time_limit, placement, memory_limit, node)
            given_services = (max_concurrency, snapshots, state_dir, state_store)
            if args or any(option is not None for option in given + given_services):
                raise TypeError("spawn(SupervisorSpec) takes no other arguments: set them on the spec")
            return self._core.supervise(actor._flatten())
        options = actor_options(name, mailbox, core, on_failure, time_limit, placement, memory_limit)
        services = service_options(max_concurrency, snapshots, state_dir, state_store)
        module, qualname, leading = actor_target(actor)
        return self._core.spawn(
            module,
            qualname,
            leading + args,
            *options,
            _check.optional_text(node, "node"),
            *services,
        )

    def upgrade(self, actor: ActorRef, to: type | str | None = None) -> None:
        """Upgrades a running actor in place: once the message in hand is handled, its
        state is taken with ``snapshot()``, and a new incarnation starts in a fresh
        interpreter (or process) with its module loaded anew from its source — or the
        class ``to`` (a class, or ``"module:Class"``) — and gets the state through
        ``upgrade(self, old_state)`` if it defines one, else ``restore(state)``. The
        reference, the mailbox and every queued message stay. Returns at once;
        ``actor.restarts`` counts the upgrade once done. Raises ``ActorStopped`` when no
        such actor runs (``upgrade_children`` upgrades a supervisor's children)."""
        if isinstance(actor, _native.Supervisor):
            raise TypeError("upgrade() takes an actor: upgrade_children(supervisor) upgrades a supervisor's children")
        if not isinstance(actor, ActorRef):
            raise TypeError(f"actor must be an ActorRef, not {type(actor).__name__}")
        if to is None:
            self._core.upgrade(actor.id, None, None)
            return
        module, qualname, leading = actor_target(to)
        if leading:
            raise TypeError(f"cannot upgrade to {to!r}: actors cannot import it (define it in a module)")
        self._core.upgrade(actor.id, module, qualname)

    def upgrade_children(self, supervisor: Supervisor, to: type | str | None = None) -> int:
        """Upgrades every running Python child of ``supervisor`` as ``upgrade`` does one
        actor (each after the message it has in hand; references, mailboxes and queued
        messages stay; states carried over through ``snapshot()`` and ``upgrade`` or
        ``restore``), and returns how many were asked to. Children of nested supervisors
        are not included (upgrade those supervisors too). A supervisor's own respawn of a
        child that stopped for good uses its ``ChildSpec``, i.e. the class it was given.
        Raises ``ActorStopped`` when the supervisor does not run."""
        if not isinstance(supervisor, _native.Supervisor):
            raise TypeError(f"supervisor must be a Supervisor, not {type(supervisor).__name__}")
        if to is None:
            return self._core.upgrade_children(supervisor, None, None)
        module, qualname, leading = actor_target(to)
        if leading:
            raise TypeError(f"cannot upgrade to {to!r}: actors cannot import it (define it in a module)")
        return self._core.upgrade_children(supervisor, module, qualname)

    def lookup(self, name: str) -> ActorRef | None:
        """The running Python actor with this name, or ``None``."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        return self._core.lookup(name)

    def send_after(self, delay: float, actor: ActorRef, msg: Any) -> int:
        """Tells ``msg`` to ``actor`` after ``delay`` seconds, without blocking anyone;
        returns a timer id for ``cancel_timer``. If the mailbox is full or the actor has
        stopped by then, the message is a dead letter."""
        if not isinstance(actor, ActorRef):
            raise TypeError(f"actor must be a subactor.ActorRef, not {type(actor).__name__}")
        return self._core.send_after(_check.seconds(delay, "delay"), actor, msg)

    def cancel_timer(self, timer: int) -> bool:
        """Cancels a ``send_after`` timer; ``True`` if it had not fired."""
        return self._core.cancel_timer(_check.index(timer, "timer"))

    @property
    def actor_count(self) -> int:
        """How many actors are alive (starting, running or stopping)."""
        return self._core.actor_count()

    def metrics(self) -> dict[str, Any]:
        """A snapshot of every live actor and of the runtime's totals, as a dict.

        ``actors``: one dict per actor (``id``, ``name``, ``parent`` (its supervisor's
        id), ``kind``, ``placement`` (``"interpreter"``, ``"process"``, ``"node"``,
        ``"thread"``), ``node``, ``state``, ``mailbox_depth``, ``mailbox_capacity``,
        ``handled``, ``failed``, ``restarts``, ``dead_letters``, ``interrupts``,
        ``handler_seconds`` (``count``, ``sum``, ``buckets``, ``p50``, ``p99``: a sample
        while handlers take under 20 µs), ``start_seconds``, ``last_failure``
        (``message``, ``at``) or ``None``); ``totals`` (over every actor the runtime
        ran); ``spawn_seconds`` by placement; ``dead_letters``: the latest ones;
        ``enabled``: whether metrics are collected (without, counts are zero).
        """
        result: dict[str, Any] = json.loads(self._core.metrics_json())
        return result

    @property
    def observe_url(self) -> str | None:
        """The observation endpoint's URL (``http://127.0.0.1:PORT/``), if ``observe``
        started one."""
        address = self._core.observe_address()
        return None if address is None else f"http://{address}/"

    @property
    def dead_letters(self) -> DeadLetters:
        """The runtime's dead letters: ``count`` and ``subscribe()``."""
        return DeadLetters(self._core)

    # ---- executor, pipelines ----------------------------------------------------------

    def executor(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_child: int | None = None,
        pin: bool = False,
        workers: int | None = None,
        placement: str = "interpreter",
    ) -> Executor:
        """A ``subactor.Executor`` (a ``concurrent.futures.Executor``) whose workers are
        actors of this runtime: ``Executor(max_workers, ..., runtime=self)``, see there.
        ``workers`` is an older name of ``max_workers``."""
        from ._executor import Executor

        if workers is not None:
            _check.optional_count(workers, "workers")
            if max_workers is not None:
                raise TypeError("executor() takes max_workers or workers, not both")
            max_workers = workers
        return Executor(
            max_workers,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_child=max_tasks_per_child,
            runtime=self,
            pin=_check.flag(pin, "pin"),
            placement=placement,
        )

    def pipeline(
        self,
        *stages: Stage | tuple[str, Sequence[ActorRef]] | tuple[str, Sequence[ActorRef], str],
        ordered: bool = False,
        capacity: int | None = None,
    ) -> Pipeline:
        """Items flow through ``stages`` of worker actors; each stage's answer is the next
        stage's item. See ``Pipeline``."""
        from ._pipeline import Pipeline

        return Pipeline(self, stages, ordered=ordered, capacity=capacity)

    # ---- arena buffers ----------------------------------------------------------------

    def alloc(self, size: int) -> BufferMut:
        """A writable, zero-filled buffer of ``size`` bytes in the runtime's shared-memory
        arena: fill it through ``memoryview(buf)``, then ``freeze()`` it into a
        ``Buffer``, which actors receive without a copy. ``MemoryError`` past the
        arena's limit."""
        return self._core.alloc(_check.index(size, "size"))

    def buffer(self, data: Any) -> Buffer:
        """Copies a bytes-like object into a new immutable arena ``Buffer`` (one copy;
        sending it afterwards copies nothing)."""
        return self._core.buffer(data)

    def arena_stats(self) -> ArenaStats:
        """The arena's counters now: the buffers alive (in any process: a process
        actor's views count until it drops them or dies) and the memory mapped."""
        return ArenaStats(*self._core.arena_stats())

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.actor_count} actors"
        return f"<subactor.Runtime {state}>"


class ArenaStats(NamedTuple):
    """A runtime's arena counters (``Runtime.arena_stats()``)."""

    bytes_live: int
    """The sum of the lengths of the live buffers."""
    buffers_live: int
    """Live allocations (slices and copies of a buffer's handle share one)."""
    segments_mapped: int
    """Shared-memory segments mapped."""
    bytes_mapped: int
    """Their bytes: what the arena's limit applies to."""


@atexit.register
def _close_all() -> None:
    """Closes the runtimes still open at exit: every actor's interpreter must end before
    Python finalises."""
    with _live_lock:
        runtimes = list(_live)
    for rt in runtimes:
        rt.close()
    _native._stop_dispatcher()
