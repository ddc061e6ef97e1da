"""Actor classes and task functions for the tests: imported by the tests (main
interpreter) and by actors and executor workers (their own interpreters)."""

import dataclasses
import os
import sys
import time


class Counter:
    def __init__(self, start=0):
        self.total = start

    def receive(self, n):
        self.total += n
        return self.total


class Echo:
    def receive(self, msg):
        return msg


class Raiser:
    def __init__(self):
        self.handled = 0

    def receive(self, msg):
        self.handled += 1
        if msg == "raise":
            raise ValueError("raised on purpose")
        return self.handled


class Spinner:
    """Runs pure-Python code for `secs` seconds (interruptible by a kill)."""

    def receive(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            pass
        return secs


class Sleeper:
    def receive(self, secs):
        time.sleep(secs)
        return secs


class SlowStart:
    """Its constructor takes ``secs`` seconds."""

    def __init__(self, secs):
        time.sleep(secs)

    def receive(self, msg):
        return msg


class BrokenInit:
    def __init__(self):
        raise RuntimeError("constructor fails on purpose")

    def receive(self, msg):
        return msg


class NoReceive:
    pass


class InActor:
    """Reports what `import subactor` gives inside an actor."""

    def receive(self, msg):
        import importlib

        import subactor

        return {
            "name": subactor.__name__,
            "same_module": importlib.import_module("subactor") is subactor,
            "self_ref": subactor.self_ref(),
            "has_runtime": hasattr(subactor, "Runtime"),
            "native_loaded": "subactor._native" in sys.modules,
            "has_spawn": callable(getattr(subactor, "spawn", None)),
            "sys_path": list(sys.path),
        }


class Spawner:
    """Spawns a child from inside an actor (the in-actor API) and asks it."""

    def receive(self, msg):
        import subactor

        child = subactor.spawn("sa_actors", "Counter", 10)
        return (child, child.ask(msg))


class Outer:
    class Inner:
        def receive(self, msg):
            return ("inner", msg)


class BufferWorker:
    """Reads a Buffer it is sent; allocates one when sent None."""

    def receive(self, buf):
        import subactor

        if buf is None:
            out = subactor.alloc(5)
            memoryview(out)[:] = b"actor"
            return out.freeze()
        return (buf.address, len(buf), bytes(buf[:4]))


class NumpyUser:
    """Needs numpy, which refuses own-GIL interpreters: it cannot start in an actor."""

    def __init__(self) -> None:
        import numpy

        self.numpy = numpy

    def receive(self, msg):
        return msg


class Doubler:
    def receive(self, x):
        if x == 13:
            raise ValueError("13 is unlucky")
        return x * 2


class Plus1:
    def receive(self, x):
        return x + 1


class Stateful:
    """Counts its messages; raises on "fail" (to test restarts: the count resets)."""

    def __init__(self):
        self.seen = 0

    def receive(self, msg):
        self.seen += 1
        if msg == "fail":
            raise RuntimeError("failing on purpose")
        return self.seen


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


class TaskError(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("this exception does not pickle")


# ---- executor tasks ----------------------------------------------------------------------


def square(x):
    return x * x


def add(a, b=0, *, c=0):
    return a + b + c


def fail(code):
    raise TaskError(code, "task failed on purpose")


def fail_unpicklable():
    raise Unpicklable("cannot cross")


def interpreter_id(_=None):
    try:
        import _interpreters as interpreters
    except ImportError:
        import _xxsubinterpreters as interpreters  # type: ignore[import-not-found,no-redef,unused-ignore]
    current = interpreters.get_current()
    return int(current[0] if isinstance(current, tuple) else current)


def cpu(seconds):
    """Consumes `seconds` of this thread's CPU time in pure Python; returns the wall
    time it took (about the same with a GIL of its own, twice as long when sharing)."""
    start = time.perf_counter()
    begin = time.thread_time()
    while time.thread_time() - begin < seconds:
        pass
    return time.perf_counter() - start


def spin_holding_gil(seconds):
    """Runs pure Python for `seconds` without letting any other thread of this
    interpreter's GIL run (a 100 s switch interval); returns (start, end)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            pass
        return (start, time.monotonic())
    finally:
        sys.setswitchinterval(old)


def stamp_after(seconds):
    """Sleeps (GIL released), then says when it got its GIL back."""
    time.sleep(seconds)
    return time.monotonic()


class GilHog:
    def receive(self, seconds):
        return spin_holding_gil(seconds)


class Stamper:
    def receive(self, seconds):
        return stamp_after(seconds)


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def import_refusing():
    import faulthandler  # noqa: F401  (refuses own-GIL interpreters)


def make_point(x, y):
    return Point(x, y)


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, x):
        return x * self.factor


# ---- executor initializers -----------------------------------------------------------------

INIT_CALLS = 0
INIT_VALUE = None


def init_worker(value):
    """An executor initializer: records its argument and how often it ran here."""
    global INIT_CALLS, INIT_VALUE
    INIT_CALLS += 1
    INIT_VALUE = value


def init_state(_=None):
    """(this interpreter's id, the initializer's calls here, its value)."""
    return (interpreter_id(), INIT_CALLS, INIT_VALUE)


class InitError(Exception):
    pass


def init_fails(message):
    time.sleep(0.1)  # let tasks queue meanwhile
    raise InitError(message)


def spin(seconds):
    """Pure Python for `seconds` (a kill interrupts it)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return seconds


def ignore(*args, **kwargs):
    return None


def put(queue, item):
    queue.put(item)
    return item


class Tracked:
    """An object the tests watch with a weak reference."""

    def method(self):
        return 1

    def __call__(self, x):
        return x


class ArgumentProbe:
    """Calls the in-actor module with bad arguments; answers what each raised."""

    def receive(self, _):
        import subactor

        other = subactor.spawn("sa_actors", "Echo")
        calls = {
            "alloc(-1)": lambda: subactor.alloc(-1),
            "alloc(True)": lambda: subactor.alloc(True),
            "alloc(1.5)": lambda: subactor.alloc(1.5),
            "ask(timeout=-1)": lambda: other.ask(1, timeout=-1),
            "ask(timeout=True)": lambda: other.ask(1, timeout=True),
            "ask(timeout=1e19)": lambda: other.ask(1, timeout=1e19),
            "send_after(-1)": lambda: subactor.send_after(-1, other, 1),
            "send_after(True)": lambda: subactor.send_after(True, other, 1),
            "send_after(1e19)": lambda: subactor.send_after(1e19, other, 1),
            "cancel_timer(-1)": lambda: subactor.cancel_timer(-1),
            "cancel_timer('x')": lambda: subactor.cancel_timer("x"),
            "demonitor(-1)": lambda: subactor.demonitor(other, -1),
            "spawn(name='')": lambda: subactor.spawn("sa_actors", "Echo", name=""),
            "spawn(name=1)": lambda: subactor.spawn("sa_actors", "Echo", name=1),
        }
        answers = {}
        for label, call in calls.items():
            try:
                call()
                answers[label] = ("accepted", "")
            except Exception as exc:
                answers[label] = (type(exc).__name__, str(exc))
        other.stop()
        return answers


def pid_then_numpy(x, first):
    """``(x, process id)``; from ``x >= first`` on, after importing numpy (which refuses
    own-GIL interpreters)."""
    if x >= first:
        import numpy

        x = int(numpy.int64(x))
    return x, os.getpid()


class Logs:
    """Logs what it is sent with Python's ``logging``, at the level named."""

    def receive(self, msg: tuple[str, str]) -> str:
        import logging

        level, text = msg
        logging.getLogger("sa.logs").log(getattr(logging, level), "logged %s", text)
        return text


class Relay:
    """Asks the actor it is sent (``(ref, msg)``) and answers with the reply: a chain of
    handlers, for traces."""

    def receive(self, msg):
        to, inner = msg
        return to.ask(inner)


class _Node:
    """A cyclic object: refers to itself."""

    def __init__(self):
        self.me = self


class GcProbe:
    """Answers how the collector stands in its interpreter, and whether cyclic garbage
    made in its constructor and in a handler is collected."""

    def __init__(self):
        import weakref

        self.from_init = weakref.ref(_Node())

    def receive(self, msg):
        import gc
        import weakref

        if msg == "state":
            return gc.isenabled(), gc.get_freeze_count()
        from_handler = weakref.ref(_Node())
        gc.collect()
        return self.from_init() is None, from_handler() is None
