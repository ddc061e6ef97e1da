"""A main script whose actor class, task function and data class live in __main__."""

import dataclasses
import sys

import subactor

print(f"top-level {__name__}", flush=True)


@dataclasses.dataclass
class Job:
    n: int


class Summer:
    def __init__(self):
        self.total = 0

    def receive(self, job):
        self.total += job.n
        return Job(self.total)  # a __main__ class going back


def cube(x):
    return x**3


if __name__ == "__main__":
    print("main block", flush=True)
    with subactor.Runtime() as rt:
        summer = rt.spawn(Summer)
        summer.tell(Job(2))
        print("actor:", summer.ask(Job(3)), flush=True)
        with rt.executor(workers=2) as ex:
            print("executor:", list(ex.map(cube, range(5))), flush=True)
    sys.exit(0)
