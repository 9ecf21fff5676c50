"""Files through the whole pipeline: frames, timestamps, audio, sizes, bad input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.engine import Engine
from streamer.errors import SourceError, StreamerError
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
from streamer.sources.video import VideoSource
from tests.streamer.clips import audio_packets, decoded_pts, write_clip


def enhance_file(engine: Engine, src: Path, dst: Path, **sink: object) -> Pipeline:
    pipeline = Pipeline(
        VideoSource(str(src)), engine, output=(dst, EncodeSettings(**sink)),  # type: ignore[arg-type]
        batching=BatchSettings(size=3), progress=False,
    )
    pipeline.run()
    return pipeline


def test_mp4_with_audio_keeps_every_frame_pts_and_audio_packet(
    tmp_path: Path, classical_engine: Engine
) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    written = write_clip(src, frames=30)
    pipeline = enhance_file(classical_engine, src, dst)
    assert pipeline.stats.frames_in == pipeline.stats.frames_out == 30
    assert decoded_pts(dst) == written
    assert audio_packets(dst) == audio_packets(src) and len(audio_packets(src)) > 10
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.colorspace == 1
        assert out.streams.audio[0].codec_context.name == "aac"


def test_variable_frame_rate_timestamps_survive(tmp_path: Path, classical_engine: Engine) -> None:
    src, dst = tmp_path / "vfr.mkv", tmp_path / "out.mkv"
    gaps = [40, 40, 120, 40, 80, 33, 200, 40, 40, 67, 40, 40]
    pts = [sum(gaps[:i]) for i in range(len(gaps))]
    written = write_clip(src, frames=len(pts), pts=pts, time_base=Fraction(1, 1000), audio=False)
    assert written == pts
    enhance_file(classical_engine, src, dst)
    assert decoded_pts(dst) == pts


def test_odd_size_is_encoded_with_one_repeated_row(
    tmp_path: Path, classical_engine: Engine
) -> None:
    src, dst = tmp_path / "odd.mkv", tmp_path / "out.mp4"
    write_clip(src, frames=6, size=(361, 642), pix_fmt="yuv444p", audio=False)
    pipeline = enhance_file(classical_engine, src, dst, pix_fmt="yuv420p")
    assert pipeline.stats.frames_out == 6
    with av.open(str(dst)) as out:
        frames = list(out.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (642, 362)
    # by default 4:4:4 stays 4:4:4, which takes odd sizes as they are
    enhance_file(classical_engine, src, kept := tmp_path / "kept.mp4")
    with av.open(str(kept)) as out:
        frame = next(out.decode(video=0))
    assert (frame.format.name, frame.width, frame.height) == ("yuv444p", 642, 361)


def test_side_by_side_doubles_the_width(tmp_path: Path, classical_engine: Engine) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "sbs.mp4"
    write_clip(src, frames=4, audio=False)
    enhance_file(classical_engine, src, dst, side_by_side=True)
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.width == 256


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_truncated_input_leaves_a_playable_output_of_what_was_read(
    tmp_path: Path, classical_engine: Engine, suffix: str
) -> None:
    src, dst = tmp_path / f"cut{suffix}", tmp_path / "out.mp4"
    write_clip(src, frames=48, audio=False)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 6 // 10])
    stats = enhance_file(classical_engine, src, dst).stats
    frames = decoded_pts(dst)
    assert 0 < len(frames) < 48 and len(frames) == stats.frames_out
    if suffix == ".mkv":  # its header announces the duration; MPEG-TS announces nothing
        assert stats.ended_early is not None and "input ended early" in stats.summary()


def test_a_complete_input_does_not_claim_to_have_ended_early(
    tmp_path: Path, classical_engine: Engine
) -> None:
    for suffix in (".mkv", ".mp4"):
        src = tmp_path / f"whole{suffix}"
        write_clip(src, frames=24)
        stats = enhance_file(classical_engine, src, tmp_path / f"out{suffix}").stats
        assert stats.frames_out == 24 and stats.ended_early is None


def test_an_input_without_frames_says_so_and_writes_nothing(
    tmp_path: Path, classical_engine: Engine
) -> None:
    src, dst = tmp_path / "empty.mkv", tmp_path / "out.mp4"
    with av.open(str(src), "w") as container:  # a video track with no frame, a second of audio
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        for start in range(0, 48_000, 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 48_000, start, Fraction(1, 48_000)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    with pytest.raises(SourceError, match="no video frames"):
        enhance_file(classical_engine, src, dst)
    assert not dst.exists()


def test_missing_and_non_video_inputs_are_clear_errors(
    tmp_path: Path, classical_engine: Engine
) -> None:
    with pytest.raises(SourceError, match="not found"):
        enhance_file(classical_engine, tmp_path / "nope.mp4", tmp_path / "o.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        enhance_file(classical_engine, garbage, tmp_path / "o.mp4")


def test_writing_over_the_input_is_refused(tmp_path: Path, classical_engine: Engine) -> None:
    src = tmp_path / "in.mp4"
    write_clip(src, frames=2, audio=False)
    (tmp_path / "hard.mp4").hardlink_to(src)
    (tmp_path / "soft.mp4").symlink_to(src)
    before = src.read_bytes()
    for same in (src, tmp_path / "hard.mp4", tmp_path / "soft.mp4"):
        with pytest.raises(StreamerError, match="overwrite"):
            enhance_file(classical_engine, src, same)
    assert src.read_bytes() == before


def test_corrupt_packets_mid_file_are_skipped_and_counted(
    tmp_path: Path, classical_engine: Engine
) -> None:
    src, dst = tmp_path / "corrupt.mp4", tmp_path / "out.mp4"
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(100)]
    write_clip(src, frames=100, audio=False, images=noise)  # noise: big packets to hit
    data = bytearray(src.read_bytes())
    for share in (0.3, 0.5, 0.7):
        at = int(len(data) * share)
        data[at : at + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    src.write_bytes(bytes(data))
    stats = enhance_file(classical_engine, src, dst).stats
    assert stats.corrupt_packets >= 1 and "corrupt input" in stats.summary()
    assert stats.frames_out >= 90  # ffmpeg itself recovers 98 of these 100
    with av.open(str(dst)) as container:
        assert len(list(container.decode(video=0))) == stats.frames_out


def test_the_video_stream_stays_first(tmp_path: Path, classical_engine: Engine) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=6)
    enhance_file(classical_engine, src, dst)
    with av.open(str(dst)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]


def test_titles_languages_and_handler_names_are_kept(
    tmp_path: Path, classical_engine: Engine
) -> None:
    src, dst = tmp_path / "tagged.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=6, metadata={"title": "Harbour at dawn"},
               stream_metadata={"video": {"language": "eng", "handler_name": "video handler"},
                                "audio": {"language": "fra"}})
    enhance_file(classical_engine, src, dst)
    with av.open(str(dst)) as result:
        assert result.metadata["title"] == "Harbour at dawn"
        video, audio = result.streams.video[0], result.streams.audio[0]
        assert video.language == "eng" and audio.language == "fra"
        handlers = {k.lower(): v for k, v in video.metadata.items()}
        assert handlers.get("handler_name") == "video handler"


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_portrait_phone_video_and_anamorphic_pixels_play_as_the_input(
    tmp_path: Path, classical_engine: Engine, suffix: str
) -> None:
    """Rotation (display matrix) and the sample aspect ratio are kept: the pixels stay as
    stored and the output tells the player the same, so it shows what the input shows."""
    src, dst = tmp_path / f"phone{suffix}", tmp_path / f"out{suffix}"
    write_clip(src, frames=6, rotation=90, sample_aspect_ratio=Fraction(32, 27))
    enhance_file(classical_engine, src, dst)
    with av.open(str(dst)) as result:
        video = result.streams.video[0]
        assert video.sample_aspect_ratio == Fraction(32, 27)
        first = next(result.decode(video=0))
        assert first.rotation == 90 and (first.width, first.height) == (128, 96)
