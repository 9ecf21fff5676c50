"""The remaining edges of a segmented job (issue 20, 8): ``--workers 0`` and ``--segment-seconds
0`` alone are refused (they had been a plain run, silently). A worker process killed
mid-segment: test_worker_deaths.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.streamer.clips import write_clip
from tests.streamer.commands import run


@pytest.mark.parametrize(("flags", "says"), [
    (["--workers", "0"], "--workers must be >= 1, got 0"),
    (["--workers", "-2"], "--workers must be >= 1, got -2"),
    (["--segment-seconds", "0"], "--segment-seconds must be > 0, got 0"),
    (["--segment-seconds", "-1"], "--segment-seconds must be > 0, got -1"),
])
def test_zero_workers_or_seconds_alone_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=4, audio=False)
    assert run(src, "-o", dst, *flags) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and says in err[0], err
    assert not dst.exists()
