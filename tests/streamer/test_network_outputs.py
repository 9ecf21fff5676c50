"""Network video outputs, read back by PyAV: MPEG-TS over UDP, HLS into a folder."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import av
import pytest

from streamer.batcher import BatchSettings
from streamer.engine import Engine
from streamer.errors import ConfigError
from streamer.pipeline import Pipeline
from streamer.sinks.av_output import EncodeSettings
from streamer.sinks.network import NetworkOutput, default_format
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
        NetworkOutput("gopher://host/x")
    with pytest.raises(ConfigError, match="no 'nosuchmuxer' muxer"):
        NetworkOutput("udp://127.0.0.1:9", format="nosuchmuxer")
