"""Actors for the warm pool's tests: this module remembers the name the OS gave the
thread that imported it (a warm pool's ``subactor-warm`` thread when it was imported in
advance, the actor's ``actor:...`` when its spawn imported it: the same thread, renamed
when an actor takes it) and how often it was imported in this interpreter."""

import sys
import threading


def os_thread_name():
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
        return comm.read().strip()


IMPORTED_ON = os_thread_name()
IMPORTS = getattr(sys, "_warm_probe_imports", 0) + 1
sys._warm_probe_imports = IMPORTS  # type: ignore[attr-defined]


class Where:
    """Answers the name of the thread that imported this module, and how often it was
    imported in this interpreter."""

    def __init__(self, tag=None):
        self.tag = tag

    def receive(self, msg):
        return [IMPORTED_ON, IMPORTS, self.tag]
