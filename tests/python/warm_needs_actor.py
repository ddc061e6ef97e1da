"""A module whose top-level code needs its actor: ``subactor.self_ref()`` raises
``ActorStopped`` while a warm pool imports it in advance (no actor yet), and works when
an actor's spawn imports it."""

import subactor
from warm_probe import os_thread_name

ME = subactor.self_ref()
IMPORTED_ON = os_thread_name()


class Named:
    """Answers the name of the actor that imported this module, and its thread."""

    def receive(self, msg):
        return [ME.name, IMPORTED_ON]
