"""FlickerMeter: change of the output where the input stood still, once the camera's motion is
taken out, so that a pan is not counted as flicker and an output trailing the camera does not
pass for a steady one."""

from __future__ import annotations

import cv2
import numpy as np

from streamer.stats import FlickerMeter

HEIGHT, WIDTH, FRAMES, STEP = 360, 640, 24, 3


def panning_clip() -> list[np.ndarray]:
    """A soft textured picture panned ``STEP`` pixels a frame, with sensor noise."""
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH + STEP * FRAMES, 3),
                                            np.uint8), (0, 0), 4)
    picture = cv2.normalize(picture, None, 40, 215, cv2.NORM_MINMAX)
    return [np.clip(picture[:, i * STEP : i * STEP + WIDTH] + rng.normal(0, 1, (HEIGHT, WIDTH, 3)),
                    0, 255).astype(np.uint8) for i in range(FRAMES)]


def measure(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> FlickerMeter:
    meter = FlickerMeter()
    for x, y in zip(inputs, outputs, strict=True):
        meter.update(x, y)
    return meter


def trailing(frames: list[np.ndarray], weight: float = 0.1) -> list[np.ndarray]:
    """A recursive average that does not follow the camera: it smears the pan."""
    average, out = frames[0].astype(np.float64), []
    for frame in frames:
        average = (1 - weight) * average + weight * frame
        out.append(average.round().astype(np.uint8))
    return out


def test_a_pan_of_a_noisy_picture_measures_its_noise_not_its_motion() -> None:
    clip = panning_clip()
    meter = measure(clip, clip)
    assert meter.frames == FRAMES - 1  # the motion left static pixels in every frame
    still = measure([clip[0]] * FRAMES, [clip[0]] * FRAMES)
    noise = [np.clip(clip[0] + np.random.default_rng(i).normal(0, 1, clip[0].shape), 0, 255
                     ).astype(np.uint8) for i in range(FRAMES)]
    noisy_still = measure(noise, noise)
    assert still.input == 0.0 and noisy_still.input is not None and meter.input is not None
    print(f"input flicker: pan {meter.input:.2f}, "
          f"still with the same noise {noisy_still.input:.2f}")
    assert meter.output == meter.input
    assert abs(meter.input - noisy_still.input) < 0.35 * noisy_still.input


def test_an_output_that_trails_the_camera_flickers_more_than_one_that_follows_it() -> None:
    clip = panning_clip()
    followed, trailed = measure(clip, clip), measure(clip, trailing(clip))
    assert followed.output is not None and trailed.output is not None
    print(f"flicker: following {followed.output:.2f}, trailing {trailed.output:.2f}")
    assert trailed.output > 3 * followed.output


def test_a_still_camera_counts_every_pixel_that_stood_still() -> None:
    rng = np.random.default_rng(1)
    still = cv2.normalize(cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8),
                                           (0, 0), 4), None, 40, 215, cv2.NORM_MINMAX)
    blinking = [still + np.uint8(3 * (i % 2)) for i in range(4)]  # every pixel, 3 levels
    meter = measure([still] * 4, blinking)
    assert meter.input == 0.0 and meter.frames == 3
    assert meter.output is not None and abs(meter.output - 3.0) < 0.01
