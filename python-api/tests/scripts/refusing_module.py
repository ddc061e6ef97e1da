"""Imports an extension module that refuses own-GIL interpreters (as numpy does)."""

import faulthandler  # noqa: F401  (single-phase init: refused in own-GIL interpreters)


class Anything:
    def receive(self, msg):
        return msg
