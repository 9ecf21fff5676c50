"""A photo into a photo (``run photo.jpg -o out.jpg``): read upright with its metadata
(streamer/media/photo.py), enhanced as the Python API enhances unrelated pictures (a fresh
temporal state each: nothing carried from one photo to the next), written in the output's
format with what of the input's metadata it holds; what it cannot hold is said, once.

A photo is not a stream: no encoder, no segments, no publishing; a folder of photos is a
batch of these (batch.py), an image sequence a video (``frames/%05d.png``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import ConfigError
from streamer.media.photo import METADATA_NAMES, is_photo, read_photo, write_photo
from streamer.media.sequence import is_pattern
from streamer.stats import RunStats

__all__ = ["enhance_photo", "photo_to_photo"]

log = logging.getLogger(__name__)


def photo_to_photo(input: str, output: str | None) -> bool:
    """Both ends name a single picture (not an image sequence): the photo path."""
    return (output is not None and is_photo(input) and is_photo(output)
            and not is_pattern(input) and not is_pattern(output))


def enhance_photo(config: RunConfig, engine: Engine, input: Path, output: Path) -> RunStats:
    """Enhance ``input`` into ``output`` (side by side when the settings say so); the run's
    statistics: one frame in, one out."""
    if output.exists() and os.path.samefile(input, output):
        raise ConfigError(f"output {output} would overwrite the input")
    stats = RunStats()
    photo = read_photo(input)
    started = time.perf_counter()
    [enhanced] = engine.enhance([photo.image])  # no state: an unrelated picture
    stats.stages["infer"].add(time.perf_counter() - started, 1)
    alpha = photo.alpha
    if config.encode.side_by_side:
        enhanced = np.concatenate([photo.image, enhanced], axis=1)
        alpha = None if alpha is None else np.concatenate([alpha, alpha], axis=1)
    left_out = write_photo(output, enhanced, alpha, photo.metadata)
    height, width = photo.image.shape[:2]
    kept = [METADATA_NAMES[kind] for kind in photo.metadata
            if METADATA_NAMES[kind] not in left_out]
    turned = f", turned upright (EXIF orientation {photo.orientation})" \
        if photo.orientation != 1 else ""
    log.info("%s: %dx%d, %d bits%s%s", input.name, width, height, photo.bits, turned,
             f", {', '.join(kept)} kept" if kept else "")
    if left_out:
        log.warning("%s: a %s file cannot hold the input's %s: left out", output,
                    output.suffix.lstrip("."), ", ".join(left_out))
    stats.frames_in = stats.frames_out = 1
    stats.finished = time.monotonic()
    return stats
