"""Rigs shared by the tests and the benchmarks: real parts wired up for a run.

Plain Python (no pytest), so a benchmark runs with only the project installed; not part of
the product (not packaged). Test-only assertions and waits stay in ``tests/``.
"""
