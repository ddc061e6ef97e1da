"""Actor classes for the process-actor tests (tests/it/process.rs): they run in the
main interpreter of a child process."""

import ctypes
import os
import sys
import time

import subactor


class Where:
    """Answers where it runs: its pid, whether it is the main interpreter, numpy's sum."""

    def receive(self, msg):
        if msg == "pid":
            return os.getpid()
        if msg == "main":
            import threading

            return threading.current_thread() is threading.main_thread()
        if msg == "numpy":
            import numpy

            a = numpy.arange(1000, dtype=numpy.float64)
            return float((a * 2).sum())
        if msg == "self":
            return subactor.self_ref()
        return msg


class Crasher:
    """Crashes its process on demand; counts what it handled (the count is lost with the
    process)."""

    def __init__(self):
        self.handled = 0

    def receive(self, msg):
        self.handled += 1
        if msg == "segfault":
            ctypes.string_at(0)
        if isinstance(msg, tuple) and msg[0] == "segfault_after":
            time.sleep(msg[1])
            ctypes.string_at(0)
        if msg == "exit":
            os._exit(7)
        if msg == "raise":
            raise ValueError("raised on purpose")
        if msg == "pid":
            return os.getpid()
        return (msg, self.handled)


class Sleeper:
    def receive(self, msg):
        if msg == "pid":
            return os.getpid()
        if msg == "spin":
            while True:
                pass
        if msg == "stuck":
            # Ignores the interrupt: only a SIGKILL ends it.
            while True:
                try:
                    time.sleep(10)
                except BaseException:
                    pass
        if isinstance(msg, (int, float)):
            time.sleep(msg)
        return msg


class Hog:
    """Allocates memory on demand."""

    def receive(self, mib):
        block = bytearray(mib << 20)
        return len(block)


class Caller:
    """Talks to other actors from a process actor."""

    def __init__(self, peer=None):
        self.peer = peer

    def receive(self, msg):
        kind = msg[0]
        if kind == "ask":
            _, target, payload = msg
            return target.ask(payload, timeout=10.0)
        if kind == "tell":
            _, target, payload = msg
            target.tell(payload)
            return True
        if kind == "lookup":
            return subactor.lookup(msg[1])
        if kind == "spawn":
            _, module, cls, placement = msg
            child = subactor.spawn(module, cls, placement=placement)
            return child
        if kind == "peer":
            return self.peer.ask(msg[1], timeout=10.0)
        if kind == "self_tell":
            subactor.self_ref().tell(msg[1])
            return True
        if kind == "monitor":
            return subactor.monitor(msg[1])
        if kind == "send_after":
            _, delay, target, payload = msg
            return subactor.send_after(delay, target, payload)
        if kind == "name":
            return subactor.self_ref().name
        return msg
