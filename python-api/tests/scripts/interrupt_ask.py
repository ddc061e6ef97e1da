"""Ctrl-C while the main thread waits for a busy actor."""

import subactor
from sa_actors import Spinner

with subactor.Runtime() as rt:
    spinner = rt.spawn(Spinner)
    spinner.tell(120.0)
    print("ready", flush=True)
    try:
        spinner.ask(0.0, timeout=120)
    finally:
        print("interrupted", flush=True)
print("not reached", flush=True)
