"""The package itself: what `import subactor` gives where, its exports, its stub, and
the README's example."""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import subactor
from conftest import run_script
from sa_actors import InActor

PACKAGE = Path(subactor.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[2]


def test_inside_an_actor_import_subactor_gives_the_in_actor_module(rt: subactor.Runtime) -> None:
    report = rt.spawn(InActor).ask(None)
    assert report["name"] == "subactor"
    assert report["same_module"] is True
    assert isinstance(report["self_ref"], subactor.ActorRef)
    assert report["has_spawn"] is True
    assert report["has_runtime"] is False  # not this package
    assert report["native_loaded"] is False  # the extension was never loaded there
    # ... although the installed package is on the actor's sys.path.
    assert any(Path(p).resolve() == PACKAGE.parent for p in report["sys_path"] if p and os.path.isdir(p))


def test_importing_the_package_in_another_subinterpreter_is_refused() -> None:
    code = """
import sys
try:
    import _interpreters as interpreters
except ImportError:
    import _xxsubinterpreters as interpreters
interp = interpreters.create()
script = '''
try:
    import subactor
except ImportError as exc:
    import sys
    sys.modules["__main__"].RESULT = ("refused", str(exc), "subactor._native" in sys.modules)
'''
interpreters.run_string(interp, script)
interpreters.run_string(interp, "import sys; assert sys.modules['__main__'].RESULT[0] == 'refused', RESULT")
interpreters.run_string(interp, "import sys; assert 'in-actor module' in sys.modules['__main__'].RESULT[1]")
interpreters.run_string(interp, "import sys; assert sys.modules['__main__'].RESULT[2] is False")
interpreters.destroy(interp)
print("ok")
"""
    result = run_script("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_all_exports_exist() -> None:
    for name in subactor.__all__:
        assert hasattr(subactor, name), name
    assert len(set(subactor.__all__)) == len(subactor.__all__)
    assert (PACKAGE / "py.typed").exists()


def _stub_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
    return names


def test_the_native_stub_matches_the_module() -> None:
    stub = _stub_names(PACKAGE / "_native.pyi")
    actual = {name for name in dir(subactor._native) if not name.startswith("__")}
    assert stub == actual


def test_actor_ref_methods_match_the_stub() -> None:
    tree = ast.parse((PACKAGE / "_native.pyi").read_text())
    (ref,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ActorRef"]
    declared = {n.name for n in ref.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    actual = {n for n in dir(subactor.ActorRef) if not n.startswith("_")} | {"__eq__", "__hash__"}
    assert declared == actual


def test_the_readme_example_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    script = tmp_path / "readme_example.py"
    script.write_text(code.group(1))
    result = run_script(str(script), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["6", "7", "[1, 4, 9, 16]"]


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", subactor.__version__)
    assert sys.version_info >= (3, 12)
