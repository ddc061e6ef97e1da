# The parts of the host's bootstrap (bootstrap.py) that an actor may never need: the
# shell of asyncio actors and of actors with hooks or snapshots, the asks of asyncio
# actors, exceptions formatted without ``traceback``, upgrades' fresh imports, and a
# process actor's exit.
#
# Unmarshalling and running them took over a third of the bootstrap's time in every new
# interpreter (~0.2 ms of ~0.55 ms here). The host runs this file in the bootstrap
# module itself (the same globals: names of either file are used by the other) the
# first time something here is needed: ``_late()`` in bootstrap.py, which the
# bootstrap's functions that use these call, and the module's ``__getattr__`` when the
# host looks one of them up. (No module docstring: it would replace bootstrap.py's.)

import sys

# How often a handler waiting for its coroutine looks for an interrupt (a kill or a time
# limit is planted in the waiting thread, which sees it when its wait returns).
_WAIT_SLICE = 0.01
# How long an interrupted coroutine may take to end after its cancellation.
_CANCEL_GRACE = 1.0
# How long an async ``stopped`` hook may run.
_STOPPED_LIMIT = 5.0


def load_module_fresh(target):
    """Loads ``target`` anew from its source file, as an upgrade needs: neither a module
    already in ``sys.modules`` (a process actor's template may have preloaded it) nor
    the bytecode cache (a file rewritten within the same second, at the same size,
    would match its stale ``.pyc``) is used."""
    import importlib
    import importlib.util
    import os

    if target in ("__main__", _MAIN_NAME):
        return load_main()
    importlib.invalidate_caches()
    if target.endswith(".py") or os.sep in target or (os.altsep and os.altsep in target):
        path = os.path.abspath(target)
        name = os.path.splitext(os.path.basename(path))[0]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no Python file at {path!r}")
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        name = target
        sys.modules.pop(name, None)
        spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_source"):
        return load_module(target)
    source = spec.loader.get_source(name)
    if source is None:
        return load_module(target)
    code = compile(source, spec.origin or name, "exec", dont_inherit=True)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class _Waiter:
    """The outcome of one coroutine run on the actor's event loop, waited for by the
    actor's thread."""

    __slots__ = ("_lock", "task", "cancelled", "result", "error", "done")

    def __init__(self):
        import _thread

        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self.task = None
        self.cancelled = False
        self.result = None
        self.error = None
        self.done = False

    def finished(self, task):
        try:
            self.result = task.result()
        except BaseException as exc:  # CancelledError included
            self.error = exc
        self.done = True
        self._lock.release()

    def wait(self, timeout):
        return self._lock.acquire(True, timeout)


class _Shell:
    """What the host wraps around an actor instance when it needs more than its
    ``receive``: an asyncio event loop (``async def receive``), the ``started`` and
    ``stopped`` hooks, snapshots, and restoring a state.

    The event loop of an asyncio actor runs on a thread of its own in the actor's
    interpreter (or process), for as long as the actor: servers and background tasks
    started by the actor keep running between messages. Each message runs as a task on
    it; the actor's thread waits for it, so messages are handled one after the other as
    in any actor (``max_concurrency`` greater than 1 runs several at once: see
    ``begin``).
    """

    def __init__(self, instance, snapshot_every, complete):
        self.instance = instance
        self.receive_fn = instance.receive
        self.is_async = _is_async(self.receive_fn)
        self.snapshot_every = snapshot_every
        self.snapshots = snapshot_every is not None
        self.handled = 0
        self.due = False
        self.checkpoint_requested = False
        self.complete = complete
        self.loop = None
        self.thread = None
        self.executor = None
        self.in_flight = {}
        self.time_limit = None
        if self.snapshots and not callable(getattr(instance, "snapshot", None)):
            raise TypeError(
                f"{type_name(instance)} has no snapshot() method, but its actor keeps snapshots "
                "(define snapshot(self) returning its state, and restore(self, state))"
            )
        if self.is_async or any(_is_async(getattr(instance, h, None)) for h in ("started", "stopped")):
            self._start_loop()

    # -- the event loop --

    def _start_loop(self):
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            try:
                self.loop.run_forever()
            finally:
                try:
                    _cancel_all(self.loop)
                    self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                    self.loop.run_until_complete(self.loop.shutdown_default_executor())
                finally:
                    _close_replies(self.loop)
                    asyncio.set_event_loop(None)
                    self.loop.close()

        self.thread = threading.Thread(target=run, name="subactor-asyncio")
        self.thread.start()
        ready.wait()

    def _run(self, coro):
        """Runs ``coro`` on the loop and waits for it on the actor's thread. An
        interrupt (kill, time limit) planted while it waits cancels the task, so the
        coroutine sees ``CancelledError`` at its ``await``; the interrupt is re-raised
        here once the task has ended (or after a grace period)."""
        waiter = _Waiter()

        def start():
            if waiter.cancelled:
                coro.close()
                waiter.error = None
                waiter.done = True
                waiter._lock.release()
                return
            task = self.loop.create_task(coro)
            waiter.task = task
            task.add_done_callback(waiter.finished)

        self.loop.call_soon_threadsafe(start)
        try:
            while not waiter.wait(_WAIT_SLICE):
                pass
        except BaseException:
            self.loop.call_soon_threadsafe(_cancel_waiter, waiter)
            waiter.wait(_CANCEL_GRACE)
            raise
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def close(self):
        """Runs the ``stopped`` hook and ends the event loop (its thread, its tasks)."""
        global _shell
        if _shell is self:
            _shell = None
        try:
            stopped = getattr(self.instance, "stopped", None)
            if callable(stopped):
                if _is_async(stopped):
                    import asyncio

                    self._run(asyncio.wait_for(stopped(), _STOPPED_LIMIT))
                else:
                    stopped()
        finally:
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join()
                self.loop = None

    # -- messages --

    def receive(self, msg):
        self.checkpoint_requested = False
        if self.is_async:
            result = self._run(self.receive_fn(msg))
        else:
            result = self.receive_fn(msg)
        if self.snapshots:
            self.handled += 1
            every = self.snapshot_every
            if self.checkpoint_requested or (every > 0 and self.handled % every == 0):
                self.due = True
        return result

    # -- messages handled concurrently (max_concurrency above 1), on the loop --

    def start_task(self, token, coro, reply):
        task = self.loop.create_task(coro)
        self.in_flight[token] = [task, None]
        if self.time_limit is not None:
            self.in_flight[token].append(self.loop.call_later(self.time_limit, self._expire, token))
        task.add_done_callback(lambda task: self._task_done(token, task, reply))

    def _expire(self, token):
        entry = self.in_flight.get(token)
        if entry is not None and not entry[0].done():
            entry[1] = 3
            entry[0].cancel("the message ran past the actor's time limit")

    def cancel_tasks(self, cause):
        for entry in self.in_flight.values():
            if not entry[0].done():
                entry[1] = cause
                entry[0].cancel("the actor was killed")

    def _task_done(self, token, task, reply):
        entry = self.in_flight.pop(token, None)
        cause = entry[1] if entry is not None else None
        if entry is not None and len(entry) > 2:
            entry[2].cancel()
        finish = sys.modules["subactor"]._finish
        if cause is not None and task.cancelled():
            finish(token, cause, None, False, None)
            return
        try:
            result = task.result()
        except BaseException as exc:
            finish(token, 1, exc, False, None)
            return
        snapshot = None
        if self.snapshots:
            self.handled += 1
            every = self.snapshot_every
            if self.checkpoint_requested or (every > 0 and self.handled % every == 0):
                self.checkpoint_requested = False
                try:
                    snapshot = (self.instance.snapshot(),)
                except BaseException as exc:
                    finish(token, 1, exc, False, None)
                    return
        finish(token, 0, result, reply, snapshot)

    def take_snapshot(self):
        """``(state,)`` when a snapshot is due (after the messages its policy counts,
        or when the actor called ``subactor.checkpoint()``), else None."""
        if not self.due:
            return None
        self.due = False
        return (self.instance.snapshot(),)


def _cancel_waiter(waiter):
    waiter.cancelled = True
    if waiter.task is not None:
        waiter.task.cancel("the actor's handler was interrupted (killed, or past its time limit)")


def _cancel_all(loop):
    import asyncio

    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def begin(token, msg, reply):
    """Begins a message of an asyncio actor with ``max_concurrency`` above 1: a task on
    its event loop, whose end is reported to the host with ``subactor._finish``."""
    shell = _shell
    coro = shell.receive_fn(msg)
    shell.loop.call_soon_threadsafe(shell.start_task, token, coro, reply)


async def ask_async(ref, msg, timeout=30.0):
    """``ref.ask(msg, timeout)`` awaited on the running event loop, which goes on
    meanwhile. The reply comes to the loop through its ``_Replies`` (no thread waits for
    it); a full mailbox is tried again after short sleeps until the timeout. Cancelling
    the awaiting task abandons the reply."""
    import asyncio

    loop = asyncio.get_running_loop()
    replies = _replies_for(loop)
    host = sys.modules["subactor"]
    if timeout is None:
        timeout = 30.0
    future = loop.create_future()
    # The host checks the timeout's type and range on the first try.
    ticket = host._ask_begin(replies.inbox, ref, msg, timeout)
    deadline = loop.time() + timeout
    delay = 0.0005
    while ticket is None:
        if loop.time() >= deadline:
            _errors()  # the exception classes are made on first use
            raise MailboxFull("the actor's mailbox stayed full until the timeout")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        ticket = host._ask_begin(replies.inbox, ref, msg, timeout)
    # No await between the send and this line: the loop cannot take the reply before
    # its future is in the map.
    replies.futures[ticket] = future
    handle = loop.call_at(deadline, _ask_expired, future)
    try:
        return await future
    finally:
        handle.cancel()
        replies.futures.pop(ticket, None)


def _ask_expired(future):
    if not future.done():
        _errors()  # the exception classes are made on first use
        future.set_exception(AskTimeout("no reply within the timeout"))


async def tell_async(ref, msg):
    """``ref.tell(msg)`` awaited: at once when the mailbox has room, else tried again
    after short sleeps while the loop goes on."""
    if ref.try_tell(msg):
        return None
    import asyncio

    delay = 0.0005
    while True:
        await asyncio.sleep(delay)
        if ref.try_tell(msg):
            return None
        delay = min(delay * 2, 0.05)


class _Replies:
    """Where the replies of one event loop's ``ask_async`` calls arrive: the host
    pushes each outcome into ``inbox`` from whichever thread completes the ask and
    makes ``fd`` readable; the loop's reader takes them on the loop's own thread and
    completes the waiting futures (``futures``: ticket to future)."""

    __slots__ = ("inbox", "fd", "futures")

    def __init__(self):
        self.inbox, self.fd = sys.modules["subactor"]._replies_new()
        self.futures = {}

    def drain(self):
        for ticket, ok, value in sys.modules["subactor"]._replies_take(self.inbox):
            future = self.futures.pop(ticket, None)
            if future is None or future.done():
                continue  # abandoned: cancelled, or past its timeout
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _replies_for(loop):
    """The ``_Replies`` of ``loop``, made (and watched with ``add_reader``) on its
    first ask. Kept by a weak reference to the loop: a loop dropped without
    ``_close_replies`` takes its replies (and their eventfd) with it."""
    global _REPLIES
    if _REPLIES is None:
        import weakref

        _REPLIES = weakref.WeakKeyDictionary()
    replies = _REPLIES.get(loop)
    if replies is None:
        replies = _Replies()
        loop.add_reader(replies.fd, replies.drain)
        _REPLIES[loop] = replies
    return replies


def _close_replies(loop):
    """Stops watching the replies of ``loop`` (before it closes)."""
    replies = _REPLIES.pop(loop, None) if _REPLIES is not None else None
    if replies is not None and not loop.is_closed():
        loop.remove_reader(replies.fd)


def format_exception(exc):
    """The text ``traceback.format_exception`` gives, without importing ``traceback``.

    Importing ``traceback`` costs ~8 ms in a fresh 3.13 interpreter (it brings ``ast``,
    ``re`` and ``textwrap``), which the first failure of every restarted actor would pay.
    Where the actor's code has imported it already, it is used (it adds position carets
    and formats exception groups); otherwise this prints the same frames, source lines
    and chained causes.
    """
    traceback = sys.modules.get("traceback")
    if traceback is not None or isinstance(exc, BaseExceptionGroup):
        if traceback is None:
            import traceback
        return "".join(traceback.format_exception(exc))
    chain = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__cause__ is not None:
            link = "\nThe above exception was the direct cause of the following exception:\n\n"
            chain.append((exc, link))
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            link = "\nDuring handling of the above exception, another exception occurred:\n\n"
            chain.append((exc, link))
            exc = exc.__context__
        else:
            chain.append((exc, ""))
            exc = None
    parts = []
    sources = {}
    # Innermost first; each link says how the next exception came from the one above.
    for exc, link in reversed(chain):
        parts.append(link)
        if exc.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            tb = exc.__traceback__
            while tb is not None:
                code = tb.tb_frame.f_code
                parts.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
                line = _source_line(sources, code.co_filename, tb.tb_lineno)
                if line:
                    parts.append(f"    {line}\n")
                tb = tb.tb_next
        try:
            text = str(exc)
        except BaseException:
            text = "<exception str() failed>"
        parts.append(f"{type_name(exc)}: {text}\n" if text else f"{type_name(exc)}\n")
        for note in getattr(exc, "__notes__", None) or ():
            parts.append(f"{note}\n")
    return "".join(parts)


def _source_line(cache, filename, lineno):
    """Line ``lineno`` of a source file, stripped; "" when it cannot be read."""
    lines = cache.get(filename)
    if lines is None:
        try:
            with open(filename, "rb") as source:
                lines = source.read().decode("utf-8", "replace").splitlines()
        except (OSError, ValueError):
            lines = []
        cache[filename] = lines
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def exit_child():
    """What a process actor's child does before it exits: runs the ``atexit`` callbacks
    (an exception in one is printed, as at an interpreter's exit) and flushes the
    standard streams. The child does not finalize the interpreter: it may be the main
    program's frame (``python -c``, the template's launcher) that is still running, and
    a process that ends needs no teardown (``multiprocessing``'s children do the same)."""
    import atexit

    atexit._run_exitfuncs()
    flush_std()


# Small pure-Python modules of the standard library that do nothing when imported but
# define functions and classes (colorsys imports nothing; graphlib imports ``types``):
# what a process actor's spare child imports, and forgets, to warm the import system
# (``warm_import_system``).
_WARM_MODULES = ("colorsys", "graphlib")


def warm_import_system():
    """What a process actor's spare child does while it waits for its actor: one import
    of a module that is not loaded, found and loaded as the actor's module will be (every
    ``sys.path`` entry's finder, a ``.pyc`` read and unmarshalled, its code run), and a
    class made; then ``sys.modules`` is as it was. A forked child's first import
    otherwise writes to ~170 pages it shares with the template (the import system's
    code and objects, the allocator's pools), each a copy-on-write fault, while its actor
    starts: an empty module's import took 0.56-0.87 ms and 171 faults in such a child,
    0.10-0.13 ms and 4-7 faults after this.

    Only the standard library's own file is imported: a file of the user's by that name
    found first on ``sys.path`` is never run. Returns the module imported, or None (each
    of them loaded already, by a preload say, or none of them found in the standard
    library)."""
    import os

    import _frozen_importlib_external as external  # the import system's own: loaded

    stdlib = getattr(sys, "_stdlib_dir", None)
    if not stdlib:
        return None
    for name in _WARM_MODULES:
        if name in sys.modules:
            continue
        spec = external.PathFinder.find_spec(name)
        origin = getattr(spec, "origin", None)
        if not isinstance(origin, str) or os.path.dirname(origin) != stdlib:
            continue
        loaded = set(sys.modules)
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a warm-up only: nothing depends on it
            continue
        finally:
            for new in set(sys.modules) - loaded:
                del sys.modules[new]

        class _Warm:
            def receive(self, msg):
                return msg

        _Warm().receive(None)
        return name
    return None


def freeze_for_fork():
    """What a process actor's template does once its set-up is done, just before it
    forks its first child: moves every object it has made into the collector's permanent
    generation (``gc.freeze``), so that a collection in a child never writes to them.
    Otherwise a child's first full collection writes the collector's header of every
    object it inherited, and each page of them becomes a private copy (a process actor
    grew by ~4.4 MB at its first ``gc.collect()``): the memory a child shares with the
    template stays shared. A frozen object that becomes garbage in a child is not
    collected there, which costs no more than the template's own memory; the template
    makes few objects after this (what it needs to fork), so it freezes once."""
    import gc

    gc.freeze()
