"""Definitions actors cannot import (issue 15, item 2): classes and functions of a REPL,
``python -c``, a Jupyter notebook or a function's body are spawned as actors, run as
executor tasks and sent in messages, by value (cloudpickle); what actors can import
still travels by reference."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

import subactor
from conftest import SCRIPTS, run_script
from sa_actors import Echo, interpreter_id

# One program for python -c, the REPL and the notebook: definitions of the session,
# used as actors, executor tasks and messages; prints one line per check.
SESSION = '''
import dataclasses, fractions, subactor

@dataclasses.dataclass
class Point:
    x: int
    y: int

class Accumulator:
    def __init__(self, start):
        self.total = start
    def receive(self, point):
        self.total += point.x + point.y
        return Point(self.total, -1)

def double(value):
    return value * 2

rt = subactor.Runtime()
acc = rt.spawn(Accumulator, 10)
reply = acc.ask(Point(1, 2), timeout=60)
print("actor:", reply, type(reply) is Point)
with rt.executor(workers=2) as ex:
    print("map:", list(ex.map(double, range(5))))
    print("chunks:", list(ex.map(double, range(5), chunksize=2)))
    print("lambda:", ex.submit(lambda v: v + 1, 41).result(timeout=60))
    print("made there:", ex.submit(lambda: Point(3, 4)).result(timeout=60) == Point(3, 4))
print("nested:", acc.ask(Point(fractions.Fraction(1, 2), 0), timeout=60))
sup = rt.spawn(subactor.SupervisorSpec([subactor.ChildSpec(Accumulator, 100)]))
print("supervised:", sup.child(0).ask(Point(1, 1), timeout=60))
rt.close()
'''

EXPECTED = [
    "actor: Point(x=13, y=-1) True",
    "map: [0, 2, 4, 6, 8]",
    "chunks: [0, 2, 4, 6, 8]",
    "lambda: 42",
    "made there: True",
    "nested: Point(x=Fraction(27, 2), y=-1)",
    "supervised: Point(x=102, y=-1)",
]


def checks(output: str) -> list[str]:
    return [line.strip(">. ") for line in output.splitlines() if line.strip(">. ").split(":")[0] in {
        "actor", "map", "chunks", "lambda", "made there", "nested", "supervised"
    }]


def test_python_dash_c() -> None:
    result = run_script("-c", SESSION)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checks(result.stdout) == EXPECTED


def test_the_interactive_interpreter() -> None:
    # The REPL itself (python -i), fed the session line by line.
    lines = [line for line in SESSION.splitlines() if line.strip()]
    # A blank line ends each block at the top level, as typing it would.
    source = ""
    for line, following in zip(lines, lines[1:] + [""]):
        source += line + "\n"
        if line.startswith(" ") and not following.startswith(" "):
            source += "\n"
    result = subprocess.run(
        [sys.executable, "-i", "-q"], input=source, capture_output=True, text=True, timeout=120, cwd=SCRIPTS
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert checks(result.stdout + result.stderr) == EXPECTED, result.stdout + result.stderr


def test_a_jupyter_notebook() -> None:
    """A real kernel (ipykernel) executes the session as notebook cells (nbclient)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook()
    # The kernel is this interpreter (jupyter_client runs the native kernel with
    # sys.executable): check it, then run the session split in cells at its blank lines.
    cells = ["import sys\nprint('kernel:', sys.prefix)"] + [cell for cell in SESSION.split("\n\n") if cell.strip()]
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3")
    client.execute()
    outputs = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            if output.get("name") == "stdout":
                outputs.append(output["text"])
    text = "".join(outputs)
    assert f"kernel: {sys.prefix}" in text
    assert checks(text) == EXPECTED


def test_a_class_and_a_function_defined_in_a_function(rt: subactor.Runtime) -> None:
    @dataclasses.dataclass
    class Pair:
        left: Any
        right: Any

    class Local:
        def receive(self, msg: Any) -> Any:
            return Pair(msg, interpreter_id())

    def swap(pair: Pair) -> Pair:
        return Pair(pair.right, pair.left)

    reply = rt.spawn(Local).ask("hi", timeout=60)
    assert type(reply) is Pair and reply.left == "hi"
    assert reply.right != interpreter_id()  # built in the actor's interpreter
    with rt.executor(workers=1) as ex:
        assert ex.submit(swap, Pair(1, 2)).result(timeout=60) == Pair(2, 1)


def test_importable_definitions_still_travel_by_reference() -> None:
    from subactor import _shipping

    assert _shipping.reference(Echo) == ("sa_actors", "Echo")
    assert _shipping.reference(interpreter_id) == ("sa_actors", "interpreter_id")
    assert _shipping.reference(pow) == ("builtins", "pow")
    assert _shipping.spawn_target(Echo) == ("sa_actors", "Echo", ())

    class Local:
        pass

    assert _shipping.reference(Local) is None
    assert _shipping.reference(lambda: None) is None
    module, name, leading = _shipping.spawn_target(Local)
    assert (name, leading) == ("make", (Local,)) and module.endswith("_subactor_byvalue.py")


def test_cloudpickle_works_in_an_own_gil_interpreter(rt: subactor.Runtime) -> None:
    """The by-value payloads are read in actors: cloudpickle imports and runs in an
    own-GIL subinterpreter."""
    answer = rt.spawn(Echo).ask(lambda: "unused", timeout=60)
    assert callable(answer) and answer() == "unused"  # there and back, by value
