"""Actors that use the in-actor module `subactor` (tests/it/talking.rs)."""

import threading
import time

import subactor


class Me:
    """Knows itself."""

    def receive(self, msg):
        if msg == "ref":
            return subactor.self_ref()
        if msg == "name":
            return subactor.self_ref().name
        if msg == "ask_self":
            started = time.monotonic()
            try:
                subactor.self_ref().ask("name", timeout=10)
            except subactor.SelfAskError as error:
                return ("refused", isinstance(error, subactor.ActorError), time.monotonic() - started)
            return ("answered",)
        if msg == "tell_self":
            subactor.self_ref().tell("name")
            return True
        raise ValueError(f"unknown request {msg!r}")


class Relay:
    """Does what the message says with the references in it."""

    def receive(self, msg):
        op = msg["op"]
        ref = msg["to"]
        if op == "tell":
            ref.tell(msg["payload"])
            return True
        if op == "ask":
            return ref.ask(msg["payload"], timeout=msg.get("timeout", 10.0))
        if op == "ask_timeout":
            try:
                ref.ask(msg["payload"], timeout=msg["timeout"])
            except subactor.AskTimeout as error:
                return ("timeout", isinstance(error, TimeoutError))
            return ("answered",)
        if op == "remote_error":
            try:
                ref.ask(msg["payload"])
            except subactor.RemoteError as error:
                return (error.type_name, error.remote_message, "in receive" in error.remote_traceback)
            return ("no error",)
        if op == "stopped":
            try:
                ref.ask(msg["payload"])
            except subactor.ActorStopped:
                return "stopped"
            return "answered"
        if op == "describe":
            return (type(ref).__name__, ref.id, ref.name, ref == msg["same"], hash(ref) == hash(msg["same"]))
        raise ValueError(op)


class Finder:
    """Looks actors up by name."""

    def receive(self, name):
        return subactor.lookup(name)


class Parent:
    """Spawns children from inside an actor."""

    def __init__(self):
        self.children = []

    def receive(self, msg):
        op = msg[0]
        if op == "spawn":
            _, module, cls, args, name = msg
            child = subactor.spawn(module, cls, *args, name=name)
            self.children.append(child)
            return child
        if op == "spawn_error":
            _, module, cls = msg
            try:
                subactor.spawn(module, cls)
            except subactor.SpawnError as error:
                return str(error)
            return "spawned"
        if op == "ask_children":
            return [child.ask(msg[1], timeout=10) for child in self.children]
        raise ValueError(op)


class Timer:
    """Schedules and cancels delayed messages."""

    def receive(self, msg):
        op = msg[0]
        if op == "after":
            _, delay, ref, payload = msg
            return subactor.send_after(delay, ref, payload)
        if op == "cancel":
            return subactor.cancel_timer(msg[1])
        raise ValueError(op)


class AskWhileThreadsRun:
    """Asks a slow actor while a Python thread of this interpreter counts; the thread
    can only count during the ask if the ask released this interpreter's GIL."""

    def receive(self, msg):
        ref, seconds = msg
        stamps = []
        done = threading.Event()

        def count():
            while not done.is_set():
                stamps.append(time.monotonic())

        thread = threading.Thread(target=count)
        thread.start()
        start = time.monotonic()
        ref.ask(seconds, timeout=30)
        end = time.monotonic()
        done.set()
        thread.join()
        margin = seconds / 5
        return sum(1 for t in stamps if start + margin < t < end - margin)


class Ping:
    """Python -> Python ping-pong: asks the pong actor `n` times."""

    def receive(self, msg):
        pong, n = msg
        times = []
        for i in range(n):
            start = time.perf_counter()
            pong.ask(i)
            times.append(time.perf_counter() - start)
        return times


class Introspect:
    """Answers the public names of the in-actor module."""

    def receive(self, _msg):
        return sorted(name for name in dir(subactor) if not name.startswith("_"))
