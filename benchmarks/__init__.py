"""Benchmarks: deepal against plain reference implementations, measured in the same run.

Run from the repository root with ``python -m benchmarks`` (``--full`` for the large sizes,
``--only NAME[,NAME]`` to pick rows). The references live here, not in the library.
"""
