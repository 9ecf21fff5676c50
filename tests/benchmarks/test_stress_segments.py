"""The stress script's comparison: a difference is found, placed in its segment and measured."""

from __future__ import annotations

import numpy as np

from benchmarks.stress_segments import compare, frame_hashes


def test_a_changed_frame_is_found_in_its_segment_with_its_size() -> None:
    frames = [np.full((6, 4), i, np.uint8) for i in range(6)]
    segment_of = [0, 0, 1, 1, 2, 2]
    changed = [f.copy() for f in frames]
    changed[3][2, 1] += 103
    assert compare(frames, [f.copy() for f in frames], segment_of) == {"differing_frames": 0}
    assert compare(frames, changed, segment_of) == {
        "differing_frames": 1, "first": 3, "last": 3, "segments": [1], "max_levels": 103,
        "mean_levels": round(103 / 24, 3)}
    assert compare(frames, changed[:5], segment_of) == {"frames": 5, "expected": 6}
    same = [a == b for a, b in zip(frame_hashes(frames), frame_hashes(changed), strict=True)]
    assert same == [True, True, True, False, True, True]
