"""Ctrl-C with a runtime left open: the interpreter's exit closes it."""

import subactor
from sa_actors import Spinner

rt = subactor.Runtime()
spinners = [rt.spawn(Spinner) for _ in range(2)]
for spinner in spinners:
    spinner.tell(120.0)
print("ready", flush=True)
try:
    spinners[0].ask(0.0, timeout=120)
finally:
    print("interrupted", flush=True)
