"""The camera's motion (streamer/engine/motion.py) and the temporal filters that follow it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmarks.bench_ghosting import CAMERAS, ghost, synthetic
from hdm.data import read_rgb
from streamer.engine import Engine, EngineBatch, EngineSettings, TemporalState
from streamer.engine.colour import rgb_to_yuv420, yuv420_to_rgb
from streamer.engine.motion import Motion, estimate_motion, warp
from streamer.engine.temporal import SmoothingParams, StabiliserParams
from streamer.frames import Layout, YuvCoding

SETTINGS = EngineSettings(task="dehaze",
                          model="hdm-s", device="cpu", backend="eager", inference_size=48)


def _photo(shared_data: Path) -> np.ndarray:
    return read_rgb(shared_data / "dehaze" / "real_hazy_classic" / "canyon.png")


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def test_a_known_camera_motion_is_recovered(shared_data: Path) -> None:
    grey = cv2.resize(_grey(_photo(shared_data)), (300, 200), interpolation=cv2.INTER_AREA)
    truth = np.asarray(cv2.getRotationMatrix2D((150, 100), 1.5, 1.02), np.float64)
    truth[:, 2] += (2.5, -1.0)
    moved = cv2.warpAffine(grey, truth, (300, 200), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    motion = estimate_motion(grey, moved)
    assert motion is not None and motion.size == (200, 300)
    corners = np.array([[0, 0, 1], [299, 0, 1], [0, 199, 1], [299, 199, 1]], float)
    assert np.abs(corners @ motion.matrix.T - corners @ truth.T).max() < 0.3
    assert estimate_motion(grey, grey) is None  # a still camera: nothing to move
    flat = np.full((96, 160), 128, np.uint8)
    assert estimate_motion(flat, flat) is None


def test_a_motion_scales_to_every_image_of_the_same_view() -> None:
    """At twice the size a shift doubles; a zoom about the centre stays about the centre."""
    shift = Motion(np.array([[1.0, 0, 1.5], [0, 1, -0.5]]), (90, 160))
    assert np.allclose(shift.for_size(180, 320), [[1, 0, 3.0], [0, 1, -1.0]])
    zoom = cv2.getRotationMatrix2D((79.5, 44.5), 0, 1.1)
    scaled = Motion(zoom, (90, 160)).for_size(360, 640)
    assert np.allclose(scaled @ [319.5, 179.5, 1], [319.5, 179.5])


def test_the_cpu_and_the_device_warps_agree() -> None:
    image = torch.rand(1, 3, 40, 64)
    matrix = cv2.getRotationMatrix2D((30, 20), 3.0, 1.05)
    cpu = warp(image, matrix)
    other = warp(image.double(), matrix).float()  # the grid_sample path, as on a GPU
    assert (cpu - other)[..., 4:-4, 4:-4].abs().max() < 1e-3
    hard = torch.nn.functional.one_hot(torch.randint(0, 4, (1, 10, 16)), 4).permute(0, 3, 1, 2)
    warped = warp(hard.float(), matrix, interpolation="nearest")
    assert set(warped.unique().tolist()) <= {0.0, 1.0} and torch.all(warped.sum(1) == 1)


def _run(images: list[np.ndarray], smoothing: SmoothingParams,
         stabiliser: StabiliserParams) -> list[np.ndarray]:
    engine = Engine.build(SETTINGS, smoothing, stabiliser=stabiliser)
    state = TemporalState()
    return [engine.enhance([image], state)[0] for image in images]


@pytest.mark.slow
@pytest.mark.parametrize("camera", ["pan", "zoom"])
def test_the_filters_follow_the_camera_instead_of_trailing(shared_data: Path,
                                                          camera: str) -> None:
    """A real photo moved by a known camera: the steadied output stays close to the model's
    own per-frame output (no trails); held still, the old filters trail far more."""
    images, _ = synthetic(_photo(shared_data), CAMERAS[camera], 12, (256, 144))
    per_frame = _run(images, SmoothingParams(enabled=False), StabiliserParams(enabled=False))
    still = _run(images, SmoothingParams(follow_camera=False),
                 StabiliserParams(follow_camera=False))
    follow = _run(images, SmoothingParams(), StabiliserParams())
    trailing, followed = ghost(images, still, per_frame), ghost(images, follow, per_frame)
    assert trailing is not None and followed is not None
    assert followed < 0.6 * trailing


def test_a_still_camera_is_steadied_exactly_as_before(shared_data: Path) -> None:
    """No motion estimated, nothing warped: following the camera changes no frame."""
    images, _ = synthetic(_photo(shared_data), CAMERAS["still"], 5, (128, 96))
    follow = _run(images, SmoothingParams(), StabiliserParams())
    still = _run(images, SmoothingParams(follow_camera=False),
                 StabiliserParams(follow_camera=False))
    assert all(np.array_equal(a, b) for a, b in zip(follow, still, strict=True))


def test_the_planes_path_follows_the_camera_too(shared_data: Path) -> None:
    coding = YuvCoding(1, 1)
    images, _ = synthetic(_photo(shared_data), CAMERAS["pan"], 10, (256, 144))
    planes = [rgb_to_yuv420(torch.from_numpy(i).permute(2, 0, 1)[None].float() / 255,
                            *coding)[0].numpy() for i in images]

    def run(follow: bool) -> list[np.ndarray]:
        engine = Engine.build(SETTINGS, SmoothingParams(follow_camera=follow),
                              stabiliser=StabiliserParams(follow_camera=follow))
        state = TemporalState()
        outs = [engine.submit(EngineBatch([p], Layout.I420, [coding], out_layout=Layout.I420),
                              [state]).result()[0] for p in planes]
        return [(yuv420_to_rgb(torch.from_numpy(o)[None], *coding)[0].permute(1, 2, 0) * 255)
                .round().to(torch.uint8).numpy() for o in outs]

    per_frame_engine = Engine.build(SETTINGS, SmoothingParams(enabled=False),
                                    stabiliser=StabiliserParams(enabled=False))
    per_frame = [per_frame_engine.enhance([i])[0] for i in images]
    followed, trailing = ghost(images, run(True), per_frame), ghost(images, run(False), per_frame)
    assert followed is not None and trailing is not None and followed < 0.7 * trailing
