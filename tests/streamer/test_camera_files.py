"""Files as cameras and editors make them (issue 20), made with FFmpeg's command line and run
through ``hdm-stream run``: a timecode track kept (not an empty MOV reported as written), data
streams a container cannot hold left out by name, never a refused file; and every file output
read back before it is reported as written."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from streamer.errors import OutputIncompleteError
from streamer.sinks.check import check_written
from streamer.sources import video as source_video
from tests.streamer.camera_clips import (
    VIDEO,
    ffmpeg,
    ffprobe_streams,
    needs_ffmpeg,
    timecode_clip,
    video_packets,
)
from tests.streamer.commands import run

pytestmark = needs_ffmpeg


def _timecode(stream: dict[str, object]) -> str | None:
    tags = stream.get("tags") or {}
    assert isinstance(tags, dict)
    return next((v for k, v in tags.items() if k.lower() == "timecode"), None)


@pytest.mark.parametrize("into", ["mov", "mp4"])
def test_a_timecode_track_is_written_again_with_the_video(tmp_path: Path, into: str) -> None:
    """Today's main: a MOV with no video packet at all (exit 0), "Invalid argument" into MP4."""
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / f"out.{into}"
    assert run(src, "-o", dst) == 0
    assert video_packets(dst) == 30
    streams = ffprobe_streams(dst)
    assert [s["codec_type"] for s in streams] == ["video", "data"]
    assert streams[0]["nb_read_packets"] == "30"
    assert streams[1]["codec_tag_string"] == "tmcd"
    assert _timecode(streams[1]) == _timecode(streams[0]) == "01:00:00:00"


@pytest.mark.parametrize("into", ["mkv", "webm"])
def test_matroska_gets_the_timecode_tag(tmp_path: Path, into: str) -> None:
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / f"out.{into}"
    assert run(src, "-o", dst) == 0
    assert video_packets(dst) == 30
    (video,) = ffprobe_streams(dst)
    assert _timecode(video) == "01:00:00:00"


def test_a_timecode_is_read_from_matroska_and_kept_into_mov(tmp_path: Path) -> None:
    src = tmp_path / "tc.mkv"
    ffmpeg(*VIDEO, "-c:v", "libx264", "-metadata:s:v", "timecode=10:20:30:15", src)
    dst = tmp_path / "out.mov"
    assert run(src, "-o", dst) == 0
    streams = ffprobe_streams(dst)
    assert streams[1]["codec_tag_string"] == "tmcd"
    assert _timecode(streams[1]) == "10:20:30:15"


def _lines(err: str, word: str) -> list[str]:
    return [line for line in err.splitlines() if word in line]


def test_mpegts_says_it_has_no_place_for_the_timecode(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / "out.ts"
    assert run(src, "-o", dst) == 0
    assert video_packets(dst) == 30
    warned = _lines(capsys.readouterr().err, "timecode")
    assert len(warned) == 1 and "01:00:00:00" in warned[0] and "mpegts" in warned[0]


def test_a_timecode_survives_segments_and_their_join(tmp_path: Path) -> None:
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / "out.mov"
    assert run(src, "-o", dst, "--segment-seconds", "0.5", "--preroll", "4") == 0
    assert video_packets(dst) == 30
    streams = ffprobe_streams(dst)
    assert streams[1]["codec_tag_string"] == "tmcd"
    assert _timecode(streams[1]) == "01:00:00:00"


def test_a_chapter_text_track_is_not_copied_as_data(tmp_path: Path) -> None:
    """FFmpeg shows an MP4's chapter text track as a data stream; copied, it had refused the
    file ("Invalid data found when processing input"). The chapters themselves are kept."""
    meta = tmp_path / "chapters.txt"
    meta.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=One\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Two\n")
    src = tmp_path / "chapters.mp4"
    ffmpeg(*VIDEO, "-i", meta, "-map_metadata", "1", "-map", "0", "-c:v", "libx264", src)
    for into in ("mp4", "mkv"):
        dst = tmp_path / f"out.{into}"
        assert run(src, "-o", dst) == 0
        assert video_packets(dst) == 30
        with av.open(str(dst)) as out:
            assert [c["metadata"]["title"] for c in out.chapters()] == ["One", "Two"]


def _gpmf_clip(path: Path) -> None:
    """An action camera's MP4: H.264 and a GoPro-style telemetry track (gpmd, binary data)."""
    from fractions import Fraction

    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        data = out.add_data_stream("bin_data")
        data.metadata["handler_name"] = "GoPro MET"
        out.start_encoding()
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 8, np.uint8),
                                               format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(video.encode(frame))
            if i % 15 == 0:
                packet = av.Packet(b"DEVC" + bytes(60))
                packet.stream, packet.time_base = data, Fraction(1, 1000)
                packet.pts = packet.dts = i * 1000 // 30
                packet.duration = 500
                out.mux(packet)
        out.mux(video.encode())


def test_telemetry_is_kept_where_it_can_be_and_named_where_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """gpmd into MP4/MOV is kept; Matroska cannot hold it: one warning, not a refused file."""
    src = tmp_path / "gopro.mp4"
    _gpmf_clip(src)
    assert run(src, "-o", tmp_path / "out.mp4") == 0
    assert [s["codec_tag_string"] for s in ffprobe_streams(tmp_path / "out.mp4")] == [
        "avc1", "gpmd"]
    capsys.readouterr()
    assert run(src, "-o", tmp_path / "out.mkv") == 0
    assert video_packets(tmp_path / "out.mkv") == 30
    warned = _lines(capsys.readouterr().err, "left out")
    assert len(warned) == 1 and "stream #1" in warned[0] and "matroska" in warned[0]


def test_a_file_written_without_its_video_is_an_error_not_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old path, the tmcd track copied as data (a MOV with no video packet): the output
    check reads the file back, the run fails with one line, exit 2, and the summary says so."""
    monkeypatch.setattr(source_video, "_rebuilt", lambda stream: False)
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / "out.mov"
    assert run(src, "-o", dst) == 2
    err = capsys.readouterr().err
    assert "output incomplete: " in err and "holds 0 of the 30 video packets" in err
    assert "error: " in err and "wrote " not in err and "Traceback" not in err


def test_the_output_check_finds_a_cut_file_and_a_missing_trailer(tmp_path: Path) -> None:
    src = timecode_clip(tmp_path / "tc.mov")
    dst = tmp_path / "out.mp4"
    assert run(src, "-o", dst) == 0
    check_written(dst, 30, "mp4")
    with pytest.raises(OutputIncompleteError, match="31 video packets"):
        check_written(dst, 31, "mp4")
    data = dst.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - 100])  # the mfra trailer is gone
    with pytest.raises(OutputIncompleteError, match="incomplete"):
        check_written(cut, 30, "mp4")
    (tmp_path / "nothing.mkv").write_bytes(b"")
    with pytest.raises(OutputIncompleteError, match="cannot be read back"):
        check_written(tmp_path / "nothing.mkv", 30, "matroska")


def test_a_webcam_avi_into_avi_keeps_the_first_frame_at_zero(tmp_path: Path) -> None:
    """MJPEG + PCM as a webcam records it. H.264 in AVI (which stores no presentation time)
    read back every frame one later (the first at 0.033 s, a frame behind the sound), with
    B-frames or without: ``auto`` writes AVI's own MPEG-4 Part 2, without B-frames."""
    from tests.streamer.clips import audio_packets, decoded_pts

    src, dst = tmp_path / "webcam.avi", tmp_path / "out.avi"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", "sine=sample_rate=16000:duration=1", "-c:v", "mjpeg",
           "-c:a", "pcm_s16le", src)
    assert run(src, "-o", dst) == 0
    assert decoded_pts(dst) == decoded_pts(src) == list(range(30))
    assert audio_packets(dst) == audio_packets(src)
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.name == "mpeg4"
    assert run(src, "-o", tmp_path / "h264.avi", "--codec", "libx264") == 0
    with av.open(str(tmp_path / "h264.avi")) as out:  # no B-frames AVI could not order
        assert [int(f.pict_type) for f in out.decode(video=0)].count(3) == 0  # 3: B
