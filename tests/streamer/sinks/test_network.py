"""Network video outputs, read back by PyAV: MPEG-TS over UDP, HLS into a folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from streamer.engine import Engine
from streamer.errors import ConfigError
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.network import UrlTarget, default_format
from streamer.sources.video import VideoSource
from tests.streamer.clips import write_clip

FRAMES = 48


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mpegts_over_udp_is_received_by_pyav(tmp_path: Path, classical_engine: Engine) -> None:
    src = tmp_path / "in.mkv"
    write_clip(src, frames=FRAMES, audio=False)
    port = free_udp_port()
    received: list[tuple[int, int]] = []
    listening = threading.Event()

    def receive() -> None:
        url = f"udp://127.0.0.1:{port}?fifo_size=100000&overrun_nonfatal=1"
        listening.set()
        with av.open(url, timeout=(10.0, 2.0)) as container:
            try:
                for frame in container.decode(video=0):
                    received.append((frame.width, frame.height))
            except av.error.ExitError:  # no more datagrams: the stream is over
                pass

    receiver = threading.Thread(target=receive)
    receiver.start()
    listening.wait()
    target = f"udp://127.0.0.1:{port}?pkt_size=1316"
    Pipeline(VideoSource(str(src)), classical_engine, output=(target, EncodeSettings()),
             batching=BatchSettings(size=4), progress=False).run()
    receiver.join(timeout=20)
    assert not receiver.is_alive()
    assert len(received) >= FRAMES * 3 // 4  # UDP may lose a datagram; loopback seldom does
    assert set(received) == {(128, 96)}


def test_hls_playlist_and_segments_decode(tmp_path: Path, classical_engine: Engine) -> None:
    src = tmp_path / "in.mp4"
    write_clip(src, frames=FRAMES, fps=12)  # 4 s: two segments of 2 s
    playlist = tmp_path / "hls" / "live.m3u8"
    stats = Pipeline(VideoSource(str(src)), classical_engine,
                     output=(str(playlist), EncodeSettings()),
                     batching=BatchSettings(size=4), progress=False).run()
    text = playlist.read_text()
    segments = [line for line in text.splitlines() if line.endswith(".ts")]
    assert "#EXT-X-ENDLIST" in text and len(segments) >= 2
    decoded = 0
    for name in segments:
        with av.open(str(playlist.parent / name)) as container:
            decoded += sum(1 for _ in container.decode(video=0))
    assert decoded == stats.frames_out == FRAMES


def test_unknown_schemes_and_muxers_are_refused_with_the_choices() -> None:
    assert default_format("srt://127.0.0.1:9000?mode=listener") == "mpegts"
    assert default_format("rtmp://server/live/key") == "flv"
    with pytest.raises(ConfigError, match="no default format for gopher"):
        UrlTarget("gopher://host/x")
    with pytest.raises(ConfigError, match="no 'nosuchmuxer' muxer"):
        UrlTarget("udp://127.0.0.1:9", format="nosuchmuxer")


RECEIVER = """
import sys, av
frames = 0
with av.open(sys.argv[1], options={"listen": "1"}, timeout=(20.0, 5.0)) as container:
    try:
        for _ in container.decode(video=0):
            frames += 1
    except (av.error.FFmpegError, OSError):  # the pusher hung up
        pass
print(frames)
"""


@pytest.mark.slow
def test_an_rtmp_push_reaches_a_listening_server(tmp_path: Path, classical_engine: Engine
                                                 ) -> None:
    """FFmpeg itself listens as the RTMP server (in its own process: PyAV holds the GIL while
    it waits for a connection there), and PyAV reads what arrives."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    src = tmp_path / "in.mkv"
    write_clip(src, frames=FRAMES, audio=False)
    server = subprocess.Popen([sys.executable, "-c", RECEIVER, url], stdout=subprocess.PIPE,
                              text=True)
    try:
        time.sleep(1.5)  # the server listens
        Pipeline(VideoSource(str(src)), classical_engine, output=(url, EncodeSettings()),
                 batching=BatchSettings(size=4), progress=False).run()
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert int(out.strip()) == FRAMES  # a file source: the RTMP output lost nothing


def test_a_protocol_this_ffmpeg_lacks_stops_the_run_with_one_clear_line(
    tmp_path: Path, classical_engine: Engine
) -> None:
    from streamer.errors import StreamerError

    try:
        av.open("srt://127.0.0.1:9?mode=caller", timeout=(0.5, 0.5))
    except av.error.ProtocolNotFoundError:
        pass
    except (av.error.FFmpegError, OSError):
        pytest.skip("this FFmpeg has SRT")
    src = tmp_path / "in.mkv"
    write_clip(src, frames=4, audio=False)
    with pytest.raises(StreamerError, match="cannot write srt:// streams"):
        Pipeline(VideoSource(str(src)), classical_engine,
                 output=("srt://127.0.0.1:9?mode=caller", EncodeSettings()),
                 progress=False).run()
