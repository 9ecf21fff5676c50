"""Training and evaluation data: paired folders, synthetic degradations, augmentation.

Paired folders come in the usual layouts: ``hazy/`` + ``gt|clear/`` (RESIDE, SOTS, O-HAZE),
``rainy|rain/`` + ``gt|norain/`` (Rain100), ``low/`` + ``high/`` (LOL), or ``input/`` +
``target|gt/``; files are matched by name, ignoring the usual prefixes and suffixes
(``rain-001`` ↔ ``norain-001``, ``35_outdoor_hazy`` ↔ ``35_outdoor_GT``, ``1400_3`` ↔ ``1400``).

Synthetic degradations turn clean images into training pairs: haze by the atmospheric
scattering model over a smooth random depth (or a given one), rain as streak layers (several
lengths and widths, one fall direction, splashes, a veil), low light as a shorter exposure in
linear light with a colour cast and Poisson–Gaussian noise (and, now and then, a well-exposed
picture that must come back unchanged). DCP masks are not made here: the model computes them on
the training device in the training step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hdm.errors import InputError, ModelConfigError

__all__ = [
    "PairedImages",
    "SyntheticPairs",
    "add_haze",
    "add_lowlight",
    "add_rain",
    "find_pairs",
    "is_paired_folder",
    "read_rgb",
    "sky_mask",
    "to_tensor",
]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_INPUT_DIRS = ("hazy", "rainy", "rain", "low", "input")
_TARGET_DIRS = ("gt", "clear", "norain", "high", "target")
_NAME_NOISE = re.compile(r"(^no)?rain[-_]|[-_](hazy|gt|clear|input|target|low|high)$")
Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]
# Share of synthetic pairs left undegraded (haze) or well exposed (low light): enhancers must
# learn to leave a good picture alone, or they darken clear skies and blow out bright ones.
CLEAN_SHARE = 1 / 7


def read_rgb(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB; raises InputError for a file that is not a readable image."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _key(stem: str) -> str:
    return _NAME_NOISE.sub("", stem.lower())


def _pair_dirs(root: Path) -> tuple[Path | None, Path | None]:
    children = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    inputs = next((children[n] for n in _INPUT_DIRS if n in children), None)
    targets = next((children[n] for n in _TARGET_DIRS if n in children), None)
    return inputs, targets


def is_paired_folder(root: Path) -> bool:
    """Whether ``root`` holds an input folder beside a target folder in a layout read here."""
    return root.is_dir() and None not in _pair_dirs(root)


def find_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(input, target) image pairs of a paired folder, matched by name."""
    inputs, targets = _pair_dirs(root)
    if inputs is None or targets is None:
        raise ModelConfigError(
            f"{root} is not a paired folder: expected one of {_INPUT_DIRS} beside one of "
            f"{_TARGET_DIRS}"
        )
    by_key = {_key(p.stem): p for p in _images(targets)}
    pairs = []
    for source in _images(inputs):
        key = _key(source.stem)
        target = by_key.get(key) or by_key.get(key.split("_")[0])
        if target is None:
            raise ModelConfigError(f"{source} has no matching target in {targets}")
        pairs.append((source, target))
    if not pairs:
        raise ModelConfigError(f"{inputs} holds no images")
    return pairs


def _crop_and_augment(
    images: list[np.ndarray], crop: int | None, rng: np.random.Generator, augment: bool
) -> list[np.ndarray]:
    """The same random crop and left-right flip for every image of a pair. Not turned or
    upended: pictures have an up (the sky at the top, rain falling near vertically), and an
    enhancer that had to learn sideways rain or skies at the side would learn the real ones less."""
    h, w = images[0].shape[:2]
    if crop is not None:
        if h < crop or w < crop:
            scale = crop / min(h, w)
            images = [cv2.resize(i, (max(crop, round(w * scale)), max(crop, round(h * scale))),
                                 interpolation=cv2.INTER_CUBIC) for i in images]
            h, w = images[0].shape[:2]
        top, left = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        images = [i[top : top + crop, left : left + crop] for i in images]
    if augment and rng.random() < 0.5:
        images = [i[:, ::-1] for i in images]
    return [np.ascontiguousarray(i) for i in images]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0


class PairedImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Pairs from paired folders, held in memory (the sets here are small).

    ``crop`` None gives whole images (evaluation); ``repeat`` lengthens an epoch.
    """

    def __init__(
        self,
        roots: list[Path],
        *,
        crop: int | None = None,
        augment: bool = False,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        self.pairs = [pair for root in roots for pair in find_pairs(root)]
        self.images = [(read_rgb(a), read_rgb(b)) for a, b in self.pairs]
        for (a, b), (pa, _) in zip(self.images, self.pairs, strict=True):
            if a.shape != b.shape:
                raise ModelConfigError(f"{pa} and its target differ in size: {a.shape} vs "
                                       f"{b.shape}")
        self.crop, self.augment, self.repeat = crop, augment, repeat
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = list(self.images[index % len(self.images)])
        degraded, clean = _crop_and_augment(pair, self.crop, self.rng, self.augment)
        return to_tensor(degraded), to_tensor(clean)


class SyntheticPairs(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Clean images degraded on the fly by ``degrade``; a new degradation every time. The whole
    picture is degraded, then cropped: the haze's depth and sky belong to the picture, not to
    wherever a crop happens to begin."""

    def __init__(
        self, roots: list[Path], degrade: Degrade, *, crop: int, repeat: int = 1, seed: int = 0
    ) -> None:
        self.images = [read_rgb(p) for root in roots for p in _images(root)]
        if not self.images:
            raise ModelConfigError(f"no clean images in {roots}")
        self.degrade, self.crop, self.repeat = degrade, crop, repeat
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.images[index % len(self.images)]
        degraded, clean = _crop_and_augment([self.degrade(clean, self.rng), clean], self.crop,
                                            self.rng, True)
        return to_tensor(degraded), to_tensor(clean)


# -- degradations -------------------------------------------------------------------------------
def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int) -> np.ndarray:
    coarse = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _normalised(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / max(float(np.ptp(x)), 1e-6)


def sky_mask(clean: np.ndarray) -> np.ndarray:
    """Where the sky of an H×W×3 uint8 RGB picture is, soft-edged in [0, 1]: bright, smooth
    pixels connected to its top edge. Sky is as far as a picture goes, so haze there is at its
    densest. A heuristic: a white ceiling counts, and so does flat ground under an overcast sky
    when the horizon between them is faint (under about 15 levels)."""
    grey = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    mean = cv2.blur(grey, (7, 7))
    spread = np.sqrt(np.maximum(cv2.blur(grey * grey, (7, 7)) - mean * mean, 0))
    candidate = ((grey > 0.45) & (spread < 0.03)).astype(np.uint8)
    _, labels = cv2.connectedComponents(candidate)
    touching_top = np.unique(labels[0][candidate[0] > 0])
    sky = np.isin(labels, touching_top).astype(np.float32)
    return cv2.GaussianBlur(sky, (0, 0), 2.0)


def add_haze(clean: np.ndarray, rng: np.random.Generator,
             depth: np.ndarray | None = None) -> np.ndarray:
    """I = J t + A (1 - t), t = exp(-beta d): d is ``depth`` (normalised) or else a smooth
    random field rising towards the top of the picture, with whatever ``sky_mask`` finds farthest
    of all, so that hazy skies and the bright flat walls beside them are learnt as they look; A is a
    bright, slightly tinted grey. One time in seven there is no haze (beta 0), so that a clear
    picture is kept as it is (not darkened)."""
    h, w = clean.shape[:2]
    if depth is None:
        rows = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None]
        field = 0.6 * rows + 0.4 * _smooth_field((h, w), rng, 4)
        depth = np.maximum(_normalised(field), sky_mask(clean))  # all sky: all far
    else:
        depth = _normalised(depth)
    beta = 0.0 if rng.random() < CLEAN_SHARE else rng.uniform(0.6, 2.4)
    t = np.exp(-beta * depth)[..., None]
    light = rng.uniform(0.7, 1.0) * (1 + rng.uniform(-0.05, 0.05, 3)).astype(np.float32)
    hazy = clean.astype(np.float32) / 255 * t + np.clip(light, 0, 1) * (1 - t)
    return np.clip(hazy * 255 + 0.5, 0, 255).astype(np.uint8)


def _streaks(shape: tuple[int, int], rng: np.random.Generator, angle: float) -> np.ndarray:
    """One layer of rain: sparse drops smeared into streaks of one length and width, falling
    at ``angle`` degrees from vertical (a little apart from the picture's other layers)."""
    h, w = shape
    density = rng.uniform(0.002, 0.02)
    drops = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (h, w))
    length = int(rng.integers(5, 41))
    width = int(rng.choice((1, 1, 1, 2, 3)))  # most streaks are thin, some are near the lens
    kernel = np.zeros((length, length), np.float32)
    middle = length // 2
    kernel[:, max(0, middle - width // 2) : middle + (width + 1) // 2] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2),
                                       angle + rng.uniform(-5, 5), 1.0)
    rotated = cv2.warpAffine(kernel, rotation, (length, length))
    rotated = (rotated / max(float(rotated.sum()), 1e-6)).astype(np.float32)
    layer = cv2.filter2D(drops, -1, rotated)
    if width > 1:
        layer = cv2.GaussianBlur(layer, (0, 0), 0.5 * width)
    return layer / max(float(layer.max()), 1e-6) * rng.uniform(0.3, 0.9)


def _splashes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Drops breaking on the ground and on the lens: a few soft round blobs."""
    drops = (rng.random(shape) < rng.uniform(0.0002, 0.002)).astype(np.float32)
    blobs = cv2.GaussianBlur(drops, (0, 0), rng.uniform(0.8, 2.5))
    return blobs / max(float(blobs.max()), 1e-6) * rng.uniform(0.2, 0.6)


def _specks(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Drizzle and snow: many small soft dots, barely smeared, too dense to count."""
    drops = (rng.random(shape) < rng.uniform(0.005, 0.03)).astype(np.float32)
    drops *= rng.uniform(0.4, 1.0, shape).astype(np.float32)
    dots = cv2.GaussianBlur(drops, (0, 0), rng.uniform(0.5, 1.2))
    return dots / max(float(dots.max()), 1e-6) * rng.uniform(0.3, 0.8)


def add_rain(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain as cameras see it: one to three streak layers (one fall direction for the picture,
    up to 45 degrees from vertical as wind blows it; each layer its own density, length and
    width), now and then splashes or a drizzle of specks, blended as light (screen), and a
    quarter of the time a light veil of fine drops that lowers contrast."""
    image = clean.astype(np.float32) / 255
    angle = rng.uniform(-45, 45)
    rain = sum(_streaks(image.shape[:2], rng, angle) for _ in range(int(rng.integers(1, 4))))
    if rng.random() < 0.3:
        rain = rain + _splashes(image.shape[:2], rng)
    if rng.random() < 0.25:
        rain = rain + _specks(image.shape[:2], rng)
    rainy = 1 - (1 - image) * (1 - np.clip(rain, 0, 1)[..., None])  # screen blend
    if rng.random() < 0.25:
        veil = rng.uniform(0.02, 0.10)
        rainy = rainy * (1 - veil) + veil * rng.uniform(0.7, 0.95)
    return np.clip(rainy * 255 + 0.5, 0, 255).astype(np.uint8)


_GAMMA = 2.2  # sRGB's tone curve, near enough: exposure and noise happen in linear light


def add_lowlight(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shorter exposure as a camera makes it: in linear light the scene is scaled down (with a
    slight colour cast) and gets Poisson–Gaussian sensor noise, then the tone curve (with a little
    extra contrast) is applied again. Hue survives, as in real night photos; one time in seven the
    picture is left well exposed (only a little noise), so that a good exposure is kept as it is.
    """
    linear = np.power(clean.astype(np.float32) / 255, _GAMMA)
    if rng.random() < CLEAN_SHARE:
        exposure, cast = 1.0, np.ones(3, np.float32)
        photons, extra_gamma = rng.uniform(2000, 8000), 1.0
    else:
        exposure = float(np.exp(rng.uniform(np.log(0.01), np.log(0.25))))
        cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
        photons, extra_gamma = rng.uniform(300, 4000), rng.uniform(1.0, 1.3)
    dark = linear * exposure * cast
    noisy = rng.poisson(np.clip(dark, 0, 1) * photons) / photons
    noisy = noisy + rng.normal(0, rng.uniform(0.0005, 0.003), noisy.shape)
    encoded = np.power(np.clip(noisy, 0, 1), extra_gamma / _GAMMA)
    return np.clip(encoded * 255 + 0.5, 0, 255).astype(np.uint8)


DEGRADATIONS: dict[str, Degrade] = {"dehaze": add_haze, "derain": add_rain,
                                    "lowlight": add_lowlight}
