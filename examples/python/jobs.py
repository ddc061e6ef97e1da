"""Workers for the supervised example (examples/supervised.rs).

A record is ``"kind:payload"``. ``ok`` records are scored (CPU-bound pure Python);
``bad`` records are corrupt and make the worker raise; ``hang`` records send it into a
loop that never ends, which its time limit interrupts. Either way the supervisor
restarts the worker in a fresh interpreter and the pipeline goes on.
"""


class Scorer:
    def __init__(self) -> None:
        self.handled = 0

    def receive(self, record: str) -> int:
        kind, _, payload = record.partition(":")
        if kind == "bad":
            raise ValueError(f"corrupt record {payload!r}")
        if kind == "hang":
            while True:
                pass
        self.handled += 1
        n = int(payload)
        return sum(i * i % 7 for i in range(n))
