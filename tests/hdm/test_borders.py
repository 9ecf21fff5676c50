"""No line of wrong colour along the picture's border: the network's own border response falls
in the reflected margin that forward adds and crops away (hdm.model.BORDER)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hdm import TASKS, build_model
from hdm.data import IMAGE_SUFFIXES, read_rgb, to_tensor

PHOTOS = {"dehaze": "dehaze/real_hazy_classic", "derain": "derain/real_rainy_sirr",
          "lowlight": "lowlight/dicm_subset"}


def border_step(image: torch.Tensor) -> float:
    """Worst mean difference, in 8-bit levels, between the outer 2-pixel band of a side and the
    4 pixels inside it, over the four sides and three channels (3×H×W in [0, 1])."""
    steps = []
    for side in (image, image.flip(-1), image.transpose(-1, -2), image.transpose(-1, -2).flip(-1)):
        band, inside = side[:, :, :2].mean(dim=(1, 2)), side[:, :, 2:6].mean(dim=(1, 2))
        steps.append((band - inside).abs().max().item() * 255)
    return max(steps)


@pytest.mark.parametrize("task", TASKS)
def test_shipped_model_draws_no_border_line_on_a_real_photo(task: str, shared_data: Path) -> None:
    folder = shared_data / PHOTOS[task]
    path = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[0]
    x = F.interpolate(to_tensor(read_rgb(path)).unsqueeze(0), size=(240, 320), mode="area")
    model = build_model("hdm-s", task=task, weights="default").eval()
    with torch.no_grad():
        out = model(x)[0]
    # The input's own step, scaled as the model brightens, plus 2.5 levels; without the margin
    # the shipped models drew 19-31 levels here.
    brightening = max(1.0, (out.mean() / x.mean()).item())
    assert border_step(out) <= border_step(x[0]) * brightening + 2.5
