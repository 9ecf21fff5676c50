"""Benchmarks (python -m benchmarks.NAME). ``streamer`` first: it sets OpenMP's wait policy
before torch loads, as the CLI gets it."""

import streamer  # noqa: F401
