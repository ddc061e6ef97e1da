"""The main interpreter's ``ActorRef`` methods.

``ActorRef`` is the runtime's own type (the same layout and conversions as in actors,
built by ``subactor-host``); in the main interpreter it gets the methods below, whose
waits release the GIL and end on Ctrl-C. References are values: they can be sent in
messages, and arrive usable on the other side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import _check, _native
from ._native import ActorRef, AskTimeout, Down, MailboxFull

__all__ = ["ActorRef"]

#: The default ``ask`` timeout, in seconds.
DEFAULT_TIMEOUT = 30.0


def tell(self: ActorRef, msg: Any) -> None:
    """Sends ``msg``, waiting while the mailbox is full (GIL released; Ctrl-C
    interrupts). Raises ``ActorStopped`` if the actor is not running."""
    _native.ref_tell(self, msg)


def try_tell(self: ActorRef, msg: Any) -> bool:
    """Sends ``msg`` if the mailbox has room; ``False`` if it is full. Raises
    ``ActorStopped`` if the actor is not running."""
    return _native.ref_try_tell(self, msg)


def ask(self: ActorRef, msg: Any, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """Sends ``msg`` and returns the actor's reply (what its ``receive`` returned).

    Waits with the GIL released, up to ``timeout`` seconds (``None``: no limit), and
    Ctrl-C interrupts the wait. Raises ``AskTimeout`` (no reply in time; the actor may
    still handle it), ``RemoteError`` (``receive`` raised; the actor's traceback is the
    ``__cause__``), ``ActorFailed`` (the actor was killed or ran past its time limit
    while handling it), ``ActorStopped``, ``NoReply`` or ``MailboxFull``.
    """
    return _native.ref_ask(self, msg, timeout)


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """Completes an asyncio future on its loop (called there by the dispatcher)."""
    if not future.done():
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(AskTimeout("no reply within the timeout"))


async def ask_async(self: ActorRef, msg: Any, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """``ask`` for asyncio: never blocks the event loop.

    The reply is delivered to the loop by the runtime's dispatcher thread. A full
    mailbox is retried with ``asyncio.sleep`` until the timeout (then ``MailboxFull``).
    Cancelling the awaiting task abandons the reply. Raises what ``ask`` raises.
    """
    timeout = _check.optional_seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    deadline = None if timeout is None else loop.time() + timeout
    delay = 0.0005
    while not _native.ref_ask_async(self, msg, loop, future):
        if deadline is not None and loop.time() >= deadline:
            raise MailboxFull("the actor's mailbox stayed full until the timeout")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    if deadline is None:
        return await future
    handle = loop.call_at(deadline, _expire, future)
    try:
        return await future
    finally:
        handle.cancel()


async def tell_async(self: ActorRef, msg: Any, timeout: float | None = None) -> None:
    """``tell`` for asyncio: waits for room in the mailbox with ``asyncio.sleep``, never
    blocking the loop; ``MailboxFull`` if it stays full past ``timeout``."""
    timeout = _check.optional_seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    delay = 0.0005
    while not _native.ref_try_tell(self, msg):
        if deadline is not None and loop.time() >= deadline:
            raise MailboxFull("the actor's mailbox stayed full until the timeout")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def stop(self: ActorRef) -> None:
    """Asks the actor to stop once it has handled everything queued. Returns at once
    (see ``wait``)."""
    _native.ref_stop(self)


def kill(self: ActorRef) -> None:
    """Stops the actor before its next message: queued messages become dead letters; a
    handler running Python code is interrupted (``Killed`` is raised in it). Returns at
    once (see ``wait``)."""
    _native.ref_kill(self)


def wait(self: ActorRef, timeout: float | None = None) -> Down | None:
    """Waits until the actor has stopped for good (a restart does not count) and
    returns its ``Down``; ``None`` if ``timeout`` passes first. Ctrl-C interrupts."""
    return _native.ref_wait(self, timeout)


async def wait_async(self: ActorRef, timeout: float | None = None) -> Down | None:
    """``wait`` for asyncio."""
    timeout = _check.optional_seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Down] = loop.create_future()

    def down(event: Down) -> None:
        try:
            loop.call_soon_threadsafe(_resolve, future, True, event)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    handle = monitor(self, down)
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return None
    finally:
        demonitor(self, handle)


def monitor(self: ActorRef, callback: Callable[[Down], object]) -> int:
    """Calls ``callback(down)`` when the actor stops for good (at once if it has).

    The callback runs on the runtime's dispatcher thread, in the main interpreter: keep
    it short (put the ``Down`` on a queue, or ``loop.call_soon_threadsafe``). Returns a
    handle for ``demonitor``.
    """
    return _native.ref_monitor(self, callback)


def demonitor(self: ActorRef, handle: int) -> bool:
    """Removes a monitor; ``True`` if its callback had not run and now never will."""
    return _native.ref_demonitor(_check.index(handle, "handle"))


def _state(self: ActorRef) -> str:
    """``"starting"``, ``"running"``, ``"stopping"`` or ``"stopped"``."""
    return _native.ref_state(self)


def _mailbox_len(self: ActorRef) -> int:
    """How many messages wait in the actor's mailbox."""
    return _native.ref_mailbox_len(self)


_METHODS: dict[str, Any] = {
    "tell": tell,
    "try_tell": try_tell,
    "ask": ask,
    "ask_async": ask_async,
    "tell_async": tell_async,
    "stop": stop,
    "kill": kill,
    "wait": wait,
    "wait_async": wait_async,
    "monitor": monitor,
    "demonitor": demonitor,
    "state": property(_state),
    "mailbox_len": property(_mailbox_len),
}

for _name, _method in _METHODS.items():
    setattr(ActorRef, _name, _method)
del _name, _method
