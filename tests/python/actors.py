"""Actor classes that the integration tests (tests/it) spawn."""

import mmap
import os
import sys
import time

HITS = 0


class Echo:
    """Answers every message with itself."""

    def receive(self, msg):
        return msg


class Counter:
    def __init__(self, start=0):
        self.total = start

    def receive(self, n):
        self.total += n
        return self.total


class Recorder:
    """Keeps what it is told; answers "get" with everything kept so far."""

    def __init__(self):
        self.seen = []

    def receive(self, msg):
        if msg == "get":
            return self.seen
        self.seen.append(msg)
        return len(self.seen)


class Globals:
    """Bumps a module global: each interpreter has its own module, so its own count."""

    def receive(self, _msg):
        global HITS
        HITS += 1
        return HITS


class Imported:
    """Answers whether a module is imported in this interpreter."""

    def receive(self, name):
        return name in sys.modules


class CompileWarnings:
    """Imports the module ``name`` with no ``.pyc`` written (nor read: its folder has
    none) and answers ``(SyntaxWarnings raised compiling it, its VALUE)``: a module that
    compiles with a warning warns again each time it is compiled, not when its code
    comes from the process's code cache."""

    def __init__(self, name):
        import warnings

        sys.dont_write_bytecode = True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = __import__(name)
        self.answer = (sum(issubclass(w.category, SyntaxWarning) for w in caught), module.VALUE)

    def receive(self, msg):
        return self.answer


class Whoami:
    """Answers the id of the interpreter it runs in."""

    def receive(self, _msg):
        if sys.version_info >= (3, 13):
            import _interpreters

            return _interpreters.get_current()[0]
        import _xxsubinterpreters

        return int(_xxsubinterpreters.get_current())


class Failure(Exception):
    """An exception type of the test module, to check qualified names."""


class Raiser:
    def receive(self, msg):
        if msg == "value":
            raise ValueError("bad value: 42")
        if msg == "custom":
            helper_that_raises()
        if msg == "exit":
            raise SystemExit(3)
        if msg == "chained":
            try:
                {}["missing"]
            except KeyError as error:
                raise RuntimeError("lookup failed") from error
        if msg == "group":
            raise ExceptionGroup("several", [ValueError("one"), TypeError("two")])
        return "ok"


def helper_that_raises():
    raise Failure("custom failure from a helper")


class Sleeper:
    """Sleeps for the seconds it receives (time.sleep releases the GIL)."""

    def __init__(self):
        self.handled = 0

    def receive(self, seconds):
        if seconds == "handled":
            return self.handled
        time.sleep(seconds)
        self.handled += 1
        return self.handled


class Samples:
    """Answers a sample of every kind of value, built in Python."""

    def receive(self, what):
        import collections
        import fractions

        if what == "plain":
            return {
                "none": None,
                "true": True,
                "int": -7,
                "big": 2**200 + 1,
                "negative_big": -(2**100),
                "int64_edge": [2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64],
                "float": 1.5,
                "str": "héllo ✓ 🌍 日本",
                "bytes": b"\x00\xff\xfe",
                "list": [1, [2, [3]]],
                "tuple": (1, ("a",), ()),
                "set": {1, 2},
                "frozenset": frozenset({"x"}),
                "dict_keys": {(1, 2): "tuple key", 3: "int key", None: "none key"},
            }
        if what == "fraction":
            return fractions.Fraction(1, 3)
        if what == "ordered":
            return collections.OrderedDict([("b", 1), ("a", 2)])
        if what == "surrogate":
            return "a\udcffb"
        if what == "cycle":
            items = []
            items.append(items)
            return items
        if what == "dict_cycle":
            d = {}
            d["self"] = [d]
            return d
        if what == "deep":
            value = None
            for _ in range(600):
                value = [value]
            return value
        if what == "lock":
            import threading

            return threading.Lock()
        if what == "generator":
            # Not picklable by any means (a lambda is: by value, with cloudpickle).
            return (n for n in range(3))
        raise KeyError(what)


class Describe:
    """Answers (type name, repr) of what it receives, as seen in its interpreter."""

    def receive(self, msg):
        kind = type(msg)
        return (f"{kind.__module__}.{kind.__qualname__}", repr(msg))


class RaisingInit:
    def __init__(self, *args):
        raise RuntimeError(f"refusing to start with {args!r}")


class LazyRefusal:
    """Imports an extension that refuses own-GIL interpreters in its constructor."""

    def __init__(self):
        import faulthandler  # noqa: F401

    def receive(self, msg):
        return msg


class NoReceive:
    pass


NOT_A_CLASS = 42


class SpinOnSharedMemory:
    """Spins in pure Python, holding its GIL, until another actor writes a byte.

    The switch interval is raised so that this interpreter never hands its GIL over:
    if actors shared one GIL, the writer could not run until the deadline passed.
    """

    def receive(self, msg):
        path, timeout = msg
        with open(path, "r+b") as f:
            shared = mmap.mmap(f.fileno(), 1)
        old = sys.getswitchinterval()
        sys.setswitchinterval(1000.0)
        try:
            deadline = time.monotonic() + timeout
            while shared[0] == 0:
                if time.monotonic() > deadline:
                    return False
            return True
        finally:
            sys.setswitchinterval(old)
            shared.close()


class WriteSharedMemory:
    def receive(self, path):
        with open(path, "r+b") as f:
            shared = mmap.mmap(f.fileno(), 1)
        shared[0] = 1
        shared.close()
        return True


class Stdlib:
    """Uses the modules whose C accelerators are kept out of actor interpreters."""

    def receive(self, _msg):
        import asyncio
        import datetime
        import decimal
        import zoneinfo

        stamp = datetime.datetime(2024, 3, 31, 12, tzinfo=zoneinfo.ZoneInfo("UTC"))
        total = asyncio.run(_add(2, 3))
        return (stamp.isoformat(), str(decimal.Decimal(1) / 8), total)


async def _add(a, b):
    return a + b


class Placement:
    """Answers the CPU cores its thread may run on."""

    def receive(self, _msg):
        return sorted(os.sched_getaffinity(0))


class Heavy:
    """Imports a good part of the standard library (what a service actor would), so
    that its interpreter ends with several allocator arenas in use."""

    def __init__(self):
        import asyncio, collections, dataclasses, json, re, threading, typing  # noqa: F401, E401

    def receive(self, msg):
        return msg


class StartFaults:
    """Answers how many minor page faults its thread had taken when asked: its
    interpreter's creation and its own start (a fresh thread per cold spawn)."""

    def receive(self, _msg):
        import threading

        with open(f"/proc/self/task/{threading.get_native_id()}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[7])  # minflt: field 10 of stat, the 8th after the name


class ErrorNames:
    """Answers how the in-actor module's lazily made classes name themselves, and what
    an exception of theirs comes back as through pickle."""

    def receive(self, msg):
        import pickle

        import subactor

        names = [f"{c.__module__}.{c.__qualname__}" for c in (subactor.ActorStopped, subactor.RemoteError, subactor.Down)]
        back = pickle.loads(pickle.dumps(subactor.ActorStopped("gone")))
        return [names, type(back) is subactor.ActorStopped, str(back)]
