"""Camera-shaped test files made with FFmpeg's own command line (Debian's ffmpeg), as cameras,
phones and editors write them: what PyAV alone cannot make (a tmcd timecode track, G.711 in
Matroska, ADPCM, an MJPEG webcam AVI). Small and quick: 320x240 or less, 1-2 s."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import pytest

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None,
                                  reason="needs ffmpeg and ffprobe (apt-get install ffmpeg)")
VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=1"]
TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]


def ffmpeg(*args: str | Path) -> None:
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, args)], check=True,
                   stdin=subprocess.DEVNULL)


def ffprobe_streams(path: Path) -> list[dict[str, object]]:
    """Each stream's codec_type, codec_name, codec_tag_string, packets (counted) and tags."""
    import json

    assert FFPROBE is not None
    out = subprocess.run([FFPROBE, "-v", "error", "-count_packets", "-show_entries",
                          "stream=codec_type,codec_name,codec_tag_string,nb_read_packets:"
                          "stream_tags", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    streams: list[dict[str, object]] = json.loads(out)["streams"]
    return streams


def timecode_clip(path: Path, *more: str) -> Path:
    """H.264 with a start timecode (a tmcd track in MOV/MP4), as a camera writes it."""
    ffmpeg(*VIDEO, *more, "-c:v", "libx264", "-g", "15", "-timecode", "01:00:00:00", path)
    return path


def video_packets(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(container.streams.video[0]) if p.size)
