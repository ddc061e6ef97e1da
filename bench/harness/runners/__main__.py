"""Runs one runner in this process and writes what it measured as JSON.

    python -m harness.runners KEY --config CONFIG.json --out OUT.json

The driver (``python -m harness``) starts one such process per runner, with the
benchmark venv's Python and ``PYTHONPATH`` set to ``bench`` and ``examples/python``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness.model import RunnerOutcome
from harness.runners import load
from harness.runners.base import Config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.runners", description=__doc__)
    parser.add_argument("key", help="the runner to run")
    parser.add_argument("--config", type=Path, required=True, help="the run's Config, as JSON")
    parser.add_argument("--out", type=Path, required=True, help="where to write the outcome")
    args = parser.parse_args(argv)

    runners = load()
    if args.key not in runners:
        parser.error(f"no runner {args.key!r}; there are: {', '.join(runners)}")
    cls = runners[args.key]
    config = Config.from_json(json.loads(args.config.read_text()))
    started = time.monotonic()
    runner = cls()
    outcome = RunnerOutcome(runner=args.key, system=cls.system)
    reason = runner.unavailable()
    if reason is not None:
        outcome.error = f"not available: {reason}"
    else:
        outcome.measurements, outcome.skipped = runner.measure(config)
    outcome.seconds = time.monotonic() - started
    outcome.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
