"""The ZeroMQ header is checked as the README gives it (issue 20, 6): a mistyped ``pts``,
``time_base`` (or a zero denominator), ``capture_time`` or ``color`` is malformed like any
mistyped key, where it had been handed to consumers (``pts * time_base`` crashed them)."""

from __future__ import annotations

import json

import pytest

from streamer.errors import MessageError
from streamer.publish.wire import Message

PIXELS = bytes(4 * 2 * 3)


def parts(**fields: object) -> list[bytes]:
    header: dict[str, object] = {"v": 1, "seq": 0, "pts": 3000, "time_base": [1, 90000],
                                 "width": 4, "height": 2, "format": "rgb24",
                                 "color": {"matrix": 1, "range": 1, "primaries": 1,
                                           "transfer": 1},
                                 "capture_time": 1765000000.25, "publish_time": 1765000000.5}
    header.update(fields)
    return [b"cam", json.dumps(header).encode(), PIXELS]


@pytest.mark.parametrize("fields", [
    {"pts": "x"}, {"pts": 1.5}, {"pts": True},
    {"time_base": [1, 0]}, {"time_base": "x"}, {"time_base": [1]}, {"time_base": [1, "2"]},
    {"time_base": [0, 25]}, {"capture_time": "x"}, {"publish_time": [1]}, {"color": "x"},
    {"color": {"matrix": "bt709"}}, {"color": {"range": 99}}, {"color": {"matrix": -5}},
    {"color": {"range": 2**40}}, {"task": 3},
], ids=repr)
def test_a_mistyped_timing_or_colour_key_is_malformed(fields: dict[str, object]) -> None:
    key = next(iter(fields))
    with pytest.raises(MessageError, match=key):
        Message.parse(parts(**fields))


@pytest.mark.parametrize("fields", [
    {}, {"pts": None, "time_base": None}, {"capture_time": 0}, {"color": {}},
    {"task": "none"}, {"task": None},
])
def test_the_headers_the_readme_gives_are_accepted(fields: dict[str, object]) -> None:
    message = Message.parse(parts(**fields))
    assert message.image is not None and message.image.shape == (2, 4, 3)
