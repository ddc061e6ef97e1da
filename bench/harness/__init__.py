"""subactor's benchmark suite: every benchmark in one run, and a report with plots.

Run it with ``bench/run`` (``bench/run --quick`` while developing). The pieces:

- :mod:`harness.rust` builds and runs the Rust benchmarks (``benches/*.rs``), which
  measure subactor itself, and reads the samples they write with ``--json``;
- :mod:`harness.runners` measures the other systems (multiprocessing, threads, PEP 734
  interpreters) from Python, each in a fresh process; a new system is one more
  registered :class:`harness.runners.base.Runner`;
- :mod:`harness.stats` turns samples into medians, spreads and ratios;
- :mod:`harness.report` writes ``REPORT.md``, and :mod:`harness.plots` its PNGs;
- :mod:`harness.machine` describes the machine and how loaded it was.

Every figure of a report comes from samples taken in the same run.
"""
