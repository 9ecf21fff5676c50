"""Benchmarks (python -m benchmarks.NAME), in the process the CLI sets up: ``streamer`` first
(it sets OpenMP's wait policy before torch loads), and freed frames kept for reuse."""

import streamer
from streamer.process import keep_freed_memory

keep_freed_memory()
del streamer
