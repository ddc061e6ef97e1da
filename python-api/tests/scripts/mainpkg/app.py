"""Run with `python -m mainpkg.app`: its classes live in __main__ too."""

import subactor

print(f"top-level {__name__}", flush=True)


class Greeter:
    def receive(self, who):
        return f"hello {who} from {__name__}"


if __name__ == "__main__":
    print("main block", flush=True)
    with subactor.Runtime() as rt:
        print(rt.spawn(Greeter).ask("main"), flush=True)
