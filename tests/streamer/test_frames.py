"""The frame vocabulary: layouts, their negotiation between a source and its consumers."""

from __future__ import annotations

import numpy as np

from streamer.frames import ANY, RGB, Layout, negotiate, preferred


def test_layouts_are_negotiated_once_and_rgb_always_survives() -> None:
    planes = frozenset({Layout.I420, Layout.RGB24})
    assert negotiate(planes, ANY, ANY) == planes
    assert negotiate(planes, RGB) == {Layout.RGB24}
    assert negotiate(frozenset({Layout.RGB48}), frozenset({Layout.I420})) == {Layout.RGB48}


def test_the_preferred_layout_has_the_fewest_bytes_then_the_most_bits() -> None:
    assert preferred(ANY) is Layout.I420
    assert preferred(RGB) is Layout.RGB48
    assert preferred(frozenset({Layout.RGB24})) is Layout.RGB24


def test_an_i420_image_says_the_picture_size_it_holds() -> None:
    planes = np.zeros((144 * 3 // 2, 256), np.uint8)
    assert Layout.I420.size(planes) == (144, 256)
    assert Layout.RGB24.size(np.zeros((144, 256, 3), np.uint8)) == (144, 256)
    assert Layout.rgb_for(np.dtype(np.uint16)) is Layout.RGB48
