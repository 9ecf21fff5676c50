"""The output stabiliser: less flicker where the input stands still, no trails where it moves,
a fresh start at a scene cut; and ``strength``, which blends the enhanced frame with its input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamer.engine import Engine, EngineSettings
from streamer.engine.temporal import (
    OutputStabiliser,
    SmoothingParams,
    StabiliserParams,
    StabiliserState,
)
from tests.streamer.clips import moving_square

HEIGHT, WIDTH, FRAMES = 64, 96, 30


def scene(index: int, rng: np.random.Generator) -> torch.Tensor:
    """A textured static background with a dark square moving 3 px a frame, plus sensor noise."""
    clean = moving_square(index, HEIGHT, WIDTH).astype(np.float32) / 255
    noisy = clean + rng.normal(0, 2 / 255, clean.shape)
    return torch.from_numpy(noisy.clip(0, 1)).permute(2, 0, 1)[None].float()


def noisy_model(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """An 'enhancer' whose output flickers: brighter, with fresh noise of its own every frame."""
    return (0.8 * x + 0.1 + torch.randn(x.shape, generator=rng) * 6 / 255).clamp(0, 1)


def run(params: StabiliserParams) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                            list[torch.Tensor]]:
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    inputs = [scene(i, rng) for i in range(FRAMES)]
    per_frame = [noisy_model(x, generator) for x in inputs]
    stabiliser, video = OutputStabiliser(params), [StabiliserState()]
    return inputs, per_frame, [stabiliser(x, y, video)
                               for x, y in zip(inputs, per_frame, strict=True)]


def static_mask(index: int) -> torch.Tensor:
    """Pixels the square covers in neither this frame nor the one before (with a margin)."""
    still = np.ones((HEIGHT, WIDTH), bool)
    size = HEIGHT // 8
    for i in (index - 1, index):
        left = (i * 3) % (WIDTH - size)
        still[HEIGHT // 2 - 3 : HEIGHT // 2 + size + 3, max(0, left - 3) : left + size + 3] = False
    return torch.from_numpy(still)


def flicker(outputs: list[torch.Tensor]) -> float:
    changes = [(b - a).abs().mean(1)[0][static_mask(i + 1)].mean().item()
               for i, (a, b) in enumerate(zip(outputs, outputs[1:], strict=False))]
    return 255 * float(np.mean(changes))


def test_stabiliser_brings_output_flicker_below_the_input_own() -> None:
    inputs, per_frame, steady = run(StabiliserParams())
    print(f"flicker: input {flicker(inputs):.2f}, per frame {flicker(per_frame):.2f}, "
          f"stabilised {flicker(steady):.2f}")
    assert flicker(per_frame) > 2 * flicker(inputs)
    assert flicker(steady) < flicker(inputs)
    unchanged = run(StabiliserParams(enabled=False))[2]
    torch.testing.assert_close(torch.cat(unchanged), torch.cat(per_frame))  # off means off


def test_a_moving_object_leaves_no_trail() -> None:
    _, per_frame, steady = run(StabiliserParams())
    size = HEIGHT // 8
    trails = []
    for i in range(5, FRAMES):
        left = (i * 3) % (WIDTH - size)
        square = (slice(None), slice(None), slice(HEIGHT // 2, HEIGHT // 2 + size),
                  slice(left, left + size))
        # Where the square is now (and so where the background was a frame ago).
        trails.append((steady[i][square] - per_frame[i][square]).abs().mean().item() * 255)
    print(f"trailing error on the square: {np.mean(trails):.2f} levels")
    assert np.mean(trails) < 3.0  # the model's own noise is 6 levels


def test_a_scene_cut_takes_the_new_output_as_it_is() -> None:
    stabiliser, video = OutputStabiliser(), [StabiliserState()]
    bright, dark = torch.full((1, 3, 32, 32), 0.9), torch.full((1, 3, 32, 32), 0.1)
    stabiliser(bright, bright, video)
    stabiliser(bright, bright, video)
    out = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(stabiliser(dark, out, video), out)


def test_padding_frames_pass_through_unremembered() -> None:
    stabiliser = OutputStabiliser()
    x = torch.full((3, 3, 16, 16), 0.5)
    out = torch.rand(3, 3, 16, 16)
    state = StabiliserState()
    steady = stabiliser(x, out, [state])
    torch.testing.assert_close(steady[1:], out[1:])
    assert state.output is not None and state.output.shape[0] == 1  # the real frame alone


def test_frames_of_two_streams_in_one_batch_keep_their_own_history() -> None:
    """A batch mixing two videos steadies each against its own past, as if run apart."""
    stabiliser = OutputStabiliser()
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    a_inputs = [scene(i, rng) for i in range(6)]
    b_inputs = [1 - scene(i, rng) for i in range(6)]
    a_out = [noisy_model(x, generator) for x in a_inputs]
    b_out = [noisy_model(x, generator) for x in b_inputs]
    alone_a, alone_b = [StabiliserState()], [StabiliserState()]
    expected = [(stabiliser(a, ya, alone_a), stabiliser(b, yb, alone_b))
                for a, ya, b, yb in zip(a_inputs, a_out, b_inputs, b_out, strict=True)]
    mixed_a, mixed_b = StabiliserState(), StabiliserState()
    for i in range(0, 6, 2):  # batches of four: a, b, a, b (two frames of each stream)
        x = torch.cat([a_inputs[i], b_inputs[i], a_inputs[i + 1], b_inputs[i + 1]])
        y = torch.cat([a_out[i], b_out[i], a_out[i + 1], b_out[i + 1]])
        got = stabiliser(x, y, [mixed_a, mixed_b, mixed_a, mixed_b])
        for j, frame in enumerate((i, i + 1)):
            torch.testing.assert_close(got[2 * j : 2 * j + 1], expected[frame][0])
            torch.testing.assert_close(got[2 * j + 1 : 2 * j + 2], expected[frame][1])


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_strength_blends_enhanced_frame_and_input(strength: float) -> None:
    image = (np.random.default_rng(0).random((48, 64, 3)) * 120 + 60).astype(np.uint8)
    off = StabiliserParams(enabled=False)

    def enhance(value: float) -> np.ndarray:
        settings = EngineSettings(task="dehaze", model="dcp", device="cpu", strength=value)
        engine = Engine.build(settings, SmoothingParams(enabled=False), stabiliser=off)
        return engine.enhance([image])[0].astype(float)

    full, blended = enhance(1.0), enhance(strength)
    expected = image + strength * (full - image)
    assert np.abs(blended - expected).max() <= 1.0  # rounding of the two results
    assert np.abs(full - image).mean() > 10  # the enhancer does change the picture
