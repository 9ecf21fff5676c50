"""The camera corpus (issue 20, 5; tests/streamer/corpus.py) through the classical engine in
this process: each clip into its own container, MP4 and Matroska, every frame at its time
(PyAV), every stream kept or named in one warning, the timecode and the tags ffprobe shows
kept, where corpus.KNOWN_GAPS does not say otherwise (and exactly as it says). Then the causes
the corpus found, each checked on its own."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from streamer.engine import Engine
from streamer.sinks.formats import choose_codec
from streamer.sinks.tracks import CopiedTrack, holds
from streamer.sources.video import VideoSource
from tests.streamer.camera_clips import ffmpeg, needs_ffmpeg
from tests.streamer.corpus import CLIPS, KNOWN_GAPS, Clip, make, outcome

pytestmark = needs_ffmpeg
_CASES = [(clip, into) for clip in CLIPS for into in clip.into]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each clip, made once for all its containers."""
    folder = tmp_path_factory.mktemp("corpus")
    return {clip.name: make(clip, folder) for clip in CLIPS}


@pytest.mark.slow  # 32 runs: 15 s on 2 quiet cores, 50 s shared
@pytest.mark.parametrize(("clip", "into"), _CASES,
                         ids=[f"{clip.name}-{into}" for clip, into in _CASES])
def test_a_camera_file_is_kept_whole(clip: Clip, into: str, made: dict[str, Path],
                                     classical_engine: Engine, tmp_path: Path) -> None:
    result = outcome(made[clip.name], into, classical_engine, tmp_path)
    expected, _why = KNOWN_GAPS.get((clip.name, into), ((), ""))
    assert result.problems() == list(expected)
    assert result.frames[0] > 0 and len(result.left_out) == len(set(result.left_out))


def test_a_dv_file_has_its_frame_rate(tmp_path: Path) -> None:
    """FFmpeg gives DV's average rate as its time base's inverse (60000 for 25 fps): written,
    x264 and the MOV timecode track refused 60000 fps and .mp4/.mov held no video at all."""
    dv = make(next(c for c in CLIPS if c.name == "broadcast.dv"), tmp_path)
    with VideoSource(str(dv)) as source:
        assert source.open().rate == 25


def test_mxf_and_dv_hold_pcm(tmp_path: Path) -> None:
    """Both take sound only behind a video stream; asked alone they had refused their own PCM
    (an MXF or DV camera's file into .mxf or .dv)."""
    src = tmp_path / "pcm.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.1:sample_rate=48000", "-ac", "2", src)
    with av.open(str(src)) as wav:
        audio = wav.streams.audio[0]
        assert holds("mxf", lambda c: CopiedTrack.add(c, audio))
        assert holds("dv", lambda c: CopiedTrack.add(c, audio))
        assert not holds("mpegts", lambda c: CopiedTrack.add(c, audio))  # read back as data
    with av.open(io.BytesIO(), "w", format="mxf") as alone:  # the refusal behind the bug
        alone.add_stream("pcm_s16le", rate=48_000)
        with pytest.raises(av.error.FFmpegError):
            alone.start_encoding()


def test_auto_writes_a_broadcast_containers_own_codec() -> None:
    """x264 was refused by a .dv file, and its B-frames read back out of order from MXF."""
    assert choose_codec("auto", "out.dv", hdr=False) == "dvvideo"
    assert choose_codec("auto", "out.mxf", hdr=False) == "mpeg2video"
    assert choose_codec("auto", "out.mxf", hdr=True) == "libx265"
