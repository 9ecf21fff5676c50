"""An IP camera over RTSP (issue 20, 5), from a real RTSP server on 127.0.0.1
(tests/streamer/rtsp_server.py: the ffmpeg tool's RTP, relayed over TCP) to FFmpeg's own RTSP
client, as ``hdm-stream run rtsp://...`` reads it: every frame the camera sends is read, at
increasing times, its G.711 sound kept (as PCM, named in a warning), into MP4 and Matroska; a
camera that drops the connection is reconnected to, and one gone for good ends the run in one
line with what was recorded kept."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import pytest

from tests.streamer.camera_clips import needs_ffmpeg
from tests.streamer.commands import run
from tests.streamer.corpus import ip_camera_stream
from tests.streamer.rtsp_server import Recording, RtspCamera, record

pytestmark = [needs_ffmpeg, pytest.mark.slow]  # 10 s: the recording (2 s) and four live runs
FRAMES = 45  # of the camera's 60: --max-frames ends the run before its stream does


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """The camera's packets, sent by the ffmpeg tool once (2 s, in real time)."""
    folder = tmp_path_factory.mktemp("rtsp")
    clip = folder / "camera.mkv"
    ip_camera_stream(clip)
    return record(clip, folder)


def _written(path: Path) -> tuple[list[float], list[str]]:
    """The video's presentation times (s) and each audio stream's codec, read back."""
    with av.open(str(path)) as container:
        audio = [s.codec_context.name for s in container.streams.audio]
        times = [float(f.time) for f in container.decode(video=0) if f.time is not None]
    return times, audio


def _summary(path: Path) -> dict[str, object]:
    summary: dict[str, object] = json.loads(path.read_text())
    return summary


def _increasing(times: list[float]) -> bool:
    return all(b > a for a, b in zip(times, times[1:], strict=False))


def test_a_camera_into_mp4_every_frame_read_and_each_one_accounted_for(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the default queue: what FFmpeg buffered while probing the stream (about 0.9 s)
    comes at once, and a live run drops what its queue cannot hold, counted."""
    dst, summary = tmp_path / "cam.mp4", tmp_path / "summary.json"
    with RtspCamera(recording) as camera:
        assert run(camera.url, "-o", dst, "--max-frames", str(FRAMES), "--summary-json",
                   summary) == 0
    stats = _summary(summary)
    dropped = stats["dropped"]
    assert isinstance(dropped, dict)
    assert stats["frames_in"] == FRAMES
    assert stats["frames_out"] + dropped["queue"] + dropped["stale"] == FRAMES
    times, audio = _written(dst)
    assert len(times) == stats["frames_out"] and _increasing(times)
    assert audio == ["pcm_s16le"]
    assert "cannot hold the input's audio pcm_alaw (stream #1) as it is: written as " \
           "pcm_s16le" in capsys.readouterr().err


def test_a_camera_into_mkv_with_room_for_the_probed_frames_keeps_every_one(
        recording: Recording, tmp_path: Path) -> None:
    dst, config = tmp_path / "cam.mkv", tmp_path / "room.yaml"
    config.write_text("batch: {queue_batches: 10, latency_ms: 3000}\n")  # the burst fits
    with RtspCamera(recording) as camera:
        assert run(camera.url, "-o", dst, "--max-frames", str(FRAMES), "--config", config) == 0
    times, audio = _written(dst)
    assert len(times) == FRAMES and _increasing(times)
    assert times[-1] - times[0] == pytest.approx((FRAMES - 1) / 30, abs=0.1)  # its own pace
    assert audio == ["pcm_s16le"]


def test_a_camera_that_drops_the_connection_is_reconnected_to(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "rebooted.mp4"
    with RtspCamera(recording, vanish_after_s=1.0) as camera:
        assert run(camera.url, "-o", dst, "--max-frames", "50") == 0
        assert camera.clients == 2
    err = capsys.readouterr().err
    assert "ended; reconnecting" in err and "reconnected to" in err
    times, _ = _written(dst)
    assert _increasing(times)
    assert times[-1] > 1.0  # the second connection's frames follow, on the run's clock


def test_a_camera_gone_for_good_ends_the_run_in_one_line_with_what_it_recorded(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst, config = tmp_path / "gone.mp4", tmp_path / "give-up.yaml"
    config.write_text("source: {reconnect: {max_attempts: 2, backoff_initial_s: 0.2}}\n")
    with RtspCamera(recording, vanish_after_s=1.0) as camera:
        threading.Timer(0.5, camera.close).start()  # off the network before it drops us
        assert run(camera.url, "-o", dst, "--max-frames", "50", "--config", config) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "error:" in line]
    assert line.endswith(f"{camera.url} stayed unreachable after 2 reconnect attempts")
    assert "Traceback" not in err
    times, audio = _written(dst)
    assert times and _increasing(times) and audio == ["pcm_s16le"]
