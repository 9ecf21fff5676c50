"""The public API is what __all__ says, and every name in it exists."""

from __future__ import annotations

import hdm


def test_hdm_exports_exactly_its_public_api() -> None:
    public = {name for name in dir(hdm) if not name.startswith("_")}
    modules = {"builders", "checkpoint", "classical", "dcp", "deform", "errors", "layers"}
    modules |= {"data", "evaluate", "fusion", "metrics", "model", "photo_stats", "presets", "train",
                "weights"}
    assert public - modules == set(hdm.__all__)


def test_streamer_exports_exactly_its_public_api() -> None:
    import streamer

    public = {name for name in dir(streamer) if not name.startswith("_")}
    modules = {"cli", "colour", "config", "engine", "enhancer", "errors", "file_sink", "frames",
               "messages",
               "pipeline", "publish", "queues", "source", "stats", "subscriber", "temporal"}
    assert public - modules == set(streamer.__all__)
