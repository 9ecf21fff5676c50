"""The public API is what __all__ says, and every name in it exists."""

from __future__ import annotations

import hdm


def test_hdm_exports_exactly_its_public_api() -> None:
    public = {name for name in dir(hdm) if not name.startswith("_")}
    modules = {"builders", "checkpoint", "classical", "dcp", "deform", "errors", "layers"}
    modules |= {"model", "presets"}
    assert public - modules == set(hdm.__all__)
