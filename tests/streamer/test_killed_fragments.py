"""A fragmented MP4 whose run is SIGKILLed plays up to its last whole fragment, and that
fragment holds whole groups of pictures: no frame missing before the last one played.

Where a kill lands is chance (a real SIGKILL showed the gap in 1 of 3 tries), so the file a
kill would leave is made exactly: a whole output cut before each of its fragments in turn,
which is what the disk holds when the run dies while that fragment is being made.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tests.streamer.clips import write_clip
from tests.streamer.commands import run
from tests.streamer.signalled import frame_times


def _fragment_offsets(path: Path) -> list[int]:
    """Where each top-level ``moof`` box starts."""
    data, offsets, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[offset:offset + 8])
        if name == b"moof":
            offsets.append(offset)
        offset += size
    return offsets


def test_every_fragment_a_kill_leaves_last_ends_on_a_whole_group_of_pictures(
        tmp_path: Path) -> None:
    """Fragments cut by duration (every second, inside x264's 10 s GOP) had ended inside a
    B-frame group: the frames shown before a fragment's last were in the next one, lost."""
    src, dst, cut = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "cut.mp4"
    write_clip(src, frames=150, fps=25, audio=False)
    assert run(src, "-o", dst) == 0
    offsets = _fragment_offsets(dst)
    assert len(offsets) >= 3
    data = dst.read_bytes()
    for fragments, offset in enumerate(offsets[1:], 1):
        cut.write_bytes(data[:offset])
        times = frame_times(cut, 25)
        assert times == list(range(len(times))), f"cut after fragment {fragments}"
        assert times
