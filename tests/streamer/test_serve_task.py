"""serve with ``task: auto``: the task a stream's scene chose, in /streams and /metrics."""

from __future__ import annotations

import pytest

from streamer.service.config import serve_config
from tests.streamer.test_serve import LIVE, request, samples, serving, streams, wait_for

TASKS = {"dehaze", "derain", "lowlight", "none"}


@pytest.mark.slow
def test_the_running_task_is_shown_and_measured() -> None:
    config = serve_config({
        "http": {"port": 0, "allow_lavfi": True}, "model": {"device": "cpu", "model": "dcp"},
        "streams": [{"id": "scene", "input": LIVE, "model": {"task": "auto"}},
                    {"id": "fixed", "input": LIVE, "model": {"task": "lowlight"}}],
    })
    with serving(config) as api:
        wait_for(lambda: streams(api)["scene"]["running_task"] is not None)
        listed = streams(api)
        assert listed["scene"]["task"] == "auto" and listed["scene"]["running_task"] in TASKS
        assert listed["fixed"]["running_task"] == "lowlight"
        assert "task auto" in request(api, "/streams/scene")[1]["engine"]
        found = samples(api)
        chosen = listed["scene"]["running_task"]
        assert found[("hdm_stream_task", (("stream", "scene"), ("task", chosen)))] == 1
        assert found[("hdm_stream_task", (("stream", "fixed"), ("task", "lowlight")))] == 1
