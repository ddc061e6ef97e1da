"""Ctrl-C while the main thread runs an ask to an idle process actor itself (it talks
to the child directly): the ask is left to the actor's thread, the runtime closes."""

import subactor
from sa_actors import Spinner

with subactor.Runtime() as rt:
    spinner = rt.spawn(Spinner, placement="process")
    spinner.ask(0.0)  # started, and idle
    print("ready", flush=True)
    try:
        spinner.ask(120.0, timeout=120)
    finally:
        print("interrupted", flush=True)
print("not reached", flush=True)
