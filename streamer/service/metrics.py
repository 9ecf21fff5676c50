"""Prometheus metrics of a running service, read when scraped (nothing is counted twice and the
pipeline's threads do no extra work): a prometheus-client custom collector over the streams'
counters and bounded latency histograms and the engines' statistics.

Names start with ``hdm_stream_``; per-stream series carry the label ``stream`` (latency also
``output``), per-engine ones ``engine`` (``task/model``) and ``weights``, as streams share an
engine by all three (two engines apart only by weights would otherwise be one series twice);
an engine's series go with it when its last stream is removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamer.stats import LatencyHistogram

if TYPE_CHECKING:
    from streamer.service.service import Service

__all__ = ["LATENCY_BUCKETS_S", "ServiceCollector", "registry_for"]

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


def _buckets(histogram: LatencyHistogram, bounds: tuple[float, ...]
             ) -> list[tuple[str, float]]:
    """Cumulative counts at ``bounds`` (seconds) and +Inf, from the fine log-spaced buckets."""
    return [(f"{bound:g}", float(histogram.count_below(bound))) for bound in bounds] + [
        ("+Inf", float(histogram.total))]


class ServiceCollector(Collector):
    """Collects a :class:`~streamer.service.service.Service`'s metrics on each scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        streams = self.service.all_streams()
        frames_in = CounterMetricFamily("hdm_stream_frames_in", "Frames decoded",
                                        labels=["stream"])
        frames_out = CounterMetricFamily("hdm_stream_frames_out", "Frames enhanced and handed "
                                         "to the outputs", labels=["stream"])
        dropped = CounterMetricFamily("hdm_stream_frames_dropped", "Frames dropped, by reason: "
                                      "queue (input queue full), stale (older than the latency "
                                      "bound), output (an output's queue behind)",
                                      labels=["stream", "reason"])
        reconnects = CounterMetricFamily("hdm_stream_reconnects", "Times the source was "
                                         "reopened or an opening attempt failed",
                                         labels=["stream"])
        up = GaugeMetricFamily("hdm_stream_up", "1 while the source is connected",
                               labels=["stream"])
        task = GaugeMetricFamily("hdm_stream_task", "1 for the task the stream runs (task: "
                                 "auto: the one its scene chose; none: frames left untouched)",
                                 labels=["stream", "task"])
        latency = HistogramMetricFamily("hdm_stream_latency_seconds", "Decoded to written, "
                                        "once per frame per output (output: N:kind, N its "
                                        "place in the stream's outputs)",
                                        labels=["stream", "output"])
        for stream in streams:
            name = stream.spec.id
            counts = stream.counts()  # one moment: a session retiring is counted once
            totals = counts.totals
            frames_in.add_metric([name], totals["frames_in"])
            frames_out.add_metric([name], totals["frames_out"])
            dropped.add_metric([name, "queue"], totals["dropped_queue"])
            dropped.add_metric([name, "stale"], totals["dropped_stale"])
            dropped.add_metric([name, "output"], counts.output_drops)
            reconnects.add_metric([name], totals["reconnects"])
            up.add_metric([name], 1.0 if stream.up else 0.0)
            if (running := stream.running_task) is not None:
                task.add_metric([name, running], 1.0)
            for output, histogram in counts.latency.items():
                latency.add_metric([name, output], _buckets(histogram, LATENCY_BUCKETS_S),
                                   sum_value=histogram.approximate_sum())
        yield from (frames_in, frames_out, dropped, reconnects, up, task, latency)
        yield from self._engines()

    def _engines(self) -> Iterator[Metric]:
        labels = ["engine", "weights"]
        batches = HistogramMetricFamily("hdm_stream_engine_batch_size", "Frames per batch run",
                                        labels=labels)
        busy = CounterMetricFamily("hdm_stream_engine_inference_seconds", "Time the engine "
                                   "worker spent submitting batches and waiting for results",
                                   labels=labels)
        memory = GaugeMetricFamily("hdm_stream_engine_device_memory_bytes", "Memory the engine "
                                   "holds on its GPU (0 on the CPU)", labels=labels)
        for (model, task, weights), server in self.service.engines():
            label = [f"{task}/{model}", weights]
            sizes = server.stats.batch_sizes
            cumulative = [(str(b), float(sum(n for s, n in sizes.items() if s <= b)))
                          for b in _BATCH_BUCKETS]
            cumulative.append(("+Inf", float(server.stats.batches)))
            batches.add_metric(label, cumulative, sum_value=float(server.stats.frames))
            busy.add_metric(label, server.stats.busy_s)
            device = server.engine.device
            used = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
            memory.add_metric(label, float(used))
        yield from (batches, busy, memory)


def registry_for(service: Service) -> CollectorRegistry:
    """A registry with the service's metrics and the process's own (memory, CPU, fds)."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(service))
    ProcessCollector(registry=registry)
    return registry
