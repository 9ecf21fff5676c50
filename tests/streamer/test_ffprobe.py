"""What a player's demuxer sees in our outputs, read by FFmpeg's own ffprobe (Debian's ffmpeg,
which .ci/run installs) rather than by the PyAV that wrote them: HDR tags and side data,
rotation, sample aspect ratio, chapters, stream order and tags."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.streamer.clips import write_clip
from tests.streamer.commands import run
from tests.streamer.test_hdr import write_hdr10

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="needs ffprobe (apt-get install ffmpeg)")


def probe(path: Path, *extra: str) -> dict[str, Any]:
    """ffprobe's JSON for ``path``."""
    assert FFPROBE is not None
    result = subprocess.run([FFPROBE, "-v", "error", "-print_format", "json", "-show_streams",
                             "-show_chapters", "-show_format", *extra, str(path)],
                            capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))



def test_hdr10_as_ffprobe_sees_it(tmp_path: Path) -> None:
    src, dst = tmp_path / "hdr10.mp4", tmp_path / "out.mkv"
    write_hdr10(src)
    assert run(src, "-o", dst) == 0
    info = probe(dst, "-show_frames", "-read_intervals", "%+#1")
    video = info["streams"][0]
    assert (video["codec_name"], video["pix_fmt"]) == ("hevc", "yuv420p10le")
    assert (video["color_transfer"], video["color_primaries"], video["color_space"]) == (
        "smpte2084", "bt2020", "bt2020nc")
    side = {d["side_data_type"]: d for d in info["frames"][0]["side_data_list"]}
    assert side["Content light level metadata"]["max_content"] == 1000
    assert side["Mastering display metadata"]["max_luminance"] == "10000000/10000"


def test_rotation_aspect_chapters_and_tags_as_ffprobe_sees_them(tmp_path: Path) -> None:
    src, dst = tmp_path / "phone.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=24, rotation=90, sample_aspect_ratio=Fraction(32, 27),
               metadata={"title": "Harbour"}, stream_metadata={"audio": {"language": "fra"}},
               chapters=[{"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000),
                          "metadata": {"title": "Start"}}])
    assert run(src, "-o", dst) == 0
    info = probe(dst)
    video, audio = info["streams"]
    assert video["codec_type"] == "video" and audio["codec_type"] == "audio"
    assert video["sample_aspect_ratio"] == "32:27"
    rotation = [d for d in video.get("side_data_list", []) if "rotation" in d]
    assert rotation and abs(int(rotation[0]["rotation"])) == 90
    assert audio["tags"]["language"] == "fra"
    assert info["format"]["tags"]["title"] == "Harbour"
    assert [c["tags"]["title"] for c in info["chapters"]] == ["Start"]
