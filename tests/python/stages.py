"""Pipeline stages for tests/it/pipeline.rs."""

import time

import subactor


class Double:
    def receive(self, n):
        return n * 2


class AddOne:
    def receive(self, n):
        return n + 1


class Refuse:
    """Raises on multiples of `every`."""

    def __init__(self, every):
        self.every = every

    def receive(self, n):
        if n % self.every == 0:
            raise ValueError(f"{n} is refused")
        return n


class Delay:
    """Sleeps, then answers its own actor id (to see who handled what)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def receive(self, _item):
        if self.seconds:
            time.sleep(self.seconds)
        return subactor.self_ref().id


class Measure:
    """A payload in, its length out."""

    def receive(self, payload):
        return len(payload)


class Slow:
    """Pure-Python work per item, so that it is the pipeline's bottleneck."""

    def receive(self, n):
        total = 0
        for i in range(40):
            total += i
        return n
