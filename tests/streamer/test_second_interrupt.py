"""A second Ctrl-C or SIGTERM while a run drains stops it at once, with one line that says
what the output holds, the file closed properly (its trailer, every frame it says), and the
shells' exit code. The drain is made long on purpose: a network at full resolution on the CPU,
one frame a batch, 24 frames queued."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from streamer.sinks.check import check_written
from tests.streamer.signalled import frame_times, signalled_run


@pytest.mark.slow
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_stops_at_once_with_the_file_closed(
        tmp_path: Path, second: int) -> None:
    dst, config = tmp_path / "twice.mp4", tmp_path / "slow.yaml"
    config.write_text("batch: {size: 1, queue_batches: 24}\n")
    code, err, after_s = signalled_run(
        ["lavfi:testsrc2=size=640x360:rate=25:duration=60", "-o", dst, "--model", "hdm-s",
         "--task", "dehaze", "--backend", "eager", "--inference-size", "full", "--config", config],
        [(0.5, signal.SIGINT), (0.7, second)])
    assert code == 128 + second, err
    assert "Traceback" not in err and after_s < 10
    [line] = [line for line in err.splitlines() if "stopped at once" in line]
    found = re.search(rf"{re.escape(str(dst))} is closed with its trailer and the (\d+) "
                      r"frames written; (\d+) of the (\d+) frames read were not written", line)
    assert found is not None, line
    written, unwritten, read = map(int, found.groups())
    assert written >= 1 and unwritten >= 1 and written + unwritten == read
    check_written(dst, written, "mp4")  # every frame it says, and the trailer
    assert frame_times(dst, 25) == list(range(written))
