"""The CPU's planes path: I420 frames at a reduced inference size, enhanced without RGB at full
resolution (streamer/engine/planes.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdm.data import read_rgb
from streamer.engine import Engine, EngineBatch, EngineSettings, TemporalState
from streamer.engine.colour import rgb_to_yuv420, yuv420_to_rgb
from streamer.engine.temporal import StabiliserParams
from streamer.frames import ANY, RGB, Layout, YuvCoding
from streamer.publish.publisher import PublishSettings
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
from streamer.sources.video import VideoSource
from tests.streamer.clips import decoded_pts, write_clip

CODING = YuvCoding(1, 1)  # BT.709, limited range: what cameras and players use
SETTINGS = EngineSettings(task="dehaze",
                          model="hdm-s", device="cpu", backend="eager", inference_size=48)


def _hazy_planes(shared_data: Path) -> np.ndarray:
    """A real hazy photo, 256x144, as I420."""
    photo = read_rgb(shared_data / "dehaze" / "real_hazy_classic" / "canyon.png")
    rgb = cv2.resize(photo, (256, 144), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    return rgb_to_yuv420(x, *CODING)[0].numpy()


def _rgb(planes: np.ndarray) -> np.ndarray:
    rgb = yuv420_to_rgb(torch.from_numpy(planes)[None], *CODING)[0]
    return (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_the_planes_path_runs_where_it_should_and_nowhere_else() -> None:
    engine = Engine.build(SETTINGS)
    assert engine.planes_only_through and engine.accepts == ANY
    for other in (EngineSettings(task="dehaze", model="hdm-s", device="cpu", inference_size="full"),
                  EngineSettings(task="dehaze",
                                 model="hdm-s", device="cpu", inference_size=48, colour="host"),
                  EngineSettings(model="hdm-s", task="derain", device="cpu", inference_size=48)):
        refused = Engine.build(other)  # full size; swscale asked for; the colour fit
        assert not refused.planes_only_through and refused.accepts == RGB


def test_planes_come_out_as_the_rgb_path_would_make_them(shared_data: Path) -> None:
    """Against the reduced RGB path fed the same picture (through the same YUV conversion):
    the fit in YUV differs only by rounding and the fit's own least squares."""
    planes = _hazy_planes(shared_data)
    engine = Engine.build(SETTINGS)
    batch = EngineBatch([planes], Layout.I420, [CODING], out_layout=Layout.I420)
    (got,) = engine.submit(batch, [TemporalState()]).result()
    assert got.shape == planes.shape and got.dtype == np.uint8
    (direct,) = engine.runner.enhance_planes([planes], [CODING], [TemporalState()])
    assert np.array_equal(got, direct)  # submit took the planes path
    (reference,) = Engine.build(SETTINGS).enhance([_rgb(planes)])
    assert _psnr(_rgb(got), reference) > 35
    assert _psnr(_rgb(got), _rgb(planes)) < 25  # and it did enhance


def test_the_planes_path_steadies_a_still_scene(shared_data: Path) -> None:
    """Sensor noise on a still picture: the stabiliser holds the output; without it every
    frame's output moves with the noise."""
    planes = _hazy_planes(shared_data)
    rng = np.random.default_rng(0)
    frames = [np.clip(planes + rng.normal(0, 2, planes.shape), 0, 255).astype(np.uint8)
              for _ in range(6)]

    def change(stabiliser: StabiliserParams) -> float:
        engine = Engine.build(SETTINGS, stabiliser=stabiliser)
        state = TemporalState()
        outs = [engine.submit(EngineBatch([f], Layout.I420, [CODING], out_layout=Layout.I420),
                              [state]).result()[0].astype(int) for f in frames]
        steps = zip(outs[2:-1], outs[3:], strict=True)
        return float(np.mean([np.abs(b - a).mean() for a, b in steps]))

    assert change(StabiliserParams()) < 0.5 * change(StabiliserParams(enabled=False))


@pytest.mark.parametrize("sides", [(144, 256), (90, 160)])
def test_frames_of_any_even_size_keep_their_shape(sides: tuple[int, int]) -> None:
    height, width = sides
    planes = np.random.default_rng(1).integers(16, 236, (height * 3 // 2, width), np.uint8)
    engine = Engine.build(SETTINGS)
    (got,) = engine.runner.enhance_planes([planes], [CODING], [TemporalState()])
    assert got.shape == planes.shape


@pytest.mark.slow
def test_a_file_goes_through_as_planes_and_keeps_every_frame(tmp_path: Path,
                                                            shared_data: Path) -> None:
    """A yuv420p file into a yuv420p file: the decoder hands over planes, the encoder takes
    them back, every frame and pts kept; a ZeroMQ output beside it (RGB only) turns the planes
    off for that stream."""
    rgb = _rgb(_hazy_planes(shared_data))
    images = [np.roll(rgb, 2 * i, axis=1) for i in range(8)]
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    pts = write_clip(src, frames=8, size=(144, 256), images=images, audio=False)
    engine = Engine.build(SETTINGS)
    pipeline = Pipeline(VideoSource(str(src)), engine, output=(out, EncodeSettings()),
                        progress=False)
    pipeline.run()
    assert pipeline.session.in_layouts == pipeline.session.out_layouts == {Layout.I420,
                                                                           Layout.RGB24}
    assert decoded_pts(out) == pts
    both = Pipeline(VideoSource(str(src)), engine, output=(tmp_path / "b.mp4", EncodeSettings()),
                    publish=PublishSettings(endpoint=f"ipc://{tmp_path}/frames"), progress=False)
    both.run()
    assert both.session.in_layouts == {Layout.RGB24}
