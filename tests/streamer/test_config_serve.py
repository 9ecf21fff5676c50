"""serve's configuration in run's sections: a stream's source, model and encode laid over the
shared ones field by field, outputs as a tagged union, errors naming the key path, and the old
spelling read as the new with one warning line."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from streamer.errors import ConfigError
from streamer.service.config import (
    FileOutput,
    HlsOutput,
    PublishOutput,
    ServeConfig,
    UrlOutput,
    load_serve_config,
    serve_config,
    stream_spec,
)

CAMERA = "rtsp://camera.local/stream"


def one_stream(**entry: Any) -> dict[str, Any]:
    return {"streams": [{"id": "cam1", "input": CAMERA, **entry}]}


def test_a_stream_lays_its_sections_over_the_shared_ones_field_by_field() -> None:
    config = serve_config({
        "model": {"device": "cpu", "task": "lowlight", "model": "dcp"},
        "source": {"options": {"rtsp_transport": "tcp"},
                   "reconnect": {"watchdog_s": 2, "backoff_max_s": 4}},
        "encode": {"preset": "veryfast", "crf": 23},
        "streams": [
            {"id": "plain", "input": CAMERA},
            {"id": "own", "input": "/dev/video0", "model": {"task": "dehaze"},
             "source": {"live": True, "options": {"video_size": "1280x720"},
                        "reconnect": {"watchdog_s": 1}},
             "encode": {"crf": 30}},
        ],
    })
    plain, own = config.streams
    assert (plain.model.task, plain.model.model, plain.model.device) == ("lowlight", "dcp", "cpu")
    assert plain.source.reconnect.watchdog_s == 2.0 and plain.source.live is None
    assert (own.model.task, own.model.model, own.model.device) == ("dehaze", "dcp", "cpu")
    assert own.source.live is True
    assert own.source.options == {"rtsp_transport": "tcp", "video_size": "1280x720"}
    assert (own.source.reconnect.watchdog_s, own.source.reconnect.backoff_max_s) == (1.0, 4.0)
    assert (own.encode.preset, own.encode.crf, plain.encode.crf) == ("veryfast", 30, 23)
    assert own.engine_key == ("dcp", "dehaze", "default")


def test_outputs_are_a_tagged_union_of_their_own_types() -> None:
    [spec] = serve_config(one_stream(outputs=[
        {"type": "publish", "endpoint": "tcp://127.0.0.1:5555", "hwm": 2},
        {"type": "url", "url": "srt://127.0.0.1:9000?mode=listener", "format": "mpegts"},
        {"type": "hls", "path": "/var/www/cam1/"},
        {"type": "file", "path": "cam1.mkv", "overwrite": True},
    ])).streams
    publish, url, hls, file = spec.outputs
    assert isinstance(publish, PublishOutput) and publish.payload == "jpeg" and publish.hwm == 2
    assert isinstance(url, UrlOutput) and url.format == "mpegts"
    assert isinstance(hls, HlsOutput) and isinstance(file, FileOutput) and file.overwrite
    assert [o.label for o in spec.outputs] == ["tcp://127.0.0.1:5555",
                                               "srt://127.0.0.1:9000?mode=listener",
                                               "/var/www/cam1/", "cam1.mkv"]
    assert spec.endpoints == ["tcp://127.0.0.1:5555"]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"type": "rtmp", "url": "rtmp://x/y"},
         "'streams[0].outputs[0].type' must be one of ['publish', 'url', 'hls', 'file'], "
         "got 'rtmp'"),
        ({"endpoint": "tcp://x:1"}, "'streams[0].outputs[0]' needs a type: one of"),
        ({"type": "file"}, "'streams[0].outputs[0].path' is required"),
        ({"type": "url", "url": "srt://x:1", "path": "a.mkv"},
         "'streams[0].outputs[0].path' belongs to type hls, not url"),
        ({"type": "file", "path": "a.mkv", "endpoint": "tcp://x:1"},
         "'streams[0].outputs[0].endpoint' belongs to type publish, not file"),
        ({"type": "hls", "path": "x/", "colour": "red"},
         "unknown config key 'streams[0].outputs[0].colour'"),
        ({"type": "url", "url": "gopher://host/x"}, "streams[0].outputs[0]"),
        ({"type": "publish"}, "streams[0].outputs[0].endpoint is required"),
        ("srt://x:1", "'streams[0].outputs[0]' must be a mapping with a type"),
    ],
)
def test_a_bad_output_is_one_error_naming_its_key(output: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        serve_config(one_stream(outputs=[output]))
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"streams": [{"id": "a", "input": CAMERA},
                      {"id": "b", "input": CAMERA,
                       "source": {"reconnect": {"backoff_max_s": 0}}}]},
         "streams[1].source.reconnect.backoff_max_s must be > 0, got 0"),
        ({"source": {"reconnect": {"watchdog_s": -1}}, **one_stream()},
         "source.reconnect.watchdog_s must be > 0"),
        (one_stream(source={"reconnect": {"backoff_initial_s": 4, "backoff_max_s": 2}}),
         "streams[0].source.reconnect.backoff_max_s must be >= backoff_initial_s"),
        (one_stream(source={"stream_id": "x"}), "unknown config key 'streams[0].source.stream_id'"),
        (one_stream(model={"task": "blur"}), "'streams[0].model.task' must be one of"),
        (one_stream(model={"device": "cuda"}),
         "streams[0].model.device is shared by every engine: set it in the top-level model"),
        (one_stream(encode={"crf": 99}), "streams[0].encode.crf must be"),
        ({"streams": [{"id": "a"}]}, "'streams[0].input' is required"),
        ({"streams": {"id": "a"}}, "config key 'streams' must be a list"),
        ({"streams": [{"id": "a", "input": CAMERA}, {"id": "a", "input": CAMERA}]},
         "stream ids must be unique, ['a'] repeat"),
    ],
)
def test_errors_name_the_full_key_path(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        serve_config(data)


OLD = """\
model: {device: cpu}
reconnect: {watchdog_s: 2}
streams:
  - id: cam1
    source: rtsp://camera.local/stream
    options: {rtsp_transport: tcp}
    live: true
    task: lowlight
    model: dcp
    outputs:
      - publish: tcp://127.0.0.1:5555
        payload: raw
      - url: udp://127.0.0.1:5600
        format: mpegts
      - hls: /var/www/cam1/
      - file: cam1.mkv
"""

NEW = """\
model: {device: cpu}
source: {reconnect: {watchdog_s: 2}}
streams:
  - id: cam1
    input: rtsp://camera.local/stream
    source: {options: {rtsp_transport: tcp}, live: true}
    model: {task: lowlight, model: dcp}
    outputs:
      - {type: publish, endpoint: "tcp://127.0.0.1:5555", payload: raw}
      - {type: url, url: "udp://127.0.0.1:5600", format: mpegts}
      - {type: hls, path: /var/www/cam1/}
      - {type: file, path: cam1.mkv}
"""


def test_the_old_spelling_loads_as_the_new_with_one_warning_naming_each_old_key(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OLD)
    new.write_text(NEW)
    with caplog.at_level(logging.WARNING):
        assert load_serve_config(new) == load_serve_config(tmp_path / "new.yaml")
        assert not caplog.records  # the new spelling: no warning
        assert load_serve_config(old) == load_serve_config(new)
    [warning] = caplog.records
    line = warning.getMessage()
    assert str(old) in line and "\n" not in line
    for rename in ("reconnect -> source.reconnect", "streams[0].source: URL -> streams[0].input",
                   "streams[0].options -> streams[0].source.options",
                   "streams[0].live -> streams[0].source.live",
                   "streams[0].task -> streams[0].model.task",
                   "streams[0].model: NAME -> streams[0].model.model",
                   "streams[0].outputs[0].publish: X -> streams[0].outputs[0]: "
                   "{type: publish, endpoint: X}",
                   "streams[0].outputs[2].hls: X -> streams[0].outputs[2]: {type: hls, path: X}"):
        assert rename in line, rename


def test_a_stream_added_over_http_in_the_old_spelling_is_read_the_same(
        caplog: pytest.LogCaptureFixture) -> None:
    shared = serve_config({"model": {"device": "cpu"}})
    with caplog.at_level(logging.WARNING):
        old = stream_spec({"id": "x", "source": CAMERA, "model": "dcp",
                           "options": {"rtsp_transport": "tcp"},
                           "outputs": [{"file": "x.mkv"}]}, shared)
    new = stream_spec({"id": "x", "input": CAMERA, "model": {"model": "dcp"},
                       "source": {"options": {"rtsp_transport": "tcp"}},
                       "outputs": [{"type": "file", "path": "x.mkv"}]}, shared)
    assert old == new and old.model.device == "cpu"
    [warning] = caplog.records
    assert "stream.source: URL -> stream.input" in warning.getMessage()


def test_an_old_key_given_beside_its_new_place_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "streams[0].live (the old spelling) and streams[0].source.live are both given")):
        serve_config(one_stream(live=True, source={"live": False}))
    with pytest.raises(ConfigError, match=re.escape(
            "reconnect (the old spelling) and source.reconnect are both given")):
        serve_config({"reconnect": {}, "source": {"reconnect": {}}})


def test_the_shipped_serve_preset_is_in_the_new_spelling(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_serve_config("serve")
    assert not caplog.records
    cam1, cam2 = config.streams
    assert cam2.source.reconnect.watchdog_s == 3.0 and cam2.source.reconnect.backoff_max_s == 8.0
    assert cam1.source.options == {"rtsp_transport": "tcp"} and cam2.encode.preset == "veryfast"
    assert isinstance(config, ServeConfig) and cam2.engine_key == ("hdm-s", "lowlight", "default")
