"""Image sequences as FFmpeg names them (``frames/%05d.png``): read as a video at the
``--framerate`` given (25 by default, as ffmpeg's), from whatever number they start at, and
written frame by frame from 1, at the frames' own depth, audio said to be left out."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamer.sinks.build import existing_output
from tests.streamer.camera_clips import TONE, ffmpeg, needs_ffmpeg
from tests.streamer.commands import run

pytestmark = needs_ffmpeg


def frames_of(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_a_sequence_reads_as_a_video_at_its_framerate(tmp_path: Path) -> None:
    (tmp_path / "rainy").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1.2",
           "-start_number", "1200", tmp_path / "rainy" / "%05d.png")  # a cut from a longer one
    dst = tmp_path / "out.mkv"
    assert run(tmp_path / "rainy" / "%05d.png", "-o", dst, "--framerate", "30000/1001") == 0
    frames = frames_of(dst)
    assert len(frames) == 12
    times = [Fraction(f.pts or 0) * Fraction(f.time_base or 1) for f in frames]
    assert [round(t * Fraction(30000, 1001)) for t in times] == list(range(12))
    assert run(tmp_path / "rainy" / "%05d.png", "-o", tmp_path / "25.mkv") == 0
    with av.open(str(tmp_path / "25.mkv")) as container:  # FFmpeg's default rate
        assert container.streams.video[0].average_rate == 25


@pytest.mark.parametrize(("pix_fmt", "dtype"), [("rgb24", np.uint8), ("rgb48be", np.uint16)])
def test_a_sequence_is_written_from_1_at_the_frames_depth(tmp_path: Path, pix_fmt: str,
                                                          dtype: type) -> None:
    src = tmp_path / "in" / "%03d.png"
    src.parent.mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=5:duration=1", "-pix_fmt", pix_fmt,
           src)
    (tmp_path / "out").mkdir()
    assert run(src, "-o", tmp_path / "out" / "f_%04d.png") == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"f_{n:04d}.png" for n in range(1, 6)]
    last = cv2.imread(str(tmp_path / "out" / "f_0005.png"), cv2.IMREAD_UNCHANGED)
    assert last is not None and last.dtype == dtype and last.shape == (64, 96, 3)
    # again: the first picture exists
    assert run(src, "-o", tmp_path / "out" / "f_%04d.png") == 2


def test_a_clip_with_sound_into_pictures_says_the_sound_is_left_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "clip.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", *TONE, "-c:v",
           "libx264", "-c:a", "aac", src)
    assert run(src, "-o", tmp_path / "%05d.jpg") == 0
    assert len(list(tmp_path.glob("*.jpg"))) == 25
    assert "pictures hold no audio: the input's are left out" in capsys.readouterr().err
    with av.open(str(tmp_path / "00001.jpg")) as picture:  # JPEG's own full range
        pix_fmt = picture.streams.video[0].codec_context.pix_fmt
        assert pix_fmt is not None and pix_fmt.startswith("yuvj")


def test_a_rate_for_a_video_file_and_a_missing_sequence_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=5:duration=1", clip)
    assert run(clip, "-o", tmp_path / "o.mkv", "--framerate", "30") == 2
    assert "--framerate sets the rate of an image sequence" in capsys.readouterr().err
    assert run(tmp_path / "none" / "%05d.png", "-o", tmp_path / "o.mkv") == 2
    assert "no picture matches" in capsys.readouterr().err


def test_what_an_output_would_replace(tmp_path: Path) -> None:
    """-y is needed where a file would be replaced: a sequence's first picture counts, a
    playlist too; a pipe or a stream replaces nothing."""
    for name in ("out.mp4", "00001.png", "index.m3u8"):
        (tmp_path / name).touch()
    assert existing_output(str(tmp_path / "out.mp4")) == tmp_path / "out.mp4"
    assert existing_output(str(tmp_path / "%05d.png")) == tmp_path / "00001.png"
    assert existing_output(str(tmp_path / "index.m3u8")) == tmp_path / "index.m3u8"
    assert existing_output(str(tmp_path / "f_%05d.png")) is None
    assert existing_output("-") is None and existing_output("udp://127.0.0.1:9") is None
