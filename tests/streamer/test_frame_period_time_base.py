"""An MPEG-TS input (90 kHz time base) into an encoder or container that cannot take that time
base gets the frame period, as the ffmpeg tool gives it, with every frame's time kept: AVI
(one chunk per frame period, from 0) and MPEG-4 Part 2 (no denominator above 65535)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.streamer.camera_clips import FFPROBE, ffmpeg, needs_ffmpeg
from tests.streamer.commands import run
from tests.streamer.signalled import frame_times


@needs_ffmpeg
@pytest.mark.parametrize(("name", "more", "starts_at_zero"), [
    ("out.avi", [], True),  # --codec auto: MPEG-4 Part 2 (H.264 in AVI reads a frame late)
    ("mpeg4.mkv", ["--codec", "mpeg4"], False),
])
def test_mpeg_ts_keeps_every_frame_time_in_a_frame_period_time_base(
        tmp_path: Path, name: str, more: list[str], starts_at_zero: bool) -> None:
    src, dst = tmp_path / "x.ts", tmp_path / name
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-c:v", "libx264",
           src)
    assert run(src, "-o", dst, *more) == 0
    given, written = frame_times(src, 25), frame_times(dst, 25)
    assert len(given) == 50 and given[0] > 0  # MPEG-TS starts at 1.4 s
    origin = given[0] if starts_at_zero else 0  # AVI has no start time: it starts at 0
    assert written == [t - origin for t in given]
    assert FFPROBE is not None
    [stream] = json.loads(subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "stream=time_base,nb_frames", "-of", "json",
         str(dst)], check=True, capture_output=True, text=True).stdout)["streams"]
    if name.endswith(".avi"):  # a chunk per frame, none empty between them
        assert stream == {"time_base": "1/25", "nb_frames": "50"}
