"""The main interpreter's ``ActorRef`` methods.

``ActorRef`` is the runtime's own type (the same layout and conversions as in actors,
built by ``subactor-host``); in the main interpreter it gets the methods below, whose
waits release the GIL and end on Ctrl-C. References are values: they can be sent in
messages, and arrive usable on the other side.
"""

from __future__ import annotations

import asyncio
import weakref
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
    """Completes an asyncio future on its loop (called there by the dispatcher or the
    loop's ``_Replies``), unless it is done already (cancelled, or past its timeout)."""
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

    The reply wakes the loop itself (an eventfd it watches; on a loop that cannot watch
    one, the runtime's dispatcher thread delivers it). A full mailbox is retried with
    ``asyncio.sleep`` until the timeout (then ``MailboxFull``). Cancelling the awaiting
    task abandons the reply. Raises what ``ask`` raises.
    """
    timeout = _check.optional_seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    replies = _replies_for(loop)
    if replies is None:
        return await _ask_dispatched(self, msg, loop, timeout)
    deadline = None if timeout is None else loop.time() + timeout
    delay = 0.0005
    ticket = _native.ask_begin(replies.inbox, self, msg)
    while ticket is None:
        if deadline is not None and loop.time() >= deadline:
            raise MailboxFull("the actor's mailbox stayed full until the timeout")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        ticket = _native.ask_begin(replies.inbox, self, msg)
    # No await between the send and this line: the loop cannot take the reply before
    # its future is in the map.
    future: asyncio.Future[Any] = loop.create_future()
    replies.futures[ticket] = future
    handle = None if deadline is None else loop.call_at(deadline, _expire, future)
    try:
        return await future
    finally:
        if handle is not None:
            handle.cancel()
        replies.futures.pop(ticket, None)


async def _ask_dispatched(
    self: ActorRef, msg: Any, loop: asyncio.AbstractEventLoop, timeout: float | None
) -> Any:
    """``ask_async`` on a loop that cannot watch a file descriptor: the dispatcher
    thread delivers the reply with ``call_soon_threadsafe``."""
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


class _Replies:
    """Where the replies of one event loop's ``ask_async`` calls arrive: the runtime
    pushes each outcome into ``inbox`` from whichever thread completes the ask and makes
    its eventfd readable; the loop's reader takes them on the loop's own thread and
    completes the waiting futures (``futures``: ticket to future)."""

    __slots__ = ("inbox", "futures")

    def __init__(self) -> None:
        self.inbox = _native.LoopReplies()
        self.futures: dict[int, asyncio.Future[Any]] = {}

    def drain(self) -> None:
        for ticket, ok, value in _native.replies_take(self.inbox):
            future = self.futures.pop(ticket, None)
            if future is not None:  # else abandoned: cancelled, or past its timeout
                _resolve(future, ok, value)


#: Each event loop's replies (``None``: the loop cannot watch a file descriptor). Weak:
#: a loop dropped takes its replies, and their eventfd, with it.
_REPLIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Replies | None] = weakref.WeakKeyDictionary()


def _replies_for(loop: asyncio.AbstractEventLoop) -> _Replies | None:
    """The ``_Replies`` of ``loop``, made (and watched with ``add_reader``) on its first
    ask; ``None`` for a loop without ``add_reader`` (the dispatcher serves it)."""
    try:
        return _REPLIES[loop]
    except KeyError:
        pass
    replies = _Replies()
    try:
        loop.add_reader(replies.inbox.fileno(), replies.drain)
    except NotImplementedError:
        _REPLIES[loop] = None
        return None
    _REPLIES[loop] = replies
    return replies


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
