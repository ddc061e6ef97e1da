#!/usr/bin/env bash
# Makes target/bench-venv (or $1): a virtualenv with the subactor package and the PEP 734
# backport (interpreters-pep-734), for executor_bench.py. Uses the same CPython the build
# uses (.cargo/python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${1:-target/bench-venv}
if [ ! -x "$venv/bin/python" ]; then
    "$(.cargo/python3 -c 'import sys; print(sys.executable)')" -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check maturin==1.16.0 interpreters-pep-734==0.5.0
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python-api
echo "ready: $venv/bin/python python-api/bench/executor_bench.py"
