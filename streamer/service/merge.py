"""One ``/metrics`` over several processes: each worker sends its collected families over its
pipe on a scrape, and the supervisor merges them into the same names.

Not prometheus-client's multiprocess mode: that mode keeps only the client's own Counter,
Gauge and Histogram objects (values in mmap'd files, written as they change), while serve's
metrics are a custom collector read on scrape from the pipeline's counters (nothing counted
twice, no work on the pipeline's threads); it has no process metrics per worker either, and
files of a dead worker must be cleaned by hand. Asking each worker on the scrape keeps the
collector as it is, in every process.

Merging: a stream runs in one worker, so its series come from one process. An engine key may
run in two workers (a key's streams split over workers beyond a fair share), and the
``process_*`` series exist in every process: samples of the same name and labels are added
(frames, batch histograms, inference seconds, memory, CPU seconds, open files), except the
start time (the earliest) and the file limit (the largest).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = ["Family", "MergedCollector", "export", "merge"]

Sample = tuple[str, dict[str, str], float]
Family = tuple[str, str, str, str, list[Sample]]  # name, help, type, unit, samples
_COMBINE: dict[str, Any] = {"process_start_time_seconds": min, "process_max_fds": max}


def export(collectors: Iterable[Collector]) -> list[Family]:
    """What ``collectors`` collect now, as plain tuples that pickle across a pipe."""
    return [(m.name, m.documentation, m.type, m.unit,
             [(s.name, dict(s.labels), float(s.value)) for s in m.samples])
            for collector in collectors for m in collector.collect()]


def merge(parts: Iterable[list[Family]]) -> list[Metric]:
    """The families of several processes as one set: each name once (the first's help and
    type), each series once."""
    heads: dict[str, tuple[str, str, str]] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for families in parts:
        for name, documentation, kind, unit, samples in families:
            heads.setdefault(name, (documentation, kind, unit))
            series = values.setdefault(name, {})
            for sample, labels, value in samples:
                key = (sample, tuple(sorted(labels.items())))
                if key in series:
                    combine = _COMBINE.get(sample)
                    value = combine(series[key], value) if combine else series[key] + value
                series[key] = value
    merged = []
    for name, (documentation, kind, unit) in heads.items():
        metric = Metric(name, documentation, kind, unit)
        for (sample, pairs), value in values[name].items():
            metric.add_sample(sample, dict(pairs), value)
        merged.append(metric)
    return merged


class MergedCollector(Collector):
    """A scrape's merged families, for ``generate_latest`` (a registry per scrape)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics
