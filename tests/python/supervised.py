"""Actors for the supervision tests (tests/it/supervision.rs)."""

import os
import random
import time
import uuid

import subactor

# Module state: 1 after the first instance in a fresh interpreter, and counting up when
# an actor is restarted in the interpreter it kept.
INSTANCES = 0


class Flaky:
    """Counts messages; raises on "boom", loops on "spin", sleeps on ("sleep", s), and
    sums in C, holding the GIL, on ("csum", n).

    The constructor raises while the file ``refuse`` names exists.
    """

    def __init__(self, refuse=None):
        global INSTANCES
        INSTANCES += 1
        if refuse is not None and os.path.exists(refuse):
            raise RuntimeError(f"refusing to start while {refuse} exists")
        self.seen = 0

    def receive(self, msg):
        if msg == "boom":
            raise ValueError("boom on purpose")
        if msg == "spin":
            while True:
                pass
        if msg == "state":
            return (INSTANCES, self.seen)
        if isinstance(msg, tuple) and msg[0] == "sleep":
            time.sleep(msg[1])
            return "slept"
        if isinstance(msg, tuple) and msg[0] == "csum":
            # One long call into C that holds the GIL and never checks for exceptions.
            return sum(range(msg[1]))
        self.seen += 1
        return self.seen


class Faulty:
    """Processes integers, failing on a seeded random subset of them.

    Each instance appends what it processed to its own file in ``log_dir``, so that the
    test can check every message was processed exactly once or reported as failed. The
    file is opened for each line and closed at once: an instance ends with its
    interpreter (a restart, a kill), and a file left open would warn there.
    """

    def __init__(self, log_dir, seed, rate, crash_rate=0.0):
        self.seed = seed
        self.rate = rate
        # Only for process actors: crashing ends the process the actor runs in.
        self.crash_rate = crash_rate
        self.path = os.path.join(log_dir, f"{uuid.uuid4().hex}.log")

    def receive(self, n):
        if n == "flush":
            return "flushed"  # every line is written when its message is handled
        draw = random.Random(self.seed * 1_000_003 + n).random()
        if draw < self.rate:
            raise ValueError(f"injected failure {n}")
        if draw > 1.0 - self.crash_rate:
            import ctypes

            ctypes.string_at(0)
        with open(self.path, "a", encoding="ascii") as log:
            log.write(f"{n}\n")
        return n


class Watcher:
    """Monitors actors it is sent and keeps the Downs it receives."""

    def __init__(self):
        self.downs = []
        self.monitors = {}

    def receive(self, msg):
        if isinstance(msg, subactor.Down):
            self.downs.append(msg)
            return None
        op = msg[0]
        if op == "watch":
            ref = msg[1]
            self.monitors[ref.id] = subactor.monitor(ref)
            return self.monitors[ref.id]
        if op == "unwatch":
            ref = msg[1]
            return subactor.demonitor(ref, self.monitors.pop(ref.id))
        if op == "downs":
            return [(d.id, d.name, d.kind, d.detail, d.abnormal, d.reason) for d in self.downs]
        if op == "last":
            return self.downs[-1] if self.downs else None
        raise ValueError(f"unknown request {msg!r}")


class Asker:
    """Asks another actor and reports what happened, as the in-actor API raises it."""

    def receive(self, msg):
        target, request = msg
        try:
            return ("reply", target.ask(request, timeout=30.0))
        except subactor.ActorFailed as error:
            return ("failed", error.kind, str(error))
        except subactor.RemoteError as error:
            return ("remote", error.type_name, error.remote_message)


class Catcher:
    """A handler that swallows the interrupt, and one that reports it."""

    def receive(self, msg):
        if msg == "report":
            try:
                while True:
                    pass
            except subactor.Interrupted as interrupt:
                return type(interrupt).__name__
        return None
