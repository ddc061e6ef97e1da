"""Spawns an actor that imports numpy while the main interpreter has not imported it:
CPython would run numpy's single-phase init inside the actor's interpreter (and abort
the process) unless subactor refuses numpy before it loads."""

import sys

import subactor

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from sa_actors import NumpyUser  # noqa: E402

if __name__ == "__main__":
    assert "numpy" not in sys.modules
    with subactor.Runtime() as rt:
        try:
            rt.spawn(NumpyUser, placement="interpreter")
        except subactor.IncompatibleExtension as error:
            print("refused:", error.module)
        import numpy  # the main interpreter can still use it

        print("main has numpy", numpy.__version__ != "")
