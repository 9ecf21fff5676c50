"""What a container carries beside the picture survives: chapters, attachments, data streams
(KLV of a drone's MPEG-TS), field order; ``--deinterlace`` turns it progressive frame for frame.
Real files made here, read back with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest

from tests.streamer.clips import decoded_pts, moving_square
from tests.streamer.commands import run

if TYPE_CHECKING:
    from av.container.core import Chapter

FONT = b"\x00\x01\x00\x00 not really a font, but bytes to keep"
CHAPTERS: list[Chapter] = [{"id": 1, "start": 0, "end": 12, "time_base": Fraction(1, 24),
             "metadata": {"title": "Intro"}},
            {"id": 2, "start": 12, "end": 24, "time_base": Fraction(1, 24),
             "metadata": {"title": "Main"}}]



def encode(container: av.container.OutputContainer, frames: int = 24, *,
           options: dict[str, str] | None = None) -> av.VideoStream:
    video = container.add_stream("libx264", rate=24, options=options or {})
    video.width, video.height, video.pix_fmt = 128, 96, "yuv420p"
    return video


def frames_into(container: av.container.OutputContainer, video: av.VideoStream, count: int,
                each: object = None) -> None:
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(moving_square(i, 96, 128), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        container.mux(video.encode(frame))
        if callable(each):
            each(i)
    container.mux(video.encode())


def write_with_font_and_chapters(path: Path) -> None:
    """A Matroska file as subtitled films are: a font attached, two chapters."""
    with av.open(str(path), "w") as container:
        video = encode(container)
        container.add_attachment("font.ttf", "font/ttf", FONT)
        container.set_chapters(CHAPTERS)
        frames_into(container, video, 24)


def _start_s(chapter: Chapter) -> float:
    assert chapter["time_base"] is not None, chapter
    return float(chapter["start"] * chapter["time_base"])


def test_chapters_and_attachments_are_kept_in_matroska(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_with_font_and_chapters(src)
    assert run(src, "-o", dst) == 0
    with av.open(str(dst)) as out:
        chapters = out.chapters()
        attachments = [(s.name, s.mimetype, bytes(s.data)) for s in out.streams
                       if isinstance(s, av.stream.AttachmentStream)]
        assert out.streams.video[0].index == 0
    assert [c["metadata"]["title"] for c in chapters] == ["Intro", "Main"]
    assert [_start_s(c) for c in chapters] == [0.0, 0.5]
    assert attachments == [("font.ttf", "font/ttf", FONT)]


def test_chapters_reach_mp4_and_attachments_are_left_out_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mp4"
    write_with_font_and_chapters(src)
    assert run(src, "-o", dst) == 0
    with av.open(str(dst)) as out:
        assert [c["metadata"]["title"] for c in out.chapters()] == ["Intro", "Main"]
    assert "holds no attachments: font.ttf left out" in capsys.readouterr().err


def test_a_klv_data_stream_is_copied_packet_for_packet(tmp_path: Path) -> None:
    src, dst = tmp_path / "drone.ts", tmp_path / "out.ts"
    payloads = [b"\x06\x0e\x2b\x34" + bytes([i]) * 12 for i in range(24)]
    with av.open(str(src), "w") as container:
        video = encode(container)
        data = container.add_data_stream("klv")

        def klv(i: int) -> None:
            packet = av.Packet(payloads[i])
            packet.stream = data
            packet.pts = packet.dts = i * 3750
            packet.time_base = Fraction(1, 90_000)
            container.mux(packet)

        frames_into(container, video, 24, klv)
    assert run(src, "-o", dst) == 0
    with av.open(str(dst)) as out:
        assert [s.type for s in out.streams] == ["video", "data"]
        copied = [bytes(p) for p in out.demux(out.streams[1]) if p.size]
    assert copied == payloads


def write_interlaced(path: Path, frames: int = 12) -> None:
    """Top field first, coded as fields (x264's +ilme+ildct), with combing where it moves."""
    with av.open(str(path), "w") as container:
        video = encode(container, options={"flags": "+ilme+ildct", "top": "1"})
        for i in range(frames):
            early, late = moving_square(2 * i, 96, 128), moving_square(2 * i + 1, 96, 128)
            woven = early.copy()
            woven[1::2] = late[1::2]  # the bottom field 1/48 s later
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(woven), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())


def test_interlaced_is_written_interlaced_or_deinterlaced_frame_for_frame(
    tmp_path: Path
) -> None:
    src, kept, progressive = tmp_path / "i.mkv", tmp_path / "kept.mkv", tmp_path / "p.mkv"
    write_interlaced(src)
    assert run(src, "-o", kept) == 0
    assert run(src, "-o", progressive, "--deinterlace") == 0
    with av.open(str(kept)) as out:
        assert out.streams.video[0].codec_context.field_order == 2  # top field first
        assert next(out.decode(video=0)).interlaced_frame
    with av.open(str(progressive)) as out:
        assert out.streams.video[0].codec_context.field_order in (0, 1)
        assert not next(out.decode(video=0)).interlaced_frame
    assert decoded_pts(progressive) == decoded_pts(src) == decoded_pts(kept)
    assert combing(progressive) < 0.75 * combing(kept)


def combing(path: Path) -> float:
    """Mean distance of each luma row from the average of its neighbours (fields apart)."""
    values = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            y = frame.to_ndarray()[:frame.height].astype(np.float32)
            values.append(float(np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean()))
    return float(np.mean(values))
