"""Actor classes for the process-actor tests (tests/it/process.rs): they run in the
main interpreter of a child process."""

import os
import sys
import time

import subactor


class Where:
    """Answers where it runs: its pid, whether it is the main interpreter, numpy's sum,
    the cores its threads may run on."""

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
        if msg == "affinity":
            # The cores each thread of this process may run on.
            return [sorted(os.sched_getaffinity(int(task))) for task in os.listdir("/proc/self/task")]
        if msg == "imported":
            # What this process imported (the runtime preloads import_audit into its
            # template), and which of the modules a spare warms up with are loaded now.
            import import_audit

            mine = [name for pid, name in import_audit.IMPORTED if pid == os.getpid()]
            return [mine, [m for m in ("colorsys", "graphlib") if m in sys.modules]]
        if msg == "collect":
            # Private dirty memory (kB) before and after a full collection, and how many
            # objects the collector holds frozen.
            import gc

            before = private_dirty_kb()
            gc.collect()
            return [before, private_dirty_kb(), gc.get_freeze_count()]
        return msg


def private_dirty_kb():
    """This process's private dirty memory, kB."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    raise RuntimeError("no Private_Dirty in /proc/self/smaps_rollup")


class Crasher:
    """Crashes its process on demand; counts what it handled (the count is lost with the
    process)."""

    def __init__(self):
        self.handled = 0

    def receive(self, msg):
        self.handled += 1
        if msg == "segfault":
            __import__("ctypes").string_at(0)
        if isinstance(msg, tuple) and msg[0] == "segfault_after":
            time.sleep(msg[1])
            __import__("ctypes").string_at(0)
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


class Compiles:
    """Records what its process compiles from source from its constructor on (the
    ``compile`` audit event), and raises on demand (formatting an exception in a child
    uses the bootstrap's late parts)."""

    def __init__(self):
        self.compiled = []

        def hook(event, args):
            if event == "compile":
                self.compiled.append(str(args[1]))

        sys.addaudithook(hook)

    def receive(self, msg):
        if msg == "raise":
            raise ValueError("raised on purpose")
        return list(self.compiled)


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


def mapping_of(address):
    """(inode, offset in the file) of the mapping that holds `address` in this process."""
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return (int(fields[4]), int(fields[2], 16) + address - start, fields[1])
    raise LookupError(hex(address))


class Shared:
    """Looks at the arena buffers it is sent, holds them, makes its own."""

    def __init__(self):
        self.held = []

    def receive(self, msg):
        kind = msg[0]
        if kind == "where":
            import numpy as np

            buf = msg[1]
            array = np.frombuffer(buf, dtype=np.uint8)
            inode, offset, perms = mapping_of(array.ctypes.data)
            return (inode, offset, perms, bytes(array[:4]), len(buf), array.flags.writeable)
        if kind == "echo":
            return msg[1]
        if kind == "hold":
            self.held.append(memoryview(msg[1]))
            return len(self.held)
        if kind == "len":
            return len(msg[1])
        if kind == "let go":
            for view in self.held:
                view.release()
            self.held.clear()
            return 0
        if kind == "alloc":
            _, size, head = msg
            draft = subactor.alloc(size)
            memoryview(draft)[: len(head)] = head
            return draft.freeze()
        if kind == "unfrozen":
            _, target = msg
            try:
                target.tell(subactor.alloc(8))
            except Exception as error:  # noqa: BLE001 - the test reads what was raised
                return (type(error).__name__, str(error))
            return "sent"
        if kind == "pid":
            return os.getpid()
        raise ValueError(kind)
