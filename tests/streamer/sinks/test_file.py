"""The file output alone (streamer/sinks/file.py): frames in arrival order with their times, the
container chosen by the extension, fragmented MP4 by default, nothing left by a run that wrote no
frame, and a folder or extension that cannot work refused in one line."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamer.errors import ConfigError, SinkError
from streamer.frames import Layout
from streamer.sinks.base import Output
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink, FileTarget, check_output_path
from tests.streamer.pictures import info_for, picture


def write(path: Path, count: int, layout: Layout = Layout.RGB24) -> FileSink:
    sink = FileSink(path)
    sink.open(info_for())
    for seq in range(count):
        frame = picture(seq, value=40 + 10 * seq, layout=layout)
        sink.write(Output(frame, frame))
    sink.close()
    return sink


def times(path: Path) -> list[Fraction]:
    found = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            found.append(frame.pts * frame.time_base)
    return found


@pytest.mark.parametrize(("name", "layout"), [("out.mkv", Layout.RGB24), ("out.mp4", Layout.I420)])
def test_every_frame_is_written_at_its_time(tmp_path: Path, name: str, layout: Layout) -> None:
    path = tmp_path / name
    sink = write(path, 6, layout)
    assert sink.frames_written == 6 and layout in sink.accepts
    assert times(path) == [Fraction(seq, 25) for seq in range(6)]


def test_an_mp4_is_written_in_fragments_playable_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    write(path, 3)
    data = path.read_bytes()
    assert b"moof" in data and data.index(b"moov") < data.index(b"moof")


def test_an_output_that_got_no_frame_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mkv"
    write(path, 0)
    assert not path.exists()


def test_a_missing_folder_is_one_sink_error_naming_it(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "missing" / "out.mkv")
    with pytest.raises(SinkError, match="output folder does not exist: .*missing"):
        sink.open(info_for())


def test_an_extension_no_muxer_writes_is_refused_early() -> None:
    check_output_path("out.mkv")
    with pytest.raises(ConfigError, match="no muxer for the extension 'xyz'"):
        check_output_path("out.xyz")


def test_avi_gets_no_b_frames_unless_the_user_asks_for_them() -> None:
    avi, mkv = FileTarget(Path("out.avi")), FileTarget(Path("out.mkv"))
    settings = EncodeSettings()
    assert avi.encoder_options({}, "libx264", None, settings) == {"bf": "0"}
    assert avi.encoder_options({"bf": "2"}, "libx264", None, settings) == {"bf": "2"}
    assert mkv.encoder_options({}, "libx264", None, settings) == {}
