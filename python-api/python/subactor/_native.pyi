"""Type stub of ``subactor._native``, the package's native part (Rust, PyO3).

It runs in the main interpreter only. ``ActorRef``, ``Buffer``, ``BufferMut``, ``Down``
and the exception classes are the runtime's own (built by ``subactor-host`` from the
same definitions as in actors); ``ActorRef``'s methods are attached by
``subactor/_ref.py``. Everything else is wrapped by the package's Python classes, which
are the documented API.
"""

import asyncio
from collections.abc import Buffer as _BufferLike
from collections.abc import Callable
from typing import Any, Final, final

# ---- shared with actors ----------------------------------------------------------------

@final
class ActorRef:
    """A reference to an actor. Made by ``Runtime.spawn`` and ``Runtime.lookup``, or
    received in a message (references are values: they travel inside messages). Equal
    when they refer to the same actor. Not instantiable."""

    @property
    def id(self) -> int:
        """The actor's process-wide id."""

    @property
    def name(self) -> str | None:
        """The actor's name, or None."""

    @property
    def restarts(self) -> int:
        """How many times the actor has been restarted (same reference, new instance)."""

    @property
    def placement(self) -> str:
        """Where the actor's handlers run: ``"interpreter"`` (a subinterpreter with its
        own GIL) or ``"process"`` (the main interpreter of a child process)."""

    @property
    def state(self) -> str:
        """``"starting"``, ``"running"``, ``"stopping"`` or ``"stopped"``."""

    @property
    def mailbox_len(self) -> int:
        """How many messages wait in the mailbox."""

    def tell(self, msg: Any) -> None:
        """Sends ``msg``, waiting while the mailbox is full (GIL released; Ctrl-C
        interrupts). Raises ``ActorStopped``."""

    def try_tell(self, msg: Any) -> bool:
        """Sends ``msg`` if the mailbox has room; False if it is full."""

    def ask(self, msg: Any, timeout: float | None = 30.0) -> Any:
        """Sends ``msg`` and returns the reply. Raises ``AskTimeout``, ``RemoteError``
        (the actor's traceback is the ``__cause__``), ``ActorFailed``, ``ActorStopped``,
        ``NoReply`` or ``MailboxFull``."""

    async def ask_async(self, msg: Any, timeout: float | None = 30.0) -> Any:
        """``ask`` for asyncio; never blocks the event loop."""

    async def tell_async(self, msg: Any, timeout: float | None = None) -> None:
        """``tell`` for asyncio; waits for room without blocking the event loop."""

    def stop(self) -> None:
        """Stops the actor once it has handled what is queued."""

    def kill(self) -> None:
        """Stops the actor before its next message; interrupts a running handler."""

    def wait(self, timeout: float | None = None) -> Down | None:
        """The actor's ``Down`` once it has stopped for good; None at the timeout."""

    async def wait_async(self, timeout: float | None = None) -> Down | None:
        """``wait`` for asyncio."""

    def monitor(self, callback: Callable[[Down], object]) -> int:
        """Calls ``callback(down)`` on the dispatcher thread when the actor stops for
        good; returns a handle for ``demonitor``."""

    def demonitor(self, handle: int) -> bool:
        """Removes a monitor; True if its callback had not run."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Buffer:
    """An immutable buffer of a runtime's shared-memory arena: actors receive it
    without a copy (the same address in every interpreter). Read-only through the
    buffer protocol; ``buf[a:b]`` shares the memory."""

    @property
    def address(self) -> int:
        """The address of the first byte."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: int | slice) -> Any: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class BufferMut:
    """A writable, zero-filled arena buffer from ``Runtime.alloc``: write through
    ``memoryview(buf)``, then ``freeze()`` it to send it."""

    def freeze(self) -> Buffer:
        """An immutable ``Buffer`` over the same memory, without copying. Raises
        ``BufferError`` while memoryviews of it exist."""

    @property
    def address(self) -> int:
        """The address of the first byte."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class Down:
    """An actor has stopped for good (what monitors and ``wait`` report)."""

    id: int
    """The id of the actor that stopped."""
    name: str | None
    kind: str
    """``"normal"``, ``"killed"``, ``"start_failed"``, ``"panicked"`` or ``"failed"``."""
    detail: str | None
    """What went wrong, for the last three kinds."""

    @property
    def abnormal(self) -> bool:
        """Whether it ended any other way than a graceful stop."""

    @property
    def reason(self) -> str:
        """Why it stopped, in words."""

class ActorError(Exception):
    """Base class of subactor's errors."""

class ActorStopped(ActorError):
    """The actor (or the runtime) is not running; the message was not delivered."""

class MailboxFull(ActorError):
    """The mailbox is full (or stayed full until the timeout); not delivered."""

class AskTimeout(ActorError, TimeoutError):
    """No reply within the timeout; the actor may still handle the message."""

class NoReply(ActorError):
    """The actor stopped before replying."""

class SelfAskError(ActorError):
    """An actor asked itself."""

class SpawnError(ActorError):
    """An actor could not be started; the actor-side traceback is the ``__cause__``."""

class RemoteError(ActorError):
    """The actor's handler raised; the actor's traceback is the ``__cause__`` (a
    ``RemoteTraceback``)."""

    type_name: str
    remote_message: str
    remote_traceback: str
    def __init__(self, type_name: str, message: str, traceback: str) -> None: ...

class RemoteTraceback(Exception):
    """An actor-side traceback, as text: the ``__cause__`` of exceptions raised for
    failures in actors."""

    traceback: str
    def __init__(self, traceback: str) -> None: ...

class ActorFailed(ActorError):
    """The actor failed while handling the message: killed, panicked, or past its time
    limit."""

    kind: str
    """``"killed"``, ``"panicked"``, ``"time_limit"`` or ``"died"`` (a process actor's process died)."""
    def __init__(self, kind: str, message: str) -> None: ...

class Interrupted(BaseException):
    """Raised inside a handler that is being interrupted."""

class Killed(Interrupted):
    """The actor was killed while the handler ran."""

class TimeLimitExceeded(Interrupted):
    """The handler ran past its actor's time limit."""

# ---- the main interpreter's side -------------------------------------------------------

@final
class RuntimeCore:
    """The native side of ``subactor.Runtime``."""

    def __init__(
        self,
        python_path: list[str],
        main_path: str | None = None,
        main_name: str | None = None,
        mailbox_capacity: int | None = None,
        spin: float | None = None,
        arena_max_bytes: int | None = None,
        preload: list[str] = ...,
        executable: str | None = None,
        cluster: tuple[list[str], str, str | None, str | None, str | None, str | None, bool] | None = None,
        warm_interpreters: int = 0,
        metrics: bool = False,
        observe: str | None = None,
        warm_imports: list[str] | None = None,
    ) -> None: ...
    def spawn(
        self,
        module: str,
        class_name: str,
        args: tuple[Any, ...],
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
        state_dir: str | None = None,
        state_store: str | None = None,
    ) -> ActorRef: ...
    def upgrade(self, actor_id: int, module: str | None = None, class_name: str | None = None) -> None: ...
    def upgrade_children(
        self, supervisor: Supervisor, module: str | None = None, class_name: str | None = None
    ) -> int: ...
    def executor(
        self,
        workers: int,
        worker_path: str,
        pin: bool = False,
        worker_args: tuple[Any, ...] | None = None,
        max_tasks: int | None = None,
        owner: Any = None,
        placement: str = "interpreter",
    ) -> ExecutorCore: ...
    def supervise(self, spec: tuple[Any, ...]) -> Supervisor: ...
    def pipeline(
        self, stages: list[tuple[str, list[ActorRef], str]], ordered: bool = False, capacity: int | None = None
    ) -> PipelineCore: ...
    def lookup(self, name: str) -> ActorRef | None: ...
    def send_after(self, delay: float, actor: ActorRef, msg: Any) -> int: ...
    def cancel_timer(self, timer: int) -> bool: ...
    def alloc(self, size: int) -> BufferMut: ...
    def buffer(self, data: _BufferLike) -> Buffer: ...
    def arena_stats(self) -> tuple[int, int, int, int]: ...
    def dead_letter_count(self) -> int: ...
    def subscribe_dead_letters(self) -> DeadLetterSubscription: ...
    def actor_count(self) -> int: ...
    def warm_pool(self) -> tuple[int, int, int, int, int]: ...
    def metrics_json(self) -> str: ...
    def observe_address(self) -> str | None: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

@final
class ExecutorCore:
    """The native side of ``subactor.Executor``: its workers and queue."""

    def submit(
        self, future: Any, fn_ref: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> int: ...
    def submit_chunk(self, future: Any, fn_ref: Any, chunk: list[tuple[Any, ...]]) -> int: ...
    def cancel(self, ticket: int) -> bool: ...
    def cancel_queued(self) -> list[Any]: ...
    def close(self) -> None: ...
    def wait_idle(self, timeout: float | None = None) -> bool: ...
    def stop_workers(self, wait: bool) -> None: ...
    def stop_workers_when_idle(self) -> None: ...
    def kill_workers(self) -> None: ...
    @property
    def workers(self) -> list[ActorRef]: ...
    @property
    def outstanding(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def broken(self) -> bool: ...
    @property
    def placement(self) -> str: ...
    @property
    def ran(self) -> tuple[int, int]: ...
    @property
    def routed(self) -> tuple[bool, list[str], list[str]]: ...

@final
class Supervisor:
    """A running supervisor (from ``Runtime.spawn(SupervisorSpec(...))``)."""

    @property
    def id(self) -> int:
        """The supervisor's id."""
    @property
    def name(self) -> str | None:
        """Its name."""
    @property
    def restarts(self) -> int:
        """How often its own supervisor restarted it."""
    @property
    def state(self) -> str:
        """``"starting"``, ``"running"``, ``"stopping"`` or ``"stopped"``."""
    def children(self) -> list[ChildInfo]:
        """The running children, in start order."""
    def child(self, index: int) -> ActorRef | Supervisor | None:
        """The child at ``index`` (its position in the spec), if it runs."""
    def stop(self) -> None:
        """Stops the supervisor; its children stop first, in reverse start order."""
    def kill(self) -> None:
        """Kills the supervisor (its children are stopped as it ends)."""
    def wait(self, timeout: float | None = None) -> Down | None:
        """Its ``Down`` once it has stopped; None at the timeout."""

@final
class ChildInfo:
    """A child of a supervisor."""

    index: Final[int]
    """Its position among the children."""
    id: Final[int]
    """Its id: the same after an in-place restart, a new one after a respawn."""
    name: Final[str | None]
    restarts: Final[int]
    """How often this incarnation was restarted in place."""
    actor: Final[ActorRef | Supervisor | None]

@final
class PipelineCore:
    """The native side of ``subactor.Pipeline``."""

    def send(self, item: Any, timeout: float | None = None) -> int: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def recv(self, timeout: float | None = None) -> PipelineOutput | None: ...
    @property
    def sent(self) -> int: ...

@final
class PipelineOutput:
    """What comes out of a pipeline: an item's last answer, or how it failed."""

    seq: Final[int]
    """The item's sequence number (the order it was sent in, from 0)."""
    value: Final[Any]
    """The last stage's answer (None if it failed)."""
    error: Final[BaseException | None]
    """Why it failed (a worker that raised: ``RemoteError``), or None."""
    stage: Final[str | None]
    """The stage where it failed, or None."""
    @property
    def ok(self) -> bool:
        """Whether the item made it through."""

@final
class DeadLetter:
    """A message that could not be delivered."""

    recipient: Final[int]
    """The id of the actor it was meant for."""
    name: Final[str | None]
    reason: Final[str]
    """``"not_running"``, ``"killed"``, ``"stopped"``, ``"panicked"``,
    ``"mailbox_full"``, ``"shut_down"`` or ``"failed"``."""
    message_type: Final[str]
    message: Final[Any]
    """The message, if it still exists; else None."""

@final
class DeadLetterSubscription:
    """The dead letters from the moment of subscribing."""

    def get(self, timeout: float | None = None) -> DeadLetter | None:
        """The next dead letter, waiting up to ``timeout`` (Ctrl-C interrupts); None at
        the timeout."""
    def get_nowait(self) -> DeadLetter | None:
        """The next dead letter, if one is waiting."""
    def drain(self) -> list[DeadLetter]:
        """Every dead letter waiting now."""

@final
class Span:
    """A span of the program's own (OpenTelemetry, with ``Runtime(otel=...)``): messages
    sent by this thread inside ``with Span(name):`` carry its context, so the handlers'
    ``subactor.receive`` spans are its children; it ends when the block ends (an
    exception marks it failed). ``traceparent``: a W3C ``traceparent`` header value (an
    incoming request's) whose span is its parent (``ValueError`` if malformed). Entered
    once, on the thread that made it. Without an export running it records nothing."""

    def __init__(self, name: str, traceparent: str | None = None) -> None: ...
    def __enter__(self) -> Span: ...
    def __exit__(self, exc_type: object = None, exc: object = None, traceback: object = None) -> bool: ...
    @property
    def traceparent(self) -> str | None:
        """This span's W3C ``traceparent`` (to pass on to other services); None without
        an export running, or once it has ended."""

def otel_start(endpoint: str, service_name: str) -> bool: ...
def otel_flush() -> bool: ...
def otel_endpoint() -> str | None: ...
def ref_tell(actor: ActorRef, msg: Any) -> None: ...
def ref_try_tell(actor: ActorRef, msg: Any) -> bool: ...
def ref_ask(actor: ActorRef, msg: Any, timeout: float | None = 30.0) -> Any: ...
def ref_ask_async(
    actor: ActorRef, msg: Any, event_loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> bool: ...

class LoopReplies:
    """Where the replies of one event loop's ``ask_async`` calls arrive."""

    def __init__(self) -> None: ...
    def fileno(self) -> int:
        """The eventfd to watch: readable while replies wait to be taken."""

def ask_begin(replies: LoopReplies, actor: ActorRef, msg: Any) -> int | None: ...
def replies_take(replies: LoopReplies) -> list[tuple[int, bool, Any]]: ...
def ref_stop(actor: ActorRef) -> None: ...
def ref_kill(actor: ActorRef) -> None: ...
def ref_state(actor: ActorRef) -> str: ...
def ref_mailbox_len(actor: ActorRef) -> int: ...
def ref_wait(actor: ActorRef, timeout: float | None = None) -> Down | None: ...
def ref_monitor(actor: ActorRef, callback: Callable[[Down], object]) -> int: ...
def ref_demonitor(handle: int) -> bool: ...
def _register_hooks(
    incompatible_extension: Any,
    broken_executor: Any,
    resolve_async: Any,
    task_traceback: Any,
    initializer_failed: Any,
) -> None: ...
def _stop_dispatcher() -> None: ...
def _run_template() -> None:
    """The entry point of the template process of process actors (never returns)."""
def _shutdown_executors() -> None: ...
def _bootstrap(name: str) -> Any: ...
