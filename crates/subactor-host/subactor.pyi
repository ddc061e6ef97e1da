"""Type stub of the in-actor module `subactor`.

Inside an actor's interpreter, `import subactor` gives this module, which the host
builds for that interpreter (see `src/ffi/module.rs`). Values sent to other actors cross
interpreters as copies: None, bool, int, float, str, bytes, list, tuple, dict, set,
frozenset and ActorRef natively; other picklable objects through pickle. A `Buffer`
crosses without a copy.
"""

from typing import Any, Self, final

from collections.abc import Buffer as _BufferLike

@final
class ActorRef:
    """A reference to an actor. Made by `self_ref()`, `lookup()` and `spawn()`, or
    received in a message; it can itself be sent in messages. Not instantiable."""

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

    def tell(self, msg: Any) -> None:
        """Sends `msg`, waiting (with this interpreter's GIL released) while the mailbox is
        full. Raises `ActorStopped`, or `MailboxFull` when an actor tells itself with a
        full mailbox."""

    def try_tell(self, msg: Any) -> bool:
        """Sends `msg` if the mailbox has room; False if it is full. Raises `ActorStopped`."""

    def ask(self, msg: Any, timeout: float | None = 30.0) -> Any:
        """Sends `msg` and returns the receiver's reply, waiting with the GIL released.

        Raises `AskTimeout` (no reply in time), `RemoteError` (the receiver raised),
        `ActorFailed` (the receiver was killed, panicked or ran past its time limit while
        handling it), `ActorStopped`, `NoReply`, `MailboxFull`, or `SelfAskError`."""

    async def ask_async(self, msg: Any, timeout: float | None = 30.0) -> Any:
        """`ask` awaited on the running event loop (an asyncio actor's): the loop goes on
        while the ask waits, without a thread (the reply wakes the loop; any number may
        wait at once; a full mailbox is tried again after short sleeps until the
        timeout). Cancelling the awaiting task abandons the reply. Raises what `ask`
        raises."""

    async def tell_async(self, msg: Any) -> None:
        """`tell` awaited: at once when the mailbox has room, else tried again after
        short sleeps while the loop goes on."""

    def stop(self) -> None:
        """Stops the actor once it has handled what is queued."""

    def kill(self) -> None:
        """Stops the actor before its next message; queued messages become dead letters.
        A handler running pure-Python code is interrupted (`Killed` is raised in it);
        one blocked in a call that released the GIL sees it when the call returns."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Buffer:
    """An immutable buffer of the runtime's shared-memory arena. Sent to other actors
    without a copy (every interpreter sees the same address); read-only through the
    buffer protocol (`memoryview`, `bytes()`). `buf[a:b]` shares the memory; a strided
    slice is copied into `bytes`. Not instantiable: use `alloc(n).freeze()` or
    `Buffer.from_bytes`."""

    @classmethod
    def from_bytes(cls, data: _BufferLike) -> Self:
        """Copies a bytes-like object into a new buffer (one copy). Raises MemoryError when
        the arena's limit is reached."""

    @property
    def address(self) -> int:
        """The address of the first byte."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: int | slice) -> Any: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class BufferMut:
    """A writable, zero-filled arena buffer from `alloc(n)`: write through
    `memoryview(buf)`, then `freeze()` it to send it."""

    def freeze(self) -> Buffer:
        """An immutable Buffer over the same memory, without copying. Raises BufferError
        while memoryviews of it exist; the BufferMut is unusable afterwards."""

    @property
    def address(self) -> int:
        """The address of the first byte."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

def alloc(size: int) -> BufferMut:
    """A writable, zero-filled buffer of `size` bytes from the arena. Raises MemoryError
    when the arena's limit is reached."""

def self_ref() -> ActorRef:
    """A reference to the actor running this code."""

def lookup(name: str) -> ActorRef | None:
    """The running Python actor with this name, or None."""

def spawn(
    module_or_path: str, class_name: str, *args: Any, name: str | None = None, placement: str = "interpreter"
) -> ActorRef:
    """Starts a Python actor and returns once its constructor has returned: in its own
    interpreter, or with `placement="process"` in the main interpreter of a child
    process (where every extension module works). Raises `SpawnError` (with the child's
    traceback)."""

def send_after(delay: float, ref: ActorRef, msg: Any) -> int:
    """Tells `msg` to `ref` after `delay` seconds; returns a timer id for `cancel_timer`."""

def cancel_timer(timer_id: int) -> bool:
    """Cancels a `send_after` timer; True if it had not fired yet."""

def monitor(ref: ActorRef) -> int:
    """When the actor behind `ref` stops for good (a restart does not count), this actor
    receives a `Down` message, ahead of its queued mail. Returns a monitor id."""

def demonitor(ref: ActorRef, monitor_id: int) -> bool:
    """Removes a monitor; True if it had not fired yet."""

@final
class Down:
    """What a monitoring actor receives when the monitored one stops for good."""

    id: int
    """The id of the actor that stopped (compare with `ActorRef.id`)."""
    name: str | None
    kind: str
    """"normal", "killed", "start_failed", "panicked" or "failed"."""
    detail: str | None
    """What went wrong, for the last three kinds."""

    @property
    def abnormal(self) -> bool:
        """Whether it ended any other way than a graceful stop."""

    @property
    def reason(self) -> str:
        """Why it stopped, in words."""

class ActorError(Exception):
    """Base class of the errors subactor raises in actor code."""

class ActorStopped(ActorError): ...
class MailboxFull(ActorError): ...
class AskTimeout(ActorError, TimeoutError): ...
class NoReply(ActorError): ...
class SelfAskError(ActorError): ...
class SpawnError(ActorError): ...

class RemoteError(ActorError):
    """The other actor's handler raised."""

    type_name: str
    remote_message: str
    remote_traceback: str

class ActorFailed(ActorError):
    """The other actor failed while it handled the message."""

    kind: str
    """"panicked", "killed", "time_limit" or "died" (its process died)."""

class Interrupted(BaseException):
    """Raised inside a handler that is being interrupted; let it propagate."""

class Killed(Interrupted):
    """The actor was killed while this handler ran."""

class TimeLimitExceeded(Interrupted):
    """The handler ran past its actor's time limit."""


def checkpoint() -> bool:
    """Asks for a snapshot of this actor's state (its `snapshot()`) as soon as the
    running handler returns, for an actor spawned with snapshots; True if it keeps
    them (elsewhere this does nothing and answers False)."""
