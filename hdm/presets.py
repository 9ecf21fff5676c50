"""Named HDM architectures. Shapes only: mask mode and task are chosen per build."""

from __future__ import annotations

from hdm.model import HDMConfig

__all__ = ["PRESETS", "preset_name"]

PRESETS: dict[str, HDMConfig] = {
    # The paper's network: 2,819,292 parameters used by the forward pass.
    "hdm": HDMConfig(width=64, groups=3, blocks=9, regions=5),
    # Small, for real time: about 5x fewer MACs per pixel, most of the saving in the
    # full-resolution head (width 32).
    "hdm-s": HDMConfig(width=32, groups=2, blocks=3, regions=5),
}


def preset_name(config: HDMConfig) -> str:
    """The preset whose shapes ``config`` has, or ``"custom"``."""
    for name, preset in PRESETS.items():
        if (preset.width, preset.groups, preset.blocks, preset.regions) == (
            config.width,
            config.groups,
            config.blocks,
            config.regions,
        ):
            return name
    return "custom"
