"""Ctrl-C while the main thread waits for a spawn whose constructor is slow: the spawn is
given up at once, and its actor is killed once its constructor has returned."""

import sys
import time

import subactor
from sa_actors import SlowStart

placement = sys.argv[1]
with subactor.Runtime() as rt:
    print("ready", flush=True)
    try:
        rt.spawn(SlowStart, 8.0, name="slow", placement=placement)
        print("not reached", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print("starting" if rt.lookup("slow") is not None else "not starting", flush=True)
    deadline = time.monotonic() + 60
    while rt.lookup("slow") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    print("gone" if rt.lookup("slow") is None else "still there", flush=True)
