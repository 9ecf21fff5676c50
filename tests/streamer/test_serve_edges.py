"""serve's edges mended (issue 22, 4), over real HTTP on 127.0.0.1 with real engines: a taken
id is a StreamExists (409) by its class, not by its wording; engines apart only by weights
are apart in the metrics; a slow engine build holds no other call; a stream removed while it
connects stops; a session that ends is never counted twice by a scrape."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer.engine import Engine, EngineSettings, engine_for_settings
from streamer.errors import StreamExists
from streamer.service.config import ServeConfig, StreamSpec, serve_config
from streamer.service.http import ApiServer
from streamer.service.metrics import ServiceCollector
from streamer.service.service import Service, StreamState
from tests.streamer.test_serve import LIVE, free_udp_port, in_process, request, wait_for

WEIGHTS = Path(__file__).parents[2] / "hdm" / "weights"


def dead(stream_id: str, **model: str) -> dict[str, Any]:
    """A stream whose source never sends (it stays down, retrying), on the dcp engine unless
    ``model`` (its model section) says otherwise."""
    return {"id": stream_id, "input": f"udp://127.0.0.1:{free_udp_port()}",
            "model": {"model": "dcp", **model}}


def make(streams: list[dict[str, Any]]) -> ServeConfig:
    return serve_config({
        "http": {"port": 0, "auth": "none", "allow_lavfi": True},
        "model": {"device": "cpu"},
        "source": {"reconnect": {"watchdog_s": 0.5, "backoff_initial_s": 0.2,
                                 "backoff_max_s": 0.5}},
        "streams": streams,
    })


class Serving:
    """A service and its API on a free port, with ``build_engine`` as the engine seam."""

    def __init__(self, config: ServeConfig,
                 build_engine: Callable[[StreamSpec], Engine] | None = None) -> None:
        self.service = Service(config, build_engine)
        self.api = ApiServer(self.service, "127.0.0.1", 0)

    def __enter__(self) -> ApiServer:
        self.api.start()
        self.service.start()
        return self.api

    def __exit__(self, *_: object) -> None:
        self.service.drain()
        self.api.stop()


def test_a_taken_id_is_stream_exists_and_409_and_other_errors_are_400_whatever_they_say(
    tmp_path: Path
) -> None:
    odd = tmp_path / "already running.safetensors"  # loads, but is for another task
    shutil.copy(WEIGHTS / "derain-hdm-s-v1.safetensors", odd)
    with Serving(make([dead("net")])) as api:
        with pytest.raises(StreamExists, match="'net' is already running"):
            api.service.add(api.service.config.streams[0])
        status, body = request(api, "/streams", "POST", dead("net"))
        assert status == 409 and "already running" in body["error"]
        status, body = request(api, "/streams", "POST",
                               dead("w", model="hdm-s", weights=str(odd)))
        assert "already running" in body["error"] and "cannot be built" in body["error"]
        assert status == 400  # a bad request, though its message has the words


def test_engines_apart_only_by_weights_are_apart_in_the_metrics() -> None:
    with Serving(make([dead("a"), dead("b", weights="random")])) as api:
        assert len(in_process(api).servers) == 2
        status, text = request(api, "/metrics")
        assert status == 200
        series = Counter(
            (sample.name, tuple(sorted(sample.labels.items())))
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("hdm_stream_engine_"))
        assert series and max(series.values()) == 1, series  # no series twice
        weights = {dict(labels)["weights"] for name, labels in series
                   if name == "hdm_stream_engine_inference_seconds_total"}
        assert weights == {"default", "random"}


class SlowBuilds:
    """The real engine builder, held at its start for the weights ``random`` until released
    (as a model build and compile hold it), counting the builds it starts."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.builds: Counter[str] = Counter()

    def __call__(self, spec: StreamSpec) -> Engine:
        self.builds[spec.model.weights] += 1
        if spec.model.weights == "random":
            self.started.set()
            assert self.release.wait(30), "never released"
        return engine_for_settings(EngineSettings(model=spec.model.model, task=spec.model.task,
                                                  device="cpu"))


def timed(call: Callable[[], tuple[int, Any]]) -> tuple[int, Any, float]:
    begun = time.monotonic()
    status, body = call()
    return status, body, time.monotonic() - begun


def test_a_slow_engine_build_holds_no_other_call_and_runs_once() -> None:
    builds = SlowBuilds()
    live = {"id": "cam", "input": LIVE, "model": {"model": "dcp"}}
    with Serving(make([live, dead("net")]), builds) as api:
        answers: dict[str, tuple[int, Any]] = {}

        def post(stream_id: str) -> None:
            answers[stream_id] = request(api, "/streams", "POST",
                                         dead(stream_id, weights="random"))

        posting = [threading.Thread(target=post, args=(i,)) for i in ("slow1", "slow2")]
        for thread in posting:
            thread.start()
        assert builds.started.wait(30)
        try:
            calls = {
                "list": lambda: request(api, "/streams"),
                "health": lambda: request(api, "/healthz"),
                "metrics": lambda: request(api, "/metrics"),
                "same id": lambda: request(api, "/streams", "POST", dead("slow1")),
                "other engine": lambda: request(api, "/streams", "POST", dead("net2")),
                "remove": lambda: request(api, "/streams/cam", "DELETE"),
            }
            done = {name: timed(call) for name, call in calls.items()}
            assert not builds.release.is_set()  # all of it while the build was held
        finally:
            builds.release.set()
            for thread in posting:
                thread.join(30)
        for name, (_, _, seconds) in done.items():
            assert seconds < 5, (name, seconds)
        assert [done[name][0] for name in calls] == [200, 200, 200, 409, 201, 200], done
        assert answers["slow1"][0] == answers["slow2"][0] == 201, answers
        assert builds.builds == {"default": 1, "random": 1}  # one build per engine
        assert {s["id"] for s in request(api, "/streams")[1]} == {"net", "net2", "slow1",
                                                                  "slow2"}


def test_a_stream_removed_while_it_connects_stops_at_once() -> None:
    with Serving(make([])) as api:
        for n in range(3):  # the remove lands while the source opens, or just after
            live = {"id": f"cam{n}", "input": LIVE, "model": {"model": "dcp"}}
            assert request(api, "/streams", "POST", live)[0] == 201
            status, _, seconds = timed(partial(request, api, f"/streams/cam{n}", "DELETE"))
            assert status == 200 and seconds < 5, seconds


def scraped_while_ending(streams: int, frames: int) -> list[tuple[str, float, float]]:
    """``streams`` clips of ``frames`` frames run to their end while four threads scrape
    ``hdm_stream_frames_in`` as Prometheus does, over and over; what each saw that a
    counter must not do: go past the clip, or down."""
    clip = f"lavfi:testsrc2=size=64x48:rate=25:d={frames / 25}"
    service = Service(make([{"id": f"s{i}", "input": clip, "model": {"model": "dcp"}}
                            for i in range(streams)]))
    collector = ServiceCollector(service)
    wrong: list[tuple[str, float, float]] = []
    stop = threading.Event()

    def scrape() -> None:
        seen: dict[str, float] = {}
        while not stop.is_set():
            family = next(m for m in collector.collect() if m.name == "hdm_stream_frames_in")
            for sample in family.samples:
                stream, value = sample.labels["stream"], sample.value
                if value > frames or value < seen.get(stream, 0.0):
                    wrong.append((stream, seen.get(stream, 0.0), value))
                seen[stream] = value

    scrapers = [threading.Thread(target=scrape) for _ in range(4)]
    try:
        for thread in scrapers:
            thread.start()
        service.start()
        wait_for(lambda: all(s.state is StreamState.ENDED for s in service.all_streams()), 120)
    finally:
        stop.set()
        for thread in scrapers:
            thread.join(30)
        service.drain()
    assert all(s.counts().totals["frames_in"] == frames for s in service.all_streams())
    return wrong


@pytest.mark.slow
def test_a_session_that_ends_is_counted_once_by_every_scrape() -> None:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: scrapes land inside the retires
    try:
        wrong = [w for _ in range(3) for w in scraped_while_ending(streams=20, frames=10)]
    finally:
        sys.setswitchinterval(interval)
    assert not wrong, wrong[:5]
