"""Clips made inside the tests with PyAV: real encodes, known content, known timestamps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from streamer.media.convert import swscale_matrix

if TYPE_CHECKING:
    from av.container.core import Chapter

SAMPLE_RATE = 48_000


def moving_square(index: int, height: int, width: int) -> np.ndarray:
    """A textured static background with a dark square moving left to right."""
    y, x = np.mgrid[0:height, 0:width]
    background = np.stack(
        [120 + 60 * np.sin(x / 9.0), 140 + 50 * np.cos(y / 7.0), 170 + 40 * np.sin((x + y) / 11.0)],
        axis=-1,
    )
    image = background.astype(np.uint8)
    size = max(4, height // 8)
    left = (index * 3) % max(1, width - size)
    image[height // 2 : height // 2 + size, left : left + size] = 15
    return image


def write_clip(
    path: Path,
    *,
    frames: int = 24,
    size: tuple[int, int] = (96, 128),
    fps: int = 24,
    audio: bool = True,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    matrix: int = 1,
    color_range: int = 1,
    images: list[np.ndarray] | None = None,
    metadata: dict[str, str] | None = None,
    stream_metadata: dict[str, dict[str, str]] | None = None,
    rotation: int = 0,
    sample_aspect_ratio: Fraction | None = None,
    chapters: list[Chapter] | None = None,
) -> list[int]:
    """Encode a clip; returns the video pts written. ``pts`` (in ``time_base``) makes it VFR."""
    height, width = size
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps, options=options or {})
        assert isinstance(video, av.VideoStream), f"{codec} is not a video encoder"
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            video.time_base = time_base
            video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        if sample_aspect_ratio is not None:
            video.sample_aspect_ratio = sample_aspect_ratio
        video.codec_context.colorspace = matrix
        video.codec_context.color_range = color_range
        audio_stream = (container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio
                        else None)
        container.metadata.update(metadata or {})
        if chapters:
            container.set_chapters(chapters)
        for stream in (video, audio_stream):
            if stream is not None:
                stream.metadata.update((stream_metadata or {}).get(stream.type, {}))
        for i in range(frames):
            image = images[i] if images is not None else moving_square(i, height, width)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=swscale_matrix(matrix), dst_color_range=color_range
            )
            frame.colorspace, frame.color_range = matrix, color_range
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio_stream is not None:
            seconds = frames / fps
            t = np.arange(int(SAMPLE_RATE * seconds), dtype=np.float32) / SAMPLE_RATE
            tone = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    tone[None, start : start + 1024], format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                chunk.time_base = Fraction(1, SAMPLE_RATE)
                container.mux(audio_stream.encode(chunk))
            container.mux(audio_stream.encode())
    return decoded_pts(path)


def decoded_pts(path: Path) -> list[int]:
    """The pts of every decoded video frame (each must have one: a frame without is a bug)."""
    with av.open(str(path)) as container:
        return [_pts(frame) for frame in container.decode(video=0)]


def _pts(frame: av.VideoFrame) -> int:
    assert frame.pts is not None, f"a decoded frame without pts: {frame}"
    return frame.pts


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(audio=0) if p.size]
