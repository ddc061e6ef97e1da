"""Ctrl-C while the main thread waits for executor results."""

import subactor
from sa_actors import cpu

with subactor.Runtime() as rt:
    with rt.executor(workers=2) as ex:
        futures = [ex.submit(cpu, 60.0) for _ in range(6)]
        print("ready", flush=True)
        try:
            [f.result() for f in futures]
        finally:
            print("interrupted", flush=True)
