"""The web preview's picture (streamer/sinks/preview.py): input | enhanced in one JPEG, at a
reduced size and rate."""

from __future__ import annotations

import time

import cv2
import numpy as np

from streamer.frames import Layout
from streamer.sinks.base import Output
from streamer.sinks.preview import PreviewSink, Snapshot
from tests.streamer.pictures import info_for, picture


def halves(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    bgr = cv2.imdecode(np.frombuffer(snapshot.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a JPEG"
    assert bgr.shape[:2] == (snapshot.height, 2 * snapshot.width)
    return bgr[:, :snapshot.width], bgr[:, snapshot.width:]


def test_the_snapshot_is_the_input_beside_the_enhanced_frame() -> None:
    preview = PreviewSink()
    preview.open(info_for())
    assert preview.latest is None
    preview.write(Output(picture(7, value=200), picture(7, value=40)))
    snapshot = preview.latest
    assert snapshot is not None and snapshot.seq == 7
    assert (snapshot.width, snapshot.height) == (128, 96)  # small frames keep their size
    original, enhanced = halves(snapshot)
    assert abs(original.mean() - 40) < 3 and abs(enhanced.mean() - 200) < 3


def test_large_frames_and_planes_are_shown_at_480_pixels_a_half() -> None:
    preview = PreviewSink()
    frame = picture(0, size=(720, 1280), value=128, layout=Layout.I420)
    preview.write(Output(frame, frame))
    snapshot = preview.latest
    assert snapshot is not None and (snapshot.width, snapshot.height) == (480, 270)
    original, _ = halves(snapshot)
    assert abs(original.mean() - original[0, 0].mean()) < 3  # one flat grey, decoded from I420


def test_at_most_fps_snapshots_a_second_are_made() -> None:
    preview = PreviewSink(fps=5.0)  # one every 200 ms
    for seq in range(10):
        preview.write(Output(picture(seq), picture(seq)))
    snapshot = preview.latest
    assert snapshot is not None and snapshot.seq == 0  # the other 9 came too soon
    time.sleep(0.25)
    preview.write(Output(picture(10), picture(10)))
    later = preview.latest
    assert later is not None and later.seq == 10
