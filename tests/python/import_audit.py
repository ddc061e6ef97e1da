"""Preloaded into a process actors' template by tests: records the name of every module
imported from then on (the ``import`` audit event), with the importing process's pid, in
the template and in each child forked from it, so that a test can see what a child
imported before its actor started."""

import os
import sys

IMPORTED = []


def _hook(event, args):
    if event == "import":
        IMPORTED.append((os.getpid(), args[0]))


sys.addaudithook(_hook)
