"""Type stub of the in-actor module `subactor`.

Inside an actor's interpreter, `import subactor` gives this module, which the host
builds for that interpreter (see `src/ffi/module.rs`). Values sent to other actors cross
interpreters as copies: None, bool, int, float, str, bytes, list, tuple, dict, set,
frozenset and ActorRef natively; other picklable objects through pickle.
"""

from typing import Any, final

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

    def tell(self, msg: Any) -> None:
        """Sends `msg`, waiting (with this interpreter's GIL released) while the mailbox is
        full. Raises `ActorStopped`, or `MailboxFull` when an actor tells itself with a
        full mailbox."""

    def try_tell(self, msg: Any) -> bool:
        """Sends `msg` if the mailbox has room; False if it is full. Raises `ActorStopped`."""

    def ask(self, msg: Any, timeout: float | None = 30.0) -> Any:
        """Sends `msg` and returns the receiver's reply, waiting with the GIL released.

        Raises `AskTimeout` (no reply in time), `RemoteError` (the receiver raised),
        `ActorStopped`, `NoReply`, `MailboxFull`, or `SelfAskError` (asking oneself)."""

    def stop(self) -> None:
        """Stops the actor once it has handled what is queued."""

    def kill(self) -> None:
        """Stops the actor before its next message; queued messages become dead letters."""

    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def self_ref() -> ActorRef:
    """A reference to the actor running this code."""

def lookup(name: str) -> ActorRef | None:
    """The running Python actor with this name, or None."""

def spawn(module_or_path: str, class_name: str, *args: Any, name: str | None = None) -> ActorRef:
    """Starts a Python actor in its own interpreter and returns once its constructor has
    returned. Raises `SpawnError` (with the child's traceback)."""

def send_after(delay: float, ref: ActorRef, msg: Any) -> int:
    """Tells `msg` to `ref` after `delay` seconds; returns a timer id for `cancel_timer`."""

def cancel_timer(timer_id: int) -> bool:
    """Cancels a `send_after` timer; True if it had not fired yet."""

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
