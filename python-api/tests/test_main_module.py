"""Actor classes and task functions defined in the main program (issue item 3): actors
load it as `__mp_main__`, without running its `if __name__ == "__main__":` block."""

from __future__ import annotations

from conftest import SCRIPTS, run_script


def test_a_main_script() -> None:
    result = run_script("main_script.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("main block") == 1
    assert lines.count("top-level __main__") == 1
    # The actor and the executor's workers (those that ran a task) loaded the script.
    # (Interpreters print concurrently: their lines may interleave.)
    assert 2 <= result.stdout.count("top-level __mp_main__") <= 3
    assert "actor: Job(n=5)" in lines
    assert "executor: [0, 1, 8, 27, 64]" in lines
    assert "Traceback" not in result.stderr


def test_a_main_module_run_with_dash_m() -> None:
    result = run_script("-m", "mainpkg.app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("main block") == 1
    assert "hello main from __mp_main__" in lines
