"""Colour bars through decode and encode for BT.601/709 × limited/full range."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from streamer.media.convert import color_tags, swscale_matrix
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileSink
from streamer.sources.video import VideoSource
from tests.streamer.clips import write_clip

BARS = np.array(
    [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16], [235, 16, 235],
     [235, 16, 16], [16, 16, 235], [16, 16, 16]],
    dtype=np.uint8,
)
# Max error in 8-bit levels at bar centres (away from 4:2:0 chroma edges). swscale's default
# (not bit-exact) conversions cost up to ~1.5 levels each way: one RGB->YUV->RGB trip stays
# within 3, two trips within 5. A wrong matrix or range costs 15-40 levels on these bars.
ONE_TRIP, TWO_TRIPS, WRONG_TAGS = 3, 5, 15


def colour_bars(height: int = 64, width: int = 256) -> np.ndarray:
    columns = np.repeat(np.arange(8), width // 8)
    return np.ascontiguousarray(np.broadcast_to(BARS[columns][None], (height, width, 3)))


def bar_centres(image: np.ndarray) -> np.ndarray:
    width = image.shape[1] // 8
    return np.stack([image[8:-8, i * width + 8 : (i + 1) * width - 8].reshape(-1, 3)
                     for i in range(8)]).astype(int)


@pytest.mark.parametrize("matrix", [1, 6], ids=["bt709", "bt601"])
@pytest.mark.parametrize("color_range", [1, 2], ids=["limited", "full"])
def test_colour_bars_round_trip_with_their_tags(
    tmp_path: Path, matrix: int, color_range: int
) -> None:
    bars = colour_bars()
    src, dst = tmp_path / "bars.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=3, size=bars.shape[:2], audio=False, matrix=matrix,
               color_range=color_range, options={"qp": "0"}, images=[bars] * 3)

    source = VideoSource(str(src))
    info = source.open()
    frames = list(source.frames())
    assert frames[0].tags.matrix == matrix and frames[0].tags.range == color_range
    assert np.abs(bar_centres(frames[0].image) - bar_centres(bars)).max() <= ONE_TRIP

    sink = FileSink(dst, EncodeSettings(crf=0))
    sink.open(info)
    for frame in frames:
        sink.write_frame(frame)
    sink.close()
    again = VideoSource(str(dst))
    again.open()
    decoded = list(again.frames())
    assert decoded[0].tags == frames[0].tags
    assert np.abs(bar_centres(decoded[0].image) - bar_centres(bars)).max() <= TWO_TRIPS


def test_the_tolerance_catches_a_wrong_matrix_or_range(tmp_path: Path) -> None:
    bars = colour_bars()
    src = tmp_path / "bars.mkv"
    write_clip(src, frames=1, size=bars.shape[:2], audio=False, matrix=1, color_range=1,
               options={"qp": "0"}, images=[bars])
    with av.open(str(src)) as container:
        frame = next(container.decode(video=0))
    for matrix, color_range in ((6, 1), (5, 1), (1, 2)):
        wrong = frame.reformat(format="rgb24", src_colorspace=swscale_matrix(matrix),
                               src_color_range=color_range, dst_color_range=2).to_ndarray()
        assert np.abs(bar_centres(wrong) - bar_centres(bars)).max() > WRONG_TAGS


def test_unspecified_tags_follow_the_picture_height() -> None:
    small = av.VideoFrame(640, 480, "yuv420p")
    large = av.VideoFrame(1920, 1080, "yuv420p")
    assert color_tags(small).matrix == 6 and color_tags(large).matrix == 1
    assert color_tags(small).range == 1
    assert color_tags(av.VideoFrame(64, 64, "yuvj420p")).range == 2


def test_ten_bit_input_decodes_to_sixteen_bit_rgb(tmp_path: Path) -> None:
    src = tmp_path / "ten.mkv"
    write_clip(src, frames=2, audio=False, pix_fmt="yuv420p10le", size=(64, 64))
    source = VideoSource(str(src))
    source.open()
    frame = next(iter(source.frames()))
    assert frame.image.dtype == np.uint16 and frame.image.max() > 255
