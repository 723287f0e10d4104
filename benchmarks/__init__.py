"""rapidboot's benchmark suite: `rapidboot bench` (or `make bench`) measures our runtime and server against
the peers on this machine and leaves a report, charts and the raw numbers (`rapidboot.benchmarks.suite`).

Each measuring module is also a plain script (`python benchmarks/coldstart.py`), for a profiler.
"""
