"""The camera's motion between consecutive frames, so the temporal filters compare and blend a
frame with its history where the camera now looks, not where it looked.

Without it, a pan over flat haze or sky leaves trails: the input there hardly changes, so the
stabiliser leaned on its previous output, and that output still held the dark fringe the network
draws around the rocket where the rocket was (the demo's arcs, issue 21). The estimate is a
similarity transform (pan, tilt, zoom, roll) from Lucas-Kanade flow of a grid of points on the
small grey frame, fitted with RANSAC so that a moving object does not pull it; about half a
millisecond at 171×96. What it cannot describe (a car crossing, parallax) the stabiliser's own
change test still catches, now on the aligned history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from hdm import dcp

__all__ = ["ANALYSIS_SIDE", "CameraTrack", "Motion", "analysis_grey", "estimate_motion", "warp"]

ANALYSIS_SIDE = 144
_GRID = (9, 16)  # points tracked, rows × columns
_STILL_PX = 0.1  # a corner moving less than this (small-frame pixels) is no motion
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


@dataclass(frozen=True)
class Motion:
    """Where the previous frame's pixels went: ``matrix`` (2×3 affine) maps a pixel centre of
    the previous analysis frame (``size``: h, w) to the current one's."""

    matrix: np.ndarray
    size: tuple[int, int]

    def at(self, scale_y: float, scale_x: float, offset_y: float = 0.0,
           offset_x: float = 0.0) -> np.ndarray:
        """The same motion for an image that samples the analysis frame ``scale`` times as
        densely, shifted by ``offset`` of its own pixels (a border it adds): its pixel centres
        are p' = scale·(p + 0.5) − 0.5 + offset."""
        to = np.array([[scale_x, 0, 0.5 * scale_x - 0.5 + offset_x],
                       [0, scale_y, 0.5 * scale_y - 0.5 + offset_y], [0, 0, 1]])
        return (to @ np.vstack([self.matrix, [0, 0, 1]]) @ np.linalg.inv(to))[:2]

    def for_size(self, height: int, width: int) -> np.ndarray:
        """The motion for an image of this size showing the same view."""
        return self.at(height / self.size[0], width / self.size[1])


def estimate_motion(previous: np.ndarray, current: np.ndarray) -> Motion | None:
    """The camera's motion from ``previous`` to ``current`` (same-sized uint8 grey frames),
    or None: too little to matter, or nothing trustworthy (flat frames, a cut)."""
    height, width = current.shape
    ys, xs = np.meshgrid(np.linspace(0.1, 0.9, _GRID[0]) * (height - 1),
                         np.linspace(0.1, 0.9, _GRID[1]) * (width - 1), indexing="ij")
    points = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)[:, None]
    moved, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, winSize=(15, 15),
                                               maxLevel=3, criteria=_LK_CRITERIA)
    good = found.ravel() == 1
    if good.sum() < points.shape[0] // 3:
        return None
    matrix, inliers = cv2.estimateAffinePartial2D(points[good], moved[good], method=cv2.RANSAC,
                                                  ransacReprojThreshold=1.0)
    if matrix is None or inliers.sum() < points.shape[0] // 3:
        return None
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1],
                        [width - 1, height - 1, 1]], np.float64)
    shift = np.abs(corners @ matrix.T - corners[:, :2]).max()
    return Motion(matrix, (height, width)) if shift >= _STILL_PX else None


@dataclass
class CameraTrack:
    """One stream's last small grey frame and the motion since it (None: still, or unknown)."""

    grey: np.ndarray | None = None
    motion: Motion | None = None

    def step(self, grey: torch.Tensor) -> Motion | None:
        """``grey``: this frame's small grey (1×1×h×w in [0, 1], any device)."""
        current = (grey[0, 0].float() * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        same = self.grey is not None and self.grey.shape == current.shape
        self.motion = estimate_motion(self.grey, current) if same and self.grey is not None \
            else None
        self.grey = current
        return self.motion


def analysis_grey(x: torch.Tensor) -> torch.Tensor:
    """The grey frame motion is judged on (B×1×h×w): ``x`` (B×3×H×W in [0, 1]) as BT.601 luma,
    area-averaged to a shorter side of at most ``ANALYSIS_SIDE`` (a reduced inference size
    usually is already)."""
    grey = dcp.grey(x.float())
    height, width = grey.shape[-2:]
    if min(height, width) <= ANALYSIS_SIDE:
        return grey
    scale = ANALYSIS_SIDE / min(height, width)
    return F.interpolate(grey, size=(round(height * scale), round(width * scale)), mode="area")


Interpolation = Literal["nearest", "linear", "cubic"]
_CV2_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR,
                      "cubic": cv2.INTER_CUBIC}
_TORCH_INTERPOLATION = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic"}


def warp(image: torch.Tensor, matrix: np.ndarray, *, border: str = "replicate",
         interpolation: Interpolation = "linear") -> torch.Tensor:
    """``image`` (1×C×H×W, or 1×H×W for one channel) brought forward by ``matrix`` (the
    previous frame's pixel centres to the current one's, at this image's size): OpenCV on a CPU,
    grid_sample elsewhere. ``border``: ``replicate`` or ``zeros`` (to mark what had no history).
    ``interpolation``: ``nearest`` keeps hard masks one-hot; ``cubic`` suits a picture that is
    warped again every frame (bilinear's blur would add up in the recursive average)."""
    flat = image.dim() == 3
    x = image[:, None] if flat else image
    height, width = x.shape[-2:]
    if x.device.type == "cpu" and x.dtype == torch.float32:
        mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
        hwc = x[0].permute(1, 2, 0).contiguous().numpy()
        out = cv2.warpAffine(hwc, matrix, (width, height), flags=_CV2_INTERPOLATION[interpolation],
                             borderMode=mode)
        result = torch.from_numpy(out.reshape(height, width, -1)).permute(2, 0, 1)[None]
    else:
        inverse = cv2.invertAffineTransform(matrix)  # current pixel -> where it came from
        ys, xs = torch.meshgrid(torch.arange(height, device=x.device, dtype=torch.float32),
                                torch.arange(width, device=x.device, dtype=torch.float32),
                                indexing="ij")
        m = torch.as_tensor(inverse, dtype=torch.float32, device=x.device)
        src_x = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        src_y = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        grid = torch.stack([(2 * src_x + 1) / width - 1, (2 * src_y + 1) / height - 1], -1)
        result = F.grid_sample(x.float(), grid[None], mode=_TORCH_INTERPOLATION[interpolation],
                               padding_mode="border" if border == "replicate" else "zeros",
                               align_corners=False).to(x.dtype)
    return result[:, 0] if flat else result
